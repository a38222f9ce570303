//! # streamgate-wasm
//!
//! The bindings behind the npm package `streamgate`. Thin by design: JSON in, JSON out,
//! every decision made by `streamgate-core`. Failures are thrown as a JSON string
//! `{"code": …, "message": …}`; the JS glue turns it into a `StreamgateError` whose
//! `code` is a reason code (denials) or `invalid_key` / `invalid_input`.
//!
//! What it is not: a place for policy. Time comes in from JS (`now`, unix seconds).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(feature = "public-key")]
mod node_crypto;
mod sign;

/// Who does each key's primitive work: node:crypto when installed, or the core itself in
/// the HMAC-only build (HMAC always stays in wasm).
#[cfg(feature = "public-key")]
use node_crypto::NodeProvider as Platform;
use serde_json::json;
use streamgate_core::config::{request_context, GateConfig};
#[cfg(not(feature = "public-key"))]
use streamgate_core::keys::PureRust as Platform;
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::{find_in_query, split_url, Credential, SchemeKind};
use streamgate_core::sessions::{KnownCount, SessionLimiter};
use streamgate_core::{Decision, Denial, Error, Gate, Grant, Hooks, ReasonCode, RequestContext};
use wasm_bindgen::prelude::*;

/// A thrown error: `{"code", "message"}` as JSON text.
pub(crate) fn thrown(code: &str, message: impl core::fmt::Display) -> String {
    json!({ "code": code, "message": message.to_string() }).to_string()
}

pub(crate) fn config_error(error: &Error) -> String {
    thrown(error.code(), error)
}

fn denial_error(denial: &Denial) -> String {
    thrown(denial.reason().as_str(), denial)
}

/// Seconds from JS (`Date.now() / 1000` or a caller's value), checked to be a sane integer.
pub(crate) fn seconds(now: f64) -> Result<i64, String> {
    if now.is_finite()
        && now.fract() == 0.0
        && (0.0..=streamgate_core::timestamp::MAX_UNIX_SECONDS as f64).contains(&now)
    {
        // Finite, integral and in range: the cast is exact.
        Ok(now as i64)
    } else {
        Err(thrown("invalid_input", format!("now must be whole unix seconds, got {now}")))
    }
}

/// A gate built once from a key set and options, reused for every verification.
#[wasm_bindgen]
pub struct Verifier {
    gate: Gate,
    revocations: MemoryRevocations,
    blocklist: MemoryBlocklist,
}

/// Revocation and block lists the caller holds: `{"revoked": [ids], "blockedIps": [ranges]}`.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct Lists {
    revoked: Vec<String>,
    blocked_ips: Vec<IpRange>,
}

