//! The gate's own session credential: what rewritten manifests carry instead of the entry
//! token, so segment requests are checked statelessly and playback outlives a short-lived
//! entry token. Each playlist reload issues a fresh one (a sliding window).
//!
//! Format: `v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256)>`, signed with the gate's
//! session secret.
//!
//! The rule: a session credential is never wider than the entry token that earned it. It
//! carries the token's scope (stream globs, EdgeAuth ACL, WMSAuth prefix), IP binding
//! (including an IP the scheme hashed into its signature), referrers, User-Agent patterns,
//! access rules and purpose, and the policy enforces them on every request exactly as for
//! the token. Its lifetime is capped by the session's bounds: the entry token's expiry plus
//! [`SessionOptions::grace`], and [`SessionOptions::max_age`] from the session's start.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::claims::{AccessRule, Purpose};
use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_url, b64_url_decode};
use crate::grant::{directory_of, Grant, Scope, SessionBounds, Validity};
use crate::keys::{Algorithm, Key};
use crate::policy::ip::{network_of, IpRange};
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};

const VERSION: &str = "v1";

/// The longest presentation a VOD credential is stretched to cover: one day.
pub const MAX_PRESENTATION_SECONDS: u64 = 86_400;

/// What a session credential carries. Short member names: it travels in every URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The key sessions are counted under ([`Grant::session_key`]).
    pub key: String,
    /// The player session this credential belongs to.
    pub sid: String,
    /// The entry token's id, checked against revocations on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The entry token's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The entry token's fingerprint when it has no `jti`, checked against revocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp: Option<String>,
    /// The entry token's scope.
    pub scope: Scope,
    /// IP binding carried over from the entry token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpRange>,
    /// The admitting client's network, when the operator binds sessions to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<IpRange>,
    /// The entry token's session limit, for re-admission after an idle expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// The entry token's referrer hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// Whether the entry token let a request without Referer through its referrer list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr: Option<bool>,
    /// The entry token's User-Agent patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uas: Vec<String>,
    /// The entry token's access rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AccessRule>,
    /// The entry token's purpose.
    #[serde(default, skip_serializing_if = "is_play")]
    pub pur: Purpose,
    /// When the session started and when it must end.
    pub span: SessionBounds,
    /// Expiry of this credential, unix seconds.
    pub exp: i64,
}

fn is_play(purpose: &Purpose) -> bool {
    *purpose == Purpose::Play
}

/// Whether session credentials are bound to the admitting client's network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionBinding {
    /// Not bound (the default): a viewer who moves from Wi-Fi to cellular keeps playing.
    #[default]
    None,
    /// Bound to the admitting client's /24 (IPv4) or /64 (IPv6): a copied URL stops working
    /// elsewhere, and so does a viewer's own playback when its network changes (it must
    /// come back with its entry token).
    Network,
}

/// What the session credentials of a token signed for one exact URL (EdgeAuth `url=`,
/// secure_link with `$uri`) cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlTokenScope {
    /// That URL only (the default), never wider than the token: its playlist loads and
    /// reloads, and the URIs it names are refused (`scope_mismatch`). Sign an ACL, a stream
    /// glob or a WMSAuth prefix to play a presentation.
    #[default]
    Exact,
    /// The manifest's directory, so the presentation plays from a URL token (not for a
    /// manifest at the root, which stays [`UrlTokenScope::Exact`]). Wider than the token: on a
    /// flat layout (`/hls/match1.m3u8` beside `/hls/match2.m3u8`) it opens the neighbours too.
    Directory,
}

/// The directory [`UrlTokenScope::Directory`] widens the sessions of a token signed for the
/// manifest at `manifest_path` to: none for a manifest at the root, which would open the
/// whole origin.
pub fn widened_directory(manifest_path: &str) -> Option<&str> {
    Some(directory_of(manifest_path)).filter(|directory| *directory != "/")
}

