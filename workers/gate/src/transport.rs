//! Where credentials come from: the query, a `/~sg/<credential>/` path prefix, the cookie,
//! `Authorization: Bearer`. (The origin URL, with every credential stripped, is the core's
//! `policy::path::origin_url`.)

use streamgate_core::schemes::{detect_scheme, find_in_query, Credential, SchemeKind};
use worker::Request;

/// The cookie a native player or CDN without query strings can carry instead.
pub const COOKIE: &str = "streamgate";

/// The path prefix that carries a credential for players and CDNs that drop query strings:
/// `/~sg/<credential>/hls/master.m3u8`.
pub const PATH_PREFIX: &str = "/~sg/";

/// Splits a credential embedded in the path off the path: `(credential, rest of the path)`.
pub fn path_credential(path: &str) -> Option<(Credential, String)> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (value, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
    let kind = detect_scheme(&value).unwrap_or(SchemeKind::Jwt);
    Some((Credential { kind, value }, format!("/{tail}")))
}

/// A `Set-Cookie` value carrying `credential` for the paths under `scope`, for `ttl` seconds.
pub fn session_cookie(credential: &str, scope: &str, ttl: u64) -> String {
    format!("{COOKIE}={credential}; Path={scope}; Max-Age={ttl}; HttpOnly; Secure; SameSite=None")
}

/// The request's credential: the query first, then the cookie, then a Bearer token.
pub fn credential(req: &Request, query: &str) -> Option<Credential> {
    if let Some(found) = find_in_query(query) {
        return Some(found);
    }
    let headers = req.headers();
    let from_cookie = headers.get("Cookie").ok().flatten().and_then(|cookies| {
        cookies
            .split(';')
            .find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|v| v.strip_prefix('=')).map(str::to_owned))
    });
    let bearer = || {
        headers.get("Authorization").ok().flatten().and_then(|h| h.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
    };
    from_cookie
        .or_else(bearer)
        .filter(|t| !t.is_empty())
        .map(|value| Credential { kind: detect_scheme(&value).unwrap_or(SchemeKind::Jwt), value })
}
