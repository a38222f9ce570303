//! Request path normalization and stream-scope matching.

use percent_encoding::percent_decode_str;

use crate::denial::Denial;
use crate::policy::pattern::wildcard_match;

/// Normalizes a request path the way the origin will see it: percent-decoded, dot
/// segments resolved, doubled slashes folded. Ambiguous input is refused, never guessed:
/// encoded `/` or `\`, backslashes, NUL and control characters, bad escapes, invalid
/// UTF-8 and `..` that would climb above the root.
pub fn normalize_path(raw: &str) -> Result<String, Denial> {
    let unsafe_path = |why| Denial::UnsafePath { path: raw.to_owned(), why };
    let path = raw.split(['?', '#']).next().unwrap_or("");
    if path.contains('\\') {
        return Err(unsafe_path("backslash in path"));
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/') {
        let lower = segment.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(unsafe_path("encoded slash in path"));
        }
        if !valid_escapes(segment) {
            return Err(unsafe_path("invalid percent-escape in path"));
        }
        let decoded = percent_decode_str(segment).decode_utf8().map_err(|_| unsafe_path("path is not valid UTF-8"))?;
        if decoded.chars().any(char::is_control) {
            return Err(unsafe_path("control character in path"));
        }
        match decoded.as_ref() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(unsafe_path("`..` climbs above the root"));
                }
            }
            _ => segments.push(decoded.into_owned()),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let ends_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || ends_dir {
        out.push('/');
    }
    Ok(out)
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

/// Whether a normalized `path` is inside the stream named by `glob`: the path is that
/// stream or lies under it. `*` matches within one segment; `**` matches any number of
/// segments. `live/match-*` covers `/live/match-42/seg_7.ts` but not `/live/matchbox/x`.
pub fn stream_in_scope(glob: &str, path: &str) -> bool {
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
