//! Gate configuration from `wrangler.toml` vars and `wrangler secret put` secrets, built
//! once per isolate.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use streamgate_core::config::GateConfig;
use streamgate_core::detection::DetectorConfig;
use streamgate_core::gateway::Gateway;
use streamgate_core::policy::parse_public_paths;
use streamgate_core::revocation::MAX_TTL_SECONDS;
use worker::Env;

/// Everything the gate needs, parsed and validated.
pub struct Settings {
    /// The request flow, its gate and session rules (the core's).
    pub gateway: Gateway,
    pub admin_token: Option<String>,
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

/// The configuration document is `KEYS` (its `keys`) and `GATE_CONFIG` (the rest); the
/// `SESSION_*`, `AT_LIMIT`, `ON_STORE_ERROR`, `COOKIE_TRANSPORT`, `CLIENT_IP_HEADER` and
/// `PUBLIC_PATHS` vars, when set, override the members of the same meaning.
fn parse(env: &Env) -> Result<Settings, String> {
    let keys = text(env, "KEYS").ok_or("KEYS is not set (wrangler secret put KEYS)")?;
    let options = text(env, "GATE_CONFIG").unwrap_or_else(|| "{}".into());
    let mut config = GateConfig::from_json(&options).map_err(|e| format!("GATE_CONFIG: {e}"))?;
    config.keys = serde_json::from_str(&keys).map_err(|e| format!("KEYS is not a JSON array: {e}"))?;
    let public = parse_public_paths(text(env, "PUBLIC_PATHS").as_deref().unwrap_or(""))
        .map_err(|e| format!("PUBLIC_PATHS: {e}"))?;
    config.policy.public_paths.extend(public);
    // CF-Connecting-IP is Cloudflare's own and cannot be forged: it is the peer, not a header
    // to believe from proxies.
    if let Some(header) = text(env, "CLIENT_IP_HEADER")
        .filter(|h| !h.trim().is_empty() && !h.trim().eq_ignore_ascii_case("CF-Connecting-IP"))
    {
        config.client_ip_header = Some(header);
    }
    if let Some(secret) = text(env, "SESSION_SECRET") {
        config.sessions.secret = Some(secret);
    }
    let sessions = &mut config.sessions;
    overlay(env, "SESSION_TTL", &mut sessions.ttl, seconds)?;
    overlay(env, "SESSION_GRACE", &mut sessions.grace, seconds)?;
    overlay(env, "SESSION_MAX_AGE", &mut sessions.max_age, seconds)?;
    overlay(env, "SESSION_IDLE", &mut sessions.idle, seconds)?;
    overlay(env, "SESSION_BINDING", &mut sessions.binding, named)?;
    overlay(env, "SESSION_URL_TOKEN_SCOPE", &mut sessions.url_token_scope, named)?;
    overlay(env, "AT_LIMIT", &mut sessions.at_limit, named)?;
    overlay(env, "ON_STORE_ERROR", &mut sessions.on_store_error, named)?;
    overlay(env, "COOKIE_TRANSPORT", &mut sessions.cookie, on_off)?;
    if config.sessions.secret.is_none() {
        return Err("SESSION_SECRET is not set (wrangler secret put SESSION_SECRET)".into());
    }
    let deployment = config.build_deployment().map_err(|e| format!("KEYS/GATE_CONFIG: {e}"))?;
    let origin = text(env, "ORIGIN_URL").ok_or("ORIGIN_URL is not set")?;
    let gateway = Gateway::new(deployment, &origin).map_err(|e| format!("ORIGIN_URL/SESSION_SECRET: {e}"))?;
    let admin_token = text(env, "ADMIN_TOKEN").filter(|t| !t.is_empty());
    if admin_token.as_ref().is_some_and(|t| t.len() < MIN_ADMIN_TOKEN_BYTES) {
        return Err(format!(
            "ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_BYTES} bytes (streamgate keygen --alg HS256 makes one)"
        ));
    }
    let session_idle_seconds = gateway.deployment.idle_seconds;
    Ok(Settings {
        gateway,
        admin_token,
        guardian: GuardianSettings {
            window_seconds: i64::from(positive(env, "GUARDIAN_WINDOW", 10_800)?),
            bucket_seconds: i64::from(positive(env, "GUARDIAN_BUCKET", 300)?),
            retention_seconds: i64::from(positive(env, "GUARDIAN_RETENTION", 604_800)?),
            auto_revoke: switch(env, "GUARDIAN_AUTO_REVOKE")?,
            revoke_score: match number(env, "GUARDIAN_REVOKE_SCORE", 80)? {
                score @ 1..=100 => u8::try_from(score).unwrap_or(100),
                other => return Err(format!("GUARDIAN_REVOKE_SCORE must be 1 to 100, not {other}")),
            },
            revoke_ttl: match u64::from(positive(env, "GUARDIAN_REVOKE_TTL", 86_400)?) {
                ttl if ttl > MAX_TTL_SECONDS => {
                    return Err(format!("GUARDIAN_REVOKE_TTL must be at most {MAX_TTL_SECONDS} seconds, not {ttl}"))
                }
                ttl => ttl,
            },
            detector: {
                let mut detector = match text(env, "GUARDIAN_CONFIG") {
                    None => DetectorConfig::default(),
                    Some(json) => DetectorConfig::from_json(&json).map_err(|e| format!("GUARDIAN_CONFIG: {e}"))?,
                };
                // Sessions split at a gap shorter than the gate's own idle time.
                detector.timing = detector.timing.covering_sessions(session_idle_seconds);
                detector
            },
        },
    })
}

/// Sets `member` from var `name` when the var is set.
fn overlay<T>(
    env: &Env,
    name: &str,
    member: &mut Option<T>,
    parse: fn(&str, &str) -> Result<T, String>,
) -> Result<(), String> {
    if let Some(value) = text(env, name) {
        *member = Some(parse(name, value.trim())?);
    }
    Ok(())
}

fn seconds(name: &str, value: &str) -> Result<u32, String> {
    value.parse().map_err(|_| format!("{name} must be a whole number of seconds, not {value:?}"))
}

/// A value named as in the configuration document (`reject-new`, `network`, `closed` …).
fn named<T: DeserializeOwned>(name: &str, value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.to_owned())).map_err(|e| format!("{name}: {e}"))
}

fn on_off(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{name} must be on or off, not {other:?}")),
    }
}

/// An `on`/`off` var, off when unset.
fn switch(env: &Env, name: &str) -> Result<bool, String> {
    text(env, name).map_or(Ok(false), |value| on_off(name, value.trim()))
}

/// A whole number of seconds above zero.
fn positive(env: &Env, name: &str, default: u32) -> Result<u32, String> {
    match number(env, name, default)? {
        0 => Err(format!("{name} must be above zero")),
        n => Ok(n),
    }
}
