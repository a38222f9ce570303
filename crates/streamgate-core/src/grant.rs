//! What a verified credential grants, in one shape for every scheme.

use core::fmt;
use std::borrow::Cow;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claims::{AccessRule, Purpose};
use crate::policy::ip::IpRange;
use crate::policy::path::stream_in_scope;
use crate::policy::pattern::wildcard_match;
use crate::schemes::SchemeKind;

/// Which paths a credential covers. Serialized (compactly) into session credentials, which
/// carry their entry token's scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every path (an unscoped JWT, or a WMSAuth token without the stream variant).
    Any,
    /// Stream globs, segment-aware (`live/match-*`, `vod/**`).
    Streams(Vec<String>),
    /// Akamai ACL patterns: `*` matches across `/`.
    Acl(Vec<String>),
    /// A signed string prefix of the path (WMSAuth `strm_len`): the signature bound it.
    SignedPrefix(String),
    /// Exactly one signed path (EdgeAuth `url=`, secure_link with `$uri`).
    SignedPath(String),
}

impl Scope {
    /// Whether the normalized `path` is inside this scope.
    pub fn covers(&self, path: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Streams(globs) => globs.iter().any(|g| stream_in_scope(g, path)),
            Scope::Acl(acls) => acls.iter().any(|a| wildcard_match(a, path, false)),
            Scope::SignedPrefix(prefix) => {
                path.starts_with(prefix.as_str())
                    || path.strip_prefix('/').is_some_and(|p| p.starts_with(prefix.as_str()))
            }
            Scope::SignedPath(signed) => path == signed,
        }
    }

    /// The longest directory every path in the scope lies under (`/` when none is literal):
    /// the `Path` of a session cookie, so browsers send it only where it can work.
    pub fn directory(&self) -> String {
        let literal_dir = |pattern: &str| -> Vec<String> {
            let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
            // The last segment may be a file or a partial name: only whole directories count
            // (all of them when the pattern ends with `/`).
            let dirs = if pattern.ends_with('/') { segments.len() } else { segments.len().saturating_sub(1) };
            segments.into_iter().take(dirs).take_while(|s| !s.contains('*')).map(str::to_owned).collect()
        };
        let lists: Vec<Vec<String>> = match self {
            Scope::Any => Vec::new(),
            Scope::Streams(globs) => globs.iter().map(|g| literal_dir(&format!("{g}/x"))).collect(),
            Scope::Acl(acls) => acls.iter().map(|a| literal_dir(a)).collect(),
            Scope::SignedPrefix(p) | Scope::SignedPath(p) => vec![literal_dir(p)],
        };
        let mut common: Vec<String> = lists.first().cloned().unwrap_or_default();
        for list in lists.iter().skip(1) {
            let shared = common.iter().zip(list).take_while(|(a, b)| a == b).count();
            common.truncate(shared);
        }
        let mut out = String::from("/");
        for segment in common {
            out.push_str(&segment);
            out.push('/');
        }
        out
    }
}

/// The directory a path lives in (`/live/a/index.m3u8` → `/live/a/`).
pub fn directory_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => path.get(..=i).unwrap_or("/"),
        None => "/",
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Any => f.write_str("any stream"),
            Scope::Streams(g) => write!(f, "streams {}", g.join(", ")),
            Scope::Acl(a) => write!(f, "acl {}", a.join("!")),
            Scope::SignedPrefix(p) => write!(f, "signed prefix {p}"),
            Scope::SignedPath(p) => write!(f, "signed path {p}, that URL only"),
        }
    }
}

