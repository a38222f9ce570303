//! Every reason code is reachable through the gate, and known attacks get the right one.

#![allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do

mod common;

use std::collections::BTreeSet;

use common::{check, ctx, reason, Stores};
use serde_json::json;
use streamgate_core::claims::{AccessRule, CountryCode, NumericDate, PlaybackClaims, Purpose, RuleAction, RuleMatcher};
use streamgate_core::encoding::{b64_url, b64_url_decode};
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::{purpose_of_method, ReferrerRules, UserAgentRules};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::SchemeKind;
use streamgate_core::sessions::{AtLimit, SessionTable};
use streamgate_core::{Decision, Gate, Policy, ReasonCode, RequestContext};

const NOW: i64 = 1_700_000_000;

fn hmac_key() -> Key {
    Key::hmac(Algorithm::HS256, b"reason-code test secret, 32+ bytes").unwrap().with_kid(Some("main"))
}

#[cfg(feature = "public-key")]
fn rsa_key() -> &'static Key {
    static KEY: std::sync::OnceLock<Key> = std::sync::OnceLock::new();
    KEY.get_or_init(|| Key::generate(Algorithm::RS256, &mut rand_core::OsRng).unwrap().with_kid(Some("rsa")))
}

fn claims() -> PlaybackClaims {
    PlaybackClaims {
        sub: None,
        jti: Some("tok-1".into()),
        exp: Some(NumericDate(NOW + 600)),
        nbf: Some(NumericDate(NOW - 60)),
        streams: Some(vec!["live/match-*".into()]),
        ..Default::default()
    }
}

fn gate_with(policy: Policy) -> Gate {
    #[cfg(feature = "public-key")]
    let keys = KeySet::new(vec![hmac_key(), rsa_key().public_key().unwrap()]);
    #[cfg(not(feature = "public-key"))]
    let keys = KeySet::new(vec![hmac_key()]);
    Gate::new(policy).with_scheme(Box::new(JwtScheme::new(keys)))
}

fn gate() -> Gate {
    gate_with(Policy::default())
}

fn play(path: &str) -> RequestContext {
    ctx(path, "198.51.100.20")
}

fn token(claims: &PlaybackClaims) -> String {
    jwt::sign(claims, &hmac_key()).unwrap()
}