/// How session credentials are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Lifetime of each credential, seconds: a player must reload its playlist within it.
    pub ttl: u32,
    /// How long past the entry token's expiry a session may go on, seconds.
    pub grace: u32,
    /// The longest a session may go on from its start, seconds; then the player must come
    /// back with an entry token.
    pub max_age: u32,
    /// Network binding.
    pub binding: SessionBinding,
    /// What the sessions of a token signed for one exact URL cover.
    pub url_tokens: UrlTokenScope,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            ttl: 120,
            grace: 14_400,
            max_age: 43_200,
            binding: SessionBinding::None,
            url_tokens: UrlTokenScope::Exact,
        }
    }
}

/// Issues and verifies session credentials with the gate's secret.
#[derive(Clone, Debug)]
pub struct SessionScheme {
    key: Key,
    /// How credentials are issued.
    pub options: SessionOptions,
}

impl SessionScheme {
    /// A scheme with `secret` (at least 32 bytes) and `options`.
    pub fn new(secret: &[u8], options: SessionOptions) -> Result<SessionScheme, Error> {
        if secret.len() < 32 {
            return Err(Error::key("the session secret must be at least 32 bytes"));
        }
        if options.ttl == 0 || options.max_age == 0 {
            return Err(Error::input("session options", "ttl and max_age must be positive"));
        }
        Ok(SessionScheme { key: Key::hmac(Algorithm::HS256, secret)?, options })
    }

    /// The bounds of a session that `grant` (an entry token) opens at `now`, or keeps (a
    /// session credential).
    pub fn bounds(&self, grant: &Grant, now: i64) -> SessionBounds {
        if let Some(bounds) = grant.session_bounds {
            return bounds;
        }
        let by_age = now.saturating_add(i64::from(self.options.max_age));
        let by_token = grant.validity.expires_at.map(|exp| exp.saturating_add(i64::from(self.options.grace)));
        SessionBounds { started: now, ends: by_token.map_or(by_age, |t| t.min(by_age)) }
    }

    /// The scope of the session credentials issued to `grant` from a manifest at
    /// `manifest_path`: the entry token's own, never wider, except where the operator lets
    /// a token signed for one URL cover its manifest's directory
    /// ([`UrlTokenScope::Directory`]), unless that is the root.
    pub fn scope_for(&self, grant: &Grant, manifest_path: &str) -> Scope {
        match (&grant.scope, self.options.url_tokens, widened_directory(manifest_path)) {
            (Scope::SignedPath(_), UrlTokenScope::Directory, Some(directory)) => {
                Scope::SignedPrefix(directory.to_owned())
            }
            (scope, _, _) => scope.clone(),
        }
    }

    /// A credential for `grant`'s session `sid`, issued with the manifest at
    /// `manifest_path` to the client at `client_ip`. It lives `ttl` seconds from `now`, or,
    /// for a VOD manifest that plays for `presentation_seconds`, `ttl` past the presentation
    /// (at most [`MAX_PRESENTATION_SECONDS`] of it), and never past the session's bounds.
    pub fn issue(
        &self,
        grant: &Grant,
        sid: &str,
        manifest_path: &str,
        client_ip: Option<IpAddr>,
        now: i64,
        presentation_seconds: Option<u64>,
    ) -> Result<String, Error> {
        let presentation = presentation_seconds.unwrap_or(0).min(MAX_PRESENTATION_SECONDS);
        let lifetime = i64::from(self.options.ttl).saturating_add(i64::try_from(presentation).unwrap_or(0));
        let span = self.bounds(grant, now);
        let net = match (grant.network_binding, self.options.binding, client_ip) {
            (Some(kept), _, _) => Some(kept),
            (None, SessionBinding::Network, Some(ip)) => Some(network_of(ip)),
            (None, SessionBinding::Network, None) => {
                return Err(Error::input("client_ip", "sessions are bound to networks but the client IP is unknown"))
            }
            (None, SessionBinding::None, _) => None,
        };
        let claims = SessionClaims {
            key: grant.session_key(),
            sid: sid.to_owned(),
            jti: grant.token_id.clone(),
            sub: grant.subject.clone(),
            fp: if grant.token_id.is_none() { grant.entry_fingerprint() } else { None },
            scope: self.scope_for(grant, manifest_path),
            ip: grant.ip_binding,
            net,
            max: grant.max_sessions,
            refs: grant.referrers.clone(),
            nr: grant.allow_no_referrer,
            uas: grant.user_agents.clone(),
            rules: grant.access_rules.clone(),
            pur: grant.purpose,
            span,
            exp: now.saturating_add(lifetime).min(span.ends),
        };
        let payload = serde_json::to_vec(&claims).map_err(|e| Error::input("session", e.to_string()))?;
        let mut credential = format!("{VERSION}.{}", b64_url(&payload));
        let tag = self.key.sign(credential.as_bytes())?;
        credential.push('.');
        credential.push_str(&b64_url(&tag));
        if credential.len() > MAX_CREDENTIAL_BYTES {
            return Err(Error::input("session", "the entry token's restrictions do not fit in a session credential"));
        }
        Ok(credential)
    }
}

