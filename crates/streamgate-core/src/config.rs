//! The one configuration document, and request facts, from JSON. Every adapter reads the
//! same document the same way: the edge worker (its `KEYS` secret is the `keys` member,
//! its `GATE_CONFIG` var the rest), `streamgate serve --config`, `streamgate verify
//! --config` and the npm package's `createVerifier`.
//!
//! ```json
//! {"keys": [...], "jwt": {...}, "policy": {...}, "sessions": {...}, "clientIpHeader": "X-Real-IP"}
//! ```
//!
//! A key set is an array; each entry is one of:
//! - `{"alg": "HS256", "secret": "text"}` or `{"alg": "HS256", "secretBase64url": "…"}`;
//!   at least 32 bytes for HS256, 48 for HS384, 64 for HS512 (RFC 7518 section 3.2)
//! - `{"jwk": {…}}` or `{"pem": "-----BEGIN …"}`, with an optional `"alg"` that must agree
//!   with the key (and names the algorithm of a JWK that has no `alg`, like RFC 7515 A.1's)
//! - `{"keys": [ …JWKS… ]}`
//! - `{"scheme": "wmsauth", "secret": "…", "tolerance"?: 90, "ipBound"?: true}`
//! - `{"scheme": "edgeauth", "key": "hex", "algorithm"?: "sha256", "salt"?: "…", "leeway"?: 0}`
//! - `{"scheme": "secure-link", "secret": "…", "expression"?: "…", "leeway"?: 0}`
//!
//! Any entry may carry `"kid"`. Unknown members are errors, not silently ignored.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::denial::Error;
use crate::encoding::b64_url_decode;
use crate::gate::Gate;
use crate::keys::{Algorithm, Key, KeySet, Provider, PureRust};
use crate::policy::{Policy, RequestContext};
use crate::schemes::edgeauth::{EdgeAlgorithm, EdgeAuthScheme};
use crate::schemes::jwt::JwtScheme;
use crate::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use crate::schemes::session::{SessionBinding, SessionOptions, SessionScheme, UrlTokenScope};
use crate::schemes::wmsauth::WmsAuthScheme;
use crate::sessions::AtLimit;

/// JWT verification options, besides the keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtOptions {
    /// Clock leeway in seconds (default 30).
    pub leeway: Option<u32>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
    /// Whether `exp` is required (default true).
    pub require_exp: Option<bool>,
}

/// What a store failure means for a new session (admitted sessions always keep playing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Admit the new session (availability first; the default).
    #[default]
    Open,
    /// Refuse it with 503 (enforcement first).
    Closed,
}

/// Session credentials and session counting (the `sessions` member). Every member is
/// optional; the defaults are [`SessionOptions::default`] and the ones named below.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionConfig {
    /// The secret that signs session credentials (at least 32 bytes). Without it no
    /// session credential is issued or accepted (forward-auth needs none).
    pub secret: Option<String>,
    /// Lifetime of each session credential, seconds (120).
    pub ttl: Option<u32>,
    /// How long past the entry token's expiry a session may go on, seconds (14400).
    pub grace: Option<u32>,
    /// The longest a session may go on from its start, seconds (43200).
    pub max_age: Option<u32>,
    /// `none` or `network` (bind credentials to the admitting /24 or /64).
    pub binding: Option<SessionBinding>,
    /// `exact` or `directory`: what the sessions of a token signed for one URL cover.
    pub url_token_scope: Option<UrlTokenScope>,
    /// A session without a heartbeat for this long has ended, seconds (60).
    pub idle: Option<u32>,
    /// `reject-new` or `evict-oldest` at the session limit.
    pub at_limit: Option<AtLimit>,
    /// `open` or `closed` when the session store fails.
    pub on_store_error: Option<OnStoreError>,
    /// Also hand out the session credential as a path-scoped cookie (false).
    pub cookie: Option<bool>,
}

/// The default idle gap after which a session has ended, seconds.
pub const DEFAULT_IDLE_SECONDS: u32 = 60;

