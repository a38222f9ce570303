//! Viewer requests: proxy mode through [`Gateway::handle`], and forward-auth (`/auth`)
//! through [`Gateway::authorize`]. This module only reads the request, hands it to the core
//! and turns the outcome into a response, a metric and (for denials) a log line.
//!
//! [`Gateway::handle`]: streamgate_core::gateway::Gateway::handle
//! [`Gateway::authorize`]: streamgate_core::gateway::Gateway::authorize

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming as RequestBody;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, COOKIE, HOST, REFERER, USER_AGENT,
};
use hyper::{Request, Response};
use streamgate_core::gateway::{Authorization, Incoming, Outcome, Reply};
use streamgate_core::policy::ip::client_ip;
use streamgate_core::ReasonCode;

use crate::http::{self, header, header_lines, set_owned, Body};
use crate::log::{self, Denied};
use crate::metrics::{Decision, Route};
use crate::native_io::{IoError, NativeIo};
use crate::server::{unix_now, App};
use crate::state::State;

/// Where nginx `auth_request` configurations put the original request (the operator sets
/// them with `proxy_set_header`). Header names are built once, here: a name given as text
/// is parsed and lower-cased on every lookup.
const NGINX_URI: HeaderName = HeaderName::from_static("x-original-uri");
const NGINX_METHOD: HeaderName = HeaderName::from_static("x-original-method");
/// Where Caddy `forward_auth` and Traefik `ForwardAuth` put it.
const FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// What forward-auth answers an allowed request with.
const SUBJECT: HeaderName = HeaderName::from_static("x-streamgate-subject");
const TOKEN_ID: HeaderName = HeaderName::from_static("x-streamgate-token-id");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Proxy mode: the whole gate in front of the origin.
pub(crate) async fn proxy<S: State>(app: &Arc<App<S>>, req: Request<RequestBody>, peer: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let trusted = app.trusts(peer);
    let target =
        Target { method: parts.method.as_str(), path: parts.uri.path(), query: parts.uri.query().unwrap_or("") };
    let incoming = viewer_request(app, &parts.headers, &target, peer, trusted);
    let io = NativeIo::new(app, &parts.headers, Some(body));
    let (response, decision) = match app.gateway.handle(&io, &incoming, unix_now()).await {
        Ok(Outcome::Pass(upstream)) => (http::pass_through(upstream.0), Decision::Allowed),
        Ok(Outcome::Reply(reply)) => answer(app, Route::Proxy, &incoming, &reply),
        Err(error) => failure(app, Route::Proxy, &incoming, &error),
    };
    app.metrics.record(Route::Proxy, decision, started.elapsed());
    http::with_cors(response)
}

/// A forward-auth request as read on arrival: what the decision needs, owned, or the
/// answer when there is nothing to decide.
pub(crate) struct AuthRequest {
    started: Instant,
    incoming: Incoming,
    refused: Option<Reply>,
}

/// Reads a forward-auth request as soon as hyper hands it over, and lets it go: hyper reads
/// ahead on the connection before the answer is polled, and a request still holding its
/// headers would make it move its read buffer to a new allocation every time. The proxy's
/// headers are believed only from `policy.trustedProxies`.
pub(crate) fn read_auth<S: State>(app: &App<S>, req: Request<RequestBody>, peer: IpAddr) -> AuthRequest {
    let started = Instant::now();
    let (parts, _) = req.into_parts();
    let headers = &parts.headers;
    let target = if app.trusts(peer) { forwarded_target(headers) } else { Err(untrusted_peer(peer)) };
    match target {
        Ok(target) => {
            AuthRequest { started, incoming: viewer_request(app, headers, &target, peer, true), refused: None }
        }
        Err(reply) => {
            let method = parts.method.as_str().to_owned();
            let incoming =
                Incoming { method, path: parts.uri.path().to_owned(), peer_ip: Some(peer), ..Incoming::default() };
            AuthRequest { started, incoming, refused: Some(reply) }
        }
    }
}

