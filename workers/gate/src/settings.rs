//! Gate configuration from `wrangler.toml` vars and `wrangler secret put` secrets, built
//! once per isolate.

use std::cell::RefCell;
use std::rc::Rc;

use streamgate_core::config::GateConfig;
use streamgate_core::detection::DetectorConfig;
use streamgate_core::policy::parse_public_paths;
use streamgate_core::schemes::session::{SessionBinding, SessionOptions, SessionScheme};
use streamgate_core::sessions::AtLimit;
use streamgate_core::Gate;
use worker::Env;

/// What a store failure means for a new session (admitted sessions always keep playing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStoreError {
    /// Admit the new session (availability first; the default).
    Open,
    /// Refuse it with 503 (enforcement first).
    Closed,
}

/// Everything the gate needs, parsed and validated.
pub struct Settings {
    pub gate: Gate,
    pub sessions: SessionScheme,
    pub origin: String,
    pub admin_token: Option<String>,
    pub idle_seconds: i64,
    pub at_limit: AtLimit,
    pub on_store_error: OnStoreError,
    /// A header holding the client IP that a trusted proxy in front of the gate sets;
    /// `None` for Cloudflare's own `CF-Connecting-IP`, which clients cannot forge.
    pub client_ip_header: Option<String>,
    /// Also hand out the session credential as a path-scoped, time-bounded cookie.
    pub cookie_transport: bool,
    /// Token Guardian.
    pub guardian: GuardianSettings,
}

/// Token Guardian's settings (`GUARDIAN_*` vars).
pub struct GuardianSettings {
    /// The window the scheduled detection looks at, seconds (`GUARDIAN_WINDOW`, 3 h).
    pub window_seconds: i64,
    /// Usage rollup bucket, seconds (`GUARDIAN_BUCKET`, 5 min): each token's Durable
    /// Object flushes at most once per bucket.
    pub bucket_seconds: i64,
    /// How long rollups and raw usage are kept, seconds (`GUARDIAN_RETENTION`, 7 days).
    pub retention_seconds: i64,
    /// Whether the scheduled detection revokes tokens by itself (`GUARDIAN_AUTO_REVOKE`,
    /// off by default).
    pub auto_revoke: bool,
    /// The score from which it does (`GUARDIAN_REVOKE_SCORE`, 80).
    pub revoke_score: u8,
    /// For how long, seconds (`GUARDIAN_REVOKE_TTL`, a day): reversible, and it lapses.
    pub revoke_ttl: u64,
    /// The detector's thresholds, allowed referrers and own networks (`GUARDIAN_CONFIG`,
    /// JSON, as `streamgate scan --config` reads it).
    pub detector: DetectorConfig,
}

/// The shortest admin token accepted, bytes.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

thread_local! {
    static CACHED: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

fn text(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
}

fn number(env: &Env, name: &str, default: u32) -> Result<u32, String> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name} must be a whole number of seconds, not {v:?}")),
    }
}

