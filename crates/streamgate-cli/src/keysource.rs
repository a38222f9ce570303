//! `--key` values: a literal secret, `@path` (PEM, JWK, JWKS or raw bytes) or `env:NAME`.
//! Key material is never echoed back in messages.

use std::fs;

use serde_json::{json, Map, Value};
use streamgate_core::encoding::b64_url;

/// Reads the bytes behind a `--key` argument.
pub fn read(arg: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = arg.strip_prefix('@') {
        return fs::read(path).map_err(|e| format!("cannot read key file {path}: {e}"));
    }
    if let Some(name) = arg.strip_prefix("env:") {
        return std::env::var(name)
            .map(String::into_bytes)
            .map_err(|_| format!("environment variable {name} is not set"));
    }
    Ok(arg.as_bytes().to_vec())
}

/// Reads a `--key` argument as text (WMSAuth keys, secure_link secrets, EdgeAuth hex).
pub fn read_text(arg: &str) -> Result<String, String> {
    let bytes = read(arg)?;
    let text = String::from_utf8(bytes).map_err(|_| "key is not UTF-8 text".to_owned())?;
    // A trailing newline from `echo secret > file` is never part of a secret.
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// The key-set entries (as the configuration document writes them, see
/// `streamgate_core::config`) that one JWT `--key` argument stands for: a PEM, a JWK or the
/// JWKs of a JWKS, or an HMAC secret for `alg` (HS256 when not given). `alg` also names the
/// algorithm of a JWK without one. The core builds the keys, as it does from a `--config` file.
pub fn jwt_entries(arg: &str, alg: Option<&str>) -> Result<Vec<Value>, String> {
    let bytes = read(arg)?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    let with_alg = |mut entry: Map<String, Value>| {
        if let Some(alg) = alg {
            entry.insert("alg".into(), json!(alg));
        }
        Value::Object(entry)
    };
    match text {
        Some(t) if t.starts_with("-----BEGIN") => Ok(vec![with_alg(Map::from_iter([("pem".into(), json!(t))]))]),
        Some(t) if t.starts_with('{') => {
            let json: Value = serde_json::from_str(t).map_err(|e| format!("key JSON: {e}"))?;
            let jwks = match json.get("keys") {
                Some(Value::Array(keys)) => keys.clone(),
                Some(_) => return Err("a JWKS's \"keys\" must be an array".into()),
                None => vec![json],
            };
            Ok(jwks.into_iter().map(|jwk| with_alg(Map::from_iter([("jwk".into(), jwk)]))).collect())
        }
        _ => {
            let secret =
                if arg.starts_with('@') { bytes } else { text.map(|t| t.as_bytes().to_vec()).unwrap_or(bytes) };
            let alg = alg.unwrap_or("HS256");
            Ok(vec![json!({"alg": alg, "secretBase64url": b64_url(&secret)})])
        }
    }
}
