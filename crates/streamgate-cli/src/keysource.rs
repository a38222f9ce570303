//! `--key` values: a literal secret, `@path` (PEM, JWK, JWKS or raw bytes) or `env:NAME`.
//! Key material is never echoed back in messages.

use std::fs;

use serde_json::Value;
use streamgate_core::keys::{Algorithm, Key, KeySet};

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

/// Loads JWT keys from one `--key` argument: PEM, JWK/JWKS JSON, or an HMAC secret for
/// `alg` (HS256 when not given). `alg` also names the algorithm of a JWK without one.
pub fn jwt_keys(arg: &str, alg: Option<Algorithm>) -> Result<Vec<Key>, String> {
    let bytes = read(arg)?;
    let text = std::str::from_utf8(&bytes).ok().map(str::trim);
    match text {
        Some(t) if t.starts_with("-----BEGIN") => Ok(vec![Key::from_pem(t, alg).map_err(|e| e.to_string())?]),
        Some(t) if t.starts_with('{') => {
            let json: Value = serde_json::from_str(t).map_err(|e| format!("key JSON: {e}"))?;
            let set = match alg {
                Some(alg) => KeySet::from_jwks_with_alg(&json, alg),
                None => KeySet::from_jwks(&json),
            };
            let set = set.map_err(|e| e.to_string())?;
            Ok(set.keys().to_vec())
        }
        _ => {
            let secret =
                if arg.starts_with('@') { bytes } else { text.map(|t| t.as_bytes().to_vec()).unwrap_or(bytes) };
            let alg = alg.unwrap_or(Algorithm::HS256);
            if !alg.is_hmac() {
                return Err(format!("{alg} needs a PEM or JWK key, not a secret string"));
            }
            Ok(vec![Key::hmac(alg, &secret).map_err(|e| e.to_string())?])
        }
    }
}