/// Forward-auth: decides on the request a proxy in front of the origin asks about.
pub(crate) async fn forward_auth<S: State>(app: &Arc<App<S>>, asked: AuthRequest) -> Response<Body> {
    let AuthRequest { started, incoming, refused } = asked;
    let (response, decision) = match refused {
        Some(reply) => answer(app, Route::Auth, &incoming, &reply),
        None => {
            // Forward-auth never fetches, so no viewer header is ever forwarded.
            let no_headers = HeaderMap::new();
            let io = NativeIo::new(app, &no_headers, None);
            match app.gateway.authorize(&io, &incoming, unix_now()).await {
                Ok(Authorization::Allowed { subject, token_id }) => {
                    let mut response = http::response(200, http::empty());
                    let headers = response.headers_mut();
                    headers.insert(CACHE_CONTROL, NO_STORE);
                    if let Some(subject) = subject {
                        set_owned(headers, SUBJECT, subject);
                    }
                    if let Some(token_id) = token_id {
                        set_owned(headers, TOKEN_ID, token_id);
                    }
                    (response, Decision::Allowed)
                }
                Ok(Authorization::Denied(reply)) => answer(app, Route::Auth, &incoming, &reply),
                Err(error) => failure(app, Route::Auth, &incoming, &error),
            }
        }
    };
    app.metrics.record(Route::Auth, decision, started.elapsed());
    // Proxies pass an allowing answer to no viewer (nginx), or only the headers they are
    // told to copy (Caddy, Traefik): CORS goes on the answers a viewer may see.
    if response.status().is_success() {
        response
    } else {
        http::with_cors(response)
    }
}

/// The request line the gate decides on, borrowed from the request.
struct Target<'a> {
    method: &'a str,
    /// Still percent-encoded: the core decodes it once.
    path: &'a str,
    query: &'a str,
}

/// The headers one kind of proxy names the original request in.
struct NamingHeaders {
    uri: HeaderName,
    method: HeaderName,
    /// The other kind's method header, which a request of this kind must not hold.
    other_method: HeaderName,
}

/// nginx `auth_request`, as `deploy/nginx/streamgate.conf` sets them.
const NGINX_NAMING: NamingHeaders =
    NamingHeaders { uri: NGINX_URI, method: NGINX_METHOD, other_method: FORWARDED_METHOD };
/// Caddy `forward_auth` and Traefik `ForwardAuth`.
const FORWARDED_NAMING: NamingHeaders =
    NamingHeaders { uri: FORWARDED_URI, method: FORWARDED_METHOD, other_method: NGINX_METHOD };

/// The original request a proxy names: URI and method, both from one kind of proxy's
/// headers (`X-Original-URI` and `X-Original-Method`, or `X-Forwarded-Uri` and
/// `X-Forwarded-Method`). Proxies set their own kind and pass the client's other headers
/// on, so a request that holds both kinds, or one of them twice, names a request a client
/// chose: refused. So is a value that is not UTF-8 (never read as absent, which would let
/// another header speak). A proxy that names no URI, or a URI without its method (the
/// proxy's own `GET` would be judged instead of a `POST`), is misconfigured.
fn forwarded_target(headers: &HeaderMap) -> Result<Target<'_>, Reply> {
    let naming = match (headers.contains_key(NGINX_URI), headers.contains_key(FORWARDED_URI)) {
        (true, false) => NGINX_NAMING,
        (false, true) => FORWARDED_NAMING,
        (false, false) => return Err(Reply::misconfigured(
            "the proxy sent neither X-Original-URI nor X-Forwarded-Uri: forward-auth needs the original request URI",
        )),
        (true, true) => return Err(ambiguous("both X-Original-URI and X-Forwarded-Uri")),
    };
    if headers.contains_key(&naming.other_method) {
        return Err(ambiguous(&format!("{} with {}", naming.uri, naming.other_method)));
    }
    let uri = single_text(headers, &naming.uri)?.unwrap_or_default();
    let method = single_text(headers, &naming.method)?.map(str::trim).ok_or_else(|| {
        Reply::misconfigured(&format!(
            "the proxy named the URI in {} but no method in {}: forward-auth needs the original method",
            naming.uri, naming.method
        ))
    })?;
    // A request line in absolute form (`GET http://host/path`) names its path after the
    // authority.
    let origin_form = match uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => uri,
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    Ok(Target { method, path, query })
}

/// Header `name` as text if it appears at most once; a repeated or non-UTF-8 value is
/// refused as [`ambiguous`].
fn single_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Reply> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => {
            std::str::from_utf8(value.as_bytes()).map(Some).map_err(|_| ambiguous(&format!("{name} that is not UTF-8")))
        }
        (Some(_), Some(_)) => Err(ambiguous(&format!("{name} more than once"))),
    }
}

