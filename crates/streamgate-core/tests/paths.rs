//! The path that is checked is the path that is fetched: for any request path the gate
//! accepts, the origin URL it builds, read by a WHATWG URL parser (what workerd, browsers
//! and most HTTP clients use), names exactly the normalized path under the origin's base,
//! and never climbs above it.

use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use streamgate_core::policy::path::{normalize_path, origin_url, stream_in_scope};

const ORIGIN: &str = "http://origin.test/base";

/// Pieces an attacker combines: every encoding depth of `.`, `/`, `\` and `%`, both hex
/// cases, and ordinary names.
const PIECES: [&str; 28] = [
    "/", "//", ".", "..", "%2e", "%2E", "%252e", "%252E", "%25252e", "%2f", "%2F", "%252f", "%5c", "%255c", "\\",
    "%25", "%", ";", "%3b", "?", "%3f", "#", "%23", "%09", "posters", "hls", "ü", "%c3%bc",
];

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES.to_vec()), 1..12).prop_map(|parts| format!("/{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn the_fetched_path_is_the_checked_path(raw in raw_path()) {
        let Ok(normalized) = normalize_path(&raw) else { return Ok(()) };
        let url = origin_url(ORIGIN, &normalized, "");
        let parsed = url::Url::parse(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        let fetched = parsed.path();
        prop_assert!(fetched == "/base" || fetched.starts_with("/base/"), "{raw} -> {url} climbs to {fetched}");
        let decoded = percent_decode_str(fetched.strip_prefix("/base").unwrap_or(fetched)).decode_utf8_lossy();
        prop_assert_eq!(decoded.as_ref(), normalized.as_str(), "{} -> {}", raw, url);
        prop_assert!(parsed.query().is_none() && parsed.fragment().is_none(), "{raw} -> {url}");
    }

    /// A public glob decides on the path the origin will serve: nothing outside `posters`
    /// is reachable through a path that matches it.
    #[test]
    fn a_public_path_never_reaches_outside_its_glob(raw in raw_path()) {
        let Ok(normalized) = normalize_path(&format!("/posters{raw}")) else { return Ok(()) };
        if stream_in_scope("posters", &normalized) {
            let parsed = url::Url::parse(&origin_url(ORIGIN, &normalized, "")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(parsed.path().starts_with("/base/posters"), "{raw} -> {}", parsed.path());
        }
    }
}
