//! The request flow: verify, look up revocations and the block list, apply the policy,
//! count sessions on playlist fetches, fetch from the origin without the credential,
//! and rewrite manifests so every follow-up request carries a session credential.

use streamgate_core::claims::Purpose;
use streamgate_core::detection::UsageEvent;
use streamgate_core::manifests::{dash, hls, manifest_kind, presentation_seconds, ManifestKind, Propagation};
use streamgate_core::policy::ip::network_of;
use streamgate_core::policy::path::origin_url;
use streamgate_core::policy::{check_blocklist, check_referrer_blocklist};
use streamgate_core::schemes::session::{lift_expiry_for_renewal, MAX_PRESENTATION_SECONDS};
use streamgate_core::sessions::{agent_of, reconnect_id, BeatKind, Heartbeat, TokenShape, Viewer};
use streamgate_core::{Decision, Denial, Grant, Hooks, RequestContext, RequestFacts};
use worker::wasm_bindgen::JsValue;
use worker::{CfProperties, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::session_hub;
use crate::settings::{OnStoreError, Settings};
use crate::{now_seconds, revocations, transport};

/// The denial as the client sees it: status, `X-Streamgate-Reason` and a small JSON body.
pub fn deny(denial: &Denial) -> Result<Response> {
    let reason = denial.reason();
    let body = serde_json::json!({ "error": reason.as_str(), "message": denial.to_string() });
    let headers = Headers::new();
    headers.set("X-Streamgate-Reason", reason.as_str())?;
    headers.set("Cache-Control", "no-store")?;
    if reason.http_status() == 401 {
        headers.set("WWW-Authenticate", "Bearer realm=\"streamgate\"")?;
    }
    Ok(Response::from_json(&body)?.with_status(reason.http_status()).with_headers(headers))
}

fn request_context(req: &Request, path: &str, method: &str, settings: &Settings) -> RequestContext {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let cf = req.cf();
    RequestContext {
        path: path.to_owned(),
        // Set by Cloudflare itself: clients cannot forge it.
        peer_ip: header("CF-Connecting-IP").and_then(|v| v.trim().parse().ok()),
        // Believed by the core only when the peer is one of policy.trustedProxies.
        forwarded_for: match &settings.client_ip_header {
            Some(name) => header(name),
            None => header("X-Forwarded-For"),
        },
        referer: header("Referer"),
        user_agent: header("User-Agent"),
        country: cf.and_then(|c| c.country()),
        asn: cf.and_then(|c| c.asn()),
        purpose: Purpose::Play,
        method: Some(method.to_owned()),
        session_id: None,
        starts_session: false,
    }
}

/// Adds CORS headers, so web players on other origins can read responses (and a denial's
/// reason). Credentials travel in URLs, never in cookies across origins, so `*` is safe.
fn with_cors(response: Response) -> Result<Response> {
    let headers = response.headers().clone();
    headers.set("Access-Control-Allow-Origin", "*")?;
    headers.set("Access-Control-Expose-Headers", "X-Streamgate-Reason, Content-Length, Content-Range")?;
    Ok(response.with_headers(headers))
}

/// Handles one viewer request.
pub async fn handle(req: Request, env: &Env, ctx: &Context, settings: &Settings) -> Result<Response> {
    if req.method() == Method::Options {
        let headers = Headers::new();
        headers.set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")?;
        headers.set("Access-Control-Allow-Headers", "Authorization, Range")?;
        headers.set("Access-Control-Max-Age", "86400")?;
        return with_cors(Response::empty()?.with_status(204).with_headers(headers));
    }
    with_cors(serve(req, env, ctx, settings).await?)
}

async fn serve(req: Request, env: &Env, wctx: &Context, settings: &Settings) -> Result<Response> {
    // The method as received: workers-rs maps methods it does not know (PROPFIND, MKCOL …)
    // to GET, so its enum cannot be trusted. The core refuses all but GET, HEAD, POST, PUT.
    let method = req.inner().method();
    let url = req.url()?;
    let query = url.query().unwrap_or("").to_owned();
    let (in_path, path) = match transport::path_credential(url.path()) {
        Some((credential, rest)) => (Some(credential), rest),
        None => (None, url.path().to_owned()),
    };
    let ctx = request_context(&req, &path, &method, settings);
    let now = now_seconds();
    if let Some(facts) = settings.gate.public(&ctx) {
        let blocks = revocations::blocks(env, now).await?;
        let checks = check_blocklist(facts.client_ip, &blocks.lookup, now)
            .and_then(|()| check_referrer_blocklist(ctx.referer.as_deref(), &blocks.referrers));
        if let Err(denial) = checks {
            return deny(&denial);
        }
        return fetch_origin(&req, &method, settings, &facts.path, &query).await;
    }
    let credential = transport::credential(&req, &query).or(in_path);

    let (grant, facts) = match settings.gate.verify(credential.as_ref(), &ctx) {
        Ok(verified) => verified,
        Err(denial) => return deny(&denial),
    };
    // Players reload a playlist by the URL they were first given, so a live stream keeps
    // presenting the credential issued with its master playlist. Past its expiry it still
    // names its session: the reload is renewed if the session store confirms the session
    // is active and the same viewer. Segments are never renewed; each playlist hands out
    // fresh credentials.
    let lapsed_at = grant.validity.expires_at;
    let renewal = manifest_kind(None, &facts.path).and_then(|_| lift_expiry_for_renewal(&grant, now));
    let renewing = renewal.is_some();
    let grant = renewal.unwrap_or(grant);
    let revoked = revocations::lookup(env, &grant.revocation_ids(), now).await?;
    let blocks = revocations::blocks(env, now).await?;
    if let Err(denial) = check_referrer_blocklist(ctx.referer.as_deref(), &blocks.referrers) {
        return deny(&denial);
    }
    let mut hooks = Hooks { revocations: &revoked, blocklist: &blocks.lookup, sessions: None };
    let (grant, facts) = match settings.gate.evaluate(grant, &ctx, facts, now, &mut hooks) {
        Decision::Allow { grant, facts } => (grant, facts),
        Decision::Deny { denial, .. } => return deny(&denial),
    };

    let mut upstream = fetch_origin(&req, &method, settings, &facts.path, &query).await?;
    let content_type = upstream.headers().get("Content-Type")?;
    let kind = manifest_kind(content_type.as_deref(), &facts.path);
    let (Some(kind), true) = (kind, upstream.status_code() == 200) else {
        if renewing {
            // Only a playlist renews a lapsed credential.
            return deny(&Denial::Expired { expires_at: lapsed_at.unwrap_or(now), now, leeway: 0 });
        }
        // Media served under a session credential counts toward the session's usage record,
        // and keeps a session that reloads no playlist (a VOD) counted, in the background.
        if let (Some(sid), 200 | 206, "GET") = (&grant.session_id, upstream.status_code(), method.as_str()) {
            let length = upstream.headers().get("Content-Length")?.and_then(|l| l.parse().ok());
            if let Some(bytes) = length {
                session_hub::count_served(sid, bytes, now);
            }
            if session_hub::beat_due(sid, now, (settings.idle_seconds / 2).max(1)) {
                let beat = heartbeat(settings, &grant, sid, BeatKind::Background, &req, &ctx, &facts, now);
                let (env, key) = (env.clone(), grant.session_key());
                wctx.wait_until(async move {
                    // A background beat only keeps the session counted; its verdict waits
                    // for the next playlist reload.
                    let _ = session_hub::heartbeat(&env, &key, &beat).await;
                });
            }
        }
        return Ok(upstream);
    };
    // A playlist fetch starts a session or is its heartbeat.
    let kind_of_beat = match (&grant.session_id, renewing) {
        (None, _) => BeatKind::Start,
        (Some(_), false) => BeatKind::Reload,
        (Some(_), true) => BeatKind::Renewal,
    };
    let sid = match admit(env, settings, &grant, kind_of_beat, &req, &ctx, &facts, now).await? {
        Ok(sid) => sid,
        Err(response) => return Ok(response),
    };
    let text = upstream.text().await?;
    // A VOD manifest is loaded once and played to its end: its credentials cover that.
    let presentation = presentation_seconds(kind, &text);
    let credential = match settings.sessions.issue(&grant, &sid, &facts.path, facts.client_ip, now, presentation) {
        Ok(credential) => credential,
        Err(error) => return deny(&Denial::malformed(error.to_string())),
    };
    let host = url.host_str().map(|h| match url.port() {
        Some(port) => format!("{h}:{port}"),
        None => h.to_owned(),
    });
    let propagation = Propagation { host: host.unwrap_or_default(), param: "sgs".into(), credential };
    let body = match kind {
        ManifestKind::Hls => hls::rewrite(&text, &propagation),
        ManifestKind::Dash => {
            // Live MPDs are refreshed from this URL, credential-free here; the rewrite adds one.
            let own_url = origin_url(&format!("{}://{}", url.scheme(), propagation.host), &facts.path, &query);
            dash::rewrite_with_refresh(&text, &propagation, &own_url)
        }
    };
    let headers = Headers::new();
    headers.set("Content-Type", content_type.as_deref().unwrap_or("application/vnd.apple.mpegurl"))?;
    // Rewritten per viewer: never shared from a cache.
    headers.set("Cache-Control", "private, no-store")?;
    if settings.cookie_transport {
        let lifetime =
            u64::from(settings.sessions.options.ttl) + presentation.unwrap_or(0).min(MAX_PRESENTATION_SECONDS);
        let directory = grant.scope.for_session(&facts.path).directory();
        let cookie = transport::session_cookie(&propagation.credential, &directory, lifetime);
        headers.set("Set-Cookie", &cookie)?;
    }
    Ok(Response::ok(body)?.with_headers(headers))
}

/// Fetches `normalized_path` from the origin with the request's (checked) method and the
/// headers a player needs (never its cookies or credentials); a publish request's body is
/// streamed through. The URL is built from the normalized path, each segment re-encoded,
/// so the origin serves exactly the path that was checked. Segments are cached whatever
/// their extension; the origin URL carries no credential, so it is a cache key every
/// viewer shares (a custom `cacheKey` is Enterprise-only).
async fn fetch_origin(
    req: &Request,
    method: &str,
    settings: &Settings,
    normalized_path: &str,
    query: &str,
) -> Result<Response> {
    let url = origin_url(&settings.origin, normalized_path, query);
    let mut init = RequestInit::new();
    init.with_method(Method::from(method.to_owned()));
    let forwarded = Headers::new();
    for name in ["Range", "Accept", "If-None-Match", "If-Modified-Since", "Content-Type"] {
        if let Some(value) = req.headers().get(name)? {
            forwarded.set(name, &value)?;
        }
    }
    init.with_headers(forwarded);
    if matches!(method, "POST" | "PUT") {
        init.with_body(req.inner().body().map(JsValue::from));
    } else if manifest_kind(None, normalized_path).is_none() {
        init.with_cf_properties(CfProperties { cache_everything: Some(true), ..CfProperties::default() });
    }
    Fetch::Request(Request::new_with_init(&url, &init)?).send().await
}

/// A heartbeat of session `sid`, with what this request tells about its viewer and the
/// media bytes this isolate served it since its previous heartbeat.
#[allow(clippy::too_many_arguments)]
fn heartbeat(
    settings: &Settings,
    grant: &Grant,
    sid: &str,
    kind: BeatKind,
    req: &Request,
    ctx: &RequestContext,
    facts: &RequestFacts,
    now: i64,
) -> Heartbeat {
    let token = grant.token_id.clone().or_else(|| grant.entry_fingerprint()).unwrap_or_default();
    let shape =
        (kind == BeatKind::Start).then(|| TokenShape::new(&token, &grant.claims_json, &grant.scope.to_string()));
    Heartbeat {
        sid: sid.to_owned(),
        kind,
        shape,
        ids: grant.revocation_ids(),
        limit: grant.max_sessions.or(settings.gate.policy.default_max_sessions),
        now,
        idle: settings.idle_seconds,
        at_limit: settings.at_limit,
        viewer: Viewer { agent: agent_of(ctx.user_agent.as_deref()), network: facts.client_ip.map(network_of) },
        record: UsageEvent {
            at: now,
            token,
            sub: grant.subject.clone(),
            max_sessions: grant.max_sessions,
            stream: Some(facts.path.clone()),
            sid: sid.to_owned(),
            ip: facts.client_ip.map(|ip| ip.to_string()),
            country: ctx.country.clone(),
            asn: ctx.asn,
            as_organization: req.cf().and_then(|c| c.as_organization()),
            referer: ctx.referer.clone(),
            user_agent: ctx.user_agent.clone(),
            bytes: session_hub::take_served(sid, now),
        }
        .bounded(),
    }
}

/// Registers a playlist fetch with the session's Durable Object and maps its verdict: a new
/// session (entry token) is admitted against the limit; a reload (session credential) is a
/// heartbeat; a renewal goes through only for the session's own player while it is active.
#[allow(clippy::too_many_arguments)]
async fn admit(
    env: &Env,
    settings: &Settings,
    grant: &Grant,
    kind: BeatKind,
    req: &Request,
    ctx: &RequestContext,
    facts: &RequestFacts,
    now: i64,
) -> Result<std::result::Result<String, Response>> {
    // A reload with the entry token (same viewer: token, IP, User-Agent) maps to the same
    // session, so it does not count twice; a session credential names its session.
    let sid = match &grant.session_id {
        Some(sid) => sid.clone(),
        None => reconnect_id(&grant.fingerprint(), facts.client_ip, ctx.user_agent.as_deref()),
    };
    let beat = heartbeat(settings, grant, &sid, kind, req, ctx, facts, now);
    session_hub::note_beat(&sid, now);
    match session_hub::heartbeat(env, &grant.session_key(), &beat).await {
        Ok(verdict) => match verdict.denial() {
            None => Ok(Ok(sid)),
            Some(denial) => Ok(Err(deny(&denial)?)),
        },
        // Admitted sessions keep playing through a store hiccup; a new session, or renewing
        // a lapsed credential unconfirmed, is what ON_STORE_ERROR=open allows.
        Err(_) if kind == BeatKind::Reload || settings.on_store_error == OnStoreError::Open => Ok(Ok(sid)),
        Err(error) => {
            let body = serde_json::json!({ "error": "session_store_unavailable", "message": error.to_string() });
            Ok(Err(Response::from_json(&body)?.with_status(503)))
        }
    }
}