/// 403 for a forward-auth request whose naming headers contradict each other: a client
/// added some. Not a viewer's denial with a reason code, as [`untrusted_peer`] is not.
fn ambiguous(what: &str) -> Reply {
    let message = format!("the request names its original request in {what}: refused, as a client may have sent it");
    Reply::error(403, "ambiguous_request", &message)
}

/// The request as the core reads it. Forwarded scheme and host are believed only from a
/// trusted peer; the client IP header goes to the core, which does the same. Headers the
/// decision reads are read whole: every line (a proxy may add its own `X-Forwarded-For`
/// line after the client's), and bytes that are not UTF-8 replaced, never dropped (a
/// dropped client IP header would make the proxy the client).
fn viewer_request<S: State>(
    app: &App<S>,
    headers: &HeaderMap,
    target: &Target<'_>,
    peer: IpAddr,
    trusted: bool,
) -> Incoming {
    let forwarded = |name: HeaderName| {
        trusted.then(|| header(headers, name)).flatten().and_then(|v| v.split(',').next()).map(str::trim)
    };
    let scheme = forwarded(FORWARDED_PROTO).filter(|p| *p == "https").unwrap_or("http");
    let host = forwarded(FORWARDED_HOST).or_else(|| header(headers, HOST)).unwrap_or_default();
    let list = |name: &HeaderName| header_lines(headers, name, ", ");
    Incoming {
        method: target.method.to_owned(),
        path: target.path.to_owned(),
        query: target.query.to_owned(),
        base: [scheme, "://", host].concat(),
        peer_ip: Some(peer),
        forwarded_for: app.client_ip_header.as_ref().and_then(list),
        referer: list(&REFERER),
        user_agent: list(&USER_AGENT),
        cookie: header_lines(headers, &COOKIE, "; "),
        authorization: list(&AUTHORIZATION),
    }
}

/// A reply of the gate's own, counted, and logged when it refuses.
fn answer<S: State>(app: &App<S>, route: Route, incoming: &Incoming, reply: &Reply) -> (Response<Body>, Decision) {
    let decision = match reply.header("X-Streamgate-Reason").and_then(ReasonCode::parse) {
        Some(code) => Decision::Denied(code),
        None if reply.status < 400 => Decision::Allowed,
        None => Decision::Error,
    };
    if reply.status >= 400 {
        let trusted = &app.gateway.deployment.gate.policy.trusted_proxies;
        let client = client_ip(incoming.peer_ip, incoming.forwarded_for.as_deref(), trusted);
        let request = Denied { route, method: &incoming.method, path: &incoming.path, client };
        log::denial(&request, reply);
    }
    (http::reply(reply), decision)
}

/// The origin or the state store failed: 502 or 503, never a decision. The error itself
/// (addresses, store keys) goes to the log, not to the viewer.
fn failure<S: State>(app: &App<S>, route: Route, incoming: &Incoming, error: &IoError) -> (Response<Body>, Decision) {
    let path = streamgate_core::gateway::transport::without_path_credential(&incoming.path);
    tracing::warn!(target: "streamgate::gate", %error, path, "request failed");
    let reply = match error {
        IoError::State(_) => Reply::store_unavailable("the state store did not answer (the gate's log says why)"),
        IoError::Origin(_) => {
            Reply::error(502, "origin_unavailable", "the origin did not answer (the gate's log says why)")
        }
        IoError::OriginTimeout => Reply::error(504, "origin_timeout", "the origin did not answer in time"),
    };
    answer(app, route, incoming, &reply)
}

