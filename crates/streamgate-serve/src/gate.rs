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

use crate::http::{self, header, set_owned, Body};
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
    let target = if app.trusts(peer) {
        forwarded_target(headers, parts.method.as_str()).ok_or_else(|| {
            Reply::misconfigured(
                "the proxy sent neither X-Original-URI nor X-Forwarded-Uri: forward-auth needs the original request URI",
            )
        })
    } else {
        Err(untrusted_peer(peer))
    };
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

/// The original request a proxy names: its URI (`X-Original-URI`, else `X-Forwarded-Uri`)
/// and method (`X-Original-Method`, else `X-Forwarded-Method`, else the method the proxy
/// used to ask). `None` when no URI is named.
fn forwarded_target<'a>(headers: &'a HeaderMap, own_method: &'a str) -> Option<Target<'a>> {
    let uri = header(headers, NGINX_URI).or_else(|| header(headers, FORWARDED_URI))?;
    let method =
        header(headers, NGINX_METHOD).or_else(|| header(headers, FORWARDED_METHOD)).map_or(own_method, str::trim);
    // A request line in absolute form (`GET http://host/path`) names its path after the
    // authority.
    let origin_form = match uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => uri,
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    Some(Target { method, path, query })
}

/// The request as the core reads it. Forwarded scheme and host are believed only from a
/// trusted peer; the client IP header goes to the core, which does the same.
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
    let owned = |name: HeaderName| header(headers, name).map(str::to_owned);
    Incoming {
        method: target.method.to_owned(),
        path: target.path.to_owned(),
        query: target.query.to_owned(),
        base: [scheme, "://", host].concat(),
        peer_ip: Some(peer),
        forwarded_for: app.client_ip_header.as_ref().and_then(|name| header(headers, name)).map(str::to_owned),
        referer: owned(REFERER),
        user_agent: owned(USER_AGENT),
        cookie: owned(COOKIE),
        authorization: owned(AUTHORIZATION),
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

/// The origin or the state store failed: 502 or 503, never a decision.
fn failure<S: State>(app: &App<S>, route: Route, incoming: &Incoming, error: &IoError) -> (Response<Body>, Decision) {
    tracing::warn!(target: "streamgate::gate", %error, path = incoming_path(incoming), "request failed");
    let reply = match error {
        IoError::State(error) => Reply::store_unavailable(&error.to_string()),
        IoError::Origin(why) => error_reply(502, "origin_unavailable", why),
    };
    answer(app, route, incoming, &reply)
}

fn incoming_path(incoming: &Incoming) -> String {
    streamgate_core::gateway::transport::path_credential(&incoming.path)
        .map_or_else(|| incoming.path.clone(), |(_, rest)| rest)
}

/// 403 for a peer outside `policy.trustedProxies` asking for forward-auth: its forwarded
/// headers could name any request, so none is decided. Not a viewer's denial (no reason
/// code): a proxy that is not listed, or a client that reached `/auth` directly.
fn untrusted_peer(peer: IpAddr) -> Reply {
    let message = format!(
        "{peer} is not in policy.trustedProxies: forward-auth believes the request a proxy names only from trusted proxies"
    );
    error_reply(403, "untrusted_proxy", &message)
}

/// A reply of the gate's own that is no viewer's denial, in the worker's error shape.
fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "error": code, "message": message });
    let headers = vec![("Content-Type", "application/json".to_owned()), ("Cache-Control", "no-store".to_owned())];
    Reply { status, headers, body: body.to_string(), token_id: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::set_header;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            set_header(&mut map, name, value);
        }
        map
    }

    #[test]
    fn reads_the_original_request_from_nginx_caddy_and_traefik_headers() {
        let nginx = headers(&[("X-Original-URI", "/hls/a.m3u8?token=t&x=1"), ("X-Original-Method", " HEAD ")]);
        let nginx = forwarded_target(&nginx, "GET").unwrap();
        assert_eq!((nginx.method, nginx.path, nginx.query), ("HEAD", "/hls/a.m3u8", "token=t&x=1"));
        let caddy = headers(&[("X-Forwarded-Uri", "/hls/a.ts"), ("X-Forwarded-Method", "GET")]);
        let caddy = forwarded_target(&caddy, "GET").unwrap();
        assert_eq!((caddy.path, caddy.query), ("/hls/a.ts", ""));
        let absolute = headers(&[("X-Original-URI", "http://h.test/hls/a.ts?x=1")]);
        let absolute = forwarded_target(&absolute, "POST").unwrap();
        assert_eq!((absolute.method, absolute.path), ("POST", "/hls/a.ts"));
        let bare_authority = headers(&[("X-Forwarded-Uri", "https://h.test"), ("X-Original-URI", "/first")]);
        assert_eq!(forwarded_target(&bare_authority, "GET").unwrap().path, "/first", "nginx's header first");
        let bare_authority = headers(&[("X-Forwarded-Uri", "https://h.test")]);
        assert_eq!(forwarded_target(&bare_authority, "GET").unwrap().path, "/");
        assert!(forwarded_target(&headers(&[("X-Other", "/a")]), "GET").is_none());
    }
}
