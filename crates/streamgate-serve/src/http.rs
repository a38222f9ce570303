//! HTTP plumbing shared by the routes: one body type for everything the gate answers (its
//! own replies, and origin responses streamed through untouched), and core replies as
//! hyper responses.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;
use streamgate_core::gateway::{Reply, CORS_HEADERS};
use tower_http::timeout::TimeoutBody;

/// Every response body: a reply of the gate's own, or an origin's body as it streams in.
pub type Body = BoxBody<Bytes, BoxError>;

/// A body's error: hyper's, or a body that went silent ([`idle_limited`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `body`, failing when no frame arrives for `idle` while one is awaited: a peer that stops
/// sending half-way (an origin mid-segment, a publisher mid-upload) frees its connections
/// then. A reader that is slow to ask for the next frame is not counted against it.
pub(crate) fn idle_limited(body: hyper::body::Incoming, idle: Duration) -> Body {
    TimeoutBody::new(idle, body).boxed()
}

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Sets header `name` (any case) to `value`; a value that is no valid header value (a
/// control character) is left out rather than failing the response.
pub(crate) fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        headers.insert(name, value);
    }
}

/// Sets header `name` to `value`, taking the string's buffer as it is; a value that is no
/// valid header value is left out, as [`set_header`] does.
pub(crate) fn set_owned(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

/// Appends header `name: value` (for headers that may repeat, like `Set-Cookie`).
fn append_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        headers.append(name, value);
    }
}

/// Every line of header `name`, joined with `separator` (`, ` for lists, `; ` for
/// cookies), bytes that are not UTF-8 replaced by U+FFFD; `None` if there is no line.
pub(crate) fn header_lines(headers: &HeaderMap, name: &HeaderName, separator: &str) -> Option<String> {
    let mut lines = headers.get_all(name).iter().map(|value| String::from_utf8_lossy(value.as_bytes()));
    let mut text = lines.next()?.into_owned();
    for line in lines {
        text.push_str(separator);
        text.push_str(&line);
    }
    Some(text)
}

/// A response with `status` and `body`.
pub(crate) fn response(status: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// A core reply as a response.
pub(crate) fn reply(reply: &Reply) -> Response<Body> {
    let body = if reply.body.is_empty() { empty() } else { full(reply.body.clone()) };
    let mut response = response(reply.status, body);
    for (name, value) in &reply.headers {
        append_header(response.headers_mut(), name, value);
    }
    response
}

/// The core's [`CORS_HEADERS`] as hyper names and values, converted once. Both are
/// standard names and the values stay static text, so adding them to a response copies
/// and allocates nothing.
static CORS: LazyLock<Vec<(HeaderName, HeaderValue)>> = LazyLock::new(|| {
    let pair = |(name, value): &(&str, &'static str)| {
        let value = HeaderValue::from_maybe_shared(Bytes::from_static(value.as_bytes()));
        Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value.ok()?))
    };
    CORS_HEADERS.iter().filter_map(pair).collect()
});

/// Adds the gate's CORS headers, as the edge does on every gate response.
pub(crate) fn with_cors(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    for (name, value) in CORS.iter() {
        headers.insert(name.clone(), value.clone());
    }
    response
}

/// A JSON answer, never cached.
pub(crate) fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut response = response(status, full(value.to_string()));
    set_header(response.headers_mut(), "Content-Type", "application/json");
    set_header(response.headers_mut(), "Cache-Control", "no-store");
    response
}

/// An error in the worker's shape, `{"error": code, "message"}`: the core's [`Reply::error`].
pub(crate) fn error_response(status: u16, code: &str, message: &str) -> Response<Body> {
    reply(&Reply::error(status, code, message))
}

/// Headers that describe one connection, not the message: never passed from the origin's
/// response to the viewer (RFC 9110 section 7.6.1; hyper frames the body itself).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// An origin response for the viewer: status, headers and body as the origin sent them
/// (the body streams through, [`idle_limited`] to `idle`), less the hop-by-hop headers.
pub(crate) fn pass_through(upstream: Response<hyper::body::Incoming>, idle: Duration) -> Response<Body> {
    let (mut parts, body) = upstream.into_parts();
    drop_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, idle_limited(body, idle))
}

/// Removes the hop-by-hop headers: the standard ones, and those the message's own
/// `Connection` header names (RFC 9110 section 7.6.1).
fn drop_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use streamgate_core::Denial;

    use super::*;

    /// Regression (review): the headers an origin's `Connection` named reached the viewer.
    #[test]
    fn hop_by_hop_headers_stay_on_their_hop() {
        let mut headers = HeaderMap::new();
        set_header(&mut headers, "Connection", "close, X-Origin-Hop");
        append_header(&mut headers, "Connection", "X-Other-Hop");
        for name in ["X-Origin-Hop", "X-Other-Hop", "Keep-Alive", "Content-Type"] {
            set_header(&mut headers, name, "v");
        }
        drop_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn a_core_denial_keeps_its_status_reason_and_body() {
        let denial = reply(&Reply::deny(&Denial::MissingToken));
        assert_eq!(denial.status(), 401);
        assert_eq!(denial.headers().get("x-streamgate-reason").and_then(|v| v.to_str().ok()), Some("missing_token"));
        let mut headers = HeaderMap::new();
        set_header(&mut headers, "X-Bad", "line\nbreak");
        assert!(headers.is_empty(), "an invalid value is left out");
    }
}
