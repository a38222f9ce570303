//! HLS playlists: `hls::rewrite` and `presentation_seconds` on any text. When the playlist
//! holds no `sgs`, not even with tabs inside (players drop them), and defines no variables
//! that could spell it, taking the added
//! credential out of the result gives back the input byte for byte: the rewriter only adds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_core::manifests::{hls, presentation_seconds, ManifestKind, Propagation};
use streamgate_fuzz::{only_inserted, GATE_HOST};

const CREDENTIAL: &str = "v1.FUZZ.CRED";

fuzz_target!(|data: &[u8]| {
    let playlist = String::from_utf8_lossy(data);
    let propagation = Propagation { host: GATE_HOST.into(), param: "sgs".into(), credential: CREDENTIAL.into() };
    let out = hls::rewrite(&playlist, &propagation);
    if let Some(seconds) = hls::presentation_seconds(&playlist) {
        assert!(seconds <= 1_000_000_000_000, "{seconds}");
    }
    assert_eq!(presentation_seconds(ManifestKind::Hls, &playlist), hls::presentation_seconds(&playlist));
    // Variables could spell `sgs` from pieces the input does not show as one word.
    let uses_variables = playlist.contains("{$") && playlist.contains("EXT-X-DEFINE");
    // Players drop tabs inside a URI: `sg\ts=` is a stale `sgs=`, rightly replaced.
    let checkable = !playlist.replace('\t', "").contains("sgs") && !uses_variables;
    if checkable {
        let marker = format!("sgs={CREDENTIAL}");
        assert!(only_inserted(&playlist, &out, &marker, &["&", "?"]), "input {playlist:?}\noutput {out:?}");
    }
    // Rewriting again replaces the credential instead of adding a second one.
    let fresh = Propagation { credential: "v1.NEW.CRED".into(), ..propagation.clone() };
    let twice = hls::rewrite(&out, &fresh);
    if checkable {
        // (The input may hold the credential's text elsewhere, e.g. in a fragment.)
        let stale = |text: &str| text.matches(CREDENTIAL).count();
        assert_eq!(stale(&twice), stale(&playlist), "a stale credential survived: {twice:?}");
    }
});
