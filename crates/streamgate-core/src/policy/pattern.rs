//! Wildcard patterns without regex: `*` globs and DNS-style host wildcards.

/// Matches `text` against `pattern`, where `*` stands for any run of characters
/// (including none). `ignore_case` compares the per-character lower case of both.
///
/// Linear time in `pattern` plus `text`: the pattern splits on `*` into literal pieces;
/// the first must be a prefix of the text, the last a suffix of what remains, and the
/// ones between are found left to right, each at its leftmost place (the two-way search
/// of `str::find`, so a hostile pattern cannot make it quadratic).
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if ignore_case {
        // Character by character, not `str::to_lowercase`: that writes a final sigma as
        // `ς`, so `Σ` in a pattern would stop matching a word-final `Σ` in the text.
        let fold = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<String>();
        return match_pieces(&fold(pattern), &fold(text));
    }
    match_pieces(pattern, text)
}

fn match_pieces(pattern: &str, text: &str) -> bool {
    // The stars are found by byte (`*` is ASCII, so every cut is on a character boundary).
    let stars = pattern.as_bytes();
    let (Some(first_star), Some(last_star)) =
        (stars.iter().position(|&b| b == b'*'), stars.iter().rposition(|&b| b == b'*'))
    else {
        // No `*`: the whole text must be the pattern.
        return text == pattern;
    };
    let (first, last) = (pattern.get(..first_star).unwrap_or(""), pattern.get(last_star + 1..).unwrap_or(""));
    let Some(mut middle) = text.strip_prefix(first).and_then(|rest| rest.strip_suffix(last)) else {
        return false;
    };
    if first_star == last_star {
        return true;
    }
    for piece in pattern.get(first_star + 1..last_star).unwrap_or("").split('*') {
        match middle.find(piece) {
            Some(at) => middle = middle.get(at + piece.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

/// The `/`-separated segments of `text` that are not empty, found by byte.
pub(crate) fn segments(text: &str) -> impl Iterator<Item = &str> + Clone {
    let mut rest = Some(text);
    core::iter::from_fn(move || loop {
        let current = rest?;
        let (segment, after) = match current.bytes().position(|b| b == b'/') {
            Some(at) => (current.get(..at).unwrap_or(""), current.get(at + 1..)),
            None => (current, None),
        };
        rest = after;
        if !segment.is_empty() {
            return Some(segment);
        }
    })
}

/// Matches a host name against a DNS-style pattern: `example.com` matches itself only;
/// `*.example.com` matches any subdomain (one or more labels) but not `example.com`.
/// Case-insensitive; a trailing dot is ignored.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(base) => {
            host.strip_suffix(base).and_then(|head| head.strip_suffix('.')).is_some_and(|label| !label.is_empty())
        }
        None => pattern == host,
    }
}

/// The host of a Referer URL (`https://a.example.com:8443/x` → `a.example.com`), if any.
pub fn referrer_host(referer: &str) -> Option<String> {
    referrer_host_as_written(referer).map(str::to_ascii_lowercase)
}

/// [`referrer_host`] as it is written in the Referer, without lower-casing (or allocating).
pub(crate) fn referrer_host_as_written(referer: &str) -> Option<&str> {
    // Byte searches for ASCII delimiters: each finds what the `str` pattern would, without
    // setting up a substring searcher per call.
    let referer = referer.trim();
    let scheme_end = referer.as_bytes().windows(3).position(|w| matches!(w, [b':', b'/', b'/']))?;
    let rest = referer.get(scheme_end + 3..)?;
    let authority = rest.get(..rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len()))?;
    let host_port = authority.get(authority.bytes().rposition(|b| b == b'@').map_or(0, |at| at + 1)..)?;
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.get(..v6.bytes().position(|b| b == b']').unwrap_or(v6.len()))?,
        None => host_port.get(..host_port.bytes().position(|b| b == b':').unwrap_or(host_port.len()))?,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*VLC*", "VLC/3.0.18 LibVLC/3.0.18", false));
        assert!(wildcard_match("*vlc*", "VLC/3.0.18", true));
        assert!(!wildcard_match("*vlc*", "VLC/3.0.18", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("", "", false));
        assert!(!wildcard_match("", "x", false));
        assert!(wildcard_match("/live/*", "/live/a/b.ts", false));
    }

    /// Regression: the greedy matcher with one backtrack point re-read the piece after the
    /// last `*` at every text position, O(n·m) steps: `*aaa…ab` against `aaa…` (100 KB by
    /// 10 KB) did not finish in minutes. Splitting on `*` and searching each piece with
    /// the two-way `str::find` is linear.
    #[test]
    fn hostile_patterns_finish() {
        let text = "a".repeat(100 * 1024);
        let long_piece = format!("*{}b", "a".repeat(10 * 1024));
        let many_stars = format!("{}b", "*a".repeat(5 * 1024));
        for pattern in [&long_piece, &many_stars] {
            assert!(!wildcard_match(pattern, &text, false));
            assert!(!wildcard_match(pattern, &text, true));
            assert!(wildcard_match(pattern, &format!("{text}b"), false));
        }
    }

    #[test]
    fn case_folding_covers_non_ascii() {
        assert!(wildcard_match("*ÉTÉ*", "l'été 2024", true));
        assert!(!wildcard_match("*ÉTÉ*", "l'été 2024", false));
        // Per character, so a final sigma in the text still matches a capital in the pattern.
        assert!(wildcard_match("ΟΔΟΣ", "οδοσ", true));
        assert!(wildcard_match("*Σ", "ΟΔΟΣ", true));
        assert!(wildcard_match("straße*", "STRAßE/1", true));
    }

    #[test]
    fn prefix_and_suffix_do_not_overlap() {
        assert!(!wildcard_match("ab*ba", "aba", false));
        assert!(wildcard_match("ab*ba", "abba", false));
        assert!(wildcard_match("a*a*a", "aaa", false));
        assert!(!wildcard_match("a*a*a", "aa", false));
        assert!(wildcard_match("**", "x", false));
        assert!(wildcard_match("a**b", "ab", false));
    }

    /// The textbook dynamic-programming matcher, as the reference.
    fn reference(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let mut row = vec![false; t.len() + 1];
        row[0] = true;
        for &pc in &p {
            let mut next = vec![false; t.len() + 1];
            if pc == '*' {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= row[j];
                    next[j] = any;
                }
            } else {
                for j in 1..=t.len() {
                    next[j] = row[j - 1] && t[j - 1] == pc;
                }
            }
            row = next;
        }
        row[t.len()]
    }

    fn fold(s: &str) -> String {
        s.chars().flat_map(char::to_lowercase).collect()
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference(pattern in "[abA*]{0,10}", text in "[abAB]{0,12}") {
            proptest::prop_assert_eq!(wildcard_match(&pattern, &text, false), reference(&pattern, &text));
            proptest::prop_assert_eq!(wildcard_match(&pattern, &text, true), reference(&fold(&pattern), &fold(&text)));
        }

        #[test]
        fn agrees_on_non_ascii(pattern in "[éÉσΣß*a]{0,8}", text in "[éÉσςΣßa]{0,10}") {
            proptest::prop_assert_eq!(wildcard_match(&pattern, &text, false), reference(&pattern, &text));
            proptest::prop_assert_eq!(wildcard_match(&pattern, &text, true), reference(&fold(&pattern), &fold(&text)));
        }
    }

    /// The host as the `str` patterns find it, as the reference for the byte searches.
    fn reference_host(referer: &str) -> Option<String> {
        let (_, rest) = referer.trim().split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let host_port = authority.rsplit('@').next()?;
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next()?,
            None => host_port.split(':').next()?,
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    proptest::proptest! {
        #[test]
        fn referrer_hosts_agree_with_the_reference(referer in "[ a:/?#@\\[\\]Hé.]{0,16}") {
            proptest::prop_assert_eq!(referrer_host(&referer), reference_host(&referer));
        }
    }

    #[test]
    fn host_wildcards_are_dns_style() {
        assert!(host_matches("*.example.com", "www.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "badexample.com"));
        assert!(host_matches("Example.COM", "example.com."));
        assert!(!host_matches("example.com", "www.example.com"));
    }

    #[test]
    fn referrer_hosts() {
        assert_eq!(referrer_host("https://A.example.com:8443/x?y").as_deref(), Some("a.example.com"));
        assert_eq!(referrer_host("http://user@h.test/").as_deref(), Some("h.test"));
        assert_eq!(referrer_host("http://[2001:db8::1]:80/").as_deref(), Some("2001:db8::1"));
        assert_eq!(referrer_host("not a url"), None);
        assert_eq!(referrer_host("https:///path"), None);
    }
}
