//! `/admin/*`: revoke and unrevoke tokens, block and unblock IPs, list a token's sessions.
//! Every call needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.
//!
//! - `POST /admin/revoke`, `/admin/unrevoke`: `{"jti", "sub"?, "ttl"?}` or `{"token", "ttl"?}`.
//!   `token` is a token of any scheme or a signed URL; it is revoked under its `jti` and
//!   its canonical fingerprint, and its open sessions (kept under its `sub`, else `jti`,
//!   else fingerprint) end at once. A `jti` alone reaches the sessions kept under that
//!   `jti`; for a token that carries a `sub`, give the `sub` too (or the token). Text that
//!   names no token is a 400, never a silent no-op.
//! - `POST /admin/block`, `/admin/unblock`: `{"ip", "ttl"?, "force"?}`; ranges wider than
//!   /8 (IPv4) or /16 (IPv6) need `"force": true`.
//!
//! The rules are the core's (`revocation_target`, `check_block_range`); this module does I/O.

use serde::Deserialize;
use streamgate_core::encoding::ct_eq;
use streamgate_core::grant::session_key;
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::{check_block_range, revocation_target};
use worker::{Env, Method, Request, Response, Result};

use crate::revocations;
use crate::settings::Settings;
use crate::{now_seconds, session_hub};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    jti: Option<String>,
    sub: Option<String>,
    token: Option<String>,
    ttl: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    ip: String,
    ttl: Option<u64>,
    #[serde(default)]
    force: bool,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Result<Response> {
    Ok(Response::from_json(&serde_json::json!({ "error": code, "message": message.into() }))?.with_status(status))
}

fn authorized(req: &Request, settings: &Settings) -> bool {
    let presented = req.headers().get("Authorization").ok().flatten();
    match (presented.as_deref().and_then(|h| h.strip_prefix("Bearer ")), &settings.admin_token) {
        (Some(given), Some(expected)) => ct_eq(given.trim().as_bytes(), expected.as_bytes()),
        _ => false,
    }
}

/// Handles an `/admin/...` request.
pub async fn handle(mut req: Request, env: &Env, settings: &Settings) -> Result<Response> {
    if settings.admin_token.is_none() {
        return error(404, "admin_disabled", "set ADMIN_TOKEN (wrangler secret put ADMIN_TOKEN) to enable /admin");
    }
    if !authorized(&req, settings) {
        return error(401, "unauthorized", "missing or wrong admin token");
    }
    let now = now_seconds();
    let path = req.path();
    match (req.method(), path.as_str()) {
        (Method::Post, "/admin/revoke" | "/admin/unrevoke") => {
            let body: Revoke = match req.json().await {
                Ok(b) => b,
                Err(e) => return error(400, "invalid_input", e.to_string()),
            };
            let target = match revocation_target(body.jti.as_deref(), body.sub.as_deref(), body.token.as_deref()) {
                Ok(t) => t,
                Err(e) => return error(400, e.code(), e.to_string()),
            };
            let revoke = path == "/admin/revoke";
            for id in &target.ids {
                if revoke {
                    revocations::revoke(env, id, body.ttl, now).await?;
                } else {
                    revocations::unrevoke(env, id, now).await?;
                }
                // Open sessions learn at once, not after KV propagates.
                let ttl = body.ttl.map(|ttl| ttl.max(revocations::MIN_TTL_SECONDS));
                let until = ttl.map(|ttl| now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)));
                let revocation = session_hub::Revocation { id: id.clone(), until, at: now };
                for hub in &target.session_keys {
                    session_hub::set_revoked(env, hub, &revocation, revoke).await?;
                }
            }
            Response::from_json(&serde_json::json!({
                "ok": true, "ids": target.ids, "sessionKeys": target.session_keys, "revoked": revoke,
            }))
        }
        (Method::Post, "/admin/block" | "/admin/unblock") => {
            let body: BlockRequest = match req.json().await {
                Ok(b) => b,
                Err(e) => return error(400, "invalid_input", e.to_string()),
            };
            let range = match IpRange::parse(&body.ip) {
                Ok(r) => r,
                Err(e) => return error(400, "invalid_input", e),
            };
            let until = if path == "/admin/block" {
                if let Err(e) = check_block_range(&range, body.force) {
                    return error(400, e.code(), e.to_string());
                }
                revocations::block(env, &range, body.ttl, now).await?
            } else {
                revocations::unblock(env, &range, now).await?;
                None
            };
            Response::from_json(&serde_json::json!({
                "ok": true, "ip": range.to_string(), "blocked": path == "/admin/block", "until": until,
            }))
        }
        (Method::Get, "/admin/sessions") => {
            let url = req.url()?;
            let key = url.query_pairs().find_map(|(k, v)| match k.as_ref() {
                "jti" => Some(session_key(None, Some(&v), String::new)),
                "sub" => Some(session_key(Some(&v), None, String::new)),
                _ => None,
            });
            match key {
                Some(key) => session_hub::list(env, &key).await,
                None => error(400, "invalid_input", "give ?jti= or ?sub="),
            }
        }
        _ => error(404, "not_found", format!("no admin route {path}")),
    }
}
