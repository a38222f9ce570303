//! What the gate answers itself (denials, manifests, preflights), as plain data every
//! adapter turns into its own response type.

use crate::denial::Denial;

/// Headers every response of the gate carries, so web players on other origins can read
/// responses (and a denial's reason). Credentials travel in URLs, never in cookies across
/// origins, so `*` is safe.
pub const CORS_HEADERS: [(&str, &str); 2] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "X-Streamgate-Reason, Content-Length, Content-Range"),
];

/// A response the gate makes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, besides [`CORS_HEADERS`].
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
    /// For the adapter's logs, never sent: the verified token a denial concerns (its `jti`,
    /// else its fingerprint). `None` when the credential did not verify.
    pub token_id: Option<String>,
}

impl Reply {
    /// A denial as the client sees it: status, `X-Streamgate-Reason` and a small JSON body.
    pub fn deny(denial: &Denial) -> Reply {
        let reason = denial.reason();
        let body = serde_json::json!({ "error": reason.as_str(), "message": denial.to_string() });
        let mut headers = vec![
            ("Content-Type", "application/json".to_owned()),
            ("X-Streamgate-Reason", reason.as_str().to_owned()),
            ("Cache-Control", "no-store".to_owned()),
        ];
        if reason.http_status() == 401 {
            headers.push(("WWW-Authenticate", "Bearer realm=\"streamgate\"".to_owned()));
        }
        Reply { status: reason.http_status(), headers, body: body.to_string(), token_id: None }
    }

    /// 502: the origin answered a playlist request with a part of it or "not modified",
    /// which the gate can neither rewrite nor count.
    pub fn partial_manifest() -> Reply {
        let message = "the origin answered a playlist with a range or 304; the gate passes whole playlists only";
        Reply::error(502, "partial_manifest", message)
    }

    /// A reply of the gate's own that is no viewer's denial: `{"error": code, "message"}`,
    /// never cached.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({ "error": code, "message": message });
        let headers = vec![("Content-Type", "application/json".to_owned()), ("Cache-Control", "no-store".to_owned())];
        Reply { status, headers, body: body.to_string(), token_id: None }
    }

    /// The answer to a CORS preflight: never forwarded to the origin.
    pub fn preflight() -> Reply {
        let headers = vec![
            ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS".to_owned()),
            ("Access-Control-Allow-Headers", "Authorization, Range".to_owned()),
            ("Access-Control-Max-Age", "86400".to_owned()),
        ];
        Reply { status: 204, headers, body: String::new(), token_id: None }
    }

    /// 503: the session store failed and `onStoreError` is `closed`.
    pub fn store_unavailable(why: &str) -> Reply {
        Reply::error(503, "session_store_unavailable", why)
    }

    /// 500: the gate cannot serve this request as configured (fail closed).
    pub fn misconfigured(why: &str) -> Reply {
        Reply::error(500, "misconfigured", why)
    }

    /// A rewritten manifest: private to its viewer, never shared from a cache.
    pub fn manifest(body: String, content_type: Option<String>, cookie: Option<String>) -> Reply {
        let mut headers = vec![
            ("Content-Type", content_type.unwrap_or_else(|| "application/vnd.apple.mpegurl".to_owned())),
            ("Cache-Control", "private, no-store".to_owned()),
        ];
        if let Some(cookie) = cookie {
            headers.push(("Set-Cookie", cookie));
        }
        Reply { status: 200, headers, body, token_id: None }
    }

    /// The same reply, naming the verified token it concerns (for logs).
    pub fn concerning(mut self, token_id: Option<String>) -> Reply {
        self.token_id = token_id;
        self
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_its_reason() {
        let reply = Reply::deny(&Denial::MissingToken);
        assert_eq!((reply.status, reply.header("x-streamgate-reason")), (401, Some("missing_token")));
        assert!(reply.header("WWW-Authenticate").is_some());
        assert!(reply.body.contains("\"error\":\"missing_token\""), "{}", reply.body);
    }
}
