//! Forward-auth: the original request a proxy in front of the origin names in its headers
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`), read by one rule
//! for every adapter.
//!
//! Proxies set their own kind of naming headers and pass the viewer's other headers on, so
//! a viewer can add the other kind, or repeat one. Such a request names a request a viewer
//! chose, and is refused rather than read in some order of preference.

use super::Reply;

/// A header that names the original request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamingHeader {
    /// `X-Original-URI` (nginx, as `deploy/nginx/streamgate.conf` sets it).
    OriginalUri,
    /// `X-Original-Method` (nginx).
    OriginalMethod,
    /// `X-Forwarded-Uri` (Caddy, Traefik).
    ForwardedUri,
    /// `X-Forwarded-Method` (Caddy, Traefik).
    ForwardedMethod,
}

impl NamingHeader {
    /// The header's name, lower-case.
    pub const fn name(self) -> &'static str {
        match self {
            NamingHeader::OriginalUri => "x-original-uri",
            NamingHeader::OriginalMethod => "x-original-method",
            NamingHeader::ForwardedUri => "x-forwarded-uri",
            NamingHeader::ForwardedMethod => "x-forwarded-method",
        }
    }
}

/// One kind of proxy's pair, and the other kind's method header, which its requests must
/// not hold.
struct Kind {
    uri: NamingHeader,
    method: NamingHeader,
    other_method: NamingHeader,
}

const NGINX: Kind = Kind {
    uri: NamingHeader::OriginalUri,
    method: NamingHeader::OriginalMethod,
    other_method: NamingHeader::ForwardedMethod,
};
const FORWARDED: Kind = Kind {
    uri: NamingHeader::ForwardedUri,
    method: NamingHeader::ForwardedMethod,
    other_method: NamingHeader::OriginalMethod,
};

/// The original request line, borrowed from the proxy's headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedRequest<'a> {
    /// The method, trimmed.
    pub method: &'a str,
    /// The path, still percent-encoded: the gate decodes it once.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: &'a str,
}

/// The original request a proxy names: URI and method from one kind's pair of headers
/// (`X-Original-URI` with `X-Original-Method`, or `X-Forwarded-Uri` with
/// `X-Forwarded-Method`). `lines(header)` gives every line of that header, as sent.
///
/// Refused with 403 `ambiguous_request` (a viewer may have sent it): both kinds, either
/// kind's URI with the other's method, a header repeated, or a value that is not UTF-8
/// (never read as absent, which would let another header speak). A proxy that names no
/// URI, or a URI without a method (its own `GET` would be judged for a `POST`), is 500
/// `misconfigured`.
pub fn named_request<'a, I>(mut lines: impl FnMut(NamingHeader) -> I) -> Result<NamedRequest<'a>, Reply>
where
    I: Iterator<Item = &'a [u8]>,
{
    let mut present = |header| lines(header).next().is_some();
    let kind = match (present(NamingHeader::OriginalUri), present(NamingHeader::ForwardedUri)) {
        (true, false) => NGINX,
        (false, true) => FORWARDED,
        (false, false) => return Err(Reply::misconfigured(
            "the proxy sent neither X-Original-URI nor X-Forwarded-Uri: forward-auth needs the original request URI",
        )),
        (true, true) => return Err(ambiguous("both X-Original-URI and X-Forwarded-Uri")),
    };
    if present(kind.other_method) {
        return Err(ambiguous(&format!("{} with {}", kind.uri.name(), kind.other_method.name())));
    }
    let uri = single_text(lines(kind.uri), kind.uri)?.unwrap_or_default();
    let method = single_text(lines(kind.method), kind.method)?.map(str::trim).filter(|m| !m.is_empty());
    let method = method.ok_or_else(|| {
        Reply::misconfigured(&format!(
            "the proxy named the URI in {} but no method in {}: forward-auth needs the original method",
            kind.uri.name(),
            kind.method.name()
        ))
    })?;
    // A request line in absolute form (`GET http://host/path`) names its path after the
    // authority.
    let origin_form = match uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => uri,
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    Ok(NamedRequest { method, path, query })
}

/// The one line of `header` as text; `None` without one; refused when repeated or not UTF-8.
fn single_text<'a>(mut lines: impl Iterator<Item = &'a [u8]>, header: NamingHeader) -> Result<Option<&'a str>, Reply> {
    match (lines.next(), lines.next()) {
        (None, _) => Ok(None),
        (Some(line), None) => {
            std::str::from_utf8(line).map(Some).map_err(|_| ambiguous(&format!("{} that is not UTF-8", header.name())))
        }
        (Some(_), Some(_)) => Err(ambiguous(&format!("{} more than once", header.name()))),
    }
}

