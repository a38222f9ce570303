//! Denials: why a request was refused, with the context that explains it.

use core::fmt;
use std::net::IpAddr;

use crate::claims::Purpose;
use crate::reason::ReasonCode;

/// A refused request. Each variant carries what an operator needs to see why;
/// [`Denial::reason`] maps it onto the shared [`ReasonCode`] vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No credential was presented.
    MissingToken,
    /// The credential could not be parsed or carries invalid values.
    Malformed {
        /// What exactly was wrong.
        why: String,
    },
    /// The signature did not match.
    BadSignature {
        /// The canonical content the verifier signed, secrets masked.
        explanation: Option<SignatureExplanation>,
    },
    /// The token names a key id no configured key has.
    UnknownKey {
        /// The token's `kid`, when it had one.
        kid: Option<String>,
    },
    /// The token's algorithm is not allowed for the key that would verify it.
    AlgNotAllowed {
        /// The algorithm the token asked for.
        alg: String,
    },
    /// The validity window has ended.
    Expired {
        /// End of validity, unix seconds.
        expires_at: i64,
        /// Verification time, unix seconds.
        now: i64,
        /// Clock leeway granted, seconds.
        leeway: u32,
    },
    /// The validity window has not started.
    NotYetValid {
        /// Start of validity, unix seconds.
        not_before: i64,
        /// Verification time, unix seconds.
        now: i64,
        /// Clock leeway granted, seconds.
        leeway: u32,
    },
    /// The path is outside the token's scope.
    ScopeMismatch {
        /// The normalized request path.
        path: String,
        /// The scope the token grants, human-readable.
        scope: String,
    },
    /// The path was refused before any scope check (encoded slash, `..` escape, ...).
    UnsafePath {
        /// The raw path as requested.
        path: String,
        /// Why it is unsafe.
        why: &'static str,
    },
    /// The token was issued for another issuer or audience than this service.
    ForeignToken {
        /// `iss` or `aud`.
        claim: &'static str,
        /// What this service requires.
        expected: String,
        /// What the token carries.
        found: String,
    },
    /// The client IP is outside the token's binding or an IP access rule.
    IpMismatch {
        /// The client IP that was checked, if one was known.
        client: Option<IpAddr>,
        /// What the token allows.
        expected: String,
    },
    /// The Referer check failed.
    ReferrerDenied {
        /// The Referer host, or `None` when missing.
        referrer: Option<String>,
        /// Which rule refused it.
        why: &'static str,
    },
    /// The User-Agent check failed.
    UserAgentDenied {
        /// The User-Agent (empty when missing).
        user_agent: String,
        /// Which rule refused it.
        why: &'static str,
    },
    /// A country or catch-all access rule blocked the request.
    GeoDenied {
        /// The request country, if known.
        country: Option<String>,
        /// The rule that decided, human-readable.
        rule: String,
    },
    /// Play vs publish mismatch.
    PurposeMismatch {
        /// What the token allows.
        token: Purpose,
        /// What the request does.
        request: Purpose,
    },
    /// The token was revoked.
    Revoked {
        /// The id that matched the revocation list.
        token_id: String,
    },
    /// The client IP is blocked.
    IpBlocked {
        /// The blocked client IP.
        ip: IpAddr,
    },
    /// The session limit is reached.
    TooManySessions {
        /// The limit in force.
        limit: u32,
        /// Sessions already active.
        active: u32,
    },
    /// The session a session credential names is over (idle, replaced, renewed by another
    /// player, or seen in two places); the player must come back with its entry token.
    SessionEnded {
        /// Why.
        why: &'static str,
    },
    /// The request's method is never forwarded.
    MethodNotAllowed {
        /// The method as received (truncated).
        method: String,
    },
}

/// What a verifier signed, for the "why does my signature not match?" question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureExplanation {
    /// Every canonical string-to-sign the verifier tried, secrets replaced by `<secret>`.
    pub tried: Vec<String>,
    /// How it was built (the recipe, e.g. `ip + key + server_time + validminutes`).
    pub recipe: String,
}

impl Denial {
    /// The shared reason code for this denial.
    pub fn reason(&self) -> ReasonCode {
        match self {
            Denial::MissingToken => ReasonCode::MissingToken,
            Denial::Malformed { .. } => ReasonCode::Malformed,
            Denial::BadSignature { .. } => ReasonCode::BadSignature,
            Denial::UnknownKey { .. } => ReasonCode::UnknownKey,
            Denial::AlgNotAllowed { .. } => ReasonCode::AlgNotAllowed,
            Denial::Expired { .. } | Denial::SessionEnded { .. } => ReasonCode::Expired,
            Denial::NotYetValid { .. } => ReasonCode::NotYetValid,
            Denial::ScopeMismatch { .. } | Denial::UnsafePath { .. } | Denial::ForeignToken { .. } => {
                ReasonCode::ScopeMismatch
            }
            Denial::IpMismatch { .. } => ReasonCode::IpMismatch,
            Denial::ReferrerDenied { .. } => ReasonCode::ReferrerDenied,
            Denial::UserAgentDenied { .. } => ReasonCode::UserAgentDenied,
            Denial::GeoDenied { .. } => ReasonCode::GeoDenied,
            Denial::PurposeMismatch { .. } => ReasonCode::PurposeMismatch,
            Denial::Revoked { .. } => ReasonCode::Revoked,
            Denial::IpBlocked { .. } => ReasonCode::IpBlocked,
            Denial::TooManySessions { .. } => ReasonCode::TooManySessions,
            Denial::MethodNotAllowed { .. } => ReasonCode::MethodNotAllowed,
        }
    }