/// The configuration document: keys, JWT options, policy and sessions.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateConfig {
    /// The key set (see the module docs).
    #[serde(default)]
    pub keys: Vec<Value>,
    /// JWT options.
    #[serde(default)]
    pub jwt: JwtOptions,
    /// Operator policy.
    #[serde(default)]
    pub policy: Policy,
    /// Session credentials and counting.
    #[serde(default)]
    pub sessions: SessionConfig,
    /// A request header holding the client IP, set by a proxy in front of the gate;
    /// believed only from `policy.trustedProxies` (the default is `X-Forwarded-For`).
    pub client_ip_header: Option<String>,
}

/// A built configuration: the gate and the session rules around it.
#[derive(Debug)]
pub struct Deployment {
    /// Verifies credentials (the session scheme included, when a secret is configured).
    pub gate: Gate,
    /// Issues session credentials; `None` without `sessions.secret`.
    pub sessions: Option<SessionScheme>,
    /// The idle gap after which a session has ended, seconds.
    pub idle_seconds: i64,
    /// What to do with a new session at the limit.
    pub at_limit: AtLimit,
    /// What a session store failure means for a new session.
    pub on_store_error: OnStoreError,
    /// Whether the session credential is also set as a cookie.
    pub cookie: bool,
    /// The header that carries the client IP from a trusted proxy.
    pub client_ip_header: String,
}

fn object<'a>(entry: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Error> {
    entry.as_object().ok_or_else(|| Error::key(format!("{what} must be an object")))
}

fn text<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Error> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::key(format!("key member \"{name}\" must be a string"))),
    }
}

fn require<'a>(obj: &'a Map<String, Value>, name: &str, what: &str) -> Result<&'a str, Error> {
    text(obj, name)?.ok_or_else(|| Error::key(format!("{what} needs \"{name}\"")))
}

fn number(obj: &Map<String, Value>, name: &str) -> Result<Option<u32>, Error> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::key(format!("key member \"{name}\" must be a whole number of seconds"))),
    }
}

fn only(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), Error> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Error::key(format!("{what}: unknown member \"{unknown}\""))),
        None => Ok(()),
    }
}

/// Parses the JWT keys of one key-set entry (`None` for an entry of another scheme).
pub fn jwt_keys(entry: &Value) -> Result<Option<Vec<Key>>, Error> {
    let obj = object(entry, "a key")?;
    if obj.contains_key("scheme") {
        return Ok(None);
    }
    let alg = match text(obj, "alg")? {
        Some(name) => Some(Algorithm::parse(name).ok_or_else(|| Error::key(format!("unsupported alg {name:?}")))?),
        None => None,
    };
    let kid = text(obj, "kid")?;
    let keys = if let Some(list) = obj.get("keys") {
        only(obj, &["keys"], "a JWKS")?;
        KeySet::from_jwks(&Value::Object(Map::from_iter([("keys".to_owned(), list.clone())])))?.keys().to_vec()
    } else if let Some(jwk) = obj.get("jwk") {
        only(obj, &["jwk", "alg", "kid"], "a JWK key")?;
        let key = match alg {
            Some(alg) => Key::from_jwk_with_alg(jwk, alg)?,
            None => Key::from_jwk(jwk)?,
        };
        vec![match kid {
            Some(k) => key.with_kid(Some(k)),
            None => key,
        }]
    } else if let Some(pem) = text(obj, "pem")? {
        only(obj, &["pem", "alg", "kid"], "a PEM key")?;
        vec![Key::from_pem(pem, alg)?.with_kid(kid)]
    } else {
        only(obj, &["alg", "secret", "secretBase64url", "kid"], "an HMAC key")?;
        let alg = alg.ok_or_else(|| Error::key("an HMAC key needs \"alg\" (HS256, HS384 or HS512)"))?;
        let secret = match (text(obj, "secret")?, text(obj, "secretBase64url")?) {
            (Some(s), None) => s.as_bytes().to_vec(),
            (None, Some(b)) => b64_url_decode(b).ok_or_else(|| Error::key("secretBase64url is not base64url"))?,
            _ => return Err(Error::key("an HMAC key needs exactly one of \"secret\" and \"secretBase64url\"")),
        };
        vec![Key::hmac(alg, &secret)?.with_kid(kid)]
    };
    Ok(Some(keys))
}

impl GateConfig {
    /// Parses a configuration from JSON text.
    pub fn from_json(text: &str) -> Result<GateConfig, Error> {
        serde_json::from_str(text).map_err(|e| Error::input("config", e.to_string()))
    }

