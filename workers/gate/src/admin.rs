//! `/admin/*`: the admin API and the Guardian view. Every API call needs
//! `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; the view's page and
//! assets are public files that ask for the token in a sign-in form and send it as that
//! header (never in a URL or a cookie, so there is no CSRF to defend against).
//!
//! - `POST /admin/revoke`, `/admin/unrevoke`: `{"jti", "sub"?, "ttl"?, "reason"?}` or
//!   `{"token", "ttl"?, "reason"?}`. `token` is a token of any scheme or a signed URL; it is
//!   revoked under its `jti` and its canonical fingerprint, and its open sessions (kept
//!   under its `sub`, else `jti`, else fingerprint) end at once. A `jti` alone reaches the
//!   sessions kept under that `jti`; for a token that carries a `sub`, give the `sub` too
//!   (or the token). Text that names no token is a 400, never a silent no-op.
//! - `POST /admin/block`, `/admin/unblock`: `{"ip", "ttl"?, "force"?, "reason"?}`; ranges
//!   wider than /8 (IPv4) or /16 (IPv6) need `"force": true`.
//! - `POST /admin/referrers/block`, `/admin/referrers/unblock`: `{"host", "ttl"?, "reason"?}`.
//! - `POST /admin/expect`, `/admin/unexpect`: `{"indicator", "token" | "network" | "asn"}`.
//! - `GET /admin/actions`; `POST /admin/actions/undo` `{"id"}`.
//! - `GET /admin/sessions?jti=…|sub=…`.
//!
//! Every change is logged (who, what, when, why) with the request that undoes it. The
//! rules are the core's (`revocation_target`, `check_block_range`, `blocked_referrer_host`);
//! this module does I/O.

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use streamgate_core::detection::{Dimension, Report};
use streamgate_core::encoding::ct_eq;
use streamgate_core::grant::{fingerprint, session_key};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::{blocked_referrer_host, is_host_name};
use streamgate_core::revocation::{
    check_block_range, logged_request, nothing_to_unblock, nothing_to_unblock_referrer, referrer_blocked_by,
    revocation_target, undo, BlockRequest, Lifted, NoUndo, ReferrerRequest, RevokeRequest, MAX_ADMIN_BODY_BYTES,
    MIN_BLOCK_PREFIX_V4, MIN_BLOCK_PREFIX_V6,
};
use worker::{Env, Headers, Method, Request, Response, Result};