/// Re-encodes a token with a new header, keeping payload and signature.
fn with_header(token: &str, header: serde_json::Value) -> String {
    let mut parts = token.split('.');
    let (_, p, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    format!("{}.{p}.{s}", b64_url(header.to_string().as_bytes()))
}

fn deny(decision: Decision, expected: ReasonCode, seen: &mut BTreeSet<&'static str>) {
    assert_eq!(reason(&decision), expected, "{decision:?}");
    seen.insert(expected.as_str());
}

#[test]
fn every_reason_code_is_reachable() {
    let mut seen = BTreeSet::new();
    let g = gate();
    let ok_path = "/live/match-42/index.m3u8";

    let mut stores = Stores::default();
    let missing = {
        let mut hooks =
            streamgate_core::Hooks { revocations: &stores.revocations, blocklist: &stores.blocklist, sessions: None };
        g.check(None, &play(ok_path), NOW, &mut hooks)
    };
    deny(missing, ReasonCode::MissingToken, &mut seen);
    deny(check(&g, SchemeKind::Jwt, "not-a-jwt", &play(ok_path), NOW), ReasonCode::Malformed, &mut seen);

    let good = token(&claims());
    assert!(check(&g, SchemeKind::Jwt, &good, &play(ok_path), NOW).is_allowed());

    let mut tampered = claims();
    tampered.streams = Some(vec!["**".into()]);
    let forged = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0.split('.').next().unwrap(),
        b64_url(serde_json::to_string(&tampered).unwrap().as_bytes())
    ) + "."
        + good.rsplit('.').next().unwrap();
    deny(check(&g, SchemeKind::Jwt, &forged, &play("/secret/x"), NOW), ReasonCode::BadSignature, &mut seen);

    let unknown = with_header(&good, json!({"alg": "HS256", "kid": "gone"}));
    deny(check(&g, SchemeKind::Jwt, &unknown, &play(ok_path), NOW), ReasonCode::UnknownKey, &mut seen);
    let none = with_header(&good, json!({"alg": "none"}));
    deny(check(&g, SchemeKind::Jwt, &none, &play(ok_path), NOW), ReasonCode::AlgNotAllowed, &mut seen);

    deny(check(&g, SchemeKind::Jwt, &good, &play(ok_path), NOW + 600 + 30), ReasonCode::Expired, &mut seen);
    deny(check(&g, SchemeKind::Jwt, &good, &play(ok_path), NOW - 60 - 31), ReasonCode::NotYetValid, &mut seen);
    deny(
        check(&g, SchemeKind::Jwt, &good, &play("/live/matchbox/index.m3u8"), NOW),
        ReasonCode::ScopeMismatch,
        &mut seen,
    );

    let mut bound = claims();
    bound.ip = Some(IpRange::parse("203.0.113.0/24").unwrap());
    deny(check(&g, SchemeKind::Jwt, &token(&bound), &play(ok_path), NOW), ReasonCode::IpMismatch, &mut seen);

    let referrer_gate = gate_with(Policy {
        referrers: ReferrerRules { allow: vec!["*.example.com".into()], deny: vec![], allow_missing: true },
        ..Default::default()
    });
    let mut from_elsewhere = play(ok_path);
    from_elsewhere.referer = Some("https://pirate.test/watch".into());
    deny(check(&referrer_gate, SchemeKind::Jwt, &good, &from_elsewhere, NOW), ReasonCode::ReferrerDenied, &mut seen);

    let ua_gate = gate_with(Policy {
        user_agents: UserAgentRules { allow: vec![], deny: vec!["*ffmpeg*".into()] },
        ..Default::default()
    });
    let mut restreamer = play(ok_path);
    restreamer.user_agent = Some("Lavf/60.3.100 (FFmpeg)".into());
    deny(check(&ua_gate, SchemeKind::Jwt, &good, &restreamer, NOW), ReasonCode::UserAgentDenied, &mut seen);

    let mut geo = claims();
    geo.access_rules = Some(vec![AccessRule {
        action: RuleAction::Block,
        matcher: RuleMatcher::Country { country: vec![CountryCode::parse("FR").unwrap()] },
    }]);
    let mut from_fr = play(ok_path);
    from_fr.country = Some("fr".into());
    deny(check(&g, SchemeKind::Jwt, &token(&geo), &from_fr, NOW), ReasonCode::GeoDenied, &mut seen);

    let mut publisher = play(ok_path);
    publisher.purpose = Purpose::Publish;
    deny(check(&g, SchemeKind::Jwt, &good, &publisher, NOW), ReasonCode::PurposeMismatch, &mut seen);

    let mut stores_revoked = Stores::default();
    stores_revoked.revocations.revoke("tok-1", None);
    deny(stores_revoked.check(&g, SchemeKind::Jwt, &good, &play(ok_path), NOW), ReasonCode::Revoked, &mut seen);

    stores.blocklist.block(IpRange::parse("198.51.100.0/24").unwrap(), None);
    deny(stores.check(&g, SchemeKind::Jwt, &good, &play(ok_path), NOW), ReasonCode::IpBlocked, &mut seen);

    let mut limited = claims();
    limited.max_sessions = Some(1);
    let limited = token(&limited);
    let mut sessions = Stores { sessions: Some(SessionTable::new(60, AtLimit::RejectNew)), ..Default::default() };
    let start = |id: &str| RequestContext { session_id: Some(id.into()), starts_session: true, ..play(ok_path) };
    assert!(sessions.check(&g, SchemeKind::Jwt, &limited, &start("a"), NOW).is_allowed());
    deny(sessions.check(&g, SchemeKind::Jwt, &limited, &start("b"), NOW), ReasonCode::TooManySessions, &mut seen);

    for method in ["DELETE", "PATCH", "TRACE", "PROPFIND", "CONNECT", "OPTIONS", "get", ""] {
        let denial = purpose_of_method(method).unwrap_err();
        assert_eq!(denial.reason(), ReasonCode::MethodNotAllowed, "{method}");
        seen.insert(denial.reason().as_str());
    }

    let all: BTreeSet<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(seen, all, "reason codes not reached");
}

