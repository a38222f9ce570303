//! Viewer requests: proxy mode through [`Gateway::handle`], and forward-auth (`/auth`)
//! through [`Gateway::authorize`]. This module only reads the request, hands it to the core
//! and turns the outcome into a response, a metric and (for denials) a log line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming as RequestBody;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use streamgate_core::gateway::{Authorization, Gateway, Incoming, Outcome, Reply};
use streamgate_core::policy::ip::client_ip;
use streamgate_core::ReasonCode;

use crate::http::{self, header, set_header, Body};
use crate::log::{self, Denied};
use crate::metrics::{Decision, Route};
use crate::native_io::{IoError, NativeIo};
use crate::server::{unix_now, App};
use crate::state::State;

/// Where nginx `auth_request` configurations put the original request (the operator sets
/// them with `proxy_set_header`).
const NGINX_URI: &str = "X-Original-URI";
const NGINX_METHOD: &str = "X-Original-Method";
/// Where Caddy `forward_auth` and Traefik `ForwardAuth` put it.
const FORWARDED_URI: &str = "X-Forwarded-Uri";
const FORWARDED_METHOD: &str = "X-Forwarded-Method";

/// Proxy mode: the whole gate in front of the origin.
pub(crate) async fn proxy<S: State>(app: &Arc<App<S>>, req: Request<RequestBody>, peer: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let trusted = app.trusts(peer);
    let target = Target {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
    };
    let incoming = viewer_request(&parts.headers, target, peer, trusted, &app.gateway);
    let io = NativeIo::new(app, &parts.headers, Some(body));
    let (response, decision) = match app.gateway.handle(&io, &incoming, unix_now()).await {
        Ok(Outcome::Pass(upstream)) => (http::pass_through(upstream.0), Decision::Allowed),
        Ok(Outcome::Reply(reply)) => answer(app, Route::Proxy, &incoming, &reply),
        Err(error) => failure(app, Route::Proxy, &incoming, &error),
    };
    app.metrics.record(Route::Proxy, decision, started.elapsed());
    http::with_cors(response)
}

/// Forward-auth: decides on the request a proxy in front of the origin asks about, named
/// in the proxy's headers, which are believed only from `policy.trustedProxies`.
pub(crate) async fn forward_auth<S: State>(
    app: &Arc<App<S>>,
    req: Request<RequestBody>,
    peer: IpAddr,
) -> Response<Body> {
    let started = Instant::now();
    let (parts, _) = req.into_parts();
    let headers = &parts.headers;
    let target = if app.trusts(peer) {
        forwarded_target(headers, parts.method.as_str()).ok_or_else(|| {
            Reply::misconfigured(&format!(
                "the proxy sent neither {NGINX_URI} nor {FORWARDED_URI}: forward-auth needs the original request URI"
            ))
        })
    } else {
        Err(untrusted_peer(peer))
    };
    let (response, decision) = match target {
        Err(reply) => {
            let method = parts.method.as_str().to_owned();
            let asked =
                Incoming { method, path: parts.uri.path().to_owned(), peer_ip: Some(peer), ..Incoming::default() };
            answer(app, Route::Auth, &asked, &reply)
        }
        Ok(target) => {
            let incoming = viewer_request(headers, target, peer, true, &app.gateway);
            let io = NativeIo::new(app, headers, None);
            match app.gateway.authorize(&io, &incoming, unix_now()).await {
                Ok(Authorization::Allowed { subject, token_id }) => {
                    let mut response = http::response(200, http::empty());
                    let headers = response.headers_mut();
                    set_header(headers, "Cache-Control", "no-store");
                    if let Some(subject) = subject {
                        set_header(headers, "X-Streamgate-Subject", &subject);
                    }
                    if let Some(token_id) = token_id {
                        set_header(headers, "X-Streamgate-Token-Id", &token_id);
                    }
                    (response, Decision::Allowed)
                }
                Ok(Authorization::Denied(reply)) => answer(app, Route::Auth, &incoming, &reply),
                Err(error) => failure(app, Route::Auth, &incoming, &error),
            }
        }
    };
    app.metrics.record(Route::Auth, decision, started.elapsed());
    http::with_cors(response)
}

/// The request line the gate decides on.
struct Target {
    method: String,
    /// Still percent-encoded: the core decodes it once.
    path: String,
    query: String,
}

/// The original request a proxy names: its URI (`X-Original-URI`, else `X-Forwarded-Uri`)
/// and method (`X-Original-Method`, else `X-Forwarded-Method`, else the method the proxy
/// used to ask). `None` when no URI is named.
fn forwarded_target(headers: &HeaderMap, own_method: &str) -> Option<Target> {
    let uri = header(headers, NGINX_URI).or_else(|| header(headers, FORWARDED_URI))?;
    let method = header(headers, NGINX_METHOD)
        .or_else(|| header(headers, FORWARDED_METHOD))
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|| own_method.to_owned());
    // A request line in absolute form (`GET http://host/path`) names its path after the
    // authority.
    let origin_form = match uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/").to_owned(),
        None => uri,
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form.as_str(), ""));
    Some(Target { method, path: path.to_owned(), query: query.to_owned() })
}

/// The request as the core reads it. Forwarded scheme and host are believed only from a
/// trusted peer; the client IP header goes to the core, which does the same.
fn viewer_request(headers: &HeaderMap, target: Target, peer: IpAddr, trusted: bool, gateway: &Gateway) -> Incoming {
    let forwarded = |name: &str| {
        trusted.then(|| header(headers, name)).flatten().and_then(|v| v.split(',').next().map(|v| v.trim().to_owned()))
    };
    let scheme = forwarded("X-Forwarded-Proto").filter(|p| p == "https").unwrap_or_else(|| "http".to_owned());
    let host = forwarded("X-Forwarded-Host").or_else(|| header(headers, "Host")).unwrap_or_default();
    Incoming {
        method: target.method,
        path: target.path,
        query: target.query,
        base: format!("{scheme}://{host}"),
        peer_ip: Some(peer),
        forwarded_for: header(headers, &gateway.deployment.client_ip_header),
        referer: header(headers, "Referer"),
        user_agent: header(headers, "User-Agent"),
        cookie: header(headers, "Cookie"),
        authorization: header(headers, "Authorization"),
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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            set_header(&mut map, name, value);
        }
        map
    }

    #[test]
    fn reads_the_original_request_from_nginx_caddy_and_traefik_headers() {
        let nginx =
            forwarded_target(&headers(&[(NGINX_URI, "/hls/a.m3u8?token=t&x=1"), (NGINX_METHOD, "HEAD")]), "GET")
                .unwrap();
        assert_eq!(
            (nginx.method.as_str(), nginx.path.as_str(), nginx.query.as_str()),
            ("HEAD", "/hls/a.m3u8", "token=t&x=1")
        );
        let caddy =
            forwarded_target(&headers(&[(FORWARDED_URI, "/hls/a.ts"), (FORWARDED_METHOD, "GET")]), "GET").unwrap();
        assert_eq!((caddy.path.as_str(), caddy.query.as_str()), ("/hls/a.ts", ""));
        let absolute = forwarded_target(&headers(&[(NGINX_URI, "http://h.test/hls/a.ts?x=1")]), "POST").unwrap();
        assert_eq!((absolute.method.as_str(), absolute.path.as_str()), ("POST", "/hls/a.ts"));
        assert!(forwarded_target(&headers(&[("X-Other", "/a")]), "GET").is_none());
    }
}
