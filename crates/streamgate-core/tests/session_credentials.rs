//! Session credentials through the gate: never wider than the entry token that earned them.
//! Regression tests for the review of 2026-11-30 (issue 8, item 3).

mod common;

use common::{check, ctx, reason};
use streamgate_core::claims::{AccessRule, CountryCode, NumericDate, PlaybackClaims, RuleAction, RuleMatcher};
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::session::{SessionOptions, SessionScheme};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest, WmsAuthScheme};
use streamgate_core::schemes::SchemeKind;
use streamgate_core::{Decision, Gate, Grant, Policy, ReasonCode, RequestContext};

const NOW: i64 = 1_700_000_000;
const VIEWER: &str = "198.51.100.7";
const ELSEWHERE: &str = "203.0.113.9";

fn sessions() -> SessionScheme {
    SessionScheme::new(b"a session secret of thirty-two bytes!", SessionOptions::default()).unwrap()
}

fn jwt_key() -> Key {
    Key::hmac(Algorithm::HS256, b"a playback secret of thirty-two bytes").unwrap()
}

fn gate() -> Gate {
    let mut wms = WmsAuthScheme::new("nimble-key");
    wms.ip_bound = true;
    Gate::new(Policy::default())
        .with_scheme(Box::new(JwtScheme::new(KeySet::new(vec![jwt_key()]))))
        .with_scheme(Box::new(wms))
        .with_scheme(Box::new(sessions()))
}

fn allowed(decision: Decision) -> Grant {
    match decision {
        Decision::Allow { grant, .. } => grant,
        Decision::Deny { denial, .. } => panic!("denied: {denial}"),
    }
}

/// The session credential a manifest at `manifest` would carry for `entry`.
fn session_for(entry: &Grant, manifest: &str, client: &str) -> String {
    sessions().issue(entry, "sid-1", manifest, client.parse().ok(), NOW, None).unwrap()
}

#[test]
fn an_ip_hashed_into_a_wmsauth_signature_binds_its_session_credentials() {
    let g = gate();
    let request = WmsAuthRequest {
        ip: VIEWER,
        server_time: NOW,
        valid_minutes: 20,
        stream: None,
        date_style: DateStyle::default(),
    };
    let sign = wmsauth::sign("nimble-key", &request).unwrap();
    let entry = allowed(check(&g, SchemeKind::WmsAuth, &sign, &ctx("/live/a/index.m3u8", VIEWER), NOW));
    let session = session_for(&entry, "/live/a/index.m3u8", VIEWER);
    let here = check(&g, SchemeKind::Session, &session, &ctx("/live/a/seg_1.ts", VIEWER), NOW);
    assert!(here.is_allowed(), "{here:?}");
    let there = check(&g, SchemeKind::Session, &session, &ctx("/live/a/seg_1.ts", ELSEWHERE), NOW);
    assert_eq!(reason(&there), ReasonCode::IpMismatch);
}

#[test]
fn referrer_and_country_rules_of_the_token_hold_for_every_segment() {
    let g = gate();
    let claims = PlaybackClaims {
        exp: Some(NumericDate(NOW + 600)),
        streams: Some(vec!["hls/match1*".into()]),
        referrers: Some(vec!["*.example.com".into()]),
        access_rules: Some(vec![AccessRule {
            action: RuleAction::Block,
            matcher: RuleMatcher::Country { country: vec![CountryCode::parse("FR").unwrap()] },
        }]),
        ..Default::default()
    };
    let token = jwt::sign(&claims, &jwt_key()).unwrap();
    let from = |path: &str, referer: Option<&str>, country: &str| RequestContext {
        referer: referer.map(str::to_owned),
        country: Some(country.into()),
        ..ctx(path, VIEWER)
    };
    let entry = allowed(check(
        &g,
        SchemeKind::Jwt,
        &token,
        &from("/hls/match1.m3u8", Some("https://tv.example.com/"), "DE"),
        NOW,
    ));
    let session = session_for(&entry, "/hls/match1.m3u8", VIEWER);
    let good = from("/hls/match1_720p/seg_1.ts", Some("https://tv.example.com/"), "DE");
    assert!(check(&g, SchemeKind::Session, &session, &good, NOW).is_allowed());
    let cases = [
        (from("/hls/match1_720p/seg_1.ts", Some("https://pirate.test/"), "DE"), ReasonCode::ReferrerDenied),
        (from("/hls/match1_720p/seg_1.ts", None, "DE"), ReasonCode::ReferrerDenied),
        (from("/hls/match1_720p/seg_1.ts", Some("https://tv.example.com/"), "FR"), ReasonCode::GeoDenied),
        (from("/hls/match2.m3u8", Some("https://tv.example.com/"), "DE"), ReasonCode::ScopeMismatch),
    ];
    for (request, expected) in cases {
        assert_eq!(reason(&check(&g, SchemeKind::Session, &session, &request, NOW)), expected, "{request:?}");
    }
    // The lifetime is capped by the token's expiry plus the grace, whatever the presentation.
    let vod = sessions().issue(&entry, "sid-1", "/hls/match1.m3u8", None, NOW, Some(86_400)).unwrap();
    let cap = NOW + 600 + i64::from(SessionOptions::default().grace);
    assert!(check(&g, SchemeKind::Session, &vod, &good, cap - 1).is_allowed());
    assert_eq!(reason(&check(&g, SchemeKind::Session, &vod, &good, cap)), ReasonCode::Expired);
}