/// Regression (review of 2026-11-30): DELETE, PATCH, TRACE and others were forwarded to the
/// origin on a play token, and on public paths with no token at all.
#[test]
fn only_play_and_publish_methods_exist_and_public_paths_only_play() {
    assert_eq!(purpose_of_method("GET"), Ok(Purpose::Play));
    assert_eq!(purpose_of_method("HEAD"), Ok(Purpose::Play));
    assert_eq!(purpose_of_method("POST"), Ok(Purpose::Publish));
    assert_eq!(purpose_of_method("PUT"), Ok(Purpose::Publish));
    let long = "X".repeat(10_000);
    let denial = purpose_of_method(&long).unwrap_err();
    assert!(denial.to_string().len() < 200, "a hostile method is not echoed whole");
    let public = gate_with(Policy { public_paths: vec!["posters".into()], ..Default::default() });
    let mut poster = play("/posters/a.jpg");
    assert!(public.public(&poster).is_some());
    poster.purpose = Purpose::Publish;
    assert!(public.public(&poster).is_none(), "publishing to a public path needs a publish token");
}

/// Regression (review of 2026-11-30): an unknown client IP passed the block list and IP
/// block rules, so a misconfigured client-IP header opened what they closed.
#[test]
fn an_unknown_client_ip_fails_closed_for_the_block_list_and_ip_rules() {
    let g = gate();
    let good = token(&claims());
    let mut unknown = play("/live/match-42/index.m3u8");
    unknown.peer_ip = None;
    assert!(check(&g, SchemeKind::Jwt, &good, &unknown, NOW).is_allowed(), "nothing needs the IP");
    let mut stores = Stores::default();
    stores.blocklist.block(IpRange::parse("203.0.113.0/24").unwrap(), None);
    deny_only(stores.check(&g, SchemeKind::Jwt, &good, &unknown, NOW), ReasonCode::IpMismatch);
    let mut ruled = claims();
    ruled.access_rules = Some(vec![AccessRule {
        action: RuleAction::Block,
        matcher: RuleMatcher::Ip { ip: vec![IpRange::parse("203.0.113.0/24").unwrap()] },
    }]);
    deny_only(check(&g, SchemeKind::Jwt, &token(&ruled), &unknown, NOW), ReasonCode::IpMismatch);
    let mut bound = claims();
    bound.ip = Some(IpRange::parse("203.0.113.0/24").unwrap());
    deny_only(check(&g, SchemeKind::Jwt, &token(&bound), &unknown, NOW), ReasonCode::IpMismatch);
}

fn deny_only(decision: Decision, expected: ReasonCode) {
    deny(decision, expected, &mut BTreeSet::new());
}

#[cfg(feature = "public-key")]
#[test]
fn key_confusion_rs_public_key_as_hmac_secret_is_refused() {
    // The classic attack: sign HS256 with the verifier's RSA public key as the secret.
    let public_pem = rsa_key().public_key().unwrap().to_pem().unwrap();
    let attacker = Key::hmac(Algorithm::HS256, public_pem.as_bytes()).unwrap().with_kid(Some("rsa"));
    let forged = jwt::sign(&claims(), &attacker).unwrap();
    let decision = check(&gate(), SchemeKind::Jwt, &forged, &play("/live/match-1/a.ts"), NOW);
    assert_eq!(reason(&decision), ReasonCode::AlgNotAllowed);
    // Without a kid the HS256 candidates are tried, and the RSA key is never one of them.
    let forged_no_kid = jwt::sign(&claims(), &attacker.with_kid(None)).unwrap();
    let decision = check(&gate(), SchemeKind::Jwt, &forged_no_kid, &play("/live/match-1/a.ts"), NOW);
    assert_eq!(reason(&decision), ReasonCode::BadSignature);
}