    /// Builds the gate: one scheme per kind of key present (and session credentials when
    /// `sessions.secret` is set).
    pub fn build(self) -> Result<Gate, Error> {
        self.build_with(&PureRust)
    }

    /// [`GateConfig::build`] with the JWT keys' primitives chosen by `provider` (session
    /// credentials and the other schemes keep the core's code).
    pub fn build_with(self, provider: &dyn Provider) -> Result<Gate, Error> {
        self.build_deployment_with(provider).map(|deployment| deployment.gate)
    }

    /// Builds the gate and its session rules, checking every member.
    pub fn build_deployment(self) -> Result<Deployment, Error> {
        self.build_deployment_with(&PureRust)
    }

    fn build_deployment_with(mut self, provider: &dyn Provider) -> Result<Deployment, Error> {
        let client_ip_header = match self.client_ip_header.take().map(|h| h.trim().to_owned()) {
            None => "X-Forwarded-For".to_owned(),
            Some(header) if header.is_empty() || header.contains([':', ' ', '\n']) => {
                return Err(Error::input("clientIpHeader", "must be a header name"));
            }
            Some(header) if self.policy.trusted_proxies.is_empty() => {
                return Err(Error::input(
                    "clientIpHeader",
                    format!("{header} is believed only from trusted proxies: list them in policy.trustedProxies"),
                ));
            }
            Some(header) => header,
        };
        let sessions = std::mem::take(&mut self.sessions);
        let defaults = SessionOptions::default();
        let options = SessionOptions {
            ttl: sessions.ttl.unwrap_or(defaults.ttl),
            grace: sessions.grace.unwrap_or(defaults.grace),
            max_age: sessions.max_age.unwrap_or(defaults.max_age),
            binding: sessions.binding.unwrap_or_default(),
            url_tokens: sessions.url_token_scope.unwrap_or_default(),
        };
        let session_scheme = match &sessions.secret {
            Some(secret) => Some(
                SessionScheme::new(secret.as_bytes(), options)
                    .map_err(|e| Error::input("sessions.secret", e.to_string()))?,
            ),
            None => None,
        };
        let idle = sessions.idle.unwrap_or(DEFAULT_IDLE_SECONDS);
        if idle == 0 {
            return Err(Error::input("sessions.idle", "must be above zero"));
        }
        let mut gate = self.build_gate(provider)?;
        if let Some(scheme) = &session_scheme {
            gate = gate.with_scheme(Box::new(scheme.clone()));
        }
        if gate.accepted().is_empty() {
            return Err(Error::key("the key set is empty"));
        }
        Ok(Deployment {
            gate,
            sessions: session_scheme,
            idle_seconds: i64::from(idle),
            at_limit: sessions.at_limit.unwrap_or_default(),
            on_store_error: sessions.on_store_error.unwrap_or_default(),
            cookie: sessions.cookie.unwrap_or(false),
            client_ip_header,
        })
    }

