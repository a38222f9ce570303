//! Signing from JS: a JWT [`Signer`] built once per key, and the other schemes' options
//! mapped onto the core's signers.

use serde::Deserialize;
use serde_json::{Map, Value};
use streamgate_core::config::jwt_keys;
use streamgate_core::keys::Key;
use streamgate_core::policy::path::normalize_path;
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EscapeStyle};
use streamgate_core::schemes::secure_link::{SecureLinkScheme, DEFAULT_EXPRESSION};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest};
use streamgate_core::schemes::{jwt, signed_url, split_url, Credential, SchemeKind};
use streamgate_core::Error;
use wasm_bindgen::prelude::*;

use crate::{config_error, seconds, thrown, Platform};

/// One ACL or several, as akamai-edgeauth accepts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Acl {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(tag = "scheme", deny_unknown_fields)]
enum SignOptions {
    #[serde(rename = "wmsauth", rename_all = "camelCase")]
    WmsAuth {
        key: String,
        #[serde(default)]
        ip: String,
        valid_minutes: u32,
        stream: Option<String>,
        date_style: Option<String>,
    },
    #[serde(rename = "edgeauth", rename_all = "camelCase")]
    EdgeAuth {
        key: String,
        algorithm: Option<String>,
        acl: Option<Acl>,
        url: Option<String>,
        ip: Option<String>,
        start_time: Option<i64>,
        end_time: Option<i64>,
        window_seconds: Option<i64>,
        session_id: Option<String>,
        payload: Option<String>,
        salt: Option<String>,
        #[serde(default)]
        escape_early: bool,
        escape_style: Option<String>,
    },
    #[serde(rename = "secure-link", rename_all = "camelCase")]
    SecureLink {
        secret: String,
        expression: Option<String>,
        uri: Option<String>,
        ip: Option<String>,
        expires: Option<i64>,
        expires_in: Option<i64>,
    },
}

fn invalid(field: &'static str, why: impl Into<String>) -> String {
    config_error(&Error::input(field, why))
}

pub(crate) fn sign(options: &str, url: Option<&str>, now: i64) -> Result<String, String> {
    let options: SignOptions = serde_json::from_str(options).map_err(|e| thrown("invalid_input", e))?;
    let credential = match options {
        SignOptions::WmsAuth { key, ip, valid_minutes, stream, date_style } => {
            let date_style = match date_style.as_deref() {
                None => DateStyle::Php,
                Some(name) => DateStyle::parse(name)
                    .ok_or_else(|| invalid("dateStyle", format!("{name:?} is not php or padded")))?,
            };
            let request =
                WmsAuthRequest { ip: &ip, server_time: now, valid_minutes, stream: stream.as_deref(), date_style };
            Credential {
                kind: SchemeKind::WmsAuth,
                value: wmsauth::sign(&key, &request).map_err(|e| config_error(&e))?,
            }
        }
        SignOptions::EdgeAuth {
            key,
            algorithm,
            acl,
            url: url_path,
            ip,
            start_time,
            end_time,
            window_seconds,
            session_id,
            payload,
            salt,
            escape_early,
            escape_style,
        } => {
            let algorithm = match algorithm.as_deref() {
                None => EdgeAlgorithm::Sha256,
                Some(name) => EdgeAlgorithm::parse(name)
                    .ok_or_else(|| invalid("algorithm", format!("{name:?} is not sha256, sha1 or md5")))?,
            };
            let escape = match (escape_early, escape_style.as_deref()) {
                (false, _) => EscapeStyle::None,
                (true, None) => EscapeStyle::Node,
                (true, Some(name)) => EscapeStyle::of_generator(name)
                    .ok_or_else(|| invalid("escapeStyle", format!("{name:?} is not node or python")))?,
            };
            let expires = match (end_time, window_seconds) {
                (Some(end), _) => end,
                (None, Some(window)) if window > 0 => start_time.unwrap_or(now).saturating_add(window),
                _ => return Err(invalid("endTime", "give endTime or a positive windowSeconds")),
            };
            let acl = match acl {
                None => Vec::new(),
                Some(Acl::One(a)) => vec![a],
                Some(Acl::Many(list)) => list,
            };
            let request = EdgeAuthRequest {
                acl,
                url: url_path,
                ip,
                start: start_time,
                expires,
                id: session_id,
                data: payload,
                salt,
                escape,
            };
            Credential {
                kind: SchemeKind::EdgeAuth,
                value: edgeauth::sign(&key, algorithm, &request).map_err(|e| config_error(&e))?,
            }
        }
        SignOptions::SecureLink { secret, expression, uri, ip, expires, expires_in } => {
            let scheme = SecureLinkScheme::new(&secret, expression.as_deref().unwrap_or(DEFAULT_EXPRESSION))
                .map_err(|e| config_error(&e))?;
            let uri = match (uri, url) {
                (Some(u), _) => u,
                (None, Some(url)) => split_url(url).0.to_owned(),
                (None, None) => return Err(invalid("uri", "give uri, or sign a URL")),
            };
            let uri = normalize_path(&uri).map_err(|d| invalid("uri", d.to_string()))?;
            let ip =
                ip.map(|s| s.parse().map_err(|_| invalid("ip", format!("{s:?} is not an IP address")))).transpose()?;
            let expires = expires.or(expires_in.map(|s| now.saturating_add(s)));
            let md5 = scheme.sign(&uri, ip, expires).map_err(|e| config_error(&e))?;
            let value = format!("{md5},{}", expires.map(|e| e.to_string()).unwrap_or_default());
            Credential { kind: SchemeKind::SecureLink, value }
        }
    };
    Ok(signed(credential, url))
}

