//! The gate's own session credential: what rewritten manifests carry instead of the entry
//! token, so segment requests are checked statelessly and playback outlives a short-lived
//! entry token. Each playlist reload issues a fresh one (a sliding window).
//!
//! Format: `v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256)>`, signed with the gate's
//! session secret. The payload keeps what the policy needs on the hot path: the session,
//! the entry token's id (so revocation still applies), the scope prefix and IP binding.

use serde::{Deserialize, Serialize};

use crate::claims::Purpose;
use crate::denial::{Denial, Error, SignatureExplanation};
use crate::encoding::{b64_url, b64_url_decode};
use crate::grant::{Grant, Scope, Validity};
use crate::keys::{Algorithm, Key};
use crate::policy::ip::IpRange;
use crate::policy::RequestFacts;
use crate::schemes::{Scheme, SchemeKind, MAX_CREDENTIAL_BYTES};

const VERSION: &str = "v1";

/// The longest presentation a VOD credential is stretched to cover: one day.
pub const MAX_PRESENTATION_SECONDS: u64 = 86_400;

/// What a session credential carries.
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
    /// Path prefix the credential covers (the stream's directory).
    pub scope: String,
    /// IP binding carried over from the entry token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpRange>,
    /// The entry token's session limit, for re-admission after an idle expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// The entry token's fingerprint when it has no `jti`, checked against revocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp: Option<String>,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// Issues and verifies session credentials with the gate's secret.
#[derive(Clone, Debug)]
pub struct SessionScheme {
    key: Key,
    /// Lifetime of each credential, seconds: a player must reload its playlist within it.
    pub ttl: u32,
}

impl SessionScheme {
    /// A scheme with `secret` (at least 32 bytes) and a lifetime of `ttl` seconds.
    pub fn new(secret: &[u8], ttl: u32) -> Result<SessionScheme, Error> {
        if secret.len() < 32 {
            return Err(Error::key("the session secret must be at least 32 bytes"));
        }
        if ttl == 0 {
            return Err(Error::input("ttl", "must be positive"));
        }
        Ok(SessionScheme { key: Key::hmac(Algorithm::HS256, secret)?, ttl })
    }

    /// A credential for `grant`'s session `sid`, covering paths under `scope`, valid for
    /// `ttl` seconds from `now`.
    pub fn issue(&self, grant: &Grant, sid: &str, scope: &str, now: i64) -> Result<String, Error> {
        self.issue_covering(grant, sid, scope, now, None)
    }

    /// Like [`SessionScheme::issue`], for the URLs of a VOD manifest that plays for
    /// `presentation_seconds`: a player loads it once and fetches from it until the end, so
    /// the credential lives `ttl` seconds past the presentation (at most
    /// [`MAX_PRESENTATION_SECONDS`] of it).
    pub fn issue_covering(
        &self,
        grant: &Grant,
        sid: &str,
        scope: &str,
        now: i64,
        presentation_seconds: Option<u64>,
    ) -> Result<String, Error> {
        let presentation = presentation_seconds.unwrap_or(0).min(MAX_PRESENTATION_SECONDS);
        let lifetime = i64::from(self.ttl).saturating_add(i64::try_from(presentation).unwrap_or(0));
        let claims = SessionClaims {
            key: grant.session_key(),
            sid: sid.to_owned(),
            jti: grant.token_id.clone(),
            sub: grant.subject.clone(),
            scope: scope.to_owned(),
            ip: grant.ip_binding,
            max: grant.max_sessions,
            fp: if grant.token_id.is_none() { grant.entry_fingerprint() } else { None },
            exp: now.saturating_add(lifetime),
        };
        let payload = serde_json::to_vec(&claims).map_err(|e| Error::input("session", e.to_string()))?;
        let mut credential = format!("{VERSION}.{}", b64_url(&payload));
        let tag = self.key.sign(credential.as_bytes())?;
        credential.push('.');
        credential.push_str(&b64_url(&tag));
        Ok(credential)
    }
}

/// A session credential past its expiry, presented on a playlist reload, is renewable:
/// players reload a playlist by the URL they were first given, so a live stream presents
/// the same credential for as long as it plays. Returns the grant with its expiry lifted,
/// for the caller to renew only if the session store confirms the session is still active
/// (reloaded within the idle time, not evicted, not revoked). `None` for anything else.
pub fn lift_expiry_for_renewal(grant: &Grant, now: i64) -> Option<Grant> {
    let lapsed = grant.validity.expires_at.is_some_and(|exp| now >= exp);
    (grant.scheme == SchemeKind::Session && lapsed).then(|| {
        let mut renewable = grant.clone();
        renewable.validity.expires_at = None;
        renewable
    })
}

