//! DASH MPDs: `dash::rewrite`, `rewrite_with_refresh` and `presentation_seconds` on any
//! text. When the MPD holds no `sgs` and no character reference that could spell it,
//! taking the added credential out of `rewrite`'s result gives back the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::manifests::{dash, presentation_seconds, ManifestKind, Propagation};
use streamgate_fuzz::{only_inserted, GATE_HOST};

const CREDENTIAL: &str = "v1.FUZZ.CRED";

fuzz_target!(|data: &[u8]| {
    let mpd = String::from_utf8_lossy(data);
    let propagation = Propagation { host: GATE_HOST.into(), param: "sgs".into(), credential: CREDENTIAL.into() };
    let out = dash::rewrite(&mpd, &propagation);
    let refreshed = dash::rewrite_with_refresh(&mpd, &propagation, "https://gate.example.com/live/manifest.mpd");
    assert!(refreshed.len() >= out.len(), "the refresh variant only adds a Location");
    let _ = presentation_seconds(ManifestKind::Dash, &mpd);
    // Players drop tabs and line breaks inside a URL: `sg\ns=` is a stale `sgs=`.
    if !mpd.replace(['\t', '\n', '\r'], "").contains("sgs") && !mpd.contains("&#") {
        let marker = format!("sgs={CREDENTIAL}");
        assert!(only_inserted(&mpd, &out, &marker, &["&amp;", "&", "?"]), "input {mpd:?}\noutput {out:?}");
    }
});
