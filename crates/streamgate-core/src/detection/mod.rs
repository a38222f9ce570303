//! Token Guardian's misuse detection: usage events in, per-token activity and findings out.
//! Pure and deterministic: the window and `now` come in as arguments.

use serde::{Deserialize, Serialize};

/// One usage event: what the gate records per heartbeat (a session start, a playlist
/// reload, a background beat), what `GET /admin/usage` exports as JSON Lines, and what
/// `streamgate scan` reads. Text fields are cut to bounds ([`UsageEvent::bounded`]), so a
/// client with huge headers cannot overflow a store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// Unix seconds.
    pub at: i64,
    /// The token's id: its `jti` (EdgeAuth `id`), else its fingerprint.
    #[serde(default)]
    pub token: String,
    /// The session.
    pub sid: String,
    /// Client IP.
    #[serde(default)]
    pub ip: Option<String>,
    /// Two-letter country.
    #[serde(default)]
    pub country: Option<String>,
    /// Autonomous system number.
    #[serde(default)]
    pub asn: Option<u32>,
    /// Autonomous system organization.
    #[serde(default)]
    pub as_organization: Option<String>,
    /// `Referer` header.
    #[serde(default)]
    pub referer: Option<String>,
    /// `User-Agent` header.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The stream (the manifest's path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Media bytes served to the session since its previous heartbeat, where known.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// The token's subject, for user-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The token's session limit, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
}

impl UsageEvent {
    /// The record with every text field cut to its bound (on a character boundary).
    pub fn bounded(mut self) -> UsageEvent {
        cut(&mut self.sid, 64);
        cut(&mut self.token, 96);
        for (field, max) in [
            (&mut self.ip, 45),
            (&mut self.country, 2),
            (&mut self.as_organization, 96),
            (&mut self.referer, 320),
            (&mut self.user_agent, 256),
            (&mut self.stream, 256),
            (&mut self.sub, 128),
        ] {
            if let Some(text) = field {
                cut(text, max);
            }
        }
        self
    }
}

fn cut(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let end = (0..=max_bytes).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
    }
}
