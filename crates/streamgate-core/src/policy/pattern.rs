//! Wildcard patterns without regex: `*` globs and DNS-style host wildcards.

/// Matches `text` against `pattern`, where `*` stands for any run of characters
/// (including none). Linear-time greedy matching with one backtrack point.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(&pc), Some(&tc)) if same(pc, tc) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == '*'))
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
    let (_, rest) = referer.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host =
        if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next()? } else { host_port.split(':').next()? };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
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
