//! Structured logs: one JSON object per line on standard error, for every denial (reason,
//! status, route, method, path, client, token id), every admin change and the server's
//! start and stop.
//!
//! A logged path never carries a credential: the query is left out, and a credential in
//! the path (`/~sg/<credential>/…`) is cut off.

use std::net::IpAddr;

use streamgate_core::gateway::transport::without_path_credential;
use streamgate_core::gateway::Reply;

use crate::metrics::Route;

/// Sends the log to standard error, one JSON object per line, at level INFO and above.
/// Call once, early; a second call changes nothing.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What a denial log line says about the request.
pub(crate) struct Denied<'a> {
    pub route: Route,
    pub method: &'a str,
    /// The path as received (a credential in it is cut off here).
    pub path: &'a str,
    /// The client IP, as the core resolves it (trusted proxies applied).
    pub client: Option<IpAddr>,
}

/// Logs a reply the gate answered with an error status (denials and failures alike).
pub(crate) fn denial(request: &Denied<'_>, reply: &Reply) {
    let reason = code_of(reply);
    let path = without_path_credential(request.path);
    let route = match request.route {
        Route::Proxy => "proxy",
        Route::Auth => "auth",
    };
    tracing::info!(
        target: "streamgate::denial",
        reason = reason.as_str(),
        status = reply.status,
        route,
        method = request.method,
        path = path.as_str(),
        client = request.client.map(|ip| ip.to_string()),
        token_id = reply.token_id.as_deref(),
        "denied"
    );
}

/// A reply's reason code, or for a reply that is no denial (a 5xx), the `error` of its body.
pub(crate) fn code_of(reply: &Reply) -> String {
    if let Some(reason) = reply.header("X-Streamgate-Reason") {
        return reason.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|body| body.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("status_{}", reply.status))
}
