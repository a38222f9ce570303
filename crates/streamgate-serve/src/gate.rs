//! Viewer requests: proxy mode through [`Gateway::handle`], and forward-auth (`/auth`)
//! through [`Gateway::authorize`]. This module only reads the request, hands it to the core
//! and turns the outcome into a response, a metric and (for denials) a log line.
//!
//! [`Gateway::handle`]: streamgate_core::gateway::Gateway::handle
//! [`Gateway::authorize`]: streamgate_core::gateway::Gateway::authorize

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming as RequestBody;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, COOKIE, LOCATION, REFERER, USER_AGENT,
};
use hyper::{Request, Response};
use streamgate_core::gateway::forward::{named_request, NamingHeader};
use streamgate_core::gateway::{Authorization, Incoming, Outcome, Reply};
use streamgate_core::policy::ip::client_ip;
use streamgate_core::ReasonCode;

use crate::http::{self, header_lines, set_owned, Body};
use crate::log::{self, Denied};
use crate::metrics::{Decision, Route};
use crate::native_io::{IoError, NativeIo};
use crate::server::{unix_now, App};
use crate::state::State;

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
    let incoming =
        viewer_request(app, &Read::new(app.client_ip_header.as_ref(), &parts.headers), &target, peer, trusted);
    let io = NativeIo::new(app, &parts.headers, Some(body));
    let (response, decision) = match app.gateway.handle(&io, &incoming, unix_now()).await {
        Ok(Outcome::Pass(upstream)) => {
            let mut response = http::pass_through(upstream.0, app.origin.timeout);
            viewer_location(app, &mut response);
            (response, Decision::Allowed)
        }
        Ok(Outcome::Reply(reply)) => answer(app, Route::Proxy, &incoming, &reply),
        Err(error) => failure(app, Route::Proxy, &incoming, &error),
    };
    app.metrics.record(Route::Proxy, decision, started.elapsed());
    http::with_cors(response)
}

/// An origin's redirect to its own address goes to the viewer as the gate's
/// ([`Gateway::viewer_location`]).
///
/// [`Gateway::viewer_location`]: streamgate_core::gateway::Gateway::viewer_location
fn viewer_location<S: State>(app: &App<S>, response: &mut Response<Body>) {
    if !response.status().is_redirection() {
        return;
    }
    let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok());
    if let Some(rewritten) = location.and_then(|l| app.gateway.viewer_location(l)) {
        set_owned(response.headers_mut(), LOCATION, rewritten);
    }
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
    let read = Read::new(app.client_ip_header.as_ref(), &parts.headers);
    let target = if app.trusts(peer) { forwarded_target(&read) } else { Err(untrusted_peer(peer)) };
    match target {
        Ok(target) => AuthRequest { started, incoming: viewer_request(app, &read, &target, peer, true), refused: None },
        Err(reply) => {
            let method = parts.method.as_str().to_owned();
            let incoming =
                Incoming { method, path: parts.uri.path().to_owned(), peer_ip: Some(peer), ..Incoming::default() };
            AuthRequest { started, incoming, refused: Some(reply) }
        }
    }
}

/// Forward-auth: decides on the request a proxy in front of the origin asks about.
pub(crate) async fn forward_auth<S: State>(app: Arc<App<S>>, asked: AuthRequest) -> Result<Response<Body>, Infallible> {
    let app = &app;
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
    Ok(if response.status().is_success() { response } else { http::with_cors(response) })
}

/// The request line the gate decides on, borrowed from the request.
struct Target<'a> {
    method: &'a str,
    /// Still percent-encoded: the core decodes it once.
    path: &'a str,
    query: &'a str,
}

/// A header the gate reads.
#[derive(Clone, Copy)]
enum Wanted {
    /// Where nginx `auth_request` configurations put the original request (the operator
    /// sets them with `proxy_set_header`).
    NginxUri,
    NginxMethod,
    /// Where Caddy `forward_auth` and Traefik `ForwardAuth` put it.
    ForwardedUri,
    ForwardedMethod,
    ForwardedProto,
    ForwardedHost,
    Host,
    Referer,
    UserAgent,
    Cookie,
    Authorization,
    /// The operator's client IP header (`clientIpHeader`).
    ClientIp,
}

/// How many [`Wanted`] headers there are.
const WANTED: usize = Wanted::ClientIp as usize + 1;

