//! `/admin/*`: the edge worker's admin API, with the same requests, answers and error
//! shapes. Every call needs `Authorization: Bearer <STREAMGATE_ADMIN_TOKEN>`, compared in
//! constant time; without a configured token the API is off (404 `admin_disabled`).
//!
//! - `POST /admin/revoke`, `/admin/unrevoke`: `{"jti", "sub"?, "ttl"?, "reason"?}` or
//!   `{"token", "ttl"?, "reason"?}` (a token of any scheme, or a signed URL). Revoked under
//!   its `jti` and canonical fingerprint; its open sessions end at their next heartbeat.
//! - `POST /admin/block`, `/admin/unblock`: `{"ip", "ttl"?, "force"?, "reason"?}`; ranges
//!   wider than /8 (IPv4) or /16 (IPv6) need `"force": true`.
//! - `POST /admin/referrers/block`, `/admin/referrers/unblock`: `{"host", "ttl"?, "reason"?}`.
//! - `GET /admin/sessions?jti=…|sub=…`: the sessions and recent usage of a token or user.
//! - `GET /admin/usage?window=3h` (or `?from=&to=`, unix seconds): usage records as JSON
//!   Lines, as `streamgate scan` reads them.
//!
//! The rules are the core's (`revocation_target`, `check_block_range`,
//! `blocked_referrer_host`); this module does I/O. Unlike the edge, revocations take
//! effect on this node at once (there is no KV propagation), and a TTL has no minimum.
//! The edge's action log, undo and Guardian views are not here.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use streamgate_core::detection::Window;
use streamgate_core::encoding::ct_eq;
use streamgate_core::grant::session_key;
use streamgate_core::policy::blocked_referrer_host;
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::{
    check_block_range, nothing_to_unblock, nothing_to_unblock_referrer, revocation_target, BlockRequest,
    ReferrerRequest, RevokeRequest,
};
use streamgate_core::sessions::Revocation;

use crate::http::{error_response, full, json_response, response, set_header, Body};
use crate::server::{unix_now, App};
use crate::state::{State, StateError};

/// The largest admin request body.
const MAX_BODY_BYTES: usize = streamgate_core::revocation::MAX_ADMIN_BODY_BYTES;

/// The window `GET /admin/usage` exports without `?window=` or `?from=&to=`: 3 hours, as
/// the edge's default.
const DEFAULT_USAGE_WINDOW_SECONDS: i64 = 10_800;

/// Records one export holds at most (about 30 MB); a larger window is cut, and says so.
const MAX_EXPORTED_RECORDS: usize = 100_000;

/// A refusal: HTTP status, code, message.
type Refusal = (u16, &'static str, String);

fn invalid(message: impl Into<String>) -> Refusal {
    (400, "invalid_input", message.into())
}

fn unavailable(error: StateError) -> Refusal {
    (503, "state_unavailable", error.to_string())
}

/// When a change with `ttl` seconds lapses.
fn until(now: i64, ttl: Option<u64>) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)))
}

