//! `/admin/*`: revoke and unrevoke tokens, block and unblock IPs, list a token's sessions.
//! Every call needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.

use serde::Deserialize;
use streamgate_core::encoding::ct_eq;
use streamgate_core::grant::{fingerprint, session_key};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::unverified;
use worker::{Env, Method, Request, Response, Result};

use crate::revocations::{self, Block};
use crate::settings::Settings;
use crate::{now_seconds, session_hub};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    jti: Option<String>,
    token: Option<String>,
    ttl: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    ip: String,
    ttl: Option<i64>,
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

/// What a revoke request names: the revocation ids (stored in KV and told to the hubs)
/// and the session keys whose hubs hold the token's open sessions.
struct Target {
    ids: Vec<String>,
    hubs: Vec<String>,
}

fn target(body: &Revoke) -> std::result::Result<Target, String> {
    match (&body.jti, &body.token) {
        (Some(jti), None) => Ok(Target { ids: vec![jti.clone()], hubs: vec![format!("jti:{jti}")] }),
        (None, Some(token)) => {
            // The token's text is its revocation id; its `jti` (EdgeAuth `id`) too, so that
            // the session credentials it opened, which carry the `jti`, are refused as well.
            let token = token.trim();
            let fields = unverified::inspect(token).map(|i| i.fields).unwrap_or_default();
            let text = |value: Option<&serde_json::Value>| value.and_then(|v| v.as_str()).map(str::to_owned);
            let claims = fields.get("claims");
            let jti = text(claims.and_then(|c| c.get("jti"))).or_else(|| text(fields.get("id")));
            let sub = text(claims.and_then(|c| c.get("sub")));
            let print = fingerprint(token);
            let hub = session_key(sub.as_deref(), jti.as_deref(), || print.clone());
            Ok(Target { ids: std::iter::once(print).chain(jti).collect(), hubs: vec![hub] })
        }
        _ => Err("give exactly one of \"jti\" and \"token\"".into()),
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
            let target = match target(&body) {
                Ok(t) => t,
                Err(e) => return error(400, "invalid_input", e),
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
                for hub in &target.hubs {
                    session_hub::set_revoked(env, hub, &revocation, revoke).await?;
                }
            }
            Response::from_json(&serde_json::json!({ "ok": true, "ids": target.ids, "revoked": revoke }))
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
            let mut list = revocations::blocks(env, now).await?.list.clone();
            list.retain(|b| b.range != range && b.until.is_none_or(|u| u > now));
            if path == "/admin/block" {
                list.push(Block { range, until: body.ttl.map(|t| now.saturating_add(t)) });
            }
            let saved = revocations::save_blocks(env, list, now).await?;
            Response::from_json(&serde_json::json!({ "ok": true, "blocked": saved.list }))
        }
        (Method::Get, "/admin/sessions") => {
            let url = req.url()?;
            let key = url.query_pairs().find_map(|(k, v)| match k.as_ref() {
                "jti" => Some(format!("jti:{v}")),
                "sub" => Some(format!("sub:{v}")),
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