/// 403 for a peer outside `policy.trustedProxies` asking for forward-auth: its forwarded
/// headers could name any request, so none is decided. Not a viewer's denial (no reason
/// code): a proxy that is not listed, or a client that reached `/auth` directly.
fn untrusted_peer(peer: IpAddr) -> Reply {
    let message = format!(
        "{peer} is not in policy.trustedProxies: forward-auth believes the request a proxy names only from trusted proxies"
    );
    Reply::error(403, "untrusted_proxy", &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header map with each pair as a line of its own (a repeated name repeats).
    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_the_original_request_from_nginx_caddy_and_traefik_headers() {
        let target = |pairs: &[(&'static str, &str)]| {
            let map = headers(pairs);
            forwarded_target(&map).map(|t| (t.method.to_owned(), t.path.to_owned(), t.query.to_owned()))
        };
        let nginx = target(&[("X-Original-URI", "/hls/a.m3u8?token=t&x=1"), ("X-Original-Method", " HEAD ")]);
        assert_eq!(nginx.unwrap(), ("HEAD".into(), "/hls/a.m3u8".into(), "token=t&x=1".into()));
        let caddy = target(&[("X-Forwarded-Uri", "/hls/a.ts"), ("X-Forwarded-Method", "GET")]);
        assert_eq!(caddy.unwrap(), ("GET".into(), "/hls/a.ts".into(), String::new()));
        let absolute = target(&[("X-Original-URI", "http://h.test/hls/a.ts?x=1"), ("X-Original-Method", "POST")]);
        assert_eq!(absolute.unwrap().1, "/hls/a.ts");
        let bare_authority = target(&[("X-Forwarded-Uri", "https://h.test"), ("X-Forwarded-Method", "GET")]);
        assert_eq!(bare_authority.unwrap().1, "/");
    }

    /// Regression (review): Caddy and Traefik pass the client's headers on, so a client's
    /// own `X-Original-URI` (read first) chose what was decided; one byte that is not UTF-8
    /// in nginx's header made the client's `X-Forwarded-Uri` speak instead; without a
    /// method header the proxy's own GET was judged for a POST.
    #[test]
    fn refuses_what_a_client_could_have_named() {
        let status_and_error = |pairs: &[(&'static str, &str)]| match forwarded_target(&headers(pairs)) {
            Ok(t) => panic!("decided on {} {}", t.method, t.path),
            Err(reply) => {
                let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
                (reply.status, body["error"].as_str().unwrap_or("").to_owned())
            }
        };
        let ambiguous = (403, "ambiguous_request".to_owned());
        let caddy = [("X-Forwarded-Uri", "/hls/seg1.ts"), ("X-Forwarded-Method", "GET")];
        assert_eq!(status_and_error(&[caddy[0], caddy[1], ("X-Original-URI", "/posters/p.jpg")]), ambiguous);
        assert_eq!(status_and_error(&[caddy[0], caddy[1], ("X-Original-Method", "OPTIONS")]), ambiguous);
        let nginx = [("X-Original-URI", "/hls/seg1.ts"), ("X-Original-Method", "PUT")];
        assert_eq!(status_and_error(&[nginx[0], nginx[1], ("X-Forwarded-Method", "GET")]), ambiguous);
        assert_eq!(status_and_error(&[nginx[0], nginx[1], ("X-Original-URI", "/posters/p.jpg")]), ambiguous);
        assert_eq!(status_and_error(&[nginx[0], nginx[1], ("X-Original-Method", "GET")]), ambiguous);
        let mut not_utf8 = headers(&[nginx[1]]);
        not_utf8.insert(NGINX_URI, HeaderValue::from_bytes(b"/hls/seg1.ts?\xff").unwrap());
        let reply = forwarded_target(&not_utf8).err().map(|r| r.status);
        assert_eq!(reply, Some(403));
        assert_eq!(status_and_error(&[nginx[0]]).0, 500, "a URI without its method is misconfigured");
        assert_eq!(status_and_error(&[("X-Other", "/a")]), (500, "misconfigured".to_owned()));
    }

    /// Regression (review): a byte that is not UTF-8 dropped the client IP header, and a
    /// second line (a proxy's own) was never read: the client became the proxy.
    #[test]
    fn reads_every_line_of_a_header_and_never_drops_one() {
        let mut map = HeaderMap::new();
        map.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff, 198.51.100.7").unwrap());
        map.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let name = HeaderName::from_static("x-forwarded-for");
        assert_eq!(header_lines(&map, &name, ", ").as_deref(), Some("\u{fffd}, 198.51.100.7, 203.0.113.9"));
        map.append(COOKIE, HeaderValue::from_static("a=1"));
        map.append(COOKIE, HeaderValue::from_static("streamgate=t"));
        assert_eq!(header_lines(&map, &COOKIE, "; ").as_deref(), Some("a=1; streamgate=t"));
        assert_eq!(header_lines(&map, &REFERER, ", "), None);
    }
}