    fn build_gate(self, provider: &dyn Provider) -> Result<Gate, Error> {
        for glob in &self.policy.public_paths {
            crate::policy::check_public_path(glob).map_err(|why| Error::input("policy.publicPaths", why))?;
        }
        let mut jwt = KeySet::default();
        let mut gate = Gate::new(self.policy);
        for entry in &self.keys {
            if let Some(keys) = jwt_keys(entry)? {
                for key in keys {
                    jwt.push(key.provided_by(provider)?);
                }
                continue;
            }
            let obj = object(entry, "a key")?;
            match text(obj, "scheme")? {
                Some("jwt") => return Err(Error::key("JWT keys are given without \"scheme\"")),
                Some("wmsauth") => {
                    only(obj, &["scheme", "secret", "tolerance", "ipBound", "kid"], "a wmsauth key")?;
                    let mut scheme = WmsAuthScheme::new(require(obj, "secret", "a wmsauth key")?);
                    if scheme.key.is_empty() {
                        return Err(Error::key("wmsauth secret is empty"));
                    }
                    scheme.tolerance = number(obj, "tolerance")?.unwrap_or(scheme.tolerance);
                    if let Some(bound) = obj.get("ipBound") {
                        scheme.ip_bound = bound.as_bool().ok_or_else(|| Error::key("ipBound must be true or false"))?;
                    }
                    gate = gate.with_scheme(Box::new(scheme));
                }
                Some("edgeauth") => {
                    only(obj, &["scheme", "key", "algorithm", "salt", "leeway", "kid"], "an edgeauth key")?;
                    let algorithm = match text(obj, "algorithm")? {
                        Some(name) => EdgeAlgorithm::parse(name).ok_or_else(|| {
                            Error::key(format!("edgeauth algorithm {name:?} is not sha256, sha1 or md5"))
                        })?,
                        None => EdgeAlgorithm::default(),
                    };
                    let mut scheme = EdgeAuthScheme::new(require(obj, "key", "an edgeauth key")?, algorithm)?;
                    scheme.salt = text(obj, "salt")?.map(str::to_owned);
                    scheme.leeway = number(obj, "leeway")?.unwrap_or(0);
                    gate = gate.with_scheme(Box::new(scheme));
                }
                Some("secure-link") => {
                    only(obj, &["scheme", "secret", "expression", "leeway", "kid"], "a secure-link key")?;
                    let expression = text(obj, "expression")?.unwrap_or(DEFAULT_EXPRESSION);
                    let mut scheme = SecureLinkScheme::new(require(obj, "secret", "a secure-link key")?, expression)?;
                    scheme.leeway = number(obj, "leeway")?.unwrap_or(0);
                    gate = gate.with_scheme(Box::new(scheme));
                }
                other => return Err(Error::key(format!("unknown key scheme {other:?}"))),
            }
        }
        if !jwt.keys().is_empty() {
            let mut scheme = JwtScheme::new(jwt);
            scheme.leeway = self.jwt.leeway.unwrap_or(scheme.leeway);
            scheme.issuer = self.jwt.issuer;
            scheme.audience = self.jwt.audience;
            scheme.require_exp = self.jwt.require_exp.unwrap_or(true);
            gate = gate.with_scheme(Box::new(scheme));
        }
        Ok(gate)
    }
}