/// The credential, or `url` signed with it.
fn signed(credential: Credential, url: Option<&str>) -> String {
    match url {
        Some(url) => signed_url(url, &credential),
        None => credential.value,
    }
}

/// A playback JWT signer built once from one key, reused for every token.
#[wasm_bindgen]
pub struct Signer {
    key: Key,
}

#[wasm_bindgen]
impl Signer {
    /// A signer for one JWT key (a key-set entry as JSON, exactly one key).
    #[wasm_bindgen(constructor)]
    pub fn new(key: &str) -> Result<Signer, String> {
        let key: Value = serde_json::from_str(key).map_err(|e| thrown("invalid_input", e))?;
        let mut keys = jwt_keys(&key).map_err(|e| config_error(&e))?.unwrap_or_default();
        if keys.len() != 1 {
            return Err(invalid("key", "signing needs exactly one JWT key"));
        }
        let key = keys.remove(0).provided_by(&Platform).map_err(|e| config_error(&e))?;
        Ok(Signer { key })
    }

    /// Signs `claims` (a JSON object) at `now`, with `iat` = `now` and, unless the claims
    /// have an `exp`, `exp` = `now + expires_in`. With `url`, returns the signed URL.
    pub fn sign(&self, claims: &str, expires_in: Option<f64>, url: Option<String>, now: f64) -> Result<String, String> {
        let now = seconds(now)?;
        let mut claims: Map<String, Value> = serde_json::from_str(claims).map_err(|e| thrown("invalid_input", e))?;
        claims.entry("iat").or_insert_with(|| now.into());
        if !claims.contains_key("exp") {
            let seconds = match expires_in {
                Some(s) if s.is_finite() && s.fract() == 0.0 && s > 0.0 && s <= i64::MAX as f64 => s as i64,
                Some(s) => return Err(invalid("expiresIn", format!("{s} is not a positive whole number of seconds"))),
                None => return Err(invalid("claims", "playback tokens must expire: set claims.exp or expiresIn")),
            };
            claims.insert("exp".into(), now.saturating_add(seconds).into());
        }
        let token = jwt::sign_json(&claims, &self.key).map_err(|e| config_error(&e))?;
        Ok(signed(Credential { kind: SchemeKind::Jwt, value: token }, url.as_deref()))
    }
}
