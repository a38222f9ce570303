//! Request paths: `normalize_path` on any text (input: `path\nquery`), and for every path it
//! accepts, the origin URL built from it, read by a WHATWG URL parser (the `url` crate) as
//! the origin reads it: it stays under the origin's base path, percent-decodes to exactly
//! the normalized path, and carries no credential parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::policy::path::{encode_path, normalize_path};
use streamgate_core::policy::RequestContext;
use streamgate_core::Policy;
use streamgate_fuzz::{assert_denial_is_mapped, assert_origin_url_sound, fields, ORIGINS};

fuzz_target!(|data: &[u8]| {
    let [raw, query] = <[String; 2]>::try_from(fields(data, 2)).unwrap_or_default();
    let normalized = match normalize_path(&raw) {
        Ok(normalized) => normalized,
        Err(denial) => {
            assert_denial_is_mapped(&denial);
            return;
        }
    };
    assert!(normalized.starts_with('/'), "{normalized:?}");
    // Normalizing is idempotent, through the re-encoded form too.
    assert_eq!(normalize_path(&normalized).as_deref(), Ok(normalized.as_str()));
    assert_eq!(normalize_path(&encode_path(&normalized)).as_deref(), Ok(normalized.as_str()));
    for origin in ORIGINS {
        assert_origin_url_sound(origin, &normalized, &query);
    }
    // The policy derives the same path.
    let ctx = RequestContext { path: raw.clone(), ..Default::default() };
    assert_eq!(Policy::default().resolve(&ctx).map(|f| f.path), Ok(normalized));
});