/// Parses request facts from JSON: `{"path", "ip", "forwardedFor", "referer", "userAgent",
/// "country", "asn", "purpose", "method", "sessionId", "startsSession"}`, all optional.
pub fn request_context(text: &str) -> Result<RequestContext, Error> {
    serde_json::from_str(text).map_err(|e| Error::input("context", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_scheme_from_json() {
        let config = GateConfig::from_json(
            r#"{"keys": [
                {"alg": "HS256", "secret": "a secret of thirty-two bytes, ok", "kid": "a"},
                {"alg": "HS512", "secretBase64url": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
                {"scheme": "wmsauth", "secret": "k", "tolerance": 60},
                {"scheme": "edgeauth", "key": "abcd", "algorithm": "sha1"},
                {"scheme": "secure-link", "secret": "s"}
            ], "jwt": {"leeway": 5}, "policy": {"referrers": {"allow": ["*.example.com"]}}}"#,
        )
        .unwrap();
        assert!(config.policy.referrers.allow_missing, "default kept when the member is absent");
        let gate = config.build().unwrap();
        assert_eq!(gate.accepted().len(), 4);
    }

    #[test]
    fn refuses_unknown_members_and_bad_keys() {
        let bad = |json: &str| GateConfig::from_json(json).and_then(GateConfig::build).unwrap_err().to_string();
        assert!(bad(r#"{"keys": [{"alg": "HS256", "secret": "x", "extra": 1}]}"#).contains("extra"));
        assert!(bad(r#"{"keys": [{"secret": "x"}]}"#).contains("alg"));
        assert!(bad(r#"{"keys": [{"alg": "HS256", "secret": "short"}]}"#).contains("at least 32 bytes"));
        assert!(bad(r#"{"keys": [{"alg": "RS256", "secret": "x"}]}"#).contains("HMAC"));
        assert!(bad(r#"{"keys": []}"#).contains("empty"));
        assert!(bad(r#"{"keys": [{"scheme": "edgeauth", "key": "zz"}]}"#).contains("hex"));
        assert!(bad(r#"{"keys": [{"scheme": "nope"}]}"#).contains("nope"));
        assert!(bad(r#"{"kees": []}"#).contains("kees"));
    }

    /// Regression: `{"alg", "jwk"}` with a JWK that has no `alg` of its own (RFC 7515 A.1)
    /// was refused ("an oct JWK must say its alg") although the entry names it.
    #[test]
    fn jwk_entries_take_alg_from_the_entry() {
        let k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
        let entry = serde_json::json!({"alg": "HS256", "kid": "a1", "jwk": {"kty": "oct", "k": k}});
        let keys = jwt_keys(&entry).unwrap().unwrap();
        assert_eq!((keys.len(), keys[0].alg(), keys[0].kid()), (1, Algorithm::HS256, Some("a1")));
        let contradicting = serde_json::json!({"alg": "HS512", "jwk": {"kty": "oct", "alg": "HS256", "k": k}});
        assert_eq!(
            jwt_keys(&contradicting).unwrap_err(),
            Error::key("the JWK says \"alg\": \"HS256\" but the configuration says HS512")
        );
    }

    #[test]
    fn builds_sessions_and_names_the_bad_member() {
        let key = r#"{"alg": "HS256", "secret": "a secret of thirty-two bytes, ok"}"#;
        let doc = |rest: &str| format!(r#"{{"keys": [{key}]{rest}}}"#);
        let built = GateConfig::from_json(&doc(
            r#", "sessions": {"secret": "another secret of thirty-two bytes", "ttl": 30, "binding": "network",
                "urlTokenScope": "directory", "idle": 20, "atLimit": "evict-oldest", "onStoreError": "closed", "cookie": true},
                "policy": {"trustedProxies": ["10.0.0.0/8"]}, "clientIpHeader": "X-Real-IP""#,
        ))
        .and_then(GateConfig::build_deployment)
        .unwrap();
        let sessions = built.sessions.as_ref().map(|s| s.options).unwrap();
        assert_eq!(
            (sessions.ttl, sessions.binding, sessions.url_tokens),
            (30, SessionBinding::Network, UrlTokenScope::Directory)
        );
        assert_eq!(
            (built.idle_seconds, built.at_limit, built.on_store_error),
            (20, AtLimit::EvictOldest, OnStoreError::Closed)
        );
        assert_eq!((built.cookie, built.client_ip_header.as_str()), (true, "X-Real-IP"));
        assert!(built.gate.accepted().contains(&crate::schemes::SchemeKind::Session));

        let plain = GateConfig::from_json(&doc("")).and_then(GateConfig::build_deployment).unwrap();
        assert!(plain.sessions.is_none());
        let unwidened =
            GateConfig::from_json(&doc(r#", "sessions": {"secret": "another secret of thirty-two bytes"}"#));
        let unwidened =
            unwidened.and_then(GateConfig::build_deployment).unwrap().sessions.map(|s| s.options.url_tokens);
        assert_eq!(unwidened, Some(UrlTokenScope::Exact), "URL tokens are never widened unless asked");
        assert_eq!((plain.client_ip_header.as_str(), plain.idle_seconds), ("X-Forwarded-For", 60));

        let bad = |rest: &str| {
            GateConfig::from_json(&doc(rest)).and_then(GateConfig::build_deployment).unwrap_err().to_string()
        };
        assert!(bad(r#", "sessions": {"secret": "short"}"#).contains("sessions.secret"));
        assert!(bad(r#", "sessions": {"tll": 3}"#).contains("tll"));
        assert!(bad(r#", "sessions": {"binding": "city"}"#).contains("city"));
        assert!(bad(r#", "sessions": {"urlTokenScope": "origin"}"#).contains("origin"));
        assert!(bad(r#", "sessions": {"idle": 0}"#).contains("sessions.idle"));
        assert!(bad(r#", "clientIpHeader": "X-Real-IP""#).contains("policy.trustedProxies"));
    }

    #[test]
    fn parses_request_context() {
        let ctx =
            request_context(r#"{"path": "/a", "ip": "192.0.2.1", "userAgent": "x", "purpose": "publish"}"#).unwrap();
        assert_eq!(ctx.peer_ip, "192.0.2.1".parse().ok());
        assert_eq!(ctx.purpose, crate::claims::Purpose::Publish);
        let err = request_context(r#"{"ip": "nope"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid IP"), "{err}");
    }
}
