//! Shared set-up for the fuzz targets: the test keys every target configures, a gate with
//! every scheme, the way a text input is split into fields, and the invariants more than
//! one target asserts.
//!
//! The keys here are fuzzing-only test material (`src/keys.json` was generated once with
//! `Key::generate`); they sign the valid seeds in `corpus/` (`cargo run --example seeds`).

use std::net::IpAddr;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use sha2::Sha256;
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::policy::path::{normalize_path, origin_url};
use streamgate_core::policy::{Policy, RequestFacts};
use streamgate_core::schemes::edgeauth::{EdgeAlgorithm, EdgeAuthScheme};
use streamgate_core::schemes::jwt::JwtScheme;
use streamgate_core::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use streamgate_core::schemes::session::{SessionOptions, SessionScheme};
use streamgate_core::schemes::wmsauth::WmsAuthScheme;
use streamgate_core::schemes::SchemeKind;
use streamgate_core::{Decision, Denial, Gate, ReasonCode};

/// The request time every target uses unless its input says otherwise (2023-11-14).
pub const NOW: i64 = 1_700_000_000;
/// Shared secret of the HMAC JWT keys (kids `fuzz-hs256`, `fuzz-hs384`, `fuzz-hs512`).
/// At least 64 bytes, so one secret serves HS256, HS384 and HS512 (RFC 7518 section 3.2).
pub const HMAC_SECRET: &[u8] = b"streamgate fuzzing secret, long enough for HS512: 64 bytes or more!";
/// WMSAuth key.
pub const WMS_KEY: &str = "fuzz-wms-key";
/// EdgeAuth key (hex) and salt.
pub const EDGE_KEY: &str = "00112233445566778899aabbccddeeff";
/// nginx secure_link secret.
pub const SECURE_LINK_SECRET: &str = "fuzz-secure-link";
/// The gate's session secret.
pub const SESSION_SECRET: &[u8] = b"fuzz session secret of at least 32 bytes";
/// The origin manifests and origin URLs are built for.
pub const ORIGINS: [&str; 2] = ["https://origin.example/base", "http://127.0.0.1:8788"];
/// The gate's host in rewritten manifests.
pub const GATE_HOST: &str = "gate.example.com";

/// Every JWT key, private halves included, in [`Algorithm::ALL`] order.
pub fn jwt_keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let jwks: Value = serde_json::from_str(include_str!("keys.json")).expect("keys.json is JSON");
        let asymmetric = KeySet::from_jwks(&jwks).expect("keys.json is a JWKS").keys().to_vec();
        let mut keys: Vec<Key> = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            .into_iter()
            .map(|alg| {
                let kid = format!("fuzz-{}", alg.as_str().to_lowercase());
                Key::hmac(alg, HMAC_SECRET).expect("HMAC key").with_kid(Some(&kid))
            })
            .collect();
        keys.extend(asymmetric);
        keys
    })
}

/// The verifier's side: public halves of the asymmetric keys, the HMAC keys as they are.
/// (Derived once: an EC or Ed25519 public key costs a scalar multiplication.)
pub fn jwt_scheme() -> JwtScheme {
    static SCHEME: OnceLock<JwtScheme> = OnceLock::new();
    SCHEME
        .get_or_init(|| {
            let public = jwt_keys().iter().map(|k| k.public_key().unwrap_or_else(|| k.clone())).collect();
            JwtScheme::new(KeySet::new(public))
        })
        .clone()
}

/// WMSAuth, bound to the client IP or not.
pub fn wmsauth_scheme(ip_bound: bool) -> WmsAuthScheme {
    WmsAuthScheme { ip_bound, ..WmsAuthScheme::new(WMS_KEY) }
}

/// EdgeAuth with `algorithm` and an optional salt.
pub fn edgeauth_scheme(algorithm: EdgeAlgorithm, salt: Option<&str>) -> EdgeAuthScheme {
    let mut scheme = EdgeAuthScheme::new(EDGE_KEY, algorithm).expect("EdgeAuth key");
    scheme.salt = salt.map(str::to_owned);
    scheme
}

/// nginx secure_link with the default expression.
pub fn secure_link_scheme() -> SecureLinkScheme {
    SecureLinkScheme::new(SECURE_LINK_SECRET, DEFAULT_EXPRESSION).expect("secure_link expression")
}

/// The gate's session credentials.
pub fn session_scheme() -> SessionScheme {
    SessionScheme::new(SESSION_SECRET, SessionOptions::default()).expect("session secret")
}

/// A gate with `policy` and every scheme configured.
pub fn full_gate(policy: Policy) -> Gate {
    Gate::new(policy)
        .with_scheme(Box::new(jwt_scheme()))
        .with_scheme(Box::new(wmsauth_scheme(true)))
        .with_scheme(Box::new(edgeauth_scheme(EdgeAlgorithm::Sha256, None)))
        .with_scheme(Box::new(secure_link_scheme()))
        .with_scheme(Box::new(session_scheme()))
}

/// The input as text, split into at most `n` newline-separated fields (the last takes the
/// rest, newlines included); missing fields are empty. Seeds are readable this way:
/// `credential\npath\nclient-ip`.
pub fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<String> = text.splitn(n, '\n').map(str::to_owned).collect();
    out.resize(n, String::new());
    out
}

/// Request facts as the policy engine derives them: the normalized path (or the raw one
/// when it does not normalize, so the schemes see hostile paths too) and the client IP.
pub fn facts(path: &str, ip: &str) -> RequestFacts {
    RequestFacts { path: normalize_path(path).unwrap_or_else(|_| path.to_owned()), client_ip: ip.trim().parse().ok() }
}

