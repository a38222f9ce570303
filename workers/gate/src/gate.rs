//! Viewer requests: the core's request flow ([`Gateway::handle`]) over KV, the session
//! hubs and `fetch`. This module only reads the request, implements [`Io`] and turns the
//! outcome into a response.

use std::rc::Rc;

use streamgate_core::gateway::{
    Gateway, Incoming, Io, OriginRequest, Outcome, Reply, Tallies, Upstream, CORS_HEADERS, FORWARDED_HEADERS,
};
use streamgate_core::revocation::Blocks;
use streamgate_core::sessions::{Heartbeat, Verdict};
use worker::wasm_bindgen::JsValue;
use worker::{CfProperties, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::settings::Settings;
use crate::{now_seconds, revocations, session_hub};

/// A core reply as a workers-rs response.
fn respond(reply: Reply) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    let body = if reply.body.is_empty() { Response::empty()? } else { Response::ok(reply.body)? };
    Ok(body.with_status(reply.status).with_headers(headers))
}

fn with_cors(response: Response) -> Result<Response> {
    let headers = response.headers().clone();
    for (name, value) in CORS_HEADERS {
        headers.set(name, value)?;
    }
    Ok(response.with_headers(headers))
}

/// The request as the core reads it: only the headers it needs cross the JS boundary.
fn incoming(req: &Request, gateway: &Gateway) -> Result<Incoming> {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let url = req.url()?;
    let cf = req.cf();
    Ok(Incoming {
        // The method as received: workers-rs maps methods it does not know (PROPFIND, MKCOL …)
        // to GET, so its enum cannot be trusted.
        method: req.inner().method(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or("").to_owned(),
        base: url.origin().ascii_serialization(),
        // Set by Cloudflare itself: clients cannot forge it.
        peer_ip: header("CF-Connecting-IP").and_then(|v| v.trim().parse().ok()),
        // Believed by the core only when the peer is one of policy.trustedProxies.
        forwarded_for: header(&gateway.deployment.client_ip_header),
        referer: header("Referer"),
        user_agent: header("User-Agent"),
        cookie: header("Cookie"),
        authorization: header("Authorization"),
        country: cf.and_then(|c| c.country()),
        asn: cf.and_then(|c| c.asn()),
        as_organization: cf.and_then(|c| c.as_organization()),
    })
}

/// Handles one viewer request.
pub async fn handle(req: Request, env: &Env, ctx: &Context, settings: &Settings) -> Result<Response> {
    let incoming = incoming(&req, &settings.gateway)?;
    let io = EdgeIo { env, ctx, req: &req };
    let response = match settings.gateway.handle(&io, &incoming, now_seconds()).await? {
        Outcome::Reply(reply) => respond(reply)?,
        Outcome::Pass(upstream) => upstream.0,
    };
    with_cors(response)
}

/// The origin's response.
struct EdgeResponse(Response);

impl Upstream for EdgeResponse {
    fn status(&self) -> u16 {
        self.0.status_code()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.0.headers().get(name).ok().flatten()
    }
}

/// KV, the session hubs and `fetch`, for one request.
struct EdgeIo<'a> {
    env: &'a Env,
    ctx: &'a Context,
    req: &'a Request,
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
        let mut init = RequestInit::new();
        init.with_method(Method::from(request.method));
        let forwarded = Headers::new();
        for name in FORWARDED_HEADERS {
            if let Some(value) = self.req.headers().get(name)? {
                forwarded.set(name, &value)?;
            }
        }
        init.with_headers(forwarded);
        if request.forward_body {
            init.with_body(self.req.inner().body().map(JsValue::from));
        } else if request.cacheable {
            init.with_cf_properties(CfProperties { cache_everything: Some(true), ..CfProperties::default() });
        }
        Fetch::Request(Request::new_with_init(&request.url, &init)?).send().await.map(EdgeResponse)
    }

    async fn text(&self, mut response: EdgeResponse) -> Result<String> {
        response.0.text().await
    }

    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict> {
        session_hub::heartbeat(self.env, key, beat).await
    }

    fn heartbeat_in_background(&self, key: String, beat: Heartbeat) {
        let env = self.env.clone();
        self.ctx.wait_until(async move {
            // A background beat only keeps the session counted; its verdict waits for the
            // next playlist reload.
            let _ = session_hub::heartbeat(&env, &key, &beat).await;
        });
    }

    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T {
        session_hub::with_tallies(update)
    }
}