/// 403 for naming headers that contradict each other. Not a viewer's denial with a reason
/// code: no viewer was judged.
fn ambiguous(what: &str) -> Reply {
    let message = format!("the request names its original request in {what}: refused, as a client may have sent it");
    Reply::error(403, "ambiguous_request", &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the request from `pairs` (a repeated name repeats a line).
    fn read<'a>(pairs: &'a [(&'static str, &'a [u8])]) -> Result<NamedRequest<'a>, (u16, String)> {
        let lines = |header: NamingHeader| {
            pairs.iter().filter(move |(name, _)| name.eq_ignore_ascii_case(header.name())).map(|(_, value)| *value)
        };
        named_request(lines).map_err(|reply| {
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            (reply.status, body["error"].as_str().unwrap_or("").to_owned())
        })
    }

    fn line(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        pairs.iter().map(|(name, value)| (*name, value.as_bytes())).collect()
    }

    #[test]
    fn reads_the_original_request_from_nginx_caddy_and_traefik_headers() {
        let nginx = line(&[("X-Original-URI", "/hls/a.m3u8?token=t&x=1"), ("X-Original-Method", " HEAD ")]);
        assert_eq!(read(&nginx), Ok(NamedRequest { method: "HEAD", path: "/hls/a.m3u8", query: "token=t&x=1" }));
        let caddy = line(&[("X-Forwarded-Uri", "/hls/a.ts"), ("X-Forwarded-Method", "GET")]);
        assert_eq!(read(&caddy), Ok(NamedRequest { method: "GET", path: "/hls/a.ts", query: "" }));
        let absolute = line(&[("X-Original-URI", "http://h.test/hls/a.ts?x=1"), ("X-Original-Method", "POST")]);
        assert_eq!(read(&absolute).map(|r| r.path), Ok("/hls/a.ts"));
        let bare_authority = line(&[("X-Forwarded-Uri", "https://h.test"), ("X-Forwarded-Method", "GET")]);
        assert_eq!(read(&bare_authority).map(|r| r.path), Ok("/"));
    }

    /// Regression (review): Caddy and Traefik pass the client's headers on, so a client's
    /// own `X-Original-URI` (read first) chose what was decided; one byte that is not UTF-8
    /// in nginx's header made the client's `X-Forwarded-Uri` speak instead; without a
    /// method header the proxy's own GET was judged for a POST.
    #[test]
    fn refuses_what_a_client_could_have_named() {
        let ambiguous = Err((403, "ambiguous_request".to_owned()));
        let misconfigured = Err((500, "misconfigured".to_owned()));
        let caddy = [("X-Forwarded-Uri", "/hls/seg1.ts"), ("X-Forwarded-Method", "GET")];
        let nginx = [("X-Original-URI", "/hls/seg1.ts"), ("X-Original-Method", "PUT")];
        for added in [("X-Original-URI", "/posters/p.jpg"), ("X-Original-Method", "OPTIONS")] {
            assert_eq!(read(&line(&[caddy[0], caddy[1], added])), ambiguous, "{added:?}");
        }
        for added in [("X-Forwarded-Method", "GET"), ("X-Original-URI", "/posters/p.jpg"), ("X-Original-Method", "GET")]
        {
            assert_eq!(read(&line(&[nginx[0], nginx[1], added])), ambiguous, "{added:?}");
        }
        let not_utf8: Vec<(&'static str, &[u8])> =
            vec![("X-Original-URI", b"/hls/seg1.ts?\xff"), ("X-Original-Method", b"GET")];
        assert_eq!(read(&not_utf8), ambiguous);
        assert_eq!(read(&line(&[nginx[0]])), misconfigured, "a URI without its method");
        assert_eq!(read(&line(&[nginx[0], ("X-Original-Method", " ")])), misconfigured, "an empty method");
        assert_eq!(read(&line(&[("X-Other", "/a")])), misconfigured);
    }

    /// A huge URI is read in one pass, borrowed, whatever its size.
    #[test]
    fn a_huge_uri_is_read_without_copying() {
        let uri = format!("/hls/{}?token={}", "a/".repeat(500_000), "t".repeat(1_000_000));
        let pairs = [("X-Forwarded-Uri", uri.as_bytes()), ("X-Forwarded-Method", b"GET".as_slice())];
        let named = read(&pairs).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((named.path.len(), named.query.len()), (1_000_005, 1_000_006));
        assert!(std::ptr::eq(named.path.as_ptr(), uri.as_ptr()));
    }
}
