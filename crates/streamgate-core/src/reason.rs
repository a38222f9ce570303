//! The one vocabulary of reason codes, shared by the core, HTTP headers, JS errors and the CLI.

use core::fmt;

/// Why a request was denied. Closed list; `as_str` is the stable wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// No credential was found in the request.
    MissingToken,
    /// The credential could not be parsed, is oversized, or carries invalid values.
    Malformed,
    /// The signature does not match the signed content.
    BadSignature,
    /// No configured key matches the token's `kid`.
    UnknownKey,
    /// The token's algorithm is not the one its key is configured for (or is `none`).
    AlgNotAllowed,
    /// The token's validity window has ended.
    Expired,
    /// The token's validity window has not started yet.
    NotYetValid,
    /// The requested path is outside the token's stream scope, or the path is unsafe.
    ScopeMismatch,
    /// The client IP is not the one (or in the range) the token is bound to.
    IpMismatch,
    /// The Referer is missing where required, not allowed, or denied.
    ReferrerDenied,
    /// The User-Agent is not allowed or is denied.
    UserAgentDenied,
    /// A country (or catch-all) access rule blocks the request.
    GeoDenied,
    /// The token is for playing but the request publishes, or the other way round.
    PurposeMismatch,
    /// The token has been revoked.
    Revoked,
    /// The client IP is on the block list.
    IpBlocked,
    /// Starting another session would exceed the token's session limit.
    TooManySessions,
    /// The HTTP method is not one the gate lets through (play: GET, HEAD; publish: POST, PUT).
    MethodNotAllowed,
}

impl ReasonCode {
    /// Every reason code, in table order.
    pub const ALL: [ReasonCode; 17] = [
        ReasonCode::MissingToken,
        ReasonCode::Malformed,
        ReasonCode::BadSignature,
        ReasonCode::UnknownKey,
        ReasonCode::AlgNotAllowed,
        ReasonCode::Expired,
        ReasonCode::NotYetValid,
        ReasonCode::ScopeMismatch,
        ReasonCode::IpMismatch,
        ReasonCode::ReferrerDenied,
        ReasonCode::UserAgentDenied,
        ReasonCode::GeoDenied,
        ReasonCode::PurposeMismatch,
        ReasonCode::Revoked,
        ReasonCode::IpBlocked,
        ReasonCode::TooManySessions,
        ReasonCode::MethodNotAllowed,
    ];

    /// The stable snake_case code used on every surface.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MissingToken => "missing_token",
            ReasonCode::Malformed => "malformed",
            ReasonCode::BadSignature => "bad_signature",
            ReasonCode::UnknownKey => "unknown_key",
            ReasonCode::AlgNotAllowed => "alg_not_allowed",
            ReasonCode::Expired => "expired",
            ReasonCode::NotYetValid => "not_yet_valid",
            ReasonCode::ScopeMismatch => "scope_mismatch",
            ReasonCode::IpMismatch => "ip_mismatch",
            ReasonCode::ReferrerDenied => "referrer_denied",
            ReasonCode::UserAgentDenied => "user_agent_denied",
            ReasonCode::GeoDenied => "geo_denied",
            ReasonCode::PurposeMismatch => "purpose_mismatch",
            ReasonCode::Revoked => "revoked",
            ReasonCode::IpBlocked => "ip_blocked",
            ReasonCode::TooManySessions => "too_many_sessions",
            ReasonCode::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// Parses the wire form back into a code.
    pub fn parse(code: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status an edge answers with: 401 when no usable credential was presented,
    /// 429 for the session limit, 405 for a method the gate never forwards, 403 for every
    /// other denial.
    pub const fn http_status(self) -> u16 {
        match self {
            ReasonCode::MissingToken | ReasonCode::Malformed => 401,
            ReasonCode::TooManySessions => 429,
            ReasonCode::MethodNotAllowed => 405,
            _ => 403,
        }
    }

    /// One line for operators: what the code means.
    pub const fn description(self) -> &'static str {
        match self {
            ReasonCode::MissingToken => "no credential in the request",
            ReasonCode::Malformed => "credential unparsable, oversized or with invalid values",
            ReasonCode::BadSignature => "signature does not match the signed content",
            ReasonCode::UnknownKey => "no configured key for the token's kid",
            ReasonCode::AlgNotAllowed => "algorithm not the one configured for the key",
            ReasonCode::Expired => "validity window has ended",
            ReasonCode::NotYetValid => "validity window has not started",
            ReasonCode::ScopeMismatch => "path outside the token's streams, unsafe path, or foreign iss/aud",
            ReasonCode::IpMismatch => "client IP outside the token's IP binding or IP rules",
            ReasonCode::ReferrerDenied => "Referer missing, not allowed or denied",
            ReasonCode::UserAgentDenied => "User-Agent not allowed or denied",
            ReasonCode::GeoDenied => "country or catch-all access rule blocks the request",
            ReasonCode::PurposeMismatch => "token purpose (play/publish) differs from the request",
            ReasonCode::Revoked => "token revoked",
            ReasonCode::IpBlocked => "client IP on the block list",
            ReasonCode::TooManySessions => "session limit for the token reached",
            ReasonCode::MethodNotAllowed => "HTTP method never forwarded (play: GET, HEAD; publish: POST, PUT)",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(code));
        }
        let mut names: Vec<_> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ReasonCode::ALL.len());
        assert_eq!(ReasonCode::parse("nope"), None);
    }

    #[test]
    fn http_status_follows_the_table() {
        assert_eq!(ReasonCode::MissingToken.http_status(), 401);
        assert_eq!(ReasonCode::Malformed.http_status(), 401);
        assert_eq!(ReasonCode::TooManySessions.http_status(), 429);
        assert_eq!(ReasonCode::MethodNotAllowed.http_status(), 405);
        assert_eq!(ReasonCode::BadSignature.http_status(), 403);
        assert_eq!(ReasonCode::Expired.http_status(), 403);
    }
}