use crate::guardian::{self, Actor, Expectation, Logged};
use crate::revocations;
use crate::settings::Settings;
use crate::{now_seconds, session_hub};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectRequest {
    indicator: String,
    token: Option<String>,
    network: Option<String>,
    asn: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoRequest {
    id: i64,
}

/// An admin change, parsed and checked.
enum Change {
    Revoke(RevokeRequest, bool),
    Block(BlockRequest, bool),
    Referrer(ReferrerRequest, bool),
    Expect(Expectation, bool),
}

/// A refusal: HTTP status, code, message.
type Refusal = (u16, &'static str, String);

fn error(status: u16, code: &str, message: impl Into<String>) -> Result<Response> {
    Ok(Response::from_json(&json!({ "error": code, "message": message.into() }))?.with_status(status))
}

fn invalid(message: impl Into<String>) -> Refusal {
    (400, "invalid_input", message.into())
}

fn authorized(req: &Request, settings: &Settings) -> bool {
    let presented = req.headers().get("Authorization").ok().flatten();
    match (presented.as_deref().and_then(|h| h.strip_prefix("Bearer ")), &settings.admin_token) {
        (Some(given), Some(expected)) => ct_eq(given.trim().as_bytes(), expected.as_bytes()),
        _ => false,
    }
}

/// Parses the change an admin path and body ask for.
fn change(path: &str, body: Value) -> std::result::Result<Change, Refusal> {
    let parse = |e: serde_json::Error| invalid(e.to_string());
    Ok(match path {
        "/admin/revoke" | "/admin/unrevoke" => {
            Change::Revoke(serde_json::from_value(body).map_err(parse)?, path == "/admin/revoke")
        }
        "/admin/block" | "/admin/unblock" => {
            Change::Block(serde_json::from_value(body).map_err(parse)?, path == "/admin/block")
        }
        "/admin/referrers/block" | "/admin/referrers/unblock" => {
            Change::Referrer(serde_json::from_value(body).map_err(parse)?, path == "/admin/referrers/block")
        }
        "/admin/expect" | "/admin/unexpect" => {
            let request: ExpectRequest = serde_json::from_value(body).map_err(parse)?;
            let (kind, value) = match (request.token, request.network, request.asn) {
                (Some(token), None, None) => ("token", token),
                (None, Some(network), None) => {
                    let range = IpRange::parse(&network).map_err(invalid)?;
                    let min = if range.is_ipv4() { MIN_BLOCK_PREFIX_V4 } else { MIN_BLOCK_PREFIX_V6 };
                    // (Removing one is always allowed: earlier versions stored any width.)
                    if path == "/admin/expect" && range.prefix_len() < min {
                        // A mark holds for every token: one this wide silences whole countries.
                        return Err(invalid(format!("{range} is wider than /{min}: a mark holds for every token")));
                    }
                    ("network", range.to_string())
                }
                (None, None, Some(asn)) => ("asn", asn.to_string()),
                _ => return Err(invalid("give exactly one of \"token\", \"network\" and \"asn\"")),
            };
            let mark = Expectation { indicator: request.indicator, kind: kind.into(), value };
            Change::Expect(mark, path == "/admin/expect")
        }
        _ => return Err((404, "not_found", format!("no admin route {path}"))),
    })
}

/// An admin request's body as JSON, at most [`MAX_ADMIN_BODY_BYTES`] (a declared length
/// over it is refused before anything is read).
async fn json_body(req: &mut Request) -> Result<std::result::Result<Value, Refusal>> {
    let too_big =
        |bytes: usize| invalid(format!("the body is {bytes} bytes, over the {MAX_ADMIN_BODY_BYTES}-byte limit"));
    if let Some(declared) = req.headers().get("Content-Length")?.and_then(|l| l.trim().parse::<usize>().ok()) {
        if declared > MAX_ADMIN_BODY_BYTES {
            return Ok(Err(too_big(declared)));
        }
    }
    // A body without a length (chunked) is read only up to the limit.
    let mut bytes = Vec::new();
    if req.inner().body().is_some() {
        let mut stream = req.stream()?;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return Ok(Err(invalid("the body could not be read to its end")));
            };
            if bytes.len().saturating_add(chunk.len()) > MAX_ADMIN_BODY_BYTES {
                return Ok(Err(invalid(format!("the body is over the {MAX_ADMIN_BODY_BYTES}-byte limit"))));
            }
            bytes.extend_from_slice(&chunk);
        }
    }
    Ok(serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string())))
}

