//! The request flow: verify, look up revocations and the block list, apply the policy,
//! count sessions on playlist fetches, fetch from the origin without the credential,
//! and rewrite manifests so every follow-up request carries a session credential.

use streamgate_core::claims::Purpose;
use streamgate_core::manifests::{dash, hls, manifest_kind, presentation_seconds, ManifestKind, Propagation};
use streamgate_core::policy::path::stream_in_scope;
use streamgate_core::revocation::IpBlocklist;
use streamgate_core::schemes::session::{lift_expiry_for_renewal, scope_of, MAX_PRESENTATION_SECONDS};
use streamgate_core::sessions::reconnect_id;
use streamgate_core::{Decision, Denial, Grant, Hooks, RequestContext, RequestFacts};
use worker::{CfProperties, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::session_hub::{self, Heartbeat, UsageRecord, Verdict};
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

fn request_context(req: &Request, path: &str, settings: &Settings) -> RequestContext {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let cf = req.cf();
    RequestContext {
        path: path.to_owned(),
        peer_ip: header(&settings.client_ip_header).and_then(|v| v.trim().parse().ok()),
        forwarded_for: header("X-Forwarded-For"),
        referer: header("Referer"),
        user_agent: header("User-Agent"),
        country: cf.and_then(|c| c.country()),
        asn: cf.and_then(|c| c.asn()),
        purpose: if matches!(req.method(), Method::Post | Method::Put) { Purpose::Publish } else { Purpose::Play },
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
    let url = req.url()?;
    let query = url.query().unwrap_or("").to_owned();
    let (in_path, path) = match transport::path_credential(url.path()) {
        Some((credential, rest)) => (Some(credential), rest),
        None => (None, url.path().to_owned()),
    };
    let ctx = request_context(&req, &path, settings);
    let now = now_seconds();
    if let Some(facts) = public(settings, &ctx) {
        let blocks = revocations::blocks(env, now).await?;
        if let Some(ip) = facts.client_ip.filter(|ip| blocks.lookup.is_blocked(*ip, now)) {
            return deny(&Denial::IpBlocked { ip });
        }
        return fetch_origin(&req, settings, &facts.path, &query).await;
    }
    let credential = transport::credential(&req, &query).or(in_path);

    let (grant, facts) = match settings.gate.verify(credential.as_ref(), &ctx) {
        Ok(verified) => verified,
        Err(denial) => return deny(&denial),
    };
    // Players reload a playlist by the URL they were first given, so a live stream keeps
    // presenting the credential issued with its master playlist. Past its expiry it still
    // names its session: the reload is renewed if the session store confirms the session
    // is active. Segments are never renewed; each playlist hands out fresh credentials.
    let lapsed_at = grant.validity.expires_at;
    let renewal = manifest_kind(None, &facts.path).and_then(|_| lift_expiry_for_renewal(&grant, now));
    let renewing = renewal.is_some();
    let grant = renewal.unwrap_or(grant);
    let revoked = revocations::lookup(env, &grant.revocation_ids(), now).await?;
    let blocks = revocations::blocks(env, now).await?;
    let mut hooks = Hooks { revocations: &revoked, blocklist: &blocks.lookup, sessions: None };
    let (grant, facts) = match settings.gate.evaluate(grant, &ctx, facts, now, &mut hooks) {
        Decision::Allow { grant, facts } => (grant, facts),
        Decision::Deny { denial, .. } => return deny(&denial),
    };

    let mut upstream = fetch_origin(&req, settings, &facts.path, &query).await?;
    let content_type = upstream.headers().get("Content-Type")?;
    let kind = manifest_kind(content_type.as_deref(), &facts.path);
    let (Some(kind), true) = (kind, upstream.status_code() == 200) else {
        if renewing {
            // Only a playlist renews a lapsed credential.
            return deny(&Denial::Expired { expires_at: lapsed_at.unwrap_or(now), now, leeway: 0 });
        }
        // Media served under a session credential counts toward the session's usage record,
        // and keeps a session that reloads no playlist (a VOD) counted, in the background.
        if let (Some(sid), 200 | 206, Method::Get) = (&grant.session_id, upstream.status_code(), req.method()) {
            let length = upstream.headers().get("Content-Length")?.and_then(|l| l.parse().ok());
            if let Some(bytes) = length {
                session_hub::count_served(sid, bytes);
            }
            if session_hub::beat_due(sid, now, (settings.idle_seconds / 2).max(1)) {
                let beat = heartbeat(settings, &grant, sid, &req, &ctx, now, false);
                let (env, key) = (env.clone(), grant.session_key());
                wctx.wait_until(async move {
                    if let (Err(_), Some(bytes)) = (session_hub::heartbeat(&env, &key, &beat).await, beat.record.bytes)
                    {
                        session_hub::count_served(&beat.sid, bytes);
                    }
                });
            }
        }
        return Ok(upstream);
    };
    // A playlist fetch starts a session or is its heartbeat.
    let reload = Reload { renewing, lapsed_at };
    let sid = match admit(env, settings, &grant, reload, &req, &ctx, now).await? {
        Ok(sid) => sid,
        Err(response) => return Ok(response),
    };
    let text = upstream.text().await?;
    // A VOD manifest is loaded once and played to its end: its credentials cover that.
    let presentation = presentation_seconds(kind, &text);
    let credential = settings
        .sessions
        .issue_covering(&grant, &sid, scope_of(&facts.path), now, presentation)
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let host = url.host_str().map(|h| match url.port() {
        Some(port) => format!("{h}:{port}"),
        None => h.to_owned(),
    });
    let propagation = Propagation { host: host.unwrap_or_default(), param: "sgs".into(), credential };
    let body = match kind {
        ManifestKind::Hls => hls::rewrite(&text, &propagation),
        ManifestKind::Dash => {
            // Live MPDs are refreshed from this URL, credential-free here; the rewrite adds one.
            let own_url =
                transport::origin_url(&format!("{}://{}", url.scheme(), propagation.host), &facts.path, &query);
            dash::rewrite_with_refresh(&text, &propagation, &own_url)
        }
    };
    let headers = Headers::new();
    headers.set("Content-Type", content_type.as_deref().unwrap_or("application/vnd.apple.mpegurl"))?;
    // Rewritten per viewer: never shared from a cache.
    headers.set("Cache-Control", "private, no-store")?;
    if settings.cookie_transport {
        let lifetime = u64::from(settings.sessions.ttl) + presentation.unwrap_or(0).min(MAX_PRESENTATION_SECONDS);
        let cookie = transport::session_cookie(&propagation.credential, scope_of(&facts.path), lifetime);
        headers.set("Set-Cookie", &cookie)?;
    }
    Ok(Response::ok(body)?.with_headers(headers))
}

/// The request's facts when its normalized path is one of `PUBLIC_PATHS`.
fn public(settings: &Settings, ctx: &RequestContext) -> Option<RequestFacts> {
    if settings.public_paths.is_empty() {
        return None;
    }
    let facts = settings.gate.policy.resolve(ctx).ok()?;
    settings.public_paths.iter().any(|glob| stream_in_scope(glob, &facts.path)).then_some(facts)
}

/// Fetches `normalized_path` from the origin with the request's method and the headers a
/// player needs (never its cookies or credentials). Segments are cached whatever their
/// extension; the origin URL carries no credential, so it is a cache key every viewer
/// shares (a custom `cacheKey` is Enterprise-only).
async fn fetch_origin(req: &Request, settings: &Settings, normalized_path: &str, query: &str) -> Result<Response> {
    let origin_url = transport::origin_url(&settings.origin, normalized_path, query);
    let mut init = RequestInit::new();
    init.with_method(req.method());
    let forwarded = Headers::new();
    for name in ["Range", "Accept", "If-None-Match", "If-Modified-Since"] {
        if let Some(value) = req.headers().get(name)? {
            forwarded.set(name, &value)?;
        }
    }
    init.with_headers(forwarded);
    if manifest_kind(None, normalized_path).is_none() {
        init.with_cf_properties(CfProperties { cache_everything: Some(true), ..CfProperties::default() });
    }
    Fetch::Request(Request::new_with_init(&origin_url, &init)?).send().await
}

/// A heartbeat of session `sid`, with what this request tells about its viewer and the
/// media bytes this isolate served it since its previous heartbeat.
fn heartbeat(
    settings: &Settings,
    grant: &Grant,
    sid: &str,
    req: &Request,
    ctx: &RequestContext,
    now: i64,
    renewal: bool,
) -> Heartbeat {
    Heartbeat {
        sid: sid.to_owned(),
        ids: grant.revocation_ids(),
        limit: grant.max_sessions.or(settings.gate.policy.default_max_sessions),
        now,
        idle: settings.idle_seconds,
        at_limit: settings.at_limit,
        renewal,
        record: UsageRecord {
            at: now,
            sid: sid.to_owned(),
            ip: ctx.peer_ip.map(|ip| ip.to_string()),
            country: ctx.country.clone(),
            asn: ctx.asn,
            as_organization: req.cf().and_then(|c| c.as_organization()),
            referer: ctx.referer.clone(),
            user_agent: ctx.user_agent.clone(),
            bytes: session_hub::take_served(sid),
        },
    }
}

/// Whether a playlist fetch renews a lapsed session credential, and when it lapsed.
#[derive(Clone, Copy)]
struct Reload {
    renewing: bool,
    lapsed_at: Option<i64>,
}

/// Registers a playlist fetch with the session's Durable Object: a new session (entry
/// token) is admitted against the limit; a reload (session credential) is a heartbeat; a
/// renewal goes through only if the session is still active.
async fn admit(
    env: &Env,
    settings: &Settings,
    grant: &Grant,
    reload: Reload,
    req: &Request,
    ctx: &RequestContext,
    now: i64,
) -> Result<std::result::Result<String, Response>> {
    // A reload with the entry token (same viewer: token, IP, User-Agent) maps to the same
    // session, so it does not count twice; a session credential names its session.
    let sid = match &grant.session_id {
        Some(sid) => sid.clone(),
        None => reconnect_id(&grant.fingerprint(), ctx.peer_ip, ctx.user_agent.as_deref()),
    };
    let already_admitted = grant.session_id.is_some();
    let beat = heartbeat(settings, grant, &sid, req, ctx, now, reload.renewing);
    session_hub::note_beat(&sid, now);
    let verdict = session_hub::heartbeat(env, &grant.session_key(), &beat).await;
    if let (Err(_), Some(bytes)) = (&verdict, beat.record.bytes) {
        // Not recorded: keep the count for the next heartbeat.
        session_hub::count_served(&sid, bytes);
    }
    match verdict {
        Ok(Verdict::Admitted { .. }) => Ok(Ok(sid)),
        // A reload of an admitted session is a heartbeat, not a new start.
        Ok(Verdict::Full { .. }) if already_admitted => Ok(Ok(sid)),
        Ok(Verdict::Full { limit, active }) => Ok(Err(deny(&Denial::TooManySessions { limit, active })?)),
        Ok(Verdict::Revoked) => {
            let token_id = beat.ids.first().cloned().unwrap_or_default();
            Ok(Err(deny(&Denial::Revoked { token_id })?))
        }
        Ok(Verdict::Ended) => {
            let expires_at = reload.lapsed_at.unwrap_or(now);
            Ok(Err(deny(&Denial::Expired { expires_at, now, leeway: 0 })?))
        }
        // Admitted sessions keep playing through a store hiccup; renewing a lapsed
        // credential unconfirmed is what ON_STORE_ERROR=open allows.
        Err(_) if (already_admitted && !reload.renewing) || settings.on_store_error == OnStoreError::Open => {
            Ok(Ok(sid))
        }
        Err(error) => {
            let body = serde_json::json!({ "error": "session_store_unavailable", "message": error.to_string() });
            Ok(Err(Response::from_json(&body)?.with_status(503)))
        }
    }
}
