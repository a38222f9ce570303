//! Gate configuration from `wrangler.toml` vars and `wrangler secret put` secrets, built
//! once per isolate.

use std::cell::RefCell;
use std::rc::Rc;

use streamgate_core::config::GateConfig;
use streamgate_core::schemes::session::SessionScheme;
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
    pub client_ip_header: String,
    /// Also hand out the session credential as a path-scoped, time-bounded cookie.
    pub cookie_transport: bool,
    /// Streams (globs, as in the `streams` claim) served without a credential: posters,
    /// thumbnails, subtitles. The IP block list still applies to them.
    pub public_paths: Vec<String>,
}

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
    let gate = config.build().map_err(|e| format!("KEYS: {e}"))?;
    let secret = text(env, "SESSION_SECRET").ok_or("SESSION_SECRET is not set (wrangler secret put SESSION_SECRET)")?;
    let sessions = SessionScheme::new(secret.as_bytes(), number(env, "SESSION_TTL", 120)?)
        .map_err(|e| format!("SESSION_SECRET/SESSION_TTL: {e}"))?;
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
        admin_token: text(env, "ADMIN_TOKEN").filter(|t| !t.is_empty()),
        idle_seconds: i64::from(number(env, "SESSION_IDLE", 60)?),
        at_limit,
        on_store_error,
        client_ip_header: text(env, "CLIENT_IP_HEADER").unwrap_or_else(|| "CF-Connecting-IP".into()),
        cookie_transport: match text(env, "COOKIE_TRANSPORT").as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => return Err(format!("COOKIE_TRANSPORT must be on or off, not {other:?}")),
        },
        public_paths: public_paths(text(env, "PUBLIC_PATHS").as_deref().unwrap_or(""))?,
    })
}

/// Parses `PUBLIC_PATHS` (comma-separated globs). A glob whose first segment is a wildcard
/// would open every stream, so it is refused.
fn public_paths(list: &str) -> Result<Vec<String>, String> {
    let globs = list.split(',').map(|g| g.trim().trim_matches('/')).filter(|g| !g.is_empty());
    globs
        .map(|glob| match glob.split('/').next() {
            Some(first) if !first.contains('*') => Ok(glob.to_owned()),
            _ => Err(format!("PUBLIC_PATHS: {glob:?} starts with a wildcard and would open every stream")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::public_paths;

    #[test]
    fn public_paths_are_trimmed_globs_that_never_open_everything() {
        assert_eq!(public_paths(" posters/ , /thumbs/*.jpg,,").unwrap(), ["posters", "thumbs/*.jpg"]);
        assert!(public_paths("").unwrap().is_empty());
        for wide in ["**", "*", "*/posters", "posters,**/x", "p*/x"] {
            assert!(public_paths(wide).unwrap_err().contains("would open every stream"), "{wide}");
        }
    }
}