/// Applies a change and logs it. The cron's automatic revocations come through here too.
pub async fn apply(
    env: &Env,
    path: &str,
    body: Value,
    actor: Actor,
    now: i64,
) -> Result<std::result::Result<Value, Refusal>> {
    let change = match change(path, body.clone()) {
        Ok(change) => change,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // What an unrevoke or unblock lifted: when it would have lapsed (`None`: never), so
    // that its undo restores it as it was, not for ever.
    let mut lifted: Option<Option<i64>> = None;
    let (action, target, reason, ttl, result) = match change {
        Change::Revoke(request, revoke) => {
            let target =
                match revocation_target(request.jti.as_deref(), request.sub.as_deref(), request.token.as_deref()) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err((400, e.code(), e.to_string()))),
                };
            for id in &target.ids {
                if revoke {
                    revocations::revoke(env, id, request.ttl, now).await?;
                } else if let Some(until) = revocations::unrevoke(env, id, now).await? {
                    // The latest end of the ids lifted; any without an end lasts for ever.
                    lifted = Some(match (lifted, until) {
                        (Some(None), _) | (_, None) => None,
                        (Some(Some(earlier)), Some(until)) => Some(earlier.max(until)),
                        (None, Some(until)) => Some(until),
                    });
                }
                // Open sessions learn at once, not after KV propagates.
                let until = revocations::lapses_at(request.ttl, now);
                let revocation = session_hub::Revocation { id: id.clone(), until, at: now };
                for hub in &target.session_keys {
                    session_hub::set_revoked(env, hub, &revocation, revoke).await?;
                }
            }
            let named = target.ids.first().cloned().unwrap_or_default();
            let mut result =
                json!({ "ok": true, "ids": target.ids, "sessionKeys": target.session_keys, "revoked": revoke });
            if !revoke {
                // Logged even when nothing was lifted (a revocation that lapsed): the
                // operator's word keeps the Guardian from revoking the token again; such an
                // entry has nothing to restore, so it has no undo.
                if let Some(object) = result.as_object_mut() {
                    object.insert("lifted".into(), json!(lifted.is_some()));
                }
            }
            (if revoke { "revoke" } else { "unrevoke" }, named, request.reason, request.ttl, result)
        }
        Change::Block(request, block) => {
            let range = match IpRange::parse(&request.ip) {
                Ok(r) => r,
                Err(e) => return Ok(Err(invalid(e))),
            };
            let until = if block {
                if let Err(e) = check_block_range(&range, request.force) {
                    return Ok(Err((400, e.code(), e.to_string())));
                }
                revocations::block(env, &range, request.ttl, now).await?
            } else {
                match revocations::unblock(env, &range, now).await? {
                    Some(until) => lifted = Some(until),
                    None => {
                        // Nothing to lift, nothing to log (the undo of such an entry would
                        // block `range` for ever).
                        let blocks = revocations::blocks(env, now).await?;
                        return Ok(Err((404, "not_found", nothing_to_unblock(&range, &blocks.lookup, now))));
                    }
                }
                None
            };
            let result = json!({ "ok": true, "ip": range.to_string(), "blocked": block, "until": until });
            (if block { "block" } else { "unblock" }, range.to_string(), request.reason, request.ttl, result)
        }
        Change::Referrer(request, block) => {
            let host = match blocked_referrer_host(&request.host) {
                Ok(host) => host,
                Err(e) => return Ok(Err(invalid(e))),
            };
            if block {
                revocations::block_referrer(env, &host, request.ttl, now).await?;
            } else {
                match revocations::unblock_referrer(env, &host).await? {
                    Some(until) => lifted = Some(until),
                    None => {
                        let blocks = revocations::blocks(env, now).await?;
                        return Ok(Err((404, "not_found", nothing_to_unblock_referrer(&host, &blocks.referrers))));
                    }
                }
            }
            let result = json!({ "ok": true, "host": host, "blocked": block });
            (if block { "block_referrer" } else { "unblock_referrer" }, host, request.reason, request.ttl, result)
        }
        Change::Expect(mark, expected) => {
            guardian::set_expected(env, &mark, expected, now).await?;
            let target = format!("{} for {} {}", mark.indicator, mark.kind, mark.value);
            let result = json!({ "ok": true, "expected": expected, "mark": mark });
            (if expected { "expect" } else { "unexpect" }, target, None, None, result)
        }
    };
    // An unblock that lifts nothing was answered 404 above; an unrevoke is logged.
    let lifted = match (lifted, action) {
        (Some(until), _) => Lifted::Entry(until),
        (None, "unrevoke") => Lifted::Nothing,
        (None, _) => Lifted::NotALift,
    };
    let request = logged_request(action, body, lifted, now);
    let logged = Logged { actor, action, target: &target, reason: reason.as_deref(), ttl, request: &request };
    let id = guardian::log(env, &logged, now).await?;
    let mut result = result;
    if let Some(object) = result.as_object_mut() {
        object.insert("action".into(), json!(id));
    }
    Ok(Ok(result))
}