impl Wanted {
    /// The header `name` is, besides the client IP header.
    fn named(name: &HeaderName) -> Option<Wanted> {
        Some(match name.as_str() {
            "x-original-uri" => Wanted::NginxUri,
            "x-original-method" => Wanted::NginxMethod,
            "x-forwarded-uri" => Wanted::ForwardedUri,
            "x-forwarded-method" => Wanted::ForwardedMethod,
            "x-forwarded-proto" => Wanted::ForwardedProto,
            "x-forwarded-host" => Wanted::ForwardedHost,
            "host" => Wanted::Host,
            "referer" => Wanted::Referer,
            "user-agent" => Wanted::UserAgent,
            "cookie" => Wanted::Cookie,
            "authorization" => Wanted::Authorization,
            _ => return None,
        })
    }
}

/// The headers the gate reads, found in one pass over a request's headers (each lookup
/// by name hashes the name, and a request was looked up a dozen times). Each keeps its
/// first two lines, enough to read a single line and to tell one line from several; a
/// header of several lines is read whole from the map.
struct Read<'a> {
    headers: &'a HeaderMap,
    lines: [[Option<&'a HeaderValue>; 2]; WANTED],
}

impl<'a> Read<'a> {
    /// Reads `headers`, with the operator's client IP header named `client_ip`.
    fn new(client_ip: Option<&HeaderName>, headers: &'a HeaderMap) -> Read<'a> {
        let mut read = Read { headers, lines: [[None; 2]; WANTED] };
        for (name, value) in headers {
            let client_ip = client_ip.filter(|wanted| *wanted == name).map(|_| Wanted::ClientIp);
            for wanted in client_ip.into_iter().chain(Wanted::named(name)) {
                if let Some(free) = read.lines.get_mut(wanted as usize).and_then(|l| l.iter_mut().find(|l| l.is_none()))
                {
                    *free = Some(value);
                }
            }
        }
        read
    }

    /// The first two lines of `wanted`, as bytes.
    fn lines(&self, wanted: Wanted) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.lines.get(wanted as usize).into_iter().flatten().flatten().map(|value| value.as_bytes())
    }

    /// The first line of `wanted`, if it is text.
    fn first(&self, wanted: Wanted) -> Option<&'a str> {
        self.lines.get(wanted as usize).and_then(|[first, _]| *first).and_then(|value| value.to_str().ok())
    }

    /// Every line of `wanted` (named `name`), as [`header_lines`] reads them.
    fn whole(&self, wanted: Wanted, name: &HeaderName, separator: &str) -> Option<String> {
        match self.lines.get(wanted as usize)? {
            [Some(only), None] => Some(String::from_utf8_lossy(only.as_bytes()).into_owned()),
            [None, _] => None,
            [Some(_), Some(_)] => header_lines(self.headers, name, separator),
        }
    }
}

/// The original request a proxy names in its headers, by the core's rule
/// ([`named_request`]).
fn forwarded_target<'a>(read: &Read<'a>) -> Result<Target<'a>, Reply> {
    let wanted = |header| match header {
        NamingHeader::OriginalUri => Wanted::NginxUri,
        NamingHeader::OriginalMethod => Wanted::NginxMethod,
        NamingHeader::ForwardedUri => Wanted::ForwardedUri,
        NamingHeader::ForwardedMethod => Wanted::ForwardedMethod,
    };
    let named = named_request(|header| read.lines(wanted(header)))?;
    Ok(Target { method: named.method, path: named.path, query: named.query })
}