/// Drops the `null` members of a JSON object, so displayed claims show what is present.
pub fn present_fields(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// SHA-256 of a credential's canonical form ([`Grant::credential`]), hex: the id a token is
/// revoked under when it is revoked by the token itself rather than by its `jti`. Hash
/// the canonical form, never a token's text as presented (every encoding a verifier
/// accepts would be a new id): adapters holding only the text use
/// [`crate::unverified::identity`].
pub fn fingerprint(credential: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::encoding::hex(&Sha256::digest(credential.as_bytes()))
}

/// Whether `text` has the shape of a [`fingerprint`]: 64 lower-case hex digits.
pub(crate) fn is_fingerprint(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The longest token id (`jti`, EdgeAuth `id`) a gate accepts. Revocations, session keys
/// and usage records name a token by its id whole: an id longer than the records keep
/// would be revoked from the Guardian view under a cut name that matches nothing.
pub const MAX_TOKEN_ID_BYTES: usize = 96;

/// The longest subject (`sub`) a gate accepts, for the same reason.
pub const MAX_SUBJECT_BYTES: usize = 128;

/// Which of `subject` and `token_id` is longer than a gate accepts ([`MAX_SUBJECT_BYTES`],
/// [`MAX_TOKEN_ID_BYTES`]), as the claim's name (`sub`, `jti`) and a message; `None` when
/// both fit.
pub fn oversized_identity(subject: Option<&str>, token_id: Option<&str>) -> Option<(&'static str, String)> {
    let over = |name: &'static str, what: &str, value: Option<&str>, max: usize| {
        let value = value.filter(|v| v.len() > max)?;
        Some((name, format!("the {what} is {} bytes, over the {max}-byte limit", value.len())))
    };
    over("sub", "subject (sub)", subject, MAX_SUBJECT_BYTES)
        .or_else(|| over("jti", "token id (jti, EdgeAuth id)", token_id, MAX_TOKEN_ID_BYTES))
}

/// The key a token's sessions are counted under: its `sub` for user-bound tokens, else its
/// `jti`, else its fingerprint (hashed only when needed).
pub fn session_key(subject: Option<&str>, token_id: Option<&str>, fingerprint: impl FnOnce() -> String) -> String {
    match (subject, token_id) {
        (Some(sub), _) => format!("sub:{sub}"),
        (None, Some(jti)) => format!("jti:{jti}"),
        (None, None) => format!("fp:{}", fingerprint()),
    }
}

/// The fixed bounds of a gate session, set when the entry token opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionBounds {
    /// When the session started, unix seconds.
    pub started: i64,
    /// No credential of the session lives past this, unix seconds.
    pub ends: i64,
}

/// When a credential is valid, and how much clock skew to forgive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validity {
    /// Start, unix seconds.
    pub not_before: Option<i64>,
    /// End, unix seconds.
    pub expires_at: Option<i64>,
    /// Seconds of clock skew forgiven at both ends.
    pub leeway: u32,
}

/// The verified content of a credential: what the policy engine then enforces.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The scheme that verified it.
    pub scheme: SchemeKind,
    /// Viewer or user id (`sub`), when the token is user-bound.
    pub subject: Option<String>,
    /// Token id (`jti`, EdgeAuth `id`), for revocation and session grouping.
    pub token_id: Option<String>,
    /// The player session, for credentials the gate issued to one (its session credential).
    pub session_id: Option<String>,
    /// The credential in canonical form: what its fingerprint hashes. The same for every
    /// encoding of one token the scheme accepts (each scheme's module docs say how).
    pub credential: String,
    /// Validity window.
    pub validity: Validity,
    /// Path scope.
    pub scope: Scope,
    /// IP binding carried by the credential (widened by the operator's binding prefixes).
    pub ip_binding: Option<IpRange>,
    /// For a session credential bound to its admitting client's network: that network
    /// (checked as is, never widened).
    pub network_binding: Option<IpRange>,
    /// Play or publish.
    pub purpose: Purpose,
    /// Session limit from the credential.
    pub max_sessions: Option<u32>,
    /// Referrer hosts the credential allows (empty: no restriction from the token).
    pub referrers: Vec<String>,
    /// Whether the credential lets a request without Referer through its referrer list.
    pub allow_no_referrer: Option<bool>,
    /// User-Agent patterns the credential allows (empty: no restriction).
    pub user_agents: Vec<String>,
    /// Ordered access rules from the credential.
    pub access_rules: Vec<AccessRule>,
    /// All claims as JSON text ([`Grant::claims_json`]).
    claims: ClaimsText,
    /// For a session credential: the key its session was counted under when it was issued.
    pub issued_session_key: Option<String>,
    /// For a session credential issued for a token without `jti`: that token's fingerprint,
    /// so revoking the token by its text also ends the sessions it opened.
    pub entry_token_fingerprint: Option<String>,
    /// For a session credential: when its session started and the latest moment any of its
    /// credentials may expire (the entry token's expiry plus the grace, and the maximum
    /// session age), kept across every reload and renewal.
    pub session_bounds: Option<SessionBounds>,
    /// [`Grant::fingerprint`], computed once.
    fingerprint: Memo,
}

/// Where a grant's claims are kept.
#[derive(Clone, Debug, PartialEq)]
enum ClaimsText {
    /// JSON text: the scheme's decoded fields.
    Json(String),
    /// A JWT's payload as signed, inside the canonical credential (`jwt:header.payload`):
    /// decoded when asked for, so the allow path does not copy it.
    JwtPayload,
}