/// A session credential past its expiry, presented on a playlist reload, is renewable:
/// players reload a playlist by the URL they were first given, so a live stream presents
/// the same credential for as long as it plays. Returns the grant with its expiry lifted,
/// for the caller to renew only if the session store confirms the session is still active
/// and the same viewer (see [`crate::sessions`]). `None` for anything else, and for a
/// session past its bounds (the entry token's expiry plus grace, or the maximum age).
pub fn lift_expiry_for_renewal(grant: &Grant, now: i64) -> Option<Grant> {
    let lapsed = grant.validity.expires_at.is_some_and(|exp| now >= exp);
    let within_bounds = grant.session_bounds.is_some_and(|bounds| now < bounds.ends);
    (grant.scheme == SchemeKind::Session && lapsed && within_bounds).then(|| {
        let mut renewable = grant.clone();
        renewable.validity.expires_at = None;
        renewable
    })
}

impl Scheme for SessionScheme {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Session
    }

    fn verify(&self, credential: &str, _facts: &RequestFacts) -> Result<Grant, Denial> {
        if credential.len() > MAX_CREDENTIAL_BYTES {
            return Err(Denial::malformed("session credential is oversized"));
        }
        let mut parts = credential.split('.');
        let (Some(VERSION), Some(payload), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Denial::malformed("not a v1 session credential"));
        };
        let signed = credential.get(..VERSION.len() + 1 + payload.len()).unwrap_or("");
        let tag = b64_url_decode(tag).ok_or_else(|| Denial::malformed("session tag is not base64url"))?;
        // The session key is the core's own HMAC: no platform primitive, so no error; one
        // would fail closed.
        if !self.key.verify(signed.as_bytes(), &tag).unwrap_or(false) {
            return Err(Denial::BadSignature {
                explanation: Some(SignatureExplanation {
                    tried: vec![signed.to_owned()],
                    recipe: "HMAC-SHA256(session secret, \"v1.\" + base64url(payload))".into(),
                }),
            });
        }
        let payload = b64_url_decode(payload).ok_or_else(|| Denial::malformed("session payload is not base64url"))?;
        let claims: SessionClaims =
            serde_json::from_slice(&payload).map_err(|e| Denial::malformed(format!("session payload: {e}")))?;
        // JSON that parsed is UTF-8, so the payload moves into the grant without a copy.
        let claims_json =
            String::from_utf8(payload).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let mut grant = Grant::new(SchemeKind::Session, credential, claims_json);
        grant.issued_session_key = Some(claims.key);
        grant.entry_token_fingerprint = claims.fp;
        grant.subject = claims.sub;
        grant.token_id = claims.jti;
        grant.session_id = Some(claims.sid);
        grant.validity = Validity { not_before: None, expires_at: Some(claims.exp), leeway: 0 };
        grant.scope = claims.scope;
        grant.ip_binding = claims.ip;
        grant.network_binding = claims.net;
        grant.max_sessions = claims.max;
        grant.referrers = claims.refs;
        grant.allow_no_referrer = claims.nr;
        grant.user_agents = claims.uas;
        grant.access_rules = claims.rules;
        grant.purpose = claims.pur;
        grant.session_bounds = Some(claims.span);
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{CountryCode, RuleAction, RuleMatcher};

    fn facts(path: &str) -> RequestFacts {
        RequestFacts { path: path.into(), client_ip: None }
    }

    fn options(ttl: u32) -> SessionOptions {
        SessionOptions { ttl, ..SessionOptions::default() }
    }

    fn entry_grant() -> Grant {
        let mut grant = Grant::new(SchemeKind::Jwt, "entry-token", "{}".into());
        grant.token_id = Some("jti-1".into());
        grant.subject = Some("viewer".into());
        grant.ip_binding = IpRange::parse("198.51.100.0/24").ok();
        grant.max_sessions = Some(2);
        grant.scope = Scope::Streams(vec!["hls/match1*".into()]);
        grant.validity.expires_at = Some(10_000);
        grant
    }

    fn issue(scheme: &SessionScheme, grant: &Grant, sid: &str, manifest: &str, now: i64) -> Grant {
        let credential = scheme.issue(grant, sid, manifest, None, now, None).unwrap();
        scheme.verify(&credential, &facts(manifest)).unwrap()
    }

    #[test]
    fn issues_and_verifies_with_the_entry_grant_facts() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let credential = scheme.issue(&entry_grant(), "sid-1", "/hls/match1.m3u8", None, 1_000, None).unwrap();
        assert!(credential.starts_with("v1.") && !credential.contains(['+', '/', '=']), "{credential}");
        let grant = scheme.verify(&credential, &facts("/hls/match1_720p/seg_1.ts")).unwrap();
        assert_eq!(grant.token_id.as_deref(), Some("jti-1"));
        assert_eq!(grant.session_id.as_deref(), Some("sid-1"));
        assert_eq!(grant.subject.as_deref(), Some("viewer"));
        assert_eq!(grant.validity.expires_at, Some(1_060));
        assert_eq!(grant.session_key(), "sub:viewer");
        assert_eq!(grant.max_sessions, Some(2), "the limit survives into reloads");
        assert_eq!(grant.ip_binding, IpRange::parse("198.51.100.0/24").ok());
    }

    /// Regression (review of 2026-11-30): the credential was scoped to the manifest's
    /// directory, so a token for `hls/match1*` on a flat layout opened `/hls/match2.m3u8`,
    /// and a manifest at the root opened everything.
    #[test]
    fn the_scope_is_the_tokens_never_the_manifests_directory() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let grant = issue(&scheme, &entry_grant(), "sid", "/hls/match1.m3u8", 0);
        assert!(grant.scope.covers("/hls/match1.m3u8"));
        assert!(grant.scope.covers("/hls/match1_audio/en/seg_1.aac"));
        assert!(!grant.scope.covers("/hls/match2.m3u8"), "a sibling stream in the same folder");
        let mut at_root = entry_grant();
        at_root.scope = Scope::Streams(vec!["master.m3u8".into()]);
        let grant = issue(&scheme, &at_root, "sid", "/master.m3u8", 0);
        assert!(!grant.scope.covers("/other/x.ts"), "a manifest at the root opens nothing else");
        // Wide enough for every URI the token covers: sibling folders, root-relative URIs.
        let mut wide = entry_grant();
        wide.scope = Scope::Acl(vec!["/event/*".into()]);
        let grant = issue(&scheme, &wide, "sid", "/event/video/master.m3u8", 0);
        assert!(grant.scope.covers("/event/audio/en/index.m3u8") && grant.scope.covers("/event/keys/k1"));
    }

    /// Regression (review of 2026-12-03): the sessions of a token signed for one exact URL
    /// covered its manifest's whole directory, wider than the token. That is now the
    /// operator's choice (`urlTokenScope: directory`); by default they cover that URL only.
    #[test]
    fn a_url_tokens_sessions_cover_that_url_unless_the_operator_widens_them() {
        let mut exact = entry_grant();
        exact.scope = Scope::SignedPath("/vod/film/master.m3u8".into());
        let strict = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let grant = issue(&strict, &exact, "sid", "/vod/film/master.m3u8", 0);
        assert!(grant.scope.covers("/vod/film/master.m3u8"), "the playlist reloads");
        assert!(!grant.scope.covers("/vod/film/720p/seg_1.ts"));
        let options = SessionOptions { url_tokens: UrlTokenScope::Directory, ..options(60) };
        let widened = SessionScheme::new(&[7u8; 32], options).unwrap();
        let grant = issue(&widened, &exact, "sid", "/vod/film/master.m3u8", 0);
        assert!(grant.scope.covers("/vod/film/720p/seg_1.ts") && !grant.scope.covers("/vod/other/master.m3u8"));
        let glob = issue(&widened, &entry_grant(), "sid", "/hls/match1.m3u8", 0);
        assert!(!glob.scope.covers("/hls/match2.m3u8"), "only URL tokens are widened");
        // Review: a playlist at the root widened to the whole origin.
        exact.scope = Scope::SignedPath("/live.m3u8".into());
        let at_root = issue(&widened, &exact, "sid", "/live.m3u8", 0);
        assert!(at_root.scope.covers("/live.m3u8") && !at_root.scope.covers("/private/film/master.m3u8"));
    }

    /// Regression: a viewer on the bound IP in an allowed country loaded a playlist once, and
    /// the `sgs=` URLs then played from anywhere.
    #[test]
    fn every_restriction_of_the_token_is_carried() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let mut entry = entry_grant();
        entry.referrers = vec!["*.example.com".into()];
        entry.allow_no_referrer = Some(false);
        entry.user_agents = vec!["*Chrome*".into()];
        entry.access_rules = vec![AccessRule {
            action: RuleAction::Block,
            matcher: RuleMatcher::Country { country: vec![CountryCode::parse("RU").unwrap()] },
        }];
        entry.purpose = Purpose::Publish;
        let grant = issue(&scheme, &entry, "sid", "/hls/match1.m3u8", 0);
        assert_eq!(grant.referrers, entry.referrers);
        assert_eq!(grant.allow_no_referrer, Some(false));
        assert_eq!(grant.user_agents, entry.user_agents);
        assert_eq!(grant.access_rules, entry.access_rules);
        assert_eq!(grant.purpose, Purpose::Publish);
        assert_eq!(grant.ip_binding, entry.ip_binding);
    }

    #[test]
    fn network_binding_binds_to_the_admitting_clients_network() {
        let bound = SessionOptions { binding: SessionBinding::Network, ..options(60) };
        let scheme = SessionScheme::new(&[7u8; 32], bound).unwrap();
        let client = "203.0.113.77".parse().ok();
        let credential = scheme.issue(&entry_grant(), "sid", "/hls/match1.m3u8", client, 0, None).unwrap();
        let grant = scheme.verify(&credential, &facts("/")).unwrap();
        assert_eq!(grant.network_binding, IpRange::parse("203.0.113.0/24").ok());
        // Reloads keep the admitting network, wherever the reload comes from.
        let elsewhere = "192.0.2.1".parse().ok();
        let reissued = scheme.issue(&grant, "sid", "/hls/match1.m3u8", elsewhere, 1, None).unwrap();
        assert_eq!(scheme.verify(&reissued, &facts("/")).unwrap().network_binding, grant.network_binding);
        let v6 = "2001:db8:1:2:aaaa::1".parse().ok();
        let credential = scheme.issue(&entry_grant(), "sid", "/hls/match1.m3u8", v6, 0, None).unwrap();
        assert_eq!(
            scheme.verify(&credential, &facts("/")).unwrap().network_binding,
            IpRange::parse("2001:db8:1:2::/64").ok()
        );
        assert!(
            scheme.issue(&entry_grant(), "sid", "/hls/match1.m3u8", None, 0, None).is_err(),
            "unknown IP: fail closed"
        );
    }

    #[test]
    fn the_lifetime_is_capped_by_the_entry_tokens_expiry_plus_grace_and_the_maximum_age() {
        let capped = SessionOptions { ttl: 60, grace: 100, max_age: 1_000, ..SessionOptions::default() };
        let scheme = SessionScheme::new(&[7u8; 32], capped).unwrap();
        let mut entry = entry_grant();
        entry.validity.expires_at = Some(500);
        let exp = |grant: &Grant, now, presentation| {
            let credential = scheme.issue(grant, "sid", "/hls/match1.m3u8", None, now, presentation).unwrap();
            scheme.verify(&credential, &facts("/")).unwrap()
        };
        assert_eq!(exp(&entry, 0, None).validity.expires_at, Some(60));
        // A VOD of two hours from a token that expires at 500: not past 500 + 100, VOD or not.
        let vod = exp(&entry, 0, Some(7_200));
        assert_eq!(vod.validity.expires_at, Some(600));
        assert_eq!(vod.session_bounds, Some(SessionBounds { started: 0, ends: 600 }));
        // The bounds are fixed at the start and kept by every reload.
        assert_eq!(exp(&vod, 590, None).validity.expires_at, Some(600));
        assert!(lift_expiry_for_renewal(&exp(&vod, 590, None), 600).is_none(), "past its bounds: never renewed");
        // A token without expiry: the maximum age.
        entry.validity.expires_at = None;
        assert_eq!(exp(&entry, 0, Some(u64::MAX)).validity.expires_at, Some(1_000));
    }

    #[test]
    fn refuses_forgeries_and_weak_secrets() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let other = SessionScheme::new(&[8u8; 32], options(60)).unwrap();
        let credential = other.issue(&entry_grant(), "sid", "/", None, 0, None).unwrap();
        assert_eq!(scheme.verify(&credential, &facts("/")).unwrap_err().reason(), crate::ReasonCode::BadSignature);
        for junk in ["", "v1", "v2.a.b", "v1.!!.??", "v1.a.b.c"] {
            assert_eq!(scheme.verify(junk, &facts("/")).unwrap_err().reason(), crate::ReasonCode::Malformed, "{junk}");
        }
        assert!(SessionScheme::new(b"short", options(60)).is_err());
        assert!(SessionScheme::new(&[7u8; 32], options(0)).is_err());
    }

    #[test]
    fn a_token_without_jti_keeps_its_session_key_and_revocation_id_across_reloads() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let entry = Grant::new(SchemeKind::WmsAuth, "wms-token-without-jti", "{}".into());
        let entry_key = entry.session_key();
        assert_eq!(entry_key, format!("fp:{}", crate::grant::fingerprint("wms-token-without-jti")));
        let reload = issue(&scheme, &entry, "sid", "/live/a.m3u8", 0);
        // A reload re-issues from the session grant: the key and revocation id must not drift
        // to the fingerprint of the session credential itself.
        let later = issue(&scheme, &reload, "sid", "/live/a.m3u8", 30);
        for grant in [&reload, &later] {
            assert_eq!(grant.session_key(), entry_key);
            assert_eq!(grant.revocation_ids(), [crate::grant::fingerprint("wms-token-without-jti")]);
        }
        // With a jti, revocations name the jti and the credential carries no fingerprint.
        let with_jti = issue(&scheme, &entry_grant(), "sid", "/", 0);
        assert_eq!(with_jti.revocation_ids(), ["jti-1"]);
        assert_eq!(entry_grant().revocation_ids(), ["jti-1".to_owned(), crate::grant::fingerprint("entry-token")]);
    }

    #[test]
    fn only_a_lapsed_session_credential_is_renewable() {
        let scheme = SessionScheme::new(&[7u8; 32], options(60)).unwrap();
        let grant = issue(&scheme, &entry_grant(), "sid", "/", 1_000);
        assert!(lift_expiry_for_renewal(&grant, 1_059).is_none(), "still valid: nothing to renew");
        let lifted = lift_expiry_for_renewal(&grant, 1_060).unwrap();
        assert_eq!(lifted.validity.expires_at, None);
        assert_eq!(lifted.session_id.as_deref(), Some("sid"));
        assert!(lift_expiry_for_renewal(&entry_grant(), i64::MAX).is_none(), "entry tokens never renew");
    }

    #[test]
    fn a_vod_credential_outlives_its_presentation() {
        let scheme = SessionScheme::new(&[7u8; 32], SessionOptions { max_age: 200_000, ..options(60) }).unwrap();
        let mut entry = entry_grant();
        entry.validity.expires_at = None;
        let exp = |presentation| {
            let credential = scheme.issue(&entry, "sid", "/", None, 1_000, presentation).unwrap();
            scheme.verify(&credential, &facts("/")).unwrap().validity.expires_at
        };
        assert_eq!(exp(None), Some(1_060));
        assert_eq!(exp(Some(7_200)), Some(1_000 + 7_200 + 60));
        assert_eq!(exp(Some(u64::MAX)), Some(1_000 + 86_400 + 60), "capped at a day");
    }
}