/// The directory a manifest lives in (`/live/a/index.m3u8` → `/live/a/`), the natural
/// scope of the segments and variant playlists it names.
pub fn scope_of(manifest_path: &str) -> &str {
    match manifest_path.rfind('/') {
        Some(i) => manifest_path.get(..=i).unwrap_or("/"),
        None => "/",
    }
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
        if !self.key.verify(signed.as_bytes(), &tag) {
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
        let mut grant = Grant::new(SchemeKind::Session, credential, String::from_utf8_lossy(&payload).into_owned());
        grant.issued_session_key = Some(claims.key);
        grant.entry_token_fingerprint = claims.fp;
        grant.subject = claims.sub;
        grant.token_id = claims.jti;
        grant.session_id = Some(claims.sid);
        grant.validity = Validity { not_before: None, expires_at: Some(claims.exp), leeway: 0 };
        grant.scope = Scope::SignedPrefix(claims.scope);
        grant.ip_binding = claims.ip;
        grant.max_sessions = claims.max;
        grant.purpose = Purpose::Play;
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &str) -> RequestFacts {
        RequestFacts { path: path.into(), client_ip: None }
    }

    fn entry_grant() -> Grant {
        let mut grant = Grant::new(SchemeKind::Jwt, "entry-token", "{}".into());
        grant.token_id = Some("jti-1".into());
        grant.subject = Some("viewer".into());
        grant.ip_binding = IpRange::parse("198.51.100.0/24").ok();
        grant.max_sessions = Some(2);
        grant
    }

    #[test]
    fn issues_and_verifies_with_the_entry_grant_facts() {
        let scheme = SessionScheme::new(&[7u8; 32], 60).unwrap();
        let credential = scheme.issue(&entry_grant(), "sid-1", scope_of("/live/a/index.m3u8"), 1_000).unwrap();
        assert!(credential.starts_with("v1.") && !credential.contains(['+', '/', '=']), "{credential}");
        let grant = scheme.verify(&credential, &facts("/live/a/seg_1.ts")).unwrap();
        assert_eq!(grant.token_id.as_deref(), Some("jti-1"));
        assert_eq!(grant.session_id.as_deref(), Some("sid-1"));
        assert_eq!(grant.subject.as_deref(), Some("viewer"));
        assert_eq!(grant.validity.expires_at, Some(1_060));
        assert_eq!(grant.scope, Scope::SignedPrefix("/live/a/".into()));
        assert!(grant.scope.covers("/live/a/seg_1.ts") && !grant.scope.covers("/live/b/seg_1.ts"));
        assert_eq!(grant.session_key(), "sub:viewer");
        assert_eq!(grant.max_sessions, Some(2), "the limit survives into reloads");
        assert_eq!(grant.ip_binding, IpRange::parse("198.51.100.0/24").ok());
    }

    #[test]
    fn refuses_forgeries_and_weak_secrets() {
        let scheme = SessionScheme::new(&[7u8; 32], 60).unwrap();
        let other = SessionScheme::new(&[8u8; 32], 60).unwrap();
        let credential = other.issue(&entry_grant(), "sid", "/", 0).unwrap();
        assert_eq!(scheme.verify(&credential, &facts("/")).unwrap_err().reason(), crate::ReasonCode::BadSignature);
        for junk in ["", "v1", "v2.a.b", "v1.!!.??", "v1.a.b.c"] {
            assert_eq!(scheme.verify(junk, &facts("/")).unwrap_err().reason(), crate::ReasonCode::Malformed, "{junk}");
        }
        assert!(SessionScheme::new(b"short", 60).is_err());
        assert_eq!(scope_of("/a/b/c.m3u8"), "/a/b/");
        assert_eq!(scope_of("x"), "/");
    }

    #[test]
    fn a_token_without_jti_keeps_its_session_key_and_revocation_id_across_reloads() {
        let scheme = SessionScheme::new(&[7u8; 32], 60).unwrap();
        let entry = Grant::new(SchemeKind::WmsAuth, "wms-token-without-jti", "{}".into());
        let entry_key = entry.session_key();
        assert_eq!(entry_key, format!("fp:{}", crate::grant::fingerprint("wms-token-without-jti")));
        let first = scheme.issue(&entry, "sid", "/live/", 0).unwrap();
        let reload = scheme.verify(&first, &facts("/live/a.m3u8")).unwrap();
        // A reload re-issues from the session grant: the key and revocation id must not drift
        // to the fingerprint of the session credential itself.
        let second = scheme.issue(&reload, "sid", "/live/", 30).unwrap();
        let later = scheme.verify(&second, &facts("/live/a.m3u8")).unwrap();
        for grant in [&reload, &later] {
            assert_eq!(grant.session_key(), entry_key);
            assert_eq!(grant.revocation_ids(), [crate::grant::fingerprint("wms-token-without-jti")]);
        }
        // With a jti, revocations name the jti and the credential carries no fingerprint.
        let with_jti = scheme.verify(&scheme.issue(&entry_grant(), "sid", "/", 0).unwrap(), &facts("/")).unwrap();
        assert_eq!(with_jti.revocation_ids(), ["jti-1"]);
        assert_eq!(entry_grant().revocation_ids(), ["jti-1".to_owned(), crate::grant::fingerprint("entry-token")]);
    }

    #[test]
    fn only_a_lapsed_session_credential_is_renewable() {
        let scheme = SessionScheme::new(&[7u8; 32], 60).unwrap();
        let grant = scheme.verify(&scheme.issue(&entry_grant(), "sid", "/", 1_000).unwrap(), &facts("/")).unwrap();
        assert!(lift_expiry_for_renewal(&grant, 1_059).is_none(), "still valid: nothing to renew");
        let lifted = lift_expiry_for_renewal(&grant, 1_060).unwrap();
        assert_eq!(lifted.validity.expires_at, None);
        assert_eq!(lifted.session_id.as_deref(), Some("sid"));
        assert!(lift_expiry_for_renewal(&entry_grant(), i64::MAX).is_none(), "entry tokens never renew");
    }

    #[test]
    fn a_vod_credential_outlives_its_presentation() {
        let scheme = SessionScheme::new(&[7u8; 32], 60).unwrap();
        let exp = |presentation| {
            let credential = scheme.issue_covering(&entry_grant(), "sid", "/", 1_000, presentation).unwrap();
            scheme.verify(&credential, &facts("/")).unwrap().validity.expires_at
        };
        assert_eq!(exp(None), Some(1_060));
        assert_eq!(exp(Some(7_200)), Some(1_000 + 7_200 + 60));
        assert_eq!(exp(Some(u64::MAX)), Some(1_000 + 86_400 + 60), "capped at a day");
    }
}