/// A value computed from other fields on first use. It takes no part in equality: two
/// grants with the same credential have the same fingerprint, computed or not. A
/// `OnceLock`, so a grant can be shared across threads (a native gate holds one across
/// awaits on a multi-threaded runtime).
#[derive(Clone, Debug, Default)]
struct Memo(OnceLock<String>);

impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl Grant {
    /// A grant with only the scheme's basic facts; schemes fill in the rest.
    pub fn new(scheme: SchemeKind, credential: impl Into<String>, claims_json: String) -> Grant {
        Grant {
            scheme,
            subject: None,
            token_id: None,
            session_id: None,
            credential: credential.into(),
            validity: Validity::default(),
            scope: Scope::Any,
            ip_binding: None,
            network_binding: None,
            purpose: Purpose::Play,
            max_sessions: None,
            referrers: Vec::new(),
            allow_no_referrer: None,
            user_agents: Vec::new(),
            access_rules: Vec::new(),
            claims: ClaimsText::Json(claims_json),
            issued_session_key: None,
            entry_token_fingerprint: None,
            session_bounds: None,
            fingerprint: Memo::default(),
        }
    }

    /// SHA-256 of the canonical credential, hex: what revoking "by the token itself" stores.
    /// Hashed on first use, then kept.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.0.get_or_init(|| fingerprint(&self.credential)).clone()
    }

    /// The fingerprint a revocation by the entry token's text is stored under: this
    /// credential's own for an entry token; for a session credential, the entry token's
    /// when it had no `jti` (with a `jti`, revocations name the `jti`).
    pub fn entry_fingerprint(&self) -> Option<String> {
        match self.scheme {
            SchemeKind::Session => self.entry_token_fingerprint.clone(),
            _ => Some(self.fingerprint()),
        }
    }

    /// Every id a revocation of this grant's token may be stored under: its `jti` and the
    /// entry token's fingerprint.
    pub fn revocation_ids(&self) -> Vec<String> {
        self.token_id.iter().cloned().chain(self.entry_fingerprint()).collect()
    }

    /// A JWT's grant, whose claims are the payload inside `credential`
    /// (`jwt:header.payload`, verified).
    pub fn jwt(credential: String) -> Grant {
        Grant { claims: ClaimsText::JwtPayload, ..Grant::new(SchemeKind::Jwt, credential, String::new()) }
    }

    /// All claims as JSON text: the JWT payload as signed, or the scheme's decoded fields
    /// (`null` if a JWT's payload cannot be read, which a verified one always can).
    pub fn claims_json(&self) -> Cow<'_, str> {
        match &self.claims {
            ClaimsText::Json(text) => Cow::Borrowed(text),
            ClaimsText::JwtPayload => {
                crate::schemes::jwt::payload_in_canonical(&self.credential).map_or(Cow::Borrowed("null"), Cow::Owned)
            }
        }
    }

    /// The claims as a JSON value (parsed from [`Grant::claims_json`]).
    pub fn claims(&self) -> Value {
        serde_json::from_str(&self.claims_json()).unwrap_or(Value::Null)
    }

    /// The key sessions are counted under: the user for user-bound tokens, else the token.
    /// A session credential keeps the key its entry token had.
    pub fn session_key(&self) -> String {
        match &self.issued_session_key {
            Some(key) => key.clone(),
            None => session_key(self.subject.as_deref(), self.token_id.as_deref(), || self.fingerprint()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Path` of a session cookie.
    #[test]
    fn a_scopes_directory_is_the_longest_one_every_path_lies_under() {
        assert_eq!(Scope::Any.directory(), "/");
        assert_eq!(Scope::Streams(vec!["live/match-*".into()]).directory(), "/live/");
        assert_eq!(Scope::Acl(vec!["/event/*".into(), "/event/keys/*".into()]).directory(), "/event/");
        assert_eq!(Scope::SignedPath("/vod/film/master.m3u8".into()).directory(), "/vod/film/");
        assert_eq!(Scope::SignedPrefix("live/x".into()).directory(), "/live/", "a partial name");
        // Review: a prefix ending with `/` lost its last directory, so two presentations
        // side by side set one cookie, and the second overwrote the first.
        assert_eq!(Scope::SignedPrefix("/hls/ts/".into()).directory(), "/hls/ts/");
    }
}
