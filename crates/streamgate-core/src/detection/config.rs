//! The detector's configuration: thresholds, weights, allowed referrers, the operator's
//! own hosting networks and what is marked as expected. JSON with every field defaulted:
//! `{}` is the default configuration; unknown fields are refused.
//!
//! ```json
//! {"timing": {"idle_seconds": 60, "country_window_seconds": 3600},
//!  "allowed_referrers": ["www.example.com", "*.example.com"],
//!  "rules": {"many_ips": {"above": 5, "weight": 0.5}, "concurrency": {"user_bound_limit": 2}},
//!  "hosting_asns": [64500], "hosting_cidrs": ["198.51.100.0/24"], "replace_hosting": false,
//!  "expected": [{"indicator": "hosting_network", "asn": 64501, "note": "our monitoring"},
//!               {"token": "jti-123"}, {"network": "203.0.113.0/24", "indicator": "many_ips"}]}
//! ```

use serde::{Deserialize, Serialize};

use super::activity::Timing;
use super::indicators::IndicatorCode;
use super::networks::{parse_range, NetworkClass, NetworkTable};

/// The detector's configuration; `DetectorConfig::default()` equals the JSON `{}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// The gaps rollups are built with.
    pub timing: Timing,
    /// Referer hosts the operator's pages use (`*.example.com` wildcards). Empty: the
    /// `unknown_referrer` rule is off.
    pub allowed_referrers: Vec<String>,
    /// Each rule's thresholds and weight.
    pub rules: Rules,
    /// The operator's own data-centre ASNs, added to (or replacing) the table.
    pub hosting_asns: Vec<u32>,
    /// The operator's own data-centre ranges (CIDR), added to (or replacing) the table.
    pub hosting_cidrs: Vec<String>,
    /// Start from an empty table instead of the one given to [`super::Detector::new`].
    pub replace_hosting: bool,
    /// What the operator marked as expected.
    pub expected: Vec<Expectation>,
}

/// "Mark as expected": silences an indicator (or every indicator, when `indicator` is
/// absent) for a token, a network or an ASN. With `token`, the indicator is not reported
/// for that token. With `network` or `asn`, traffic from there is not evidence for it: it
/// is left out of `hosting_network`, `privacy_relay` and `many_ips`, and a token whose
/// traffic all comes from there gets none of the other indicators either. Fields given
/// together must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectation {
    /// The indicator silenced; all of them when absent.
    pub indicator: Option<IndicatorCode>,
    /// A token id.
    pub token: Option<String>,
    /// An address or CIDR range.
    pub network: Option<String>,
    /// An autonomous system number.
    pub asn: Option<u32>,
    /// Why (shown to operators, not used).
    pub note: Option<String>,
}

/// Every rule's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// `many_ips`: distinct networks above `above` (times `max_sessions` for tokens shared
    /// by design: no `sub`, a session limit).
    pub many_ips: CountRule,
    /// `many_sessions`: sessions above `above` (scaled the same way).
    pub many_sessions: CountRule,
    /// `multi_country`: at least `above + 1` countries within the country window (scaled
    /// like `many_ips`).
    pub multi_country: CountRule,
    /// `hosting_network`: share of events from data-centre networks, reported from `min_share`.
    pub hosting_network: ShareRule,
    /// `privacy_relay`: share of events from privacy relays and VPNs (informational).
    pub privacy_relay: ShareRule,
    /// `unknown_referrer`: share of events whose Referer host is not allowed.
    pub unknown_referrer: ShareRule,
    /// `missing_referrer`: share of events without a Referer (weak: apps and TVs send none).
    pub missing_referrer: ShareRule,
    /// `long_playback`: playback above `max(seconds, p95_factor × the stream's p95)` (times
    /// `max_sessions` for tokens shared by design).
    pub long_playback: PlaybackRule,
    /// `concurrency`: sessions playing together above the limit.
    pub concurrency: ConcurrencyRule,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            many_ips: CountRule { above: 5, weight: 0.5 },
            many_sessions: CountRule { above: 20, weight: 0.5 },
            multi_country: CountRule { above: 2, weight: 0.6 },
            hosting_network: ShareRule { min_share: 0.1, weight: 0.5 },
            privacy_relay: ShareRule { min_share: 0.1, weight: 0.0 },
            unknown_referrer: ShareRule { min_share: 0.1, weight: 0.5 },
            missing_referrer: ShareRule { min_share: 0.5, weight: 0.15 },
            long_playback: PlaybackRule { seconds: 8 * 3600, p95_factor: 2.0, min_population: 20, weight: 0.45 },
            concurrency: ConcurrencyRule { user_bound_limit: 2, min_overlap_seconds: 120, weight: 0.7 },
        }
    }
}

