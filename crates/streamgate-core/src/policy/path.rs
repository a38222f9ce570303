//! Request path normalization, the origin URL built from it, and stream-scope matching.
//!
//! The rule that keeps the gate from being walked around: the path that is checked is
//! exactly the path that is fetched. [`normalize_path`] decodes each segment once and
//! refuses anything a later decoder could read differently (a `%` left after decoding,
//! `;`, `?`, `#`, `\`, control characters); [`origin_url`] re-encodes every segment, so no
//! URL parser downstream can find a dot segment or an escape that was not checked.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::denial::Denial;
use crate::policy::pattern::{segments, wildcard_match};
use crate::schemes::strip_credentials;

/// Normalizes a request path the way the origin will see it: percent-decoded once, dot
/// segments resolved, doubled slashes folded. Ambiguous input is refused, never guessed:
/// encoded `/` or `\`, backslashes, bad escapes, invalid UTF-8, `..` that would climb
/// above the root, and any segment that after decoding still holds `%` (an escape meant
/// for a second decoder), `;` (path parameters some origins strip), `?`, `#`, `\` or a
/// control character.
pub fn normalize_path(raw: &str) -> Result<String, Denial> {
    let unsafe_path = |why| Denial::UnsafePath { path: truncated(raw), why };
    let path = raw.get(..raw.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(raw.len())).unwrap_or("");
    if is_plain(path) {
        return Ok(path.to_owned());
    }
    if path.contains('\\') {
        return Err(unsafe_path("backslash in path"));
    }
    // The result is built in place: `/` and a segment per kept segment, and `..` cuts the
    // last one off again (a decoded segment never holds `/`, so it starts at the last one).
    let mut out = String::with_capacity(path.len() + 1);
    for segment in path.split('/') {
        if !valid_escapes(segment) {
            return Err(unsafe_path("invalid percent-escape in path"));
        }
        let decoded = percent_decode_str(segment).decode_utf8().map_err(|_| unsafe_path("path is not valid UTF-8"))?;
        if let Some(why) = refused_in_segment(&decoded) {
            return Err(unsafe_path(why));
        }
        match decoded.as_ref() {
            "" | "." => {}
            ".." => match out.rfind('/') {
                Some(last) => out.truncate(last),
                None => return Err(unsafe_path("`..` climbs above the root")),
            },
            kept => {
                out.push('/');
                out.push_str(kept);
            }
        }
    }
    let ends_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || ends_dir {
        out.push('/');
    }
    Ok(out)
}

/// Whether `path` is already normalized, and nothing in it is decoded or refused: it starts
/// with `/`, every segment but an empty last one is neither empty nor a dot segment, and
/// every byte is printable ASCII other than `%`, `;`, `?`, `#` and `\`. Such a path is its
/// own normal form, which the full walk would rebuild byte for byte.
fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // The segment being read: its length, and whether it holds only dots.
    let (mut len, mut dots) = (0_usize, true);
    for &b in bytes.iter().skip(1) {
        if b == b'/' {
            if len == 0 || (dots && len <= 2) {
                return false;
            }
            (len, dots) = (0, true);
        } else if b.is_ascii_graphic() && !matches!(b, b'%' | b';' | b'?' | b'#' | b'\\') {
            len += 1;
            dots &= b == b'.';
        } else {
            return false;
        }
    }
    // The last segment may be empty (a directory), never a dot segment.
    len == 0 || !(dots && len <= 2)
}

/// The longest raw path a denial repeats (a hostile path may be huge).
const MAX_ECHOED_PATH: usize = 256;

fn truncated(raw: &str) -> String {
    match raw.char_indices().nth(MAX_ECHOED_PATH) {
        Some((end, _)) => format!("{}…", raw.get(..end).unwrap_or("")),
        None => raw.to_owned(),
    }
}

/// Why a decoded segment is refused, if it is.
fn refused_in_segment(decoded: &str) -> Option<&'static str> {
    decoded.chars().find_map(|c| match c {
        '/' => Some("encoded slash in path"),
        '\\' => Some("encoded backslash in path"),
        '%' => Some("percent sign left after decoding (double encoding)"),
        ';' => Some("`;` in path (path parameters)"),
        '?' | '#' => Some("encoded `?` or `#` in path"),
        c if c.is_control() => Some("control character in path"),
        _ => None,
    })
}

fn valid_escapes(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let ok = matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            );
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// What a path segment keeps unescaped: RFC 3986 unreserved characters and the
/// sub-delimiters `!$&'()*+,=` plus `:` and `@`; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A normalized path (from [`normalize_path`]) with every segment percent-encoded, ready
/// to put into a URL: no dot segment and no escape in it can be read differently by the
/// URL parser that receives it.
pub fn encode_path(normalized: &str) -> String {
    let mut out = String::with_capacity(normalized.len() + 8);
    // A normalized path has no dot segments; should a caller pass one anyway, it is dropped
    // (never escaped: URL parsers read `%2E%2E` as `..`), so nothing climbs.
    let segments = normalized.split('/').filter(|s| *s != "." && *s != "..");
    for (i, segment) in segments.enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(segment, SEGMENT));
    }
    out
}