/// A dashboard view of a report: `/admin/tokens` (with each token's revocation state),
/// `/admin/ips` (with each network's block state) or `/admin/breakdown`.
async fn view(env: &Env, path: &str, report: Report, cut: bool, now: i64) -> Result<Value> {
    let window = json!({ "from": report.window.from, "to": report.window.to, "truncated": cut });
    Ok(match path {
        "/admin/tokens" => {
            let ids: Vec<String> = report.tokens.iter().take(MAX_ROWS).map(|r| r.token.clone()).collect();
            let revoked = revocations::lookup(env, &ids, now).await?;
            let rows: Vec<Value> = report
                .tokens
                .iter()
                .take(MAX_ROWS)
                .map(|row| {
                    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
                    if let Some(object) = value.as_object_mut() {
                        object.insert("revoked".into(), json!(revoked.contains(&row.token)));
                    }
                    value
                })
                .collect();
            json!({ "window": window, "tokens": rows })
        }
        "/admin/ips" => {
            let blocks = revocations::blocks(env, now).await?;
            let rows: Vec<Value> = report
                .ips
                .iter()
                .take(MAX_ROWS)
                .map(|row| {
                    let blocked_by = IpRange::parse(&row.ip)
                        .ok()
                        .and_then(|r| blocks.lookup.blocked_by(r.first_address(), now).map(ToString::to_string));
                    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
                    if let Some(object) = value.as_object_mut() {
                        object.insert("network".into(), json!(row.ip));
                        object.insert("blocked".into(), json!(blocked_by.is_some()));
                        // The entry an unblock must lift (a wider range, maybe).
                        object.insert("blocked_by".into(), json!(blocked_by));
                    }
                    value
                })
                .collect();
            json!({ "window": window, "ips": rows })
        }
        _ => {
            let blocks = revocations::blocks(env, now).await?;
            // Breakdown rows name a provider `AS<n>`; its organization is on the IP rows.
            let organizations: std::collections::HashMap<u32, &str> =
                report.ips.iter().filter_map(|ip| Some((ip.asn?, ip.organization.as_deref()?))).collect();
            let mut out = json!({ "window": window, "countries": [], "referrers": [], "providers": [], "user_agents": [], "streams": [] });
            for row in report.breakdown {
                let key = match row.dimension {
                    Dimension::Country => "countries",
                    Dimension::Referrer => "referrers",
                    Dimension::Provider => "providers",
                    Dimension::UserAgent => "user_agents",
                    Dimension::Stream => "streams",
                    _ => continue,
                };
                let mut value = serde_json::to_value(&row).unwrap_or(Value::Null);
                if let Some(object) = value.as_object_mut() {
                    object.insert("name".into(), json!(row.key));
                    object.insert("count".into(), json!(row.events));
                    if row.dimension == Dimension::Provider {
                        let asn = row.key.strip_prefix("AS").and_then(|n| n.parse::<u32>().ok());
                        object.insert("asn".into(), json!(asn));
                        object.insert("organization".into(), json!(asn.and_then(|a| organizations.get(&a))));
                    }
                    if row.dimension == Dimension::Referrer {
                        let blocked_by = referrer_blocked_by(&row.key, &blocks.referrers);
                        // What a block may name: a host name (or an IPv4 address), not "-" (no
                        // Referer), not a host that is none, not a wildcard (rollups stored
                        // before hosts were checked may hold one).
                        object.insert("host".into(), json!(is_host_name(&row.key).then_some(&row.key)));
                        object.insert("blocked".into(), json!(blocked_by.is_some()));
                        // The block an unblock must lift (a `*.` wildcard, maybe).
                        object.insert("blocked_by".into(), json!(blocked_by));
                    }
                }
                if let Some(list) = out.get_mut(key).and_then(Value::as_array_mut) {
                    if list.len() < MAX_ROWS {
                        list.push(value);
                    }
                }
            }
            out
        }
    })
}

/// Rows a view returns at most (the highest scores, the most active networks).
const MAX_ROWS: usize = 500;

async fn with_revoked(env: &Env, mut detail: Value, now: i64) -> Result<Value> {
    let token = detail.pointer("/row/token").and_then(Value::as_str).map(str::to_owned);
    if let (Some(token), Some(row)) = (token, detail.get_mut("row").and_then(Value::as_object_mut)) {
        let revoked = revocations::lookup(env, std::slice::from_ref(&token), now).await?;
        row.insert("revoked".into(), json!(revoked.contains(&token)));
    }
    Ok(detail)
}