/// A rule on a count.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    /// Reported when the count is above this.
    pub above: u32,
    /// How much the indicator weighs in the score, 0–1.
    pub weight: f64,
}

/// A rule on a share of a token's events.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// Reported from this share of events, 0–1.
    pub min_share: f64,
    /// How much the indicator weighs in the score, 0–1.
    pub weight: f64,
}

/// The `long_playback` rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackRule {
    /// Playback seconds above which a token may be reported (default 8 h).
    pub seconds: i64,
    /// And above this many times the p95 of the tokens of the same stream (default 2).
    pub p95_factor: f64,
    /// The p95 counts from this many tokens of the stream (default 20).
    pub min_population: usize,
    /// How much the indicator weighs in the score, 0–1.
    pub weight: f64,
}

/// The `concurrency` rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyRule {
    /// Sessions a user-bound token (with `sub`) may play at once (default 2: a household's
    /// phone and TV); tokens without `sub` are held to their `max_sessions`.
    pub user_bound_limit: u32,
    /// Sessions count as concurrent when they overlap this long (default 120 s, above the
    /// idle gap, so a player reconnecting under a new session id does not count).
    pub min_overlap_seconds: i64,
    /// How much the indicator weighs in the score, 0–1.
    pub weight: f64,
}

/// A configuration that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not valid JSON for [`DetectorConfig`].
    Json(String),
    /// A CIDR range that does not parse.
    BadRange(String),
    /// An expectation that names no token, network or ASN.
    EmptyExpectation,
    /// A weight or share outside 0–1, or a negative time.
    OutOfRange(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Json(message) => write!(f, "detector configuration: {message}"),
            ConfigError::BadRange(text) => write!(f, "not an IP address or CIDR range: {text:?}"),
            ConfigError::EmptyExpectation => write!(f, "an expectation must name a token, a network or an ASN"),
            ConfigError::OutOfRange(what) => write!(f, "{what} is out of range"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl DetectorConfig {
    /// Parses a JSON configuration (every field optional).
    pub fn from_json(text: &str) -> Result<DetectorConfig, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))
    }

    /// `base` with this configuration's own hosting networks applied.
    pub fn networks(&self, base: &NetworkTable) -> Result<NetworkTable, ConfigError> {
        let mut table = if self.replace_hosting { NetworkTable::empty() } else { base.clone() };
        for &asn in &self.hosting_asns {
            table.set_asn(asn, NetworkClass::Hosting, None);
        }
        let ranges = self.hosting_cidrs.join("\n");
        table.add_cidr_list(&ranges, NetworkClass::Hosting).map_err(|e| ConfigError::BadRange(e.text))?;
        Ok(table)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.rules;
        let weights = [
            ("many_ips.weight", r.many_ips.weight),
            ("many_sessions.weight", r.many_sessions.weight),
            ("multi_country.weight", r.multi_country.weight),
            ("hosting_network.weight", r.hosting_network.weight),
            ("privacy_relay.weight", r.privacy_relay.weight),
            ("unknown_referrer.weight", r.unknown_referrer.weight),
            ("missing_referrer.weight", r.missing_referrer.weight),
            ("long_playback.weight", r.long_playback.weight),
            ("concurrency.weight", r.concurrency.weight),
            ("hosting_network.min_share", r.hosting_network.min_share),
            ("privacy_relay.min_share", r.privacy_relay.min_share),
            ("unknown_referrer.min_share", r.unknown_referrer.min_share),
            ("missing_referrer.min_share", r.missing_referrer.min_share),
        ];
        if let Some((name, _)) = weights.iter().find(|(_, w)| !(0.0..=1.0).contains(w)) {
            return Err(ConfigError::OutOfRange(name));
        }
        if r.long_playback.p95_factor.is_nan() || r.long_playback.p95_factor < 0.0 {
            return Err(ConfigError::OutOfRange("long_playback.p95_factor"));
        }
        if self.timing.idle_seconds < 0 || self.timing.country_window_seconds < 0 {
            return Err(ConfigError::OutOfRange("timing"));
        }
        for expectation in &self.expected {
            if expectation.token.is_none() && expectation.network.is_none() && expectation.asn.is_none() {
                return Err(ConfigError::EmptyExpectation);
            }
            if let Some(network) = &expectation.network {
                parse_range(network.trim()).ok_or_else(|| ConfigError::BadRange(network.clone()))?;
            }
        }
        Ok(())
    }
}