/// The origin URL for a normalized path and the request's query: `origin` (scheme, host
/// and an optional base path, no trailing slash) followed by the re-encoded path, and the
/// query with every credential parameter removed. The result never climbs above `origin`'s
/// own path, whatever the request held.
pub fn origin_url(origin: &str, normalized_path: &str, query: &str) -> String {
    let kept = strip_credentials(query);
    let path = encode_path(normalized_path);
    if kept.is_empty() {
        format!("{origin}{path}")
    } else {
        format!("{origin}{path}?{kept}")
    }
}

/// Whether a normalized `path` is inside the stream named by `glob`: the path is that
/// stream or lies under it. `*` matches within one segment; `**` matches any number of
/// segments. `live/match-*` covers `/live/match-42/seg_7.ts` but not `/live/matchbox/x`.
pub fn stream_in_scope(glob: &str, path: &str) -> bool {
    let pattern = segments(glob);
    let double_star = glob.as_bytes().windows(2).any(|w| matches!(w, [b'*', b'*']));
    if !double_star || !pattern.clone().any(|p| p == "**") {
        // Without `**` each pattern segment consumes exactly one path segment: the path's
        // first segments match the pattern's, one for one, and the path has enough of them.
        let mut segments = segments(path);
        let mut any = false;
        for p in pattern {
            any = true;
            match segments.next() {
                Some(segment) if wildcard_match(p, segment, false) => {}
                _ => return false,
            }
        }
        return any;
    }
    let pattern: Vec<&str> = glob.split('/').filter(|s| !s.is_empty()).collect();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if pattern.is_empty() {
        return false;
    }
    // reach[j]: pattern[..i] can consume exactly segments[..j].
    let mut reach = vec![false; segments.len() + 1];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for p in &pattern {
        let mut next = vec![false; segments.len() + 1];
        if *p == "**" {
            let mut seen = false;
            for (j, slot) in next.iter_mut().enumerate() {
                seen |= reach.get(j).copied().unwrap_or(false);
                *slot = seen;
            }
        } else {
            for (j, seg) in segments.iter().enumerate() {
                if reach.get(j).copied().unwrap_or(false) && wildcard_match(p, seg, false) {
                    if let Some(slot) = next.get_mut(j + 1) {
                        *slot = true;
                    }
                }
            }
        }
        reach = next;
    }
    // The whole pattern consumed some prefix: the path is the stream or under it.
    reach.iter().any(|&r| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dot_segments_and_slashes() {
        assert_eq!(normalize_path("/live//a/./b/../c.m3u8").unwrap(), "/live/a/c.m3u8");
        assert_eq!(normalize_path("/live/%6Datch-1/x.ts").unwrap(), "/live/match-1/x.ts");
        assert_eq!(normalize_path("/live/a/").unwrap(), "/live/a/");
        assert_eq!(normalize_path("").unwrap(), "/");
        assert_eq!(normalize_path("/a/b?x=1").unwrap(), "/a/b");
    }

    #[test]
    fn refuses_ambiguous_paths() {
        for bad in [
            "/../etc/passwd",
            "/live/%2e%2e/%2e%2e/secret",
            "/live%2fother/x",
            "/live%5Cx",
            "/live\\x",
            "/live/%zz",
            "/live/%00x",
            "/live/%ff",
        ] {
            let err = normalize_path(bad).unwrap_err();
            assert_eq!(err.reason(), crate::ReasonCode::ScopeMismatch, "{bad}");
        }
    }

    /// Every way the review found (and the ones next to it) to smuggle a dot segment past
    /// the checks: each depth of encoding, both hex cases, mixed forms.
    #[test]
    fn refuses_every_encoding_of_a_dot_segment_that_a_second_decoder_would_climb_with() {
        let mut bad = Vec::new();
        for dot in ["%252e", "%252E", "%25252e", "%2525252E"] {
            for pair in [format!("{dot}{dot}"), format!(".{dot}"), format!("{dot}."), format!("%2e{dot}")] {
                bad.push(format!("/posters/{pair}/hls/master.m3u8"));
                bad.push(format!("/live/a/{pair}/{pair}/secret/x.ts"));
            }
        }
        bad.extend(
            [
                "/posters/%252f..%252fhls/master.m3u8",
                "/posters/..%252fhls/master.m3u8",
                "/a/%25/b",
                "/a/b%3bjsessionid=1/c",
                "/a/b;x=1/c",
                "/a/%3f/b",
                "/a/%23/b",
                "/a/%5c../b",
                "/a/%09/b",
                "/a/%7f/b",
                "/a/%c2%85/b",
            ]
            .map(String::from),
        );
        for path in &bad {
            let err = normalize_path(path).unwrap_err();
            assert_eq!(err.reason(), crate::ReasonCode::ScopeMismatch, "{path}");
        }
    }

    #[test]
    fn single_encoded_dot_segments_resolve_before_the_checks() {
        // Decoded once, `%2e%2e` is `..`: resolved here, so the checked path is the fetched one.
        assert_eq!(normalize_path("/posters/%2e%2e/hls/master.m3u8").unwrap(), "/hls/master.m3u8");
        assert_eq!(normalize_path("/posters/.%2E/hls/x.ts").unwrap(), "/hls/x.ts");
    }

    #[test]
    fn the_origin_url_is_the_checked_path_re_encoded() {
        assert_eq!(origin_url("http://o.test", "/hls/master.m3u8", ""), "http://o.test/hls/master.m3u8");
        assert_eq!(
            origin_url("http://o.test/base", "/a b/ü/100%/x.ts", "token=t&_HLS_msn=3"),
            "http://o.test/base/a%20b/%C3%BC/100%25/x.ts?_HLS_msn=3"
        );
        // A decoded name that looks like an escape goes to the origin as the name itself.
        assert_eq!(encode_path("/a/%2e%2e/b"), "/a/%252e%252e/b");
        assert_eq!(encode_path("/a/../b/./c/"), "/a/b/c/", "dot segments are never emitted");
        assert_eq!(encode_path("/"), "/");
        assert_eq!(encode_path("/k=v:@!$&'()*+,~-._/x"), "/k=v:@!$&'()*+,~-._/x");
    }

    /// The full walk alone, without the shortcut for paths already normal.
    fn walked(raw: &str) -> Result<String, Denial> {
        let mut out = String::new();
        let path = raw.split(['?', '#']).next().unwrap_or("");
        for segment in path.split('/') {
            let decoded = percent_decode_str(segment).decode_utf8().map_err(|_| Denial::malformed("utf-8"))?;
            if !valid_escapes(segment) || refused_in_segment(&decoded).is_some() || path.contains('\\') {
                return Err(Denial::malformed("refused"));
            }
            match decoded.as_ref() {
                "" | "." => {}
                ".." => out.truncate(out.rfind('/').ok_or_else(|| Denial::malformed("climbs"))?),
                kept => out = format!("{out}/{kept}"),
            }
        }
        if out.is_empty() || path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..") {
            out.push('/');
        }
        Ok(out)
    }

    /// The segment-by-segment dynamic programme, as the reference for the `**`-free shortcut.
    fn reference_scope(glob: &str, path: &str) -> bool {
        let pattern: Vec<&str> = glob.split('/').filter(|s| !s.is_empty()).collect();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut reach: Vec<bool> = (0..=segments.len()).map(|j| j == 0).collect();
        for p in &pattern {
            let mut next = vec![false; segments.len() + 1];
            for j in 0..=segments.len() {
                if *p == "**" {
                    next[j] = reach[..=j].iter().any(|&r| r);
                } else if j > 0 {
                    next[j] = reach[j - 1] && wildcard_match(p, segments[j - 1], false);
                }
            }
            reach = next;
        }
        !pattern.is_empty() && reach.iter().any(|&r| r)
    }

    proptest::proptest! {
        #[test]
        fn the_shortcut_for_normal_paths_agrees_with_the_walk(raw in "[/a.%2eE;?# \\\\\u{85}é]{0,14}") {
            let fast = normalize_path(&raw);
            proptest::prop_assert_eq!(fast.is_ok(), walked(&raw).is_ok(), "{:?}", raw);
            proptest::prop_assert_eq!(fast.ok(), walked(&raw).ok());
        }

        #[test]
        fn scopes_agree_with_the_reference(glob in "[/a*]{0,8}", path in "[/ab]{0,10}") {
            proptest::prop_assert_eq!(stream_in_scope(&glob, &path), reference_scope(&glob, &path));
        }
    }

    #[test]
    fn stream_globs_follow_segments() {
        assert!(stream_in_scope("live/match-*", "/live/match-42/index.m3u8"));
        assert!(stream_in_scope("live/match-*", "/live/match-42/seg_7.ts"));
        assert!(stream_in_scope("live/match-*", "/live/match-42"));
        assert!(!stream_in_scope("live/match-*", "/live/matchbox/index.m3u8"));
        assert!(!stream_in_scope("live/match-*", "/live"));
        assert!(!stream_in_scope("live/*", "/vod/a"));
        assert!(stream_in_scope("vod/**", "/vod/a/b/c.ts"));
        assert!(stream_in_scope("**/master.m3u8", "/a/b/master.m3u8"));
        assert!(stream_in_scope("/live/a", "/live/a/x.ts"));
        assert!(!stream_in_scope("", "/live/a"));
        assert!(!stream_in_scope("live/a*", "/live/b"));
    }
}
