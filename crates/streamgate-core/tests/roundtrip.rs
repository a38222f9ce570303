//! Property tests: whatever is signed verifies, for every scheme and algorithm; and a
//! change to any signed input is refused.

#![allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do

mod common;

use std::sync::OnceLock;

use common::{check, ctx, reason};
use proptest::prelude::*;
use rand_core::OsRng;
use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::keys::{Key, KeySet};
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EdgeAuthScheme, EscapeStyle};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest, WmsAuthScheme};
use streamgate_core::schemes::{signed_url, Credential, SchemeKind};
use streamgate_core::{unverified, Decision, Gate, Policy, ReasonCode};

fn keys() -> &'static Vec<Key> {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        common::built_algorithms()
            .map(|alg| Key::generate(alg, &mut OsRng).unwrap().with_kid(Some(alg.as_str())))
            .collect()
    })
}

fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{1,12}"
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ]
}

/// The token in `url` is named, unverified, by the fingerprint the gate gave its grant.
fn named_as_verified(decision: &Decision, kind: SchemeKind, value: &str, url: &str) -> Result<(), TestCaseError> {
    let url = signed_url(url, &Credential { kind, value: value.to_owned() });
    let named = unverified::identity(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
    prop_assert_eq!(named.fingerprint, decision.grant().unwrap().fingerprint(), "{}", url);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn jwt_round_trips_for_every_algorithm(
        alg_index in 0..common::built_algorithms().count(),
        sub in proptest::option::of("[ -~]{0,40}"),
        jti in "[a-zA-Z0-9-]{1,36}",
        now in 0i64..4_000_000_000,
        lifetime in 1i64..86_400,
        app in segment(),
        stream in segment(),
        tail in segment(),
    ) {
        let key = &keys()[alg_index];
        let claims = PlaybackClaims {
            sub: sub.clone(),
            jti: Some(jti.clone()),
            exp: Some(NumericDate(now + lifetime)),
            iat: Some(NumericDate(now)),
            streams: Some(vec![format!("{app}/{stream}")]),
            ..Default::default()
        };
        let token = jwt::sign(&claims, key).unwrap();
        let verifier = KeySet::new(keys().iter().map(|k| k.public_key().unwrap_or_else(|| k.clone())).collect());
        let gate = Gate::new(Policy::default()).with_scheme(Box::new(JwtScheme::new(verifier)));
        let path = format!("/{app}/{stream}/{tail}.m3u8");
        let decision = check(&gate, SchemeKind::Jwt, &token, &ctx(&path, "192.0.2.1"), now);
        prop_assert!(decision.is_allowed(), "{:?}", decision);
        let grant = decision.grant().unwrap();
        prop_assert_eq!(grant.subject.clone(), sub);
        prop_assert_eq!(grant.token_id.clone(), Some(jti));
        named_as_verified(&decision, SchemeKind::Jwt, &token, &path)?;
        // Flipping one signature character is always refused.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        let denied = check(&gate, SchemeKind::Jwt, &flipped, &ctx(&path, "192.0.2.1"), now);
        prop_assert!(matches!(reason(&denied), ReasonCode::BadSignature | ReasonCode::Malformed), "{:?}", denied);
    }

    #[test]
    fn wmsauth_round_trips(
        client in ip(),
        key in "[ -~]{1,32}",
        server_time in 0i64..4_000_000_000,
        minutes in 1u32..100_000,
        // The "other" path below replaces the first two characters with `zz`: an app
        // starting with `zz` would make it the signed path itself.
        stream in proptest::option::of((segment(), segment()).prop_filter("the other path must differ", |(app, _)| !app.starts_with("zz"))),
        tail in segment(),
        padded in any::<bool>(),
        elapsed in 0i64..60,
    ) {
        let (path, signed_stream) = match &stream {
            // A stream never starts with a digit (signing refuses it: see wmsauth).
            Some((app, name)) => (format!("/v{app}/{name}/{tail}.m3u8"), Some(format!("v{app}/{name}"))),
            None => (format!("/live/{tail}.m3u8"), None),
        };
        let style = if padded { DateStyle::ZeroPadded } else { DateStyle::Php };
        let sign = wmsauth::sign(&key, &WmsAuthRequest {
            ip: &client, server_time, valid_minutes: minutes, stream: signed_stream.as_deref(), date_style: style,
        }).unwrap();
        let gate = Gate::new(Policy::default()).with_scheme(Box::new(WmsAuthScheme::new(key.clone())));
        let decision = check(&gate, SchemeKind::WmsAuth, &sign, &ctx(&path, &client), server_time + elapsed);
        prop_assert!(decision.is_allowed(), "{:?}", decision);
        named_as_verified(&decision, SchemeKind::WmsAuth, &sign, &path)?;
        let elsewhere = if client.contains(':') { "2001:db8::dead" } else { "203.0.113.254" };
        if client != elsewhere {
            let denied = check(&gate, SchemeKind::WmsAuth, &sign, &ctx(&path, elsewhere), server_time);
            prop_assert_eq!(reason(&denied), ReasonCode::BadSignature);
        }
        if signed_stream.is_some() {
            let other = format!("/zz{}", &path[3.min(path.len())..]);
            let denied = check(&gate, SchemeKind::WmsAuth, &sign, &ctx(&other, &client), server_time);
            prop_assert!(!denied.is_allowed());
        }
        let late = server_time + i64::from(minutes) * 60 + 90;
        prop_assert_eq!(reason(&check(&gate, SchemeKind::WmsAuth, &sign, &ctx(&path, &client), late)), ReasonCode::Expired);
    }

    #[test]
    fn edgeauth_round_trips(
        algorithm in prop_oneof![Just(EdgeAlgorithm::Sha256), Just(EdgeAlgorithm::Sha1), Just(EdgeAlgorithm::Md5)],
        escape in prop_oneof![Just(EscapeStyle::None), Just(EscapeStyle::Python), Just(EscapeStyle::Node)],
        key in "([0-9a-f]{2}){8,32}",
        url_mode in any::<bool>(),
        dir in segment(),
        file in "[a-zA-Z0-9 ()!_.-]{1,20}",
        client in proptest::option::of(ip()),
        id in proptest::option::of("[a-zA-Z0-9 ]{1,16}"),
        data in proptest::option::of("[a-zA-Z0-9 ,:()]{1,24}"),
        salt in proptest::option::of("[a-z]{1,8}"),
        start in 1i64..2_000_000_000,
        lifetime in 1i64..86_400,
    ) {
        prop_assume!(!file.trim_matches('.').is_empty() && file != "." && file != "..");
        let path = format!("/{dir}/{file}");
        let encoded = path.replace(' ', "%20");
        let request = EdgeAuthRequest {
            acl: if url_mode { vec![] } else { vec![format!("/{dir}/*")] },
            url: url_mode.then(|| path.clone()),
            ip: client.clone(),
            start: Some(start),
            expires: start + lifetime,
            id: id.clone(),
            data,
            salt: salt.clone(),
            escape,
        };
        let token = edgeauth::sign(&key, algorithm, &request).unwrap();
        let mut scheme = EdgeAuthScheme::new(&key, algorithm).unwrap();
        scheme.salt = salt;
        let gate = Gate::new(Policy::default()).with_scheme(Box::new(scheme));
        let from = client.clone().unwrap_or_else(|| "192.0.2.9".into());
        let decision = check(&gate, SchemeKind::EdgeAuth, &token, &ctx(&encoded, &from), start);
        prop_assert!(decision.is_allowed(), "{} {:?}", token, decision);
        prop_assert_eq!(decision.grant().unwrap().token_id.clone(), id);
        named_as_verified(&decision, SchemeKind::EdgeAuth, &token, &encoded)?;
        let early = check(&gate, SchemeKind::EdgeAuth, &token, &ctx(&encoded, &from), start - 1);
        prop_assert_eq!(reason(&early), ReasonCode::NotYetValid);
    }

    #[test]
    fn secure_link_round_trips(
        secret in "[ -~]{1,24}",
        dir in segment(),
        file in segment(),
        client in ip(),
        expires in 1i64..4_000_000_000,
    ) {
        let scheme = SecureLinkScheme::new(&secret, DEFAULT_EXPRESSION).unwrap();
        let uri = format!("/{dir}/{file}.ts");
        let md5 = scheme.sign(&uri, client.parse().ok(), Some(expires)).unwrap();
        let gate = Gate::new(Policy::default()).with_scheme(Box::new(scheme));
        let credential = format!("{md5},{expires}");
        let decision = check(&gate, SchemeKind::SecureLink, &credential, &ctx(&uri, &client), expires - 1);
        prop_assert!(decision.is_allowed(), "{:?}", decision);
        named_as_verified(&decision, SchemeKind::SecureLink, &credential, &uri)?;
        let tampered = format!("{md5},{}", expires + 1);
        prop_assert_eq!(reason(&check(&gate, SchemeKind::SecureLink, &tampered, &ctx(&uri, &client), expires - 1)), ReasonCode::BadSignature);
        prop_assert_eq!(reason(&check(&gate, SchemeKind::SecureLink, &credential, &ctx(&uri, &client), expires)), ReasonCode::Expired);
    }
}
