//! Viewer requests: the core's request flow ([`Gateway::handle`]) over KV, the session
//! hubs and `fetch`. This module only reads the request, implements [`Io`] and turns the
//! outcome into a response.
//!
//! It works on the runtime's own `Request`, `Headers` and `Response` (web-sys), and makes the
//! calls a segment needs in batches ([`boundary`]): workers-rs's wrappers read the URL,
//! headers, `request.cf` and status of every request and response up front, each a crossing
//! of the JS/wasm boundary.

use std::cell::OnceCell;
use std::rc::Rc;

use streamgate_core::gateway::{
    Gateway, Geo, Incoming, Io, OriginRequest, Outcome, Reply, Tallies, Upstream, CORS_HEADERS,
};
use streamgate_core::revocation::Blocks;
use streamgate_core::sessions::{Heartbeat, Verdict};
use worker::js_sys::Uint8Array;
use worker::web_sys::{self, Headers};
use worker::worker_sys::ext::RequestExt;
use worker::{Cf, Context, Env, Response, Result};

use crate::settings::Settings;
use crate::{boundary, now_seconds, revocations, session_hub};

/// Sets the CORS headers every response of the gate carries.
fn with_cors(headers: &Headers) -> Result<()> {
    for (name, value) in CORS_HEADERS {
        headers.set(name, value)?;
    }
    Ok(())
}

/// A core reply as a response.
fn respond(reply: Reply) -> Result<web_sys::Response> {
    let headers = Headers::new()?;
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    with_cors(&headers)?;
    let init = web_sys::ResponseInit::new();
    init.set_status(reply.status);
    init.set_headers(&headers);
    // Bytes, not a string: a string body would add a Content-Type the reply did not name.
    let body = (!reply.body.is_empty()).then(|| Uint8Array::from(reply.body.as_bytes()));
    Ok(web_sys::Response::new_with_opt_buffer_source_and_init(body.as_ref().map(AsRef::as_ref), &init)?)
}

/// Fills in the headers the core reads.
fn read_headers(incoming: &mut Incoming, headers: &Headers, gateway: &Gateway) -> Result<()> {
    let client_ip_header = gateway.deployment.client_ip_header.as_str();
    let names = ["CF-Connecting-IP", client_ip_header, "Referer", "User-Agent", "Cookie", "Authorization"];
    let [peer, forwarded_for, referer, user_agent, cookie, authorization] = boundary::header_values(headers, names)?;
    // Set by Cloudflare itself: clients cannot forge it.
    incoming.peer_ip = peer.and_then(|v| v.trim().parse().ok());
    // Believed by the core only when the peer is one of policy.trustedProxies.
    incoming.forwarded_for = forwarded_for;
    incoming.referer = referer;
    incoming.user_agent = user_agent;
    incoming.cookie = cookie;
    incoming.authorization = authorization;
    Ok(())
}

/// Handles one viewer request; `incoming` holds its method, base, path and query.
pub async fn handle(
    req: web_sys::Request,
    mut incoming: Incoming,
    env: &Env,
    ctx: &Context,
    settings: &Settings,
) -> Result<web_sys::Response> {
    let headers = req.headers();
    read_headers(&mut incoming, &headers, &settings.gateway)?;
    let io = EdgeIo { env, ctx, req: &req, headers: &headers, geo: OnceCell::new() };
    match settings.gateway.handle(&io, &incoming, now_seconds()).await? {
        Outcome::Reply(reply) => respond(reply),
        Outcome::Pass(upstream) => boundary::pass_on(&upstream.0, &CORS_HEADERS),
    }
}

/// The origin's response.
struct EdgeResponse(web_sys::Response);

impl Upstream for EdgeResponse {
    fn status(&self) -> u16 {
        self.0.status()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).ok().flatten()
    }
}

/// KV, the session hubs and `fetch`, for one request.
struct EdgeIo<'a> {
    env: &'a Env,
    ctx: &'a Context,
    req: &'a web_sys::Request,
    headers: &'a Headers,
    /// `request.cf`, read on first use.
    geo: OnceCell<Geo>,
}

impl Io for EdgeIo<'_> {
    type Response = EdgeResponse;
    type Blocks = Rc<Blocks>;
    type Error = worker::Error;

    async fn revoked(&self, ids: &[String], now: i64) -> Result<Vec<String>> {
        revocations::lookup(self.env, ids, now).await
    }

    async fn blocks(&self, now: i64) -> Result<Rc<Blocks>> {
        revocations::blocks(self.env, now).await
    }

    /// Fetches with the request's (checked) method and the headers a player needs (never its
    /// cookies or credentials); a publish request's body is streamed through. Segments are
    /// cached whatever their extension; the origin URL carries no credential, so it is a
    /// cache key every viewer shares (a custom `cacheKey` is Enterprise-only).
    async fn fetch(&self, request: OriginRequest) -> Result<EdgeResponse> {
        let body = if request.forward_body { self.req.body() } else { None };
        let (url, method) = (&request.url, &request.method);
        boundary::fetch(url, method, self.headers, request.viewer_headers, body, request.cacheable)
            .await
            .map(EdgeResponse)
    }

    async fn text(&self, response: EdgeResponse) -> Result<String> {
        Response::from(response.0).text().await
    }

    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict> {
        session_hub::heartbeat(self.env, key, beat).await
    }

    fn heartbeat_in_background(&self, key: String, beat: Heartbeat) {
        let env = self.env.clone();
        self.ctx.wait_until(async move {
            // A background beat only keeps the session counted (a denial waits for the next
            // playlist reload); bytes it left without a record go back into the tally.
            let answer = session_hub::heartbeat(&env, &key, &beat).await;
            session_hub::with_tallies(|t| t.settle(&beat, &answer));
        });
    }

    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T {
        session_hub::with_tallies(update)
    }

    fn geo(&self) -> Geo {
        self.geo
            .get_or_init(|| match self.req.cf().map(Cf::from) {
                Some(cf) => Geo { country: cf.country(), asn: cf.asn(), as_organization: cf.as_organization() },
                None => Geo::default(),
            })
            .clone()
    }
}
