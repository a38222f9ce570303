//! # streamgate-gate
//!
//! The edge gate: a Cloudflare Worker in front of a streaming origin. It lets through only
//! requests with a valid credential, strips the credential before the origin (so every
//! viewer shares cached segments), rewrites HLS/DASH manifests so players carry a sliding
//! session credential, counts sessions in a Durable Object per token or user, and keeps
//! revocations and blocked IPs in KV. Thin by design: every decision is streamgate-core's.
//!
//! Routes: `/healthz`, `/admin/*` (see admin), everything else is gated.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod admin;
mod boundary;
mod dashboard;
mod gate;
mod guardian;
mod revocations;
mod session_hub;
mod settings;

use streamgate_core::gateway::Incoming;
use worker::{event, web_sys, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

pub use session_hub::SessionHub;

/// Unix seconds from the runtime's clock (the adapter's job; the core never reads one).
pub(crate) fn now_seconds() -> i64 {
    (worker::Date::now().as_millis() / 1000) as i64
}

/// The fetch handler takes the runtime's own request: workers-rs's `Request` would read its
/// URL, headers and `request.cf` across the JS boundary up front, on every segment.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    let settings = match settings::get(&env) {
        Ok(s) => s,
        Err(message) => {
            let body = serde_json::json!({ "error": "misconfigured", "message": message });
            return Ok(Response::from_json(&body)?.with_status(500).into());
        }
    };
    let incoming = Incoming::for_url(req.method(), &req.url());
    let path = incoming.path.as_str();
    if path == "/healthz" {
        let schemes: Vec<&str> = settings.gateway.deployment.gate.accepted().iter().map(|k| k.as_str()).collect();
        let body = serde_json::json!({ "ok": true, "schemes": schemes, "version": env!("CARGO_PKG_VERSION") });
        return Ok(Response::from_json(&body)?.into());
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return admin::handle(Request::from(req), &env, &settings).await.map(Into::into);
    }
    gate::handle(req, incoming, &env, &ctx, &settings).await
}

/// The Cron Trigger: Token Guardian's scheduled detection (see guardian::scan).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let outcome = match settings::get(&env) {
        Ok(settings) => guardian::scan(&env, &settings, now_seconds()).await.map_err(|e| e.to_string()),
        Err(message) => Err(message),
    };
    match outcome {
        Ok(summary) => worker::console_log!("guardian scan: {}", serde_json::to_string(&summary).unwrap_or_default()),
        Err(error) => worker::console_error!("guardian scan failed: {error}"),
    }
}