/// The settings for this isolate, parsed on first use.
pub fn get(env: &Env) -> Result<Rc<Settings>, String> {
    if let Some(settings) = CACHED.with(|c| c.borrow().clone()) {
        return Ok(settings);
    }
    let settings = Rc::new(parse(env)?);
    CACHED.with(|c| *c.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}

fn parse(env: &Env) -> Result<Settings, String> {
    let keys = text(env, "KEYS").ok_or("KEYS is not set (wrangler secret put KEYS)")?;
    let options = text(env, "GATE_CONFIG").unwrap_or_else(|| "{}".into());
    let mut config = GateConfig::from_json(&options).map_err(|e| format!("GATE_CONFIG: {e}"))?;
    config.keys = serde_json::from_str(&keys).map_err(|e| format!("KEYS is not a JSON array: {e}"))?;
    let public = parse_public_paths(text(env, "PUBLIC_PATHS").as_deref().unwrap_or(""))
        .map_err(|e| format!("PUBLIC_PATHS: {e}"))?;
    config.policy.public_paths.extend(public);
    let client_ip_header = text(env, "CLIENT_IP_HEADER")
        .filter(|h| !h.trim().is_empty() && !h.trim().eq_ignore_ascii_case("CF-Connecting-IP"));
    if client_ip_header.is_some() && config.policy.trusted_proxies.is_empty() {
        return Err(
            "CLIENT_IP_HEADER is believed only from trusted proxies: list them in GATE_CONFIG policy.trustedProxies"
                .into(),
        );
    }
    let gate = config.build().map_err(|e| format!("KEYS/GATE_CONFIG: {e}"))?;
    let secret = text(env, "SESSION_SECRET").ok_or("SESSION_SECRET is not set (wrangler secret put SESSION_SECRET)")?;
    let defaults = SessionOptions::default();
    let options = SessionOptions {
        ttl: number(env, "SESSION_TTL", defaults.ttl)?,
        grace: number(env, "SESSION_GRACE", defaults.grace)?,
        max_age: number(env, "SESSION_MAX_AGE", defaults.max_age)?,
        binding: match text(env, "SESSION_BINDING").as_deref() {
            None | Some("none") => SessionBinding::None,
            Some("network") => SessionBinding::Network,
            Some(other) => return Err(format!("SESSION_BINDING must be none or network, not {other:?}")),
        },
    };
    let sessions = SessionScheme::new(secret.as_bytes(), options).map_err(|e| format!("SESSION_*: {e}"))?;
    let admin_token = text(env, "ADMIN_TOKEN").filter(|t| !t.is_empty());
    if admin_token.as_ref().is_some_and(|t| t.len() < MIN_ADMIN_TOKEN_BYTES) {
        return Err(format!(
            "ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_BYTES} bytes (streamgate keygen --alg HS256 makes one)"
        ));
    }
    let gate = gate.with_scheme(Box::new(sessions.clone()));
    let origin = text(env, "ORIGIN_URL").ok_or("ORIGIN_URL is not set")?.trim_end_matches('/').to_owned();
    let at_limit = match text(env, "AT_LIMIT").as_deref() {
        None | Some("reject-new") => AtLimit::RejectNew,
        Some("evict-oldest") => AtLimit::EvictOldest,
        Some(other) => return Err(format!("AT_LIMIT must be reject-new or evict-oldest, not {other:?}")),
    };
    let on_store_error = match text(env, "ON_STORE_ERROR").as_deref() {
        None | Some("open") => OnStoreError::Open,
        Some("closed") => OnStoreError::Closed,
        Some(other) => return Err(format!("ON_STORE_ERROR must be open or closed, not {other:?}")),
    };
    Ok(Settings {
        gate,
        sessions,
        origin,
        admin_token,
        idle_seconds: i64::from(number(env, "SESSION_IDLE", 60)?),
        at_limit,
        on_store_error,
        client_ip_header,
        cookie_transport: switch(env, "COOKIE_TRANSPORT")?,
        guardian: GuardianSettings {
            window_seconds: i64::from(positive(env, "GUARDIAN_WINDOW", 10_800)?),
            bucket_seconds: i64::from(positive(env, "GUARDIAN_BUCKET", 300)?),
            retention_seconds: i64::from(positive(env, "GUARDIAN_RETENTION", 604_800)?),
            auto_revoke: switch(env, "GUARDIAN_AUTO_REVOKE")?,
            revoke_score: match number(env, "GUARDIAN_REVOKE_SCORE", 80)? {
                score @ 1..=100 => u8::try_from(score).unwrap_or(100),
                other => return Err(format!("GUARDIAN_REVOKE_SCORE must be 1 to 100, not {other}")),
            },
            revoke_ttl: u64::from(positive(env, "GUARDIAN_REVOKE_TTL", 86_400)?),
            detector: match text(env, "GUARDIAN_CONFIG") {
                None => DetectorConfig::default(),
                Some(json) => DetectorConfig::from_json(&json).map_err(|e| format!("GUARDIAN_CONFIG: {e}"))?,
            },
        },
    })
}

/// An `on`/`off` var, off when unset.
fn switch(env: &Env, name: &str) -> Result<bool, String> {
    match text(env, name).as_deref() {
        None | Some("off") => Ok(false),
        Some("on") => Ok(true),
        Some(other) => Err(format!("{name} must be on or off, not {other:?}")),
    }
}

/// A whole number of seconds above zero.
fn positive(env: &Env, name: &str, default: u32) -> Result<u32, String> {
    match number(env, name, default)? {
        0 => Err(format!("{name} must be above zero")),
        n => Ok(n),
    }
}