/// Handles an `/admin/...` request.
pub async fn handle(mut req: Request, env: &Env, settings: &Settings) -> Result<Response> {
    let path = req.path();
    if req.method() == Method::Get {
        if let Some(asset) = crate::dashboard::asset(&path) {
            return crate::dashboard::serve(asset);
        }
    }
    if settings.admin_token.is_none() {
        return error(404, "admin_disabled", "set ADMIN_TOKEN (wrangler secret put ADMIN_TOKEN) to enable /admin");
    }
    if !authorized(&req, settings) {
        return error(401, "unauthorized", "missing or wrong admin token");
    }
    let now = now_seconds();
    let answer = match (req.method(), path.as_str()) {
        (Method::Get, "/admin/sessions") => {
            let url = req.url()?;
            let key = url.query_pairs().find_map(|(k, v)| match k.as_ref() {
                "jti" => Some(session_key(None, Some(&v), String::new)),
                "sub" => Some(session_key(Some(&v), None, String::new)),
                _ => None,
            });
            return match key {
                Some(key) => session_hub::list(env, &key).await,
                None => error(400, "invalid_input", "give ?jti= or ?sub="),
            };
        }
        (Method::Get, "/admin/actions") => {
            let mut actions = guardian::actions(env).await?;
            // A token given to revoke is a credential (valid again once unrevoked): the
            // log keeps it for the undo, the listing names it by its fingerprint.
            for action in actions.iter_mut().filter(|a| matches!(a.action.as_str(), "revoke" | "unrevoke")) {
                if let Some(token) = action.request.get_mut("token") {
                    let named = token.as_str().map(|t| format!("sha256:{}", fingerprint(t)));
                    *token = json!(named);
                }
            }
            Ok(json!({ "actions": actions }))
        }
        (
            Method::Get,
            "/admin/tokens" | "/admin/ips" | "/admin/breakdown" | "/admin/tokens/detail" | "/admin/usage",
        ) => {
            let url = req.url()?;
            let window = match guardian::window_of(&url, settings, now) {
                Ok(window) => window,
                Err(e) => return error(400, "invalid_input", e),
            };
            match path.as_str() {
                "/admin/usage" => {
                    let (lines, cut) =
                        guardian::usage(env, window.from, window.to, settings.guardian.bucket_seconds, 2_000).await?;
                    let headers = Headers::new();
                    headers.set("Content-Type", "application/x-ndjson")?;
                    headers.set("Cache-Control", "no-store")?;
                    if cut {
                        headers.set("X-Streamgate-Truncated", "1")?;
                    }
                    return Ok(Response::ok(lines)?.with_headers(headers));
                }
                "/admin/tokens/detail" => {
                    let token = url.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
                    match token {
                        None => Err(invalid("give ?token=")),
                        Some(token) => match guardian::token_detail(env, settings, window, &token).await? {
                            Some(detail) => Ok(with_revoked(env, detail, now).await?),
                            None => Err((404, "not_found", format!("no activity of token {token:?} in the window"))),
                        },
                    }
                }
                _ => {
                    let (report, cut) = guardian::report(env, settings, window).await?;
                    Ok(view(env, &path, report, cut, now).await?)
                }
            }
        }
        (Method::Post, "/admin/scan") => Ok(serde_json::to_value(guardian::scan(env, settings, now).await?)
            .map_err(|e| worker::Error::RustError(e.to_string()))?),
        (Method::Post, "/admin/actions/undo") => {
            let request = match json_body(&mut req).await? {
                Ok(body) => serde_json::from_value::<UndoRequest>(body).map_err(|e| invalid(e.to_string())),
                Err(refusal) => Err(refusal),
            };
            let request = match request {
                Ok(request) => request,
                Err((status, code, message)) => return error(status, code, message),
            };
            match guardian::action(env, request.id).await? {
                None => Err((404, "not_found", format!("no action {}", request.id))),
                Some(action) if action.undone => {
                    Err((409, "already_undone", format!("action {} was undone", action.id)))
                }
                Some(action) => match undo(&action.action, &action.request) {
                    Err(NoUndo::LiftedNothing) => Err((409, "nothing_to_undo", NoUndo::LiftedNothing.to_string())),
                    Err(none) => Err(invalid(none.to_string())),
                    Ok((path, body)) => {
                        let applied = apply(env, path, body, Actor::Operator, now).await?;
                        if applied.is_ok() {
                            guardian::mark_undone(env, action.id).await?;
                        }
                        applied
                    }
                },
            }
        }
        (Method::Post, _) => match json_body(&mut req).await? {
            Ok(body) => apply(env, &path, body, Actor::Operator, now).await?,
            Err(refusal) => Err(refusal),
        },
        _ => Err((404, "not_found", format!("no admin route {path}"))),
    };
    match answer {
        Ok(body) => {
            let headers = Headers::new();
            headers.set("Cache-Control", "no-store")?;
            Ok(Response::from_json(&body)?.with_headers(headers))
        }
        Err((status, code, message)) => error(status, code, message),
    }
}