/// Handles an `/admin/...` request.
pub(crate) async fn handle<S: State>(app: &Arc<App<S>>, req: Request<Incoming>) -> Response<Body> {
    if app.admin_token.is_none() {
        return error_response(404, "admin_disabled", "set STREAMGATE_ADMIN_TOKEN (32 bytes or more) to enable /admin");
    }
    if !authorized(&app.admin_token, req.headers()) {
        return error_response(401, "unauthorized", "missing or wrong admin token");
    }
    let now = unix_now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = |name: &str| query_value(parts.uri.query().unwrap_or(""), name);
    let answer = match (&parts.method, path.as_str()) {
        (&Method::GET, "/admin/usage") => {
            let (window, from, to) = (query("window"), query("from"), query("to"));
            match Window::from_query(
                window.as_deref(),
                from.as_deref(),
                to.as_deref(),
                DEFAULT_USAGE_WINDOW_SECONDS,
                now,
            ) {
                Err(why) => Err(invalid(why)),
                Ok(window) => match app.state.usage(window, MAX_EXPORTED_RECORDS).await {
                    Ok((records, truncated)) => return usage_lines(&records, truncated),
                    Err(error) => Err(unavailable(error)),
                },
            }
        }
        (&Method::GET, "/admin/sessions") => {
            let key = match (query("jti"), query("sub")) {
                (Some(jti), None) => Some(session_key(None, Some(&jti), String::new)),
                (None, Some(sub)) => Some(session_key(Some(&sub), None, String::new)),
                _ => None,
            };
            match key {
                None => Err(invalid("give ?jti= or ?sub=")),
                Some(key) => match app.state.hub(&key).await {
                    Ok(hub) => Ok(json!({ "sessions": hub.list.sessions, "usage": hub.usage })),
                    Err(error) => Err(unavailable(error)),
                },
            }
        }
        (&Method::POST, _) => match read_json(body, app.body_timeout).await {
            Ok(request) => apply(app, &path, request, now).await,
            Err(refusal) => Err(refusal),
        },
        _ => Err((404, "not_found", format!("no admin route {path}"))),
    };
    match answer {
        Ok(value) => json_response(200, &value),
        Err((status, code, message)) => error_response(status, code, &message),
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` (compared in constant time);
/// never when no token is configured.
pub(crate) fn authorized(token: &Option<String>, headers: &HeaderMap) -> bool {
    let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match (token, presented.and_then(|h| h.strip_prefix("Bearer "))) {
        (Some(expected), Some(given)) => ct_eq(given.trim().as_bytes(), expected.as_bytes()),
        _ => false,
    }
}

/// The body as JSON, at most [`MAX_BODY_BYTES`], sent within `timeout`.
async fn read_json(body: Incoming, timeout: Duration) -> Result<Value, Refusal> {
    let read = Limited::new(body, MAX_BODY_BYTES).collect();
    let bytes = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| (408, "request_timeout", format!("the body took longer than {timeout:?}")))?
        .map_err(|e| invalid(format!("reading the body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
}

/// Applies a change and logs it.
async fn apply<S: State>(app: &App<S>, path: &str, body: Value, now: i64) -> Result<Value, Refusal> {
    let parse = |e: serde_json::Error| invalid(e.to_string());
    let state = &app.state;
    let (action, target, reason, ttl, result) = match path {
        "/admin/revoke" | "/admin/unrevoke" => {
            let request: RevokeRequest = serde_json::from_value(body).map_err(parse)?;
            let revoke = path == "/admin/revoke";
            let target = revocation_target(request.jti.as_deref(), request.sub.as_deref(), request.token.as_deref())
                .map_err(|e| (400, e.code(), e.to_string()))?;
            let until = until(now, request.ttl);
            let mut lifted = false;
            for id in &target.ids {
                if revoke {
                    state.revoke(id, until, now).await.map_err(unavailable)?;
                } else {
                    lifted |= state.unrevoke(id, now).await.map_err(unavailable)?;
                }
                // Open sessions end at their next heartbeat.
                let revocation = Revocation { id: id.clone(), until, at: now };
                for key in &target.session_keys {
                    state
                        .update_hub(key, now, |hub| hub.set_revoked(revocation.clone(), revoke))
                        .await
                        .map_err(unavailable)?;
                }
            }
            let named = target.ids.first().cloned().unwrap_or_default();
            let mut result =
                json!({ "ok": true, "ids": target.ids, "sessionKeys": target.session_keys, "revoked": revoke });
            if !revoke {
                // As at the edge: a revocation that lapsed lifts nothing, and says so.
                if let Some(object) = result.as_object_mut() {
                    object.insert("lifted".into(), json!(lifted));
                }
            }
            (if revoke { "revoke" } else { "unrevoke" }, named, request.reason, request.ttl, result)
        }
        "/admin/block" | "/admin/unblock" => {
            let request: BlockRequest = serde_json::from_value(body).map_err(parse)?;
            let block = path == "/admin/block";
            let range = IpRange::parse(&request.ip).map_err(invalid)?;
            let until = if block {
                check_block_range(&range, request.force).map_err(|e| (400, e.code(), e.to_string()))?;
                let until = until(now, request.ttl);
                state.block(range, until, now).await.map_err(unavailable)?;
                until
            } else {
                if !state.unblock(range, now).await.map_err(unavailable)? {
                    let blocks = state.blocks(now).await.map_err(unavailable)?;
                    return Err((404, "not_found", nothing_to_unblock(&range, &blocks.lookup, now)));
                }
                None
            };
            let result = json!({ "ok": true, "ip": range.to_string(), "blocked": block, "until": until });
            (if block { "block" } else { "unblock" }, range.to_string(), request.reason, request.ttl, result)
        }
        "/admin/referrers/block" | "/admin/referrers/unblock" => {
            let request: ReferrerRequest = serde_json::from_value(body).map_err(parse)?;
            let block = path == "/admin/referrers/block";
            let host = blocked_referrer_host(&request.host).map_err(invalid)?;
            if block {
                state.block_referrer(&host, until(now, request.ttl), now).await.map_err(unavailable)?;
            } else if !state.unblock_referrer(&host, now).await.map_err(unavailable)? {
                let blocks = state.blocks(now).await.map_err(unavailable)?;
                return Err((404, "not_found", nothing_to_unblock_referrer(&host, &blocks.referrers)));
            }
            let result = json!({ "ok": true, "host": host, "blocked": block });
            (if block { "block_referrer" } else { "unblock_referrer" }, host, request.reason, request.ttl, result)
        }
        _ => return Err((404, "not_found", format!("no admin route {path}"))),
    };
    tracing::info!(target: "streamgate::admin", action, named = target, reason, ttl, "admin change");
    Ok(result)
}

/// Usage records as JSON Lines, one [`streamgate_core::detection::UsageEvent`] per line.
fn usage_lines(records: &[streamgate_core::detection::UsageEvent], truncated: bool) -> Response<Body> {
    let mut lines = String::new();
    for record in records {
        if let Ok(line) = serde_json::to_string(record) {
            lines.push_str(&line);
            lines.push('\n');
        }
    }
    let mut answer = response(200, full(lines));
    let headers = answer.headers_mut();
    set_header(headers, "Content-Type", "application/x-ndjson");
    set_header(headers, "Cache-Control", "no-store");
    if truncated {
        set_header(headers, "X-Streamgate-Truncated", "1");
    }
    answer
}

/// The first value of query parameter `name`, percent-decoded (`+` is a space).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(query_value("a=1&sub=user%2042&x", "sub").as_deref(), Some("user 42"));
        assert_eq!(query_value("window=3h", "window").as_deref(), Some("3h"));
        assert_eq!(query_value("x", "x").as_deref(), Some(""));
        assert_eq!(query_value("jti=a+b", "jti").as_deref(), Some("a b"));
        assert_eq!(query_value("", "jti"), None);
    }
}
