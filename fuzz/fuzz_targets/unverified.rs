//! UNVERIFIED inspection and the credential-finding helpers on any token or URL:
//! `unverified::inspect`, `detect_scheme`, `split_url`, `find_in_query`,
//! `strip_credentials`, `signed_url`. A query stripped of credentials holds none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::schemes::{detect_scheme, find_in_query, signed_url, split_url, strip_credentials};
use streamgate_core::unverified::inspect;
use streamgate_fuzz::assert_denial_is_mapped;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match inspect(&text) {
        Ok(inspection) => assert!(inspection.fields.is_object()),
        Err(denial) => assert_denial_is_mapped(&denial),
    }
    let _ = detect_scheme(&text);
    let (path, query) = split_url(&text);
    assert!(!path.is_empty() && !path.contains('?') && !path.contains('#'), "{path:?}");
    assert!(!query.contains('#'), "{query:?}");
    let stripped = strip_credentials(query);
    assert_eq!(find_in_query(&stripped), None, "{query:?} stripped to {stripped:?}");
    assert_eq!(strip_credentials(&stripped), stripped, "stripping is idempotent");
    if let Some(credential) =
        find_in_query(query).filter(|c| !c.value.contains(['&', '#', '?']) && !c.value.contains("://"))
    {
        // A credential written into a URL without one is found there again (values that
        // are not URL-safe are the caller's to escape: `signed_url` writes them as given).
        let base = format!("{path}?{stripped}");
        let url = signed_url(&base, &credential);
        let (_, signed_query) = split_url(&url);
        let found = find_in_query(signed_query);
        assert_eq!(found.map(|c| c.kind), Some(credential.kind), "{url:?}");
    }
});