/// The request as the core reads it. Forwarded scheme and host are believed only from a
/// trusted peer; the client IP header goes to the core, which does the same. Headers the
/// decision reads are read whole: every line (a proxy may add its own `X-Forwarded-For`
/// line after the client's), and bytes that are not UTF-8 replaced, never dropped (a
/// dropped client IP header would make the proxy the client).
fn viewer_request<S: State>(
    app: &App<S>,
    read: &Read<'_>,
    target: &Target<'_>,
    peer: IpAddr,
    trusted: bool,
) -> Incoming {
    let forwarded =
        |wanted| trusted.then(|| read.first(wanted)).flatten().and_then(|v| v.split(',').next()).map(str::trim);
    let scheme = forwarded(Wanted::ForwardedProto).filter(|p| *p == "https").unwrap_or("http");
    let host = forwarded(Wanted::ForwardedHost).or_else(|| read.first(Wanted::Host)).unwrap_or_default();
    let list = |wanted, name: &HeaderName| read.whole(wanted, name, ", ");
    Incoming {
        method: target.method.to_owned(),
        path: target.path.to_owned(),
        query: target.query.to_owned(),
        base: [scheme, "://", host].concat(),
        peer_ip: Some(peer),
        forwarded_for: app.client_ip_header.as_ref().and_then(|name| list(Wanted::ClientIp, name)),
        referer: list(Wanted::Referer, &REFERER),
        user_agent: list(Wanted::UserAgent, &USER_AGENT),
        cookie: read.whole(Wanted::Cookie, &COOKIE, "; "),
        authorization: list(Wanted::Authorization, &AUTHORIZATION),
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

    /// Each of the core's naming headers is read from its own hyper header (the rule itself
    /// is tested in the core).
    #[test]
    fn the_naming_headers_reach_the_core_rule() {
        let target = |pairs: &[(&'static str, &str)]| {
            forwarded_target(&Read::new(None, &headers(pairs)))
                .map(|t| (t.method.to_owned(), t.path.to_owned()))
                .map_err(|r| r.status)
        };
        let nginx = target(&[("X-Original-URI", "/a.ts?x=1"), ("X-Original-Method", "HEAD")]);
        assert_eq!(nginx, Ok(("HEAD".to_owned(), "/a.ts".to_owned())));
        let caddy = target(&[("X-Forwarded-Uri", "/b.ts"), ("X-Forwarded-Method", "POST")]);
        assert_eq!(caddy, Ok(("POST".to_owned(), "/b.ts".to_owned())));
        assert_eq!(target(&[("X-Forwarded-Uri", "/b.ts"), ("X-Original-Method", "GET")]), Err(403));
        assert_eq!(target(&[("X-Original-URI", "/a.ts"), ("X-Forwarded-Method", "GET")]), Err(403));
        assert_eq!(
            target(&[("X-Original-URI", "/a.ts"), ("X-Original-URI", "/b.ts"), ("X-Original-Method", "GET")]),
            Err(403)
        );
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
        // Read in one pass, the same.
        let read = Read::new(Some(&name), &map);
        assert_eq!(read.whole(Wanted::ClientIp, &name, ", ").as_deref(), Some("\u{fffd}, 198.51.100.7, 203.0.113.9"));
        assert_eq!(read.whole(Wanted::Cookie, &COOKIE, "; ").as_deref(), Some("a=1; streamgate=t"));
        assert_eq!(read.whole(Wanted::Referer, &REFERER, ", "), None);
    }

    /// The one-pass read finds each header the gate reads, by any case of its name, keeps
    /// its lines in order, and tells one line from several; a client IP header that is
    /// also a header of its own is read as both.
    #[test]
    fn one_pass_reads_what_lookups_by_name_read() {
        let map = headers(&[
            ("Host", "gate.example"),
            ("REFERER", "https://a.example/"),
            ("x-original-uri", "/a.ts"),
            ("User-Agent", "one"),
            ("X-Original-URI", "/b.ts"),
            ("x-original-uri", "/c.ts"),
            ("X-Forwarded-Host", "cdn.example"),
        ]);
        let client_ip = HeaderName::from_static("x-forwarded-host");
        let read = Read::new(Some(&client_ip), &map);
        assert_eq!(read.first(Wanted::Host), Some("gate.example"));
        assert_eq!(read.whole(Wanted::Referer, &REFERER, ", ").as_deref(), Some("https://a.example/"));
        let uris: Vec<&[u8]> = read.lines(Wanted::NginxUri).collect();
        assert_eq!(uris, [b"/a.ts".as_slice(), b"/b.ts"], "the first two lines, in order");
        let name = HeaderName::from_static("x-original-uri");
        assert_eq!(read.whole(Wanted::NginxUri, &name, ", ").as_deref(), Some("/a.ts, /b.ts, /c.ts"));
        assert_eq!(read.first(Wanted::ForwardedHost), Some("cdn.example"));
        assert_eq!(read.first(Wanted::ClientIp), Some("cdn.example"));
        assert_eq!(read.first(Wanted::Cookie), None);
        assert_eq!(read.lines(Wanted::ForwardedUri).count(), 0);
    }
}
