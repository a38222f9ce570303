//! UNVERIFIED decoding, for inspection tools and browsers. Nothing here checks a
//! signature, a time or a key: never base an access decision on it.

use serde_json::{json, Value};

use crate::grant::present_fields;

use crate::denial::Denial;
use crate::grant::{fingerprint, session_key};
use crate::policy::path::normalize_path;
use crate::schemes::{detect_scheme, edgeauth, find_in_query, jwt, secure_link, split_url, wmsauth, SchemeKind};

/// A decoded, UNVERIFIED credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The scheme it appears to be.
    pub scheme: SchemeKind,
    /// Its decoded fields.
    pub fields: Value,
}

/// A credential found in a bare token or a signed URL.
struct Located<'a> {
    scheme: SchemeKind,
    value: String,
    /// The URL's path, when a URL was given.
    path: Option<&'a str>,
}

fn locate(token_or_url: &str) -> Result<Located<'_>, Denial> {
    let input = token_or_url.trim();
    if input.contains("://") || input.starts_with('/') || input.contains('?') {
        let (path, query) = split_url(input);
        let credential = find_in_query(query).ok_or(Denial::MissingToken)?;
        return Ok(Located { scheme: credential.kind, value: credential.value, path: Some(path) });
    }
    let scheme = detect_scheme(input)
        .ok_or_else(|| Denial::malformed("not a JWT, wmsAuthSign, EdgeAuth or secure_link (md5[,expires]) token"))?;
    Ok(Located { scheme, value: input.to_owned(), path: None })
}

/// Decodes a token or a signed URL without verifying it.
pub fn inspect(token_or_url: &str) -> Result<Inspection, Denial> {
    let Located { scheme, value, .. } = locate(token_or_url)?;
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

/// What names a token for revocation and session counting, read from its text alone.
/// UNVERIFIED: the token may be forged or expired. Use it to name what to revoke, never
/// to decide access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The scheme it appears to be.
    pub scheme: SchemeKind,
    /// The fingerprint of its canonical form: what [`Grant::fingerprint`] gives when the
    /// gate verifies any accepted encoding of it.
    ///
    /// [`Grant::fingerprint`]: crate::Grant::fingerprint
    pub fingerprint: String,
    /// Its `jti` (EdgeAuth `id`).
    pub token_id: Option<String>,
    /// Its `sub`.
    pub subject: Option<String>,
}

impl TokenIdentity {
    /// The key its sessions are counted under ([`session_key`]).
    pub fn session_key(&self) -> String {
        session_key(self.subject.as_deref(), self.token_id.as_deref(), || self.fingerprint.clone())
    }

    /// Every id a revocation of it is stored under: its `jti` and its fingerprint, as
    /// [`Grant::revocation_ids`](crate::Grant::revocation_ids) looks them up.
    pub fn revocation_ids(&self) -> Vec<String> {
        self.token_id.iter().cloned().chain([self.fingerprint.clone()]).collect()
    }
}

/// Names the token in a bare token of any scheme or a signed URL (`…?token=`, `?hdnts=`,
/// `?__token__=`, `?md5=…&expires=`, `?wmsAuthSign=`), without verifying it: for adapters
/// that only have the text, such as an admin API revoking "this token". Every encoding
/// the gate accepts gets the fingerprint the gate computes; text that cannot be parsed,
/// and the few forms whose canonical name needs the key (see each scheme's docs), are
/// [`Denial::Malformed`] with the reason, never a fingerprint of the text.
pub fn identity(token_or_url: &str) -> Result<TokenIdentity, Denial> {
    let Located { scheme, value, path } = locate(token_or_url).map_err(|denial| match denial {
        Denial::MissingToken => {
            Denial::malformed("the URL carries no credential (token, wmsAuthSign, hdnts, __token__, md5 or sgs)")
        }
        other => other,
    })?;
    let (canonical, token_id, subject) = match scheme {
        SchemeKind::Jwt => {
            let (canonical, claims) = jwt::canonical_unverified(&value)?;
            let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
            (canonical, text("jti"), text("sub"))
        }
        SchemeKind::WmsAuth => (wmsauth::decode(&value)?.canonical(), None, None),
        SchemeKind::EdgeAuth => {
            let fields = edgeauth::decode_as_sent(&value)?;
            let url = path.map(normalize_path).transpose().map_err(|e| Denial::malformed(e.to_string()))?;
            (fields.canonical(url.as_deref())?, fields.id, None)
        }
        SchemeKind::SecureLink => (secure_link::canonical_unverified(&value)?, None, None),
        SchemeKind::Session => {
            return Err(Denial::malformed(
                "a session credential (sgs=) names a player session, not a token: revoke the token that \
                 opened it, or its jti or sub",
            ))
        }
    };
    Ok(TokenIdentity { scheme, fingerprint: fingerprint(&canonical), token_id, subject })
}