    /// The check that refused the request, one of [`Denial::STAGES`].
    pub fn stage(&self) -> &'static str {
        match self {
            Denial::MethodNotAllowed { .. } => "request method",
            Denial::UnsafePath { .. } => "request path",
            Denial::MissingToken => "credential present",
            Denial::Malformed { .. } => "credential format",
            Denial::UnknownKey { .. } | Denial::AlgNotAllowed { .. } => "key and algorithm",
            Denial::BadSignature { .. } => "signature",
            Denial::ForeignToken { .. } => "issuer and audience",
            Denial::Expired { .. } | Denial::NotYetValid { .. } => "validity window",
            Denial::SessionEnded { .. } => "sessions",
            Denial::Revoked { .. } => "revocation",
            Denial::IpBlocked { .. } => "IP block list",
            Denial::PurposeMismatch { .. } => "purpose",
            Denial::ScopeMismatch { .. } => "stream scope",
            Denial::IpMismatch { .. } => "IP binding and IP rules",
            Denial::ReferrerDenied { .. } => "referrer",
            Denial::UserAgentDenied { .. } => "user agent",
            Denial::GeoDenied { .. } => "access rules",
            Denial::TooManySessions { .. } => "sessions",
        }
    }

    /// The checks in the order the gate runs them.
    pub const STAGES: [&'static str; 17] = [
        "request method",
        "request path",
        "credential present",
        "credential format",
        "key and algorithm",
        "signature",
        "issuer and audience",
        "validity window",
        "revocation",
        "IP block list",
        "purpose",
        "stream scope",
        "IP binding and IP rules",
        "referrer",
        "user agent",
        "access rules",
        "sessions",
    ];

    /// Shorthand for a [`Denial::Malformed`].
    pub fn malformed(why: impl Into<String>) -> Denial {
        Denial::Malformed { why: why.into() }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::MissingToken => write!(f, "no credential found in the request"),
            Denial::Malformed { why } => write!(f, "malformed credential: {why}"),
            Denial::BadSignature { .. } => write!(f, "signature does not match"),
            Denial::UnknownKey { kid: Some(kid) } => write!(f, "no key configured for kid {kid:?}"),
            Denial::UnknownKey { kid: None } => write!(f, "no key configured for this token"),
            Denial::AlgNotAllowed { alg } => {
                write!(f, "algorithm {alg:?} is not allowed for the configured keys")
            }
            Denial::Expired { expires_at, now, leeway } => write!(
                f,
                "expired at {expires_at}, now {now} ({}s late, leeway {leeway}s)",
                now.saturating_sub(*expires_at)
            ),
            Denial::NotYetValid { not_before, now, leeway } => write!(
                f,
                "not valid before {not_before}, now {now} ({}s early, leeway {leeway}s)",
                not_before.saturating_sub(*now)
            ),
            Denial::ScopeMismatch { path, scope } => {
                write!(f, "path {path:?} is outside the token's scope ({scope})")
            }
            Denial::UnsafePath { path, why } => write!(f, "path {path:?} refused: {why}"),
            Denial::ForeignToken { claim, expected, found } => {
                write!(f, "{claim} {expected:?} required, token has {found}")
            }
            Denial::IpMismatch { client: Some(ip), expected } => {
                write!(f, "client IP {ip} does not match {expected}")
            }
            Denial::IpMismatch { client: None, expected } => {
                write!(f, "client IP unknown but the token requires {expected}")
            }
            Denial::ReferrerDenied { referrer: Some(r), why } => {
                write!(f, "referrer {r:?} denied: {why}")
            }
            Denial::ReferrerDenied { referrer: None, why } => {
                write!(f, "missing referrer denied: {why}")
            }
            Denial::UserAgentDenied { user_agent, why } => {
                write!(f, "user agent {user_agent:?} denied: {why}")
            }
            Denial::GeoDenied { country, rule } => match country {
                Some(c) => write!(f, "country {c} blocked by {rule}"),
                None => write!(f, "unknown country blocked by {rule}"),
            },
            Denial::PurposeMismatch { token, request } => {
                write!(f, "token is for {} but the request is {}", token.as_str(), request.as_str())
            }
            Denial::Revoked { token_id } => write!(f, "token {token_id:?} is revoked"),
            Denial::SessionEnded { why } => write!(f, "session ended: {why}"),
            Denial::IpBlocked { ip } => write!(f, "client IP {ip} is blocked"),
            Denial::TooManySessions { limit, active } => {
                write!(f, "session limit {limit} reached ({active} active)")
            }
            Denial::MethodNotAllowed { method } => {
                write!(f, "method {method:?} is not forwarded (play: GET, HEAD; publish: POST, PUT)")
            }
        }
    }
}

/// A failure that is not a denial: bad configuration, unusable keys, or invalid input to a
/// signing call. These never reach a viewer; they are the operator's to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A key could not be loaded or cannot do what was asked (e.g. sign with a public key).
    InvalidKey(String),
    /// An argument is out of range or badly formed.
    InvalidInput {
        /// Which argument.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl Error {
    /// Stable machine code: `invalid_key` or `invalid_input`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidKey(_) => "invalid_key",
            Error::InvalidInput { .. } => "invalid_input",
        }
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub fn input(field: &'static str, why: impl Into<String>) -> Error {
        Error::InvalidInput { field, why: why.into() }
    }

    /// Shorthand for an [`Error::InvalidKey`].
    pub fn key(why: impl Into<String>) -> Error {
        Error::InvalidKey(why.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidKey(why) => write!(f, "invalid key: {why}"),
            Error::InvalidInput { field, why } => write!(f, "invalid {field}: {why}"),
        }
    }
}

impl std::error::Error for Error {}
