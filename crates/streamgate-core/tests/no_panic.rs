//! Every parser takes arbitrary input without panicking (a panic in wasm poisons the
//! isolate). These run in CI on every change. Garbage stops at the signature check:
//! `no_panic_signed.rs` signs random claims validly to reach the policy engine, and the
//! coverage-guided fuzz targets in the repository's `fuzz/` folder (`scripts/fuzz.sh`) cover
//! the same parsers and rewriters.

use proptest::prelude::*;
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::path::normalize_path;
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::edgeauth::{EdgeAlgorithm, EdgeAuthScheme};
use streamgate_core::schemes::jwt::JwtScheme;
use streamgate_core::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use streamgate_core::schemes::wmsauth::{self, WmsAuthScheme};
use streamgate_core::schemes::{find_in_query, split_url, strip_credentials, Credential, SchemeKind};
use streamgate_core::{unverified, Gate, Hooks, Policy, RequestContext};

fn gate() -> Gate {
    let key = Key::hmac(Algorithm::HS256, b"no-panic secret, 32 bytes or more").unwrap();
    Gate::new(Policy::default())
        .with_scheme(Box::new(JwtScheme::new(KeySet::new(vec![key]))))
        .with_scheme(Box::new(WmsAuthScheme::new("k")))
        .with_scheme(Box::new(EdgeAuthScheme::new("abcd", EdgeAlgorithm::Sha256).unwrap()))
        .with_scheme(Box::new(SecureLinkScheme::new("s", DEFAULT_EXPRESSION).unwrap()))
}

/// Text shaped like the formats, so the fuzzing reaches past the first check.
fn tokenish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=+/.~%!*-]{0,200}",
        "eyJ[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}",
        "(ip=[0-9.:a-f%]{0,20}~)?(st=[0-9]{0,12}~)?exp=[0-9.e-]{0,14}(~acl=[/*a-z!]{0,20})?(~id=[^~]{0,8})?~hmac=[0-9a-fA-F]{0,70}",
        "[A-Za-z0-9_-]{0,30},[0-9.-]{0,14}",
        any::<String>().prop_map(|s| streamgate_core::encoding::b64_std(format!("server_time={s}&hash_value=AAAA&validminutes=5").as_bytes())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn gate_never_panics(value in tokenish(), path in any::<String>(), kind in 0usize..4, ip in any::<Option<[u8; 4]>>(),
                         xff in any::<Option<String>>(), referer in any::<Option<String>>(), country in any::<Option<String>>()) {
        let ctx = RequestContext {
            path,
            peer_ip: ip.map(std::net::IpAddr::from),
            forwarded_for: xff,
            referer,
            country,
            ..Default::default()
        };
        let (revocations, blocklist) = (MemoryRevocations::default(), MemoryBlocklist::default());
        let mut hooks = Hooks { revocations: &revocations, blocklist: &blocklist, sessions: None };
        let credential = Credential { kind: SchemeKind::ALL[kind], value };
        let decision = gate().check(Some(&credential), &ctx, 1_700_000_000, &mut hooks);
        // Garbage may not pass.
        prop_assert!(!decision.is_allowed() || credential.value.len() > 10);
    }

    #[test]
    fn parsers_never_panic(text in any::<String>(), token in tokenish()) {
        let _ = normalize_path(&text);
        let _ = IpRange::parse(&text);
        let _ = wmsauth::parse_server_time(&text);
        let _ = unverified::inspect(&token);
        let _ = unverified::inspect(&text);
        let _ = unverified::identity(&token);
        let _ = unverified::identity(&text);
        let (_, query) = split_url(&text);
        let _ = find_in_query(query);
        let _ = strip_credentials(&text);
        let _ = Key::from_pem(&text, None);
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = KeySet::from_jwks(&json);
        }
        let _ = streamgate_core::encoding::hex_decode(&text);
        let _ = streamgate_core::timestamp::parse_seconds("t", &text);
        let propagation = streamgate_core::manifests::Propagation {
            host: "gate.example.com".into(), param: "token".into(), credential: "T".into(),
        };
        let _ = streamgate_core::manifests::hls::rewrite(&text, &propagation);
        let _ = streamgate_core::manifests::dash::rewrite(&text, &propagation);
        let _ = streamgate_core::manifests::dash::rewrite_with_refresh(&text, &propagation, &text);
        for kind in [streamgate_core::manifests::ManifestKind::Hls, streamgate_core::manifests::ManifestKind::Dash] {
            let _ = streamgate_core::manifests::presentation_seconds(kind, &text);
        }
        let live = format!("<MPD type=\"dynamic\">{text}");
        let _ = streamgate_core::manifests::dash::rewrite_with_refresh(&live, &propagation, "https://gate.example.com/m.mpd");
    }

    #[test]
    fn manifest_rewriting_never_panics_and_only_adds(lines in proptest::collection::vec(
        prop_oneof!["#EXT-X-[A-Z-]{1,10}:[A-Z]{1,5}=\"[a-jl-z/.:?=&]{0,12}\"(,[A-Z]{1,4}=[0-9]{1,3})?", "[a-jl-z0-9/._:-]{0,20}", "#[ -~]{0,20}", "<[A-Za-z]{1,12}( [a-z]{1,6}=\"[a-z$/.:]{0,10}\")?/?>", "</[A-Za-z]{1,8}>"],
        0..12,
    )) {
        let text = lines.join("\n");
        let propagation = streamgate_core::manifests::Propagation {
            host: "gate.example.com".into(), param: "token".into(), credential: "T".into(),
        };
        for out in [streamgate_core::manifests::hls::rewrite(&text, &propagation), streamgate_core::manifests::dash::rewrite(&text, &propagation)] {
            let stripped = out.replace("&amp;token=T", "").replace("?token=T", "").replace("&token=T", "");
            prop_assert_eq!(&stripped, &text.replace("&amp;token=T", "").replace("?token=T", "").replace("&token=T", ""));
        }
    }

    #[test]
    fn jwk_import_never_panics(kty in "(oct|RSA|EC|OKP|x)", crv in "(P-256|Ed25519|P-384)", alg in "(HS256|RS256|ES256|EdDSA|none)",
                               a in "[A-Za-z0-9_-]{0,90}", b in "[A-Za-z0-9_-]{0,90}", d in proptest::option::of("[A-Za-z0-9_-]{0,90}")) {
        let mut jwk = serde_json::json!({"kty": kty, "crv": crv, "alg": alg, "k": a, "x": a, "y": b, "n": a, "e": b});
        if let Some(d) = d {
            jwk["d"] = serde_json::json!(d);
        }
        let _ = Key::from_jwk(&jwk);
    }
}
