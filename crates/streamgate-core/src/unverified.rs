//! UNVERIFIED decoding, for inspection tools and browsers. Nothing here checks a
//! signature, a time or a key: never base an access decision on it.

use serde_json::{json, Value};

use crate::grant::present_fields;

use crate::denial::Denial;
use crate::schemes::{detect_scheme, edgeauth, find_in_query, jwt, split_url, wmsauth, SchemeKind};

/// A decoded, UNVERIFIED credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The scheme it appears to be.
    pub scheme: SchemeKind,
    /// Its decoded fields.
    pub fields: Value,
}

/// Decodes a token or a signed URL without verifying it.
pub fn inspect(token_or_url: &str) -> Result<Inspection, Denial> {
    let input = token_or_url.trim();
    let (scheme, value) = if input.contains("://") || input.starts_with('/') || input.contains('?') {
        let (_, query) = split_url(input);
        let credential = find_in_query(query).ok_or(Denial::MissingToken)?;
        (credential.kind, credential.value)
    } else {
        let kind = detect_scheme(input).ok_or_else(|| Denial::malformed("not a JWT, wmsAuthSign or EdgeAuth token"))?;
        (kind, input.to_owned())
    };
    let fields = match scheme {
        SchemeKind::Jwt => {
            let decoded = jwt::decode_unverified(&value)?;
            json!({ "header": decoded.header, "claims": decoded.claims })
        }
        SchemeKind::WmsAuth => {
            let f = wmsauth::decode(&value)?;
            json!({
                "server_time": f.server_time, "server_time_unix": f.server_time_unix,
                "hash_value": f.hash_value, "validminutes": f.valid_minutes,
                "expires_unix": f.server_time_unix + i64::from(f.valid_minutes) * 60,
                "strm_len": f.stream_len,
            })
        }
        SchemeKind::EdgeAuth => {
            let f = edgeauth::decode(&value)?;
            json!({
                "ip": f.ip, "st": f.start, "exp": f.expires, "acl": f.acl,
                "id": f.id, "data": f.data, "hmac": f.hmac,
            })
        }
        SchemeKind::Session => {
            let payload = value.split('.').nth(1).and_then(crate::encoding::b64_url_decode);
            let claims: Value = payload
                .and_then(|p| serde_json::from_slice(&p).ok())
                .ok_or_else(|| Denial::malformed("not a v1 session credential"))?;
            json!({ "session": claims })
        }
        SchemeKind::SecureLink => {
            let (md5, expires) = value.split_once(',').unwrap_or((&value, ""));
            json!({ "md5": md5, "expires": (!expires.is_empty()).then_some(expires) })
        }
    };
    Ok(Inspection { scheme, fields: present_fields(fields) })
}