/// A client IP from a field, if it is one.
pub fn ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// HMAC-SHA256 of `message` (EdgeAuth sha256).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// MD5 of `message` (WMSAuth).
pub fn md5(message: &[u8]) -> [u8; 16] {
    Md5::digest(message).into()
}

/// Every denial maps to exactly one reason code, which parses back, and names one of the
/// documented stages.
pub fn assert_denial_is_mapped(denial: &Denial) {
    let code = denial.reason();
    assert_eq!(ReasonCode::parse(code.as_str()), Some(code), "{denial:?}");
    assert!(Denial::STAGES.contains(&denial.stage()), "{denial:?} has stage {:?}", denial.stage());
}

/// What every decision must satisfy: a denial maps to a reason code; an allowed request was
/// made on the normalized path, inside the grant's scope, and its origin URL stays under
/// the origin.
pub fn assert_decision_sound(decision: &Decision, raw_path: &str, query: &str) {
    match decision {
        Decision::Deny { denial, .. } => assert_denial_is_mapped(denial),
        Decision::Allow { grant, facts } => {
            let normalized = normalize_path(raw_path).expect("an allowed path normalizes");
            assert_eq!(facts.path, normalized, "the checked path is the normalized one");
            assert!(grant.scope.covers(&facts.path), "{:?} does not cover {}", grant.scope, facts.path);
            for origin in ORIGINS {
                assert_origin_url_sound(origin, &facts.path, query);
            }
        }
    }
}

/// The origin URL built for a normalized path, parsed as the origin's URL parser reads it
/// (WHATWG, the `url` crate): its path is under the origin's base path and percent-decodes
/// to exactly the normalized path (the bytes checked are the bytes fetched), and its query
/// carries no credential.
pub fn assert_origin_url_sound(origin: &str, normalized: &str, query: &str) {
    let built = origin_url(origin, normalized, query);
    let base = url::Url::parse(origin).expect("the origin is a URL");
    let base_path = base.path().trim_end_matches('/');
    let parsed = url::Url::parse(&built).unwrap_or_else(|e| panic!("origin URL {built:?} does not parse: {e}"));
    assert_eq!(parsed.origin(), base.origin(), "{built:?} left the origin");
    let path = parsed.path();
    assert!(
        path.starts_with(base_path) && path.get(base_path.len()..).is_some_and(|rest| rest.starts_with('/')),
        "{built:?} has path {path:?}, outside the base {base_path:?}"
    );
    let decoded = percent_decode_str(path).decode_utf8().expect("the origin path decodes to UTF-8");
    assert_eq!(
        decoded.get(base_path.len()..),
        Some(normalized),
        "{built:?}: the fetched path differs from the checked one"
    );
    for (name, _) in parsed.query_pairs() {
        let credential = SchemeKind::ALL.iter().any(|k| k.query_params().contains(&name.as_ref()));
        assert!(!credential, "{built:?} forwards the credential parameter {name:?} to the origin");
    }
}

/// Whether `output` is `input` with `param=credential` inserted in places, each insertion
/// preceded by one of `separators` or by nothing (the rewriter inserts `?`, `&` or `&amp;`
/// before the parameter, or nothing right after an existing `?`). Sound when `input` holds
/// no `param`: every occurrence of the marker is then an insertion.
pub fn only_inserted(input: &str, output: &str, marker: &str, separators: &[&str]) -> bool {
    let (mut i, mut j) = (0, 0);
    let (input, output) = (input.as_bytes(), output.as_bytes());
    let marker = marker.as_bytes();
    'outer: while j < output.len() {
        let rest = &output[j..];
        for sep in separators.iter().map(|s| s.as_bytes()) {
            // The separator was inserted unless the input has the same text there: an
            // insertion point is never right before a separator the input already has.
            if rest.starts_with(sep) && rest[sep.len()..].starts_with(marker) && !input[i..].starts_with(sep) {
                j += sep.len() + marker.len();
                continue 'outer;
            }
        }
        if rest.starts_with(marker) {
            j += marker.len();
            continue;
        }
        if input.get(i) != output.get(j) {
            return false;
        }
        i += 1;
        j += 1;
    }
    i == input.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inserted_accepts_insertions_and_nothing_else() {
        let m = "sgs=M";
        let seps = ["&amp;", "&", "?"];
        assert!(only_inserted("a.ts\n", "a.ts?sgs=M\n", m, &seps));
        assert!(only_inserted("a.ts?\n", "a.ts?sgs=M\n", m, &seps));
        assert!(only_inserted("a.ts?x=1&\n", "a.ts?x=1&&sgs=M\n", m, &seps));
        assert!(only_inserted("a.ts?x=1 #f", "a.ts?x=1&sgs=M #f", m, &seps));
        assert!(only_inserted("x?a&amp;b", "x?a&amp;b&amp;sgs=M", m, &seps));
        assert!(!only_inserted("a.ts", "b.ts?sgs=M", m, &seps));
        assert!(!only_inserted("a.ts?x=1", "a.ts?sgs=M", m, &seps));
        assert!(!only_inserted("a.ts", "a.ts?sgs=M&", m, &seps));
    }

    #[test]
    fn keys_load_and_sign() {
        assert_eq!(jwt_keys().len(), 6);
        for key in jwt_keys() {
            assert!(key.is_private(), "{}", key.alg());
        }
    }

    #[test]
    fn origin_urls_of_hostile_paths_stay_under_the_origin() {
        for origin in ORIGINS {
            assert_origin_url_sound(origin, "/a/b c/ü/[x]/...", "token=1&x=2");
            assert_origin_url_sound(origin, "/", "");
        }
    }
}
