//! Token Guardian's misuse detection: usage events in, per-token activity and findings out.
//! Pure and deterministic: the window comes in as an argument; no clock, no I/O.
//!
//! The pipeline, each step a pure function:
//!
//! 1. [`Aggregator::add`] folds [`UsageEvent`]s into one [`TokenActivity`] per token: a
//!    serializable rollup (per session its activity runs, per network and per country
//!    first/last/count, counters). Rollups **merge exactly** ([`Aggregator::merge`],
//!    [`TokenActivity::merge`]): shards of a file, or per-bucket rollups stored as JSON,
//!    give the same result as one pass over all the events, in any order. [`Folder`] does
//!    what `Aggregator::add` does, faster on long logs: the repeated heartbeats of a
//!    session are folded in together.
//! 2. [`Detector::new`] checks a [`DetectorConfig`] (JSON, every field defaulted) against a
//!    [`NetworkTable`] once; [`Detector::report`] judges the tokens of a [`Window`] and
//!    returns a [`Report`]: one [`TokenRow`] per token, [`IpRow`]s and [`BreakdownRow`]s.
//!
//! Indicators ([`IndicatorCode`]) are evidence, not verdicts: each carries a confidence and a
//! JSON evidence object, and the token's score is `100 × (1 − Π(1 − weight × confidence))`
//! over them. Severity: `high` from 70, `medium` from 40, else `low`; a weak indicator alone
//! (`missing_referrer`, `privacy_relay`) stays `low`.
//!
//! # Token row (`streamgate scan --format json`, the worker's `GET /admin/tokens`)
//!
//! ```json
//! {"token": "jti-or-fingerprint", "sub": "user-7",            // sub only when present
//!  "score": 83, "severity": "high",
//!  "indicators": [{"code": "concurrency", "severity": "high", "confidence": 1.0,
//!                  "evidence": {"sustained_peak": 4, "peak": 4, "limit": 2, "basis": "sub"}}],
//!  "ips": 4, "sessions": 4, "peak_concurrency": 4,
//!  "countries": ["DE", "FR"],                                  // by events, most first
//!  "providers": [{"asn": 3320, "organization": "Deutsche Telekom AG", "count": 120}],
//!  "referrers": [{"name": "www.example.com", "count": 100}, {"name": null, "count": 20}],
//!  "playback_seconds": 14460, "bytes": 123456789,
//!  "streams": ["/live/news/index.m3u8"],                      // by events, most first
//!  "first_seen": 1700000000, "last_seen": 1700003600}
//! ```
//!
//! `ips` counts IPv4 addresses and IPv6 /64 prefixes; `count`s are events; a `null`
//! referrer name counts events without a Referer; `organization` may be `null`.
//!
//! # IP row and breakdown row (the dashboard's "IPs" and "Breakdown" views)
//!
//! ```json
//! {"ip": "2001:db8:1:2::/64", "tokens": 3, "events": 310, "asn": 16509,
//!  "organization": "AMAZON-02", "country": "US", "network_class": "hosting",
//!  "first_seen": 1700000000, "last_seen": 1700003600}
//! {"dimension": "referrer", "key": "www.example.com", "tokens": 812, "events": 90211}
//! ```
//!
//! `network_class` is `hosting`, `vpn`, `privacy_relay`, `transit` or `null`;
//! `dimension` is `country`, `provider` (key `AS<n>`), `referrer` (key `-` for none),
//! `user_agent` or `stream`.

mod activity;
mod config;
mod fold;
mod indicators;
pub mod networks;
mod report;
#[cfg(feature = "simulate")]
pub mod simulate;

pub(crate) use activity::network_key;
pub use activity::{
    Aggregator, CountryUse, EventView, MergeError, NetworkUse, ProviderUse, Runs, Timing, TokenActivity, MAX_DISTINCT,
};
pub use config::{
    ConcurrencyRule, ConfigError, CountRule, DetectorConfig, Expectation, PlaybackRule, Rules, ShareRule,
};
pub use fold::Folder;
pub use indicators::{score, Indicator, IndicatorCode, Severity};
pub use networks::{NetworkClass, NetworkTable};
pub use report::{
    breakdown, ip_activity, parse_span, stream_p95, BreakdownRow, Detector, Dimension, IpRow, NamedCount,
    ProviderCount, Report, TokenRow, Window, MAX_SPAN_SECONDS, ROW_LIST_LIMIT,
};
use serde::{Deserialize, Serialize};

use crate::grant::{MAX_SUBJECT_BYTES, MAX_TOKEN_ID_BYTES};

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
    /// Whether `other` tells the same token, session and viewer (everything but the time and
    /// the bytes).
    pub fn same_viewer(&self, other: &UsageEvent) -> bool {
        let UsageEvent {
            at: _,
            bytes: _,
            token,
            sid,
            ip,
            country,
            asn,
            as_organization,
            referer,
            user_agent,
            stream,
            sub,
            max_sessions,
        } = self;
        *token == other.token
            && *sid == other.sid
            && *ip == other.ip
            && *country == other.country
            && *asn == other.asn
            && *as_organization == other.as_organization
            && *referer == other.referer
            && *user_agent == other.user_agent
            && *stream == other.stream
            && *sub == other.sub
            && *max_sessions == other.max_sessions
    }

    /// The record with every text field cut to its bound (on a character boundary).
    pub fn bounded(mut self) -> UsageEvent {
        cut(&mut self.sid, 64);
        cut(&mut self.token, MAX_TOKEN_ID_BYTES);
        for (field, max) in [
            (&mut self.ip, 45),
            (&mut self.country, 2),
            (&mut self.as_organization, 96),
            (&mut self.referer, 320),
            (&mut self.user_agent, 256),
            (&mut self.stream, 256),
            (&mut self.sub, MAX_SUBJECT_BYTES),
        ] {
            if let Some(text) = field {
                cut(text, max);
            }
        }
        self
    }
}

/// Cuts `text` to at most `max_bytes`, on a character boundary.
pub(crate) fn cut(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let end = (0..=max_bytes).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
    }
}

/// Whether the Guardian may revoke a token on its own after judging the usage from
/// `window_from`, when an operator last lifted a revocation of it at `lifted_at`: not while
/// the window still holds usage from before the lift, which the operator has judged
/// already (the same data would revoke it again at the next run). Later usage may.
pub fn may_revoke_automatically(lifted_at: Option<i64>, window_from: i64) -> bool {
    lifted_at.is_none_or(|lifted| lifted < window_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_lift_holds_until_the_window_has_moved_past_it() {
        assert!(may_revoke_automatically(None, 1_000));
        assert!(!may_revoke_automatically(Some(5_000), 1_000), "the window holds usage from before the lift");
        assert!(!may_revoke_automatically(Some(1_000), 1_000));
        assert!(may_revoke_automatically(Some(999), 1_000), "only usage after the lift is judged");
    }
}
