//! Where a viewer's credential comes from: the query, a `/~sg/<credential>/` path prefix, the
//! `streamgate` cookie, `Authorization: Bearer`. (The origin URL, with every credential
//! stripped, is [`crate::policy::path::origin_url`].)

use crate::schemes::{detect_scheme, find_in_query, Credential, SchemeKind};

/// The cookie a native player or CDN without query strings can carry instead.
pub const COOKIE: &str = "streamgate";

/// The path prefix that carries a credential for players and CDNs that drop query strings:
/// `/~sg/<credential>/hls/master.m3u8`.
pub const PATH_PREFIX: &str = "/~sg/";

/// Splits a credential embedded in the path off the path: `(credential, rest of the path)`.
/// A raw `#` ends the path, as it does for the proxies in front.
pub fn path_credential(path: &str) -> Option<(Credential, String)> {
    let path = path.split('#').next().unwrap_or_default();
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (value, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
    Some((credential_of(value), format!("/{tail}")))
}

/// A `Set-Cookie` value carrying `credential` for the paths under `scope`, for `ttl` seconds.
pub fn session_cookie(credential: &str, scope: &str, ttl: u64) -> String {
    format!("{COOKIE}={credential}; Path={scope}; Max-Age={ttl}; HttpOnly; Secure; SameSite=None")
}

/// Whether a path credential, decoded, holds a dot segment (`.` or `..` between slashes or
/// backslashes). A proxy or CDN in front that decodes the path and resolves dot segments
/// would ask for another path than the one after the credential, which the gate decides
/// on. No scheme's credential holds one.
pub fn holds_dot_segment(credential: &Credential) -> bool {
    credential.value.split(['/', '\\']).any(|segment| segment == "." || segment == "..")
}

/// The path with a `/~sg/<credential>` prefix cut off, as logs show it.
pub fn without_path_credential(path: &str) -> String {
    path_credential(path).map_or_else(|| path.to_owned(), |(_, rest)| rest)
}

fn credential_of(value: String) -> Credential {
    Credential { kind: detect_scheme(&value).unwrap_or(SchemeKind::Jwt), value }
}

/// The request's credential: the query first, then the cookie, then a Bearer token.
pub fn credential(query: &str, cookie: Option<&str>, authorization: Option<&str>) -> Option<Credential> {
    if let Some(found) = find_in_query(query) {
        return Some(found);
    }
    let from_cookie = cookie.and_then(|cookies| {
        cookies.split(';').find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|v| v.strip_prefix('=')))
    });
    let bearer = || authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    from_cookie.or_else(bearer).filter(|t| !t.is_empty()).map(|value| credential_of(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_credential_in_order() {
        let query = credential("token=q.q.q", Some("streamgate=c.c.c"), Some("Bearer b.b.b"));
        assert_eq!(query.map(|c| c.value).as_deref(), Some("q.q.q"));
        let cookie = credential("", Some("other=1; streamgate=c.c.c"), Some("Bearer b.b.b"));
        assert_eq!(cookie.map(|c| c.value).as_deref(), Some("c.c.c"));
        let bearer = credential("", Some("streamgatex=1"), Some("Bearer  b.b.b "));
        assert_eq!(bearer.map(|c| c.value).as_deref(), Some("b.b.b"));
        assert!(credential("", Some("streamgate="), Some("Basic x")).is_none());
    }

    #[test]
    fn splits_a_path_credential() {
        let (credential, rest) = path_credential("/~sg/a.b.c/hls/x.m3u8").unwrap_or_else(|| unreachable!());
        assert_eq!((credential.value.as_str(), rest.as_str()), ("a.b.c", "/hls/x.m3u8"));
        assert!(path_credential("/hls/~sg/a/x").is_none());
    }

    /// Regression (review): nginx ends the path at a raw `#`, so `/~sg/..#/posters/p.jpg`
    /// served the root while the gate judged the public `/posters/p.jpg` behind `..#`.
    #[test]
    fn a_raw_hash_ends_the_path_and_dot_segments_show() {
        let dotted = |path: &str| path_credential(path).is_some_and(|(credential, _)| holds_dot_segment(&credential));
        for path in
            ["/~sg/..#/posters/p.jpg", "/~sg/%2E%2E#x/posters/p.jpg", "/~sg/x%5C..%5C..%5Cp/hls/a.ts", "/~sg/./a"]
        {
            assert!(dotted(path), "{path}");
        }
        for path in ["/~sg/a.b.c/hls/a.ts", "/~sg/ab%2Fcd/hls/a.ts", "/~sg/a..b/hls/a.ts"] {
            assert!(!dotted(path), "{path}");
        }
    }
}