#[wasm_bindgen]
impl Verifier {
    /// Builds a verifier from `{"keys": [...], "jwt": {...}, "policy": {...}}` and the
    /// caller's lists `{"revoked": [...], "blockedIps": [...]}`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, lists: &str) -> Result<Verifier, String> {
        let gate = GateConfig::from_json(config)
            .and_then(|config| config.build_with(&Platform))
            .map_err(|e| config_error(&e))?;
        let lists: Lists = serde_json::from_str(lists).map_err(|e| thrown("invalid_input", e))?;
        let mut revocations = MemoryRevocations::default();
        lists.revoked.into_iter().for_each(|id| revocations.revoke(id, None));
        let mut blocklist = MemoryBlocklist::default();
        lists.blocked_ips.into_iter().for_each(|range| blocklist.block(range, None));
        Ok(Verifier { gate, revocations, blocklist })
    }

    /// Verifies a bare credential of `scheme`; returns its claims as JSON. The request is
    /// `path` and `ip`, or the whole context as JSON (then without `path` and `ip`).
    /// `active_sessions`, when known, makes this a session start checked against the limit.
    #[allow(clippy::too_many_arguments)] // one crossing of the JS boundary per verification
    pub fn verify_token(
        &self,
        scheme: &str,
        token: &str,
        path: Option<String>,
        ip: Option<String>,
        context: Option<String>,
        now: f64,
        active_sessions: Option<u32>,
    ) -> Result<String, String> {
        let kind =
            SchemeKind::parse(scheme).ok_or_else(|| thrown("invalid_input", format!("unknown scheme {scheme:?}")))?;
        let ctx = request(path, ip, context.as_deref())?;
        let credential = Credential { kind, value: token.to_owned() };
        self.decide(Some(credential), ctx, now, active_sessions).map(|grant| grant.claims_json().into_owned())
    }

    /// Verifies a signed URL, finding the credential in its query; the URL's path is the
    /// request path unless the context gives one. Returns `{"scheme", "claims"}` as JSON.
    pub fn verify_url(
        &self,
        url: &str,
        context: &str,
        now: f64,
        active_sessions: Option<u32>,
    ) -> Result<String, String> {
        let (path, query) = split_url(url);
        let mut ctx = request(None, None, Some(context))?;
        if ctx.path.is_empty() {
            path.clone_into(&mut ctx.path);
        }
        let grant = self.decide(find_in_query(query), ctx, now, active_sessions)?;
        // The claims are JSON already (for a JWT, the payload as signed): no re-encoding.
        Ok(format!(r#"{{"scheme":"{}","claims":{}}}"#, grant.scheme.as_str(), grant.claims_json()))
    }
}

/// The request: from `path` and `ip`, or from the context's JSON.
fn request(path: Option<String>, ip: Option<String>, context: Option<&str>) -> Result<RequestContext, String> {
    let mut ctx = match context {
        Some(json) => request_context(json).map_err(|e| config_error(&e))?,
        None => RequestContext::default(),
    };
    if let Some(path) = path {
        ctx.path = path;
    }
    if let Some(ip) = ip {
        let parsed = ip
            .parse()
            .map_err(|_| thrown("invalid_input", format!("invalid context: ip {ip:?} is not an IP address")))?;
        ctx.peer_ip = Some(parsed);
    }
    Ok(ctx)
}

impl Verifier {
    fn decide(
        &self,
        credential: Option<Credential>,
        mut ctx: RequestContext,
        now: f64,
        active_sessions: Option<u32>,
    ) -> Result<Grant, String> {
        let now = seconds(now)?;
        ctx.starts_session = active_sessions.is_some();
        let mut sessions = KnownCount(active_sessions.unwrap_or(0));
        let mut hooks = Hooks {
            revocations: &self.revocations,
            blocklist: &self.blocklist,
            sessions: active_sessions.map(|_| &mut sessions as &mut dyn SessionLimiter),
        };
        match self.gate.check(credential.as_ref(), &ctx, now, &mut hooks) {
            Decision::Allow { grant, .. } => Ok(grant),
            Decision::Deny { denial, .. } => Err(denial_error(&denial)),
        }
    }
}

/// Signs per `options` (`{"scheme": …}`, see the npm docs); with `url`, returns the signed URL.
#[wasm_bindgen]
pub fn sign(options: &str, url: Option<String>, now: f64) -> Result<String, String> {
    sign::sign(options, url.as_deref(), seconds(now)?)
}

/// Generates a key for `alg`: `{"alg", "kid"?, "jwk", "publicJwk"?}` as JSON.
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key(alg: &str, kid: Option<String>) -> Result<String, String> {
    let alg = Algorithm::parse(alg).ok_or_else(|| thrown("invalid_input", format!("unsupported algorithm {alg:?}")))?;
    let key = Key::generate(alg, &mut rand_core::OsRng).map_err(|e| config_error(&e))?.with_kid(kid.as_deref());
    let public = key.public_key().map(|k| k.to_jwk(false));
    Ok(json!({ "alg": alg.as_str(), "kid": kid, "jwk": key.to_jwk(true), "publicJwk": public }).to_string())
}

/// The reason-code table: `[{"code", "status", "description"}]` as JSON.
#[wasm_bindgen(js_name = reasonCodes)]
pub fn reason_codes() -> String {
    let rows: Vec<_> = ReasonCode::ALL
        .iter()
        .map(|c| json!({ "code": c.as_str(), "status": c.http_status(), "description": c.description() }))
        .collect();
    serde_json::Value::Array(rows).to_string()
}