#[cfg(feature = "public-key")]
#[test]
fn rs256_tokens_verify_with_the_public_key() {
    let token = jwt::sign(&claims(), rsa_key()).unwrap();
    assert!(check(&gate(), SchemeKind::Jwt, &token, &play("/live/match-1/a.ts"), NOW).is_allowed());
}

#[test]
fn alg_none_in_any_spelling_is_refused() {
    let good = token(&claims());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!("{}.", with_header(&good, json!({"alg": alg})).rsplit_once('.').unwrap().0);
        let decision = check(&gate(), SchemeKind::Jwt, &unsigned, &play("/live/match-1/a.ts"), NOW);
        assert_eq!(reason(&decision), ReasonCode::AlgNotAllowed, "{alg}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let huge = format!("eyJ{}.e30.sig", "A".repeat(9000));
    let decision = check(&gate(), SchemeKind::Jwt, &huge, &play("/live/match-1/a.ts"), NOW);
    assert_eq!(reason(&decision), ReasonCode::Malformed);
    assert!(decision.denial().unwrap().to_string().contains("8192"), "{decision:?}");
}

#[test]
fn path_escape_tricks_are_denied() {
    let good = token(&claims());
    for path in [
        "/live/match-1/../../secret/x.ts",
        "/live/match-1/%2e%2e/%2e%2e/secret/x.ts",
        "/live/match-1%2f..%2f..%2fsecret/x.ts",
        "/../live/match-1/x.ts",
        "/live/match-1\\..\\..\\secret",
        "/live/match-1/%00.ts",
    ] {
        let decision = check(&gate(), SchemeKind::Jwt, &good, &play(path), NOW);
        assert_eq!(reason(&decision), ReasonCode::ScopeMismatch, "{path}");
    }
    // Dot segments that stay inside the scope resolve and pass.
    assert!(check(&gate(), SchemeKind::Jwt, &good, &play("/live//match-1/./a/../b.ts"), NOW).is_allowed());
}

#[test]
fn garbage_tokens_never_panic_and_are_malformed() {
    for junk in ["", "...", "a.b", "a.b.c.d", "eyJ.eyJ.", "\u{0}\u{1}", "💥.💥.💥", "e30.e30.e30"] {
        let decision = check(&gate(), SchemeKind::Jwt, junk, &play("/live/match-1/a.ts"), NOW);
        let code = reason(&decision);
        assert!(
            matches!(code, ReasonCode::Malformed | ReasonCode::MissingToken | ReasonCode::AlgNotAllowed),
            "{junk:?}: {code}"
        );
    }
    // Valid signature over claims of the wrong types.
    let bad_claims = r#"{"exp":"tomorrow"}"#;
    let h = b64_url(br#"{"alg":"HS256"}"#);
    let p = b64_url(bad_claims.as_bytes());
    let sig = hmac_key().sign(format!("{h}.{p}").as_bytes()).unwrap();
    let token = format!("{h}.{p}.{}", b64_url(&sig));
    let decision = check(&gate(), SchemeKind::Jwt, &token, &play("/live/match-1/a.ts"), NOW);
    assert_eq!(reason(&decision), ReasonCode::Malformed);
    assert!(b64_url_decode("==").is_none());
}

#[test]
fn forwarded_for_and_bypass_lists_apply() {
    let mut bound = claims();
    bound.ip = Some(IpRange::parse("203.0.113.7").unwrap());
    let t = token(&bound);
    let policy = Policy {
        trusted_proxies: vec![IpRange::parse("10.0.0.0/8").unwrap()],
        ip_bypass: vec![IpRange::parse("192.0.2.0/24").unwrap()],
        ipv4_binding_prefix: Some(24),
        ..Default::default()
    };
    let g = gate_with(policy);
    let via_proxy =
        RequestContext { forwarded_for: Some("203.0.113.99".into()), ..ctx("/live/match-1/a.ts", "10.1.2.3") };
    assert!(check(&g, SchemeKind::Jwt, &t, &via_proxy, NOW).is_allowed(), "widened to /24 behind a trusted proxy");
    let spoofed =
        RequestContext { forwarded_for: Some("203.0.113.7".into()), ..ctx("/live/match-1/a.ts", "198.51.100.1") };
    assert_eq!(reason(&check(&g, SchemeKind::Jwt, &t, &spoofed, NOW)), ReasonCode::IpMismatch);
    assert!(check(&g, SchemeKind::Jwt, &t, &ctx("/live/match-1/a.ts", "192.0.2.50"), NOW).is_allowed(), "bypass list");
}

#[test]
fn referrer_rules_cover_missing_and_wildcards() {
    let strict = gate_with(Policy {
        referrers: ReferrerRules {
            allow: vec!["*.example.com".into()],
            deny: vec!["bad.example.com".into()],
            allow_missing: false,
        },
        ..Default::default()
    });
    let good = token(&claims());
    let with_ref = |r: Option<&str>| RequestContext { referer: r.map(str::to_owned), ..play("/live/match-1/a.ts") };
    assert!(check(&strict, SchemeKind::Jwt, &good, &with_ref(Some("https://www.example.com/p")), NOW).is_allowed());
    for r in [None, Some("https://bad.example.com/"), Some("https://example.com/"), Some("garbage")] {
        assert_eq!(
            reason(&check(&strict, SchemeKind::Jwt, &good, &with_ref(r), NOW)),
            ReasonCode::ReferrerDenied,
            "{r:?}"
        );
    }
    // Token-carried referrers narrow further.
    let mut scoped = claims();
    scoped.referrers = Some(vec!["player.example.com".into()]);
    let t = token(&scoped);
    assert_eq!(
        reason(&check(&gate(), SchemeKind::Jwt, &t, &with_ref(Some("https://www.example.com/")), NOW)),
        ReasonCode::ReferrerDenied
    );
    assert!(check(&gate(), SchemeKind::Jwt, &t, &with_ref(Some("https://player.example.com/")), NOW).is_allowed());
}

#[test]
fn access_rules_first_match_wins() {
    let mut c = claims();
    c.access_rules = Some(vec![
        AccessRule {
            action: RuleAction::Allow,
            matcher: RuleMatcher::Ip { ip: vec![IpRange::parse("198.51.100.0/24").unwrap()] },
        },
        AccessRule { action: RuleAction::Block, matcher: RuleMatcher::Any },
    ]);
    let t = token(&c);
    assert!(check(&gate(), SchemeKind::Jwt, &t, &play("/live/match-1/a.ts"), NOW).is_allowed());
    let outside = ctx("/live/match-1/a.ts", "203.0.113.1");
    assert_eq!(reason(&check(&gate(), SchemeKind::Jwt, &t, &outside, NOW)), ReasonCode::IpMismatch);
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let mut scheme = JwtScheme::new(KeySet::new(vec![hmac_key()]));
    scheme.issuer = Some("https://auth.example.com".into());
    scheme.audience = Some("streamgate".into());
    let g = Gate::new(Policy::default()).with_scheme(Box::new(scheme));
    let mut c = claims();
    c.iss = Some("https://auth.example.com".into());
    c.aud = Some(streamgate_core::claims::Audience::Many(vec!["other".into(), "streamgate".into()]));
    assert!(check(&g, SchemeKind::Jwt, &token(&c), &play("/live/match-1/a.ts"), NOW).is_allowed());
    c.aud = Some(streamgate_core::claims::Audience::One("other".into()));
    assert_eq!(
        reason(&check(&g, SchemeKind::Jwt, &token(&c), &play("/live/match-1/a.ts"), NOW)),
        ReasonCode::ScopeMismatch
    );
}

#[test]
fn scheme_not_configured_is_unknown_key() {
    let decision = check(&gate(), SchemeKind::EdgeAuth, "exp=1~acl=/*~hmac=00", &play("/a"), NOW);
    assert_eq!(reason(&decision), ReasonCode::UnknownKey);
}

#[test]
fn tokens_without_exp_are_refused_by_default() {
    let mut c = claims();
    c.exp = None;
    let decision = check(&gate(), SchemeKind::Jwt, &token(&c), &play("/live/match-1/a.ts"), NOW);
    assert_eq!(reason(&decision), ReasonCode::Malformed);
}

/// Regression (found by the PyJWT interop run): a key configured without a `kid` (one PEM
/// key) must verify tokens whose header names a kid; named keys still must match by name.
#[test]
fn kidless_keys_serve_tokens_with_any_kid() {
    let unnamed = Key::hmac(Algorithm::HS256, b"reason-code test secret, 32+ bytes").unwrap();
    let token = jwt::sign(&claims(), &unnamed.clone().with_kid(Some("issuer-7"))).unwrap();
    let g = Gate::new(Policy::default()).with_scheme(Box::new(JwtScheme::new(KeySet::new(vec![unnamed]))));
    assert!(check(&g, SchemeKind::Jwt, &token, &play("/live/match-1/a.ts"), NOW).is_allowed());
    // With only named keys, an unknown kid is unknown_key.
    assert_eq!(
        reason(&check(&gate(), SchemeKind::Jwt, &token, &play("/live/match-1/a.ts"), NOW)),
        ReasonCode::UnknownKey
    );
}

/// Regression (review): usage records cut a token's id at 96 bytes (its `sub` at 128), and
/// the Guardian view and its automatic revocation revoked the cut name, which matched no
/// token: the token played on, shown as revoked. Ids longer than the records keep are
/// refused when signed and when presented (a token signed elsewhere), at every length past
/// the bound and with multi-byte characters.
#[test]
fn token_ids_longer_than_usage_records_keep_are_refused() {
    use streamgate_core::grant::{MAX_SUBJECT_BYTES, MAX_TOKEN_ID_BYTES};
    use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EscapeStyle};
    let g = gate();
    let at = play("/live/match-42/index.m3u8");
    // Signed as another issuer would: header, payload and signature by hand.
    let signed_elsewhere = |claims: &PlaybackClaims| {
        let input = format!(
            "{}.{}",
            b64_url(br#"{"alg":"HS256","typ":"JWT","kid":"main"}"#),
            b64_url(serde_json::to_string(claims).unwrap().as_bytes())
        );
        let signature = hmac_key().sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64_url(&signature))
    };
    for (jti, sub, allowed) in [
        ("j".repeat(MAX_TOKEN_ID_BYTES), Some("s".repeat(MAX_SUBJECT_BYTES)), true),
        ("j".repeat(MAX_TOKEN_ID_BYTES + 1), None, false),
        ("é".repeat(MAX_TOKEN_ID_BYTES / 2 + 1), None, false),
        ("j".repeat(4000), None, false),
        ("tok-1".into(), Some("s".repeat(MAX_SUBJECT_BYTES + 1)), false),
    ] {
        let claims = PlaybackClaims { jti: Some(jti.clone()), sub: sub.clone(), ..claims() };
        let decision = check(&g, SchemeKind::Jwt, &signed_elsewhere(&claims), &at, NOW);
        let label = format!("jti {} bytes, sub {:?} bytes", jti.len(), sub.as_ref().map(String::len));
        if allowed {
            assert!(decision.is_allowed(), "{label}: {decision:?}");
            assert!(jwt::sign(&claims, &hmac_key()).is_ok(), "{label}");
        } else {
            assert_eq!(reason(&decision), ReasonCode::Malformed, "{label}");
            let refused = jwt::sign(&claims, &hmac_key()).unwrap_err().to_string();
            assert!(refused.contains("-byte limit"), "{label}: {refused}");
        }
    }
    let edge = |id: &str| {
        let request = EdgeAuthRequest {
            start: None,
            expires: NOW + 600,
            acl: vec!["/live/*".into()],
            url: None,
            ip: None,
            id: Some(id.into()),
            data: None,
            salt: None,
            escape: EscapeStyle::None,
        };
        edgeauth::sign("0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d", EdgeAlgorithm::Sha256, &request)
    };
    assert!(edge(&"i".repeat(MAX_TOKEN_ID_BYTES)).is_ok());
    assert!(edge(&"i".repeat(MAX_TOKEN_ID_BYTES + 1)).unwrap_err().to_string().contains("-byte limit"));
}
