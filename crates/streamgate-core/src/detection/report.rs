//! Judging a window: token rows with score and indicators, IP rows, breakdown rows.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::activity::{Aggregator, TokenActivity};
use super::config::{ConfigError, DetectorConfig};
use super::indicators::{evaluate, score, ClassifiedNetwork, Context, Indicator, IndicatorCode, Severity};
use super::networks::{parse_range, NetworkClass, NetworkTable};

/// How many entries a token row lists per field (providers, referrers, streams).
pub const ROW_LIST_LIMIT: usize = 20;

/// The time window judged: unix seconds, `from` included, `to` excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First second in the window.
    pub from: i64,
    /// First second after it.
    pub to: i64,
}

impl Window {
    /// The window `[from, to)`.
    pub fn new(from: i64, to: i64) -> Window {
        Window { from, to }
    }

    /// The `seconds` seconds up to and including `newest` (`scan --window 3h`).
    pub fn ending_at(newest: i64, seconds: i64) -> Window {
        let to = newest.saturating_add(1);
        Window { from: to.saturating_sub(seconds.max(0)), to }
    }

    /// Everything.
    pub fn all() -> Window {
        Window { from: i64::MIN, to: i64::MAX }
    }

    /// Whether `at` falls in it.
    pub fn contains(&self, at: i64) -> bool {
        self.from <= at && at < self.to
    }

    /// The window an admin request names (`GET /admin/usage`, the Guardian views): `window`
    /// alone (a span, [`parse_span`]) ending at `now`; `from` and `to` (unix seconds, `from
    /// < to`); or neither, the `default_seconds` ending at `now`.
    pub fn from_query(
        window: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        default_seconds: i64,
        now: i64,
    ) -> Result<Window, String> {
        match (window, from, to) {
            (Some(span), None, None) => Ok(Window::ending_at(now, parse_span(span)?)),
            (None, Some(from), Some(to)) => match (from.trim().parse::<i64>(), to.trim().parse::<i64>()) {
                (Ok(from), Ok(to)) if from < to => Ok(Window::new(from, to)),
                _ => Err("from and to must be unix seconds with from < to".into()),
            },
            (None, None, None) => Ok(Window::ending_at(now, default_seconds)),
            _ => Err("give ?window=3h, or ?from= and ?to= (unix seconds)".into()),
        }
    }
}

/// The longest span an admin request may name: 31 days.
pub const MAX_SPAN_SECONDS: i64 = 2_678_400;

/// A span as admin requests write it: `3h`, `1d`, `90m`, `45s` or plain seconds, from one
/// second to [`MAX_SPAN_SECONDS`].
pub fn parse_span(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (text.get(..i).unwrap_or(""), c),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(format!("window {text:?}: use s, m, h or d")),
    };
    match digits.parse::<i64>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(seconds @ 1..=MAX_SPAN_SECONDS) => Ok(seconds),
        _ => Err(format!("window {text:?} must be between 1 second and 31 days")),
    }
}

/// A provider in a token row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCount {
    /// Autonomous system number.
    pub asn: u32,
    /// AS organization (from the events, else the network table), if known.
    pub organization: Option<String>,
    /// Events.
    pub count: u64,
}

/// A named count in a token row (`name: null` for "none", e.g. no Referer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCount {
    /// The name, or `null`.
    pub name: Option<String>,
    /// Events.
    pub count: u64,
}

/// One token's activity and verdict: the row of `scan --format json` and `GET /admin/tokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    /// The token id (`jti`, else fingerprint).
    pub token: String,
    /// The token's subject, for user-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// 0–100.
    pub score: u8,
    /// From the score: `high` from 70, `medium` from 40.
    pub severity: Severity,
    /// What fired, strongest first.
    pub indicators: Vec<Indicator>,
    /// Distinct IPv4 addresses and IPv6 /64s.
    pub ips: usize,
    /// Sessions.
    pub sessions: usize,
    /// Most sessions playing at one instant.
    pub peak_concurrency: u32,
    /// Countries, most events first.
    pub countries: Vec<String>,
    /// Providers, most events first (at most [`ROW_LIST_LIMIT`]).
    pub providers: Vec<ProviderCount>,
    /// Referer hosts, most events first; `null` counts events without one.
    pub referrers: Vec<NamedCount>,
    /// Sum of session spans, seconds.
    pub playback_seconds: i64,
    /// Media bytes.
    pub bytes: u64,
    /// Streams, most events first (at most [`ROW_LIST_LIMIT`]).
    pub streams: Vec<String>,
    /// First event, unix seconds.
    pub first_seen: i64,
    /// Last event, unix seconds.
    pub last_seen: i64,
}

impl TokenRow {
    /// Whether the row is a finding at `min` severity or above (some indicator fired).
    pub fn is_finding(&self, min: Severity) -> bool {
        !self.indicators.is_empty() && self.severity >= min
    }
}

/// One network across all tokens (the dashboard's "IPs" view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRow {
    /// An IPv4 address or an IPv6 `/64`.
    pub ip: String,
    /// Tokens seen from it.
    pub tokens: u64,
    /// Events from it.
    pub events: u64,
    /// Its autonomous system, if known.
    pub asn: Option<u32>,
    /// Its AS organization, if known.
    pub organization: Option<String>,
    /// Its country, if known.
    pub country: Option<String>,
    /// What the network table says it is.
    pub network_class: Option<NetworkClass>,
    /// First event, unix seconds.
    pub first_seen: i64,
    /// Last event, unix seconds.
    pub last_seen: i64,
}

/// What a breakdown row counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dimension {
    /// Two-letter country.
    Country,
    /// `AS<n>`.
    Provider,
    /// Referer host, `-` for none.
    Referrer,
    /// User-Agent.
    UserAgent,
    /// Stream.
    Stream,
}

/// Tokens and events per country, provider, referrer, user agent or stream (the
/// dashboard's "Breakdown" view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// What is counted by.
    pub dimension: Dimension,
    /// The value.
    pub key: String,
    /// Tokens with events there.
    pub tokens: u64,
    /// Events there.
    pub events: u64,
}

/// Everything judged for one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The window.
    pub window: Window,
    /// Every token, highest score first.
    pub tokens: Vec<TokenRow>,
    /// Every network, most tokens first.
    pub ips: Vec<IpRow>,
    /// Every dimension's values, most events first within each.
    pub breakdown: Vec<BreakdownRow>,
}

#[derive(Debug)]
struct CompiledExpectation {
    indicator: Option<IndicatorCode>,
    token: Option<String>,
    range: Option<(u128, u128)>,
    asn: Option<u32>,
}

/// The detector: a checked configuration and network table, ready to judge rollups.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    networks: NetworkTable,
    expected: Vec<CompiledExpectation>,
}

impl Detector {
    /// Checks `config` and applies its own hosting networks to `networks`
    /// (e.g. [`NetworkTable::shipped`]).
    pub fn new(config: DetectorConfig, networks: &NetworkTable) -> Result<Detector, ConfigError> {
        config.validate()?;
        let networks = config.networks(networks)?;
        let expected = config
            .expected
            .iter()
            .map(|e| CompiledExpectation {
                indicator: e.indicator,
                token: e.token.clone(),
                range: e.network.as_deref().and_then(|n| parse_range(n.trim())).map(|(a, b, _)| (a, b)),
                asn: e.asn,
            })
            .collect();
        Ok(Detector { config, networks, expected })
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The network table, with the configuration's own networks applied.
    pub fn networks(&self) -> &NetworkTable {
        &self.networks
    }

    /// Judges every token of `activity` (the events of one window): rows, highest score first.
    pub fn token_rows(&self, activity: &Aggregator) -> Vec<TokenRow> {
        let p95 = stream_p95(activity);
        let mut rows: Vec<TokenRow> = activity
            .tokens()
            .map(|(token, rollup)| {
                let stream = rollup.main_stream().and_then(|s| p95.get(s).copied());
                self.judge(token, rollup, activity.timing(), stream)
            })
            .collect();
        rows.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.token.cmp(&b.token)));
        rows
    }

    /// Judges one token. `stream_p95` is the p95 playback of its main stream's tokens and
    /// their number (from [`stream_p95`]); `None` judges playback by the threshold alone.
    pub fn judge(
        &self,
        token: &str,
        activity: &TokenActivity,
        timing: super::Timing,
        stream_p95: Option<(i64, usize)>,
    ) -> TokenRow {
        let networks = activity
            .networks
            .iter()
            .map(|(key, used)| ClassifiedNetwork {
                key,
                events: used.events,
                asn: used.asn,
                organization: used.as_organization.as_deref(),
                class: self.networks.classify(used.asn, used.as_organization.as_deref(), Some(key)),
                expected: self.expected_for_network(token, key, used.asn),
            })
            .collect();
        let ctx = Context { config: &self.config, table: &self.networks, timing, networks, stream_p95 };
        let mut indicators = evaluate(activity, &ctx);
        indicators.retain(|i| !self.silenced(token, i.code));
        indicators
            .sort_by(|a, b| (b.weight * b.confidence).total_cmp(&(a.weight * a.confidence)).then(a.code.cmp(&b.code)));
        let score = score(&indicators);
        row(token, activity, timing, &self.networks, indicators, score)
    }

    fn silenced(&self, token: &str, code: IndicatorCode) -> bool {
        self.expected.iter().any(|e| {
            e.range.is_none()
                && e.asn.is_none()
                && e.token.as_deref() == Some(token)
                && e.indicator.is_none_or(|c| c == code)
        })
    }

    fn expected_for_network(&self, token: &str, key: &str, asn: Option<u32>) -> Vec<Option<IndicatorCode>> {
        let address = parse_range(key.trim()).map(|(first, _, _)| first);
        self.expected
            .iter()
            .filter(|e| e.range.is_some() || e.asn.is_some())
            .filter(|e| e.token.as_deref().is_none_or(|t| t == token))
            .filter(|e| e.asn.is_none_or(|want| asn == Some(want)))
            .filter(|e| e.range.is_none_or(|(a, b)| address.is_some_and(|x| a <= x && x <= b)))
            .map(|e| e.indicator)
            .collect()
    }

    /// Judges `activity` (the events of `window`) and adds the IP and breakdown rows.
    pub fn report(&self, activity: &Aggregator, window: Window) -> Report {
        Report {
            window,
            tokens: self.token_rows(activity),
            ips: ip_activity(activity, &self.networks),
            breakdown: breakdown(activity),
        }
    }
}

/// Per stream, the p95 playback of the tokens whose main stream it is, and their number.
pub fn stream_p95(activity: &Aggregator) -> HashMap<String, (i64, usize)> {
    let timing = activity.timing();
    let mut by_stream: HashMap<&str, Vec<i64>> = HashMap::new();
    for (_, rollup) in activity.tokens() {
        if let Some(stream) = rollup.main_stream() {
            by_stream.entry(stream).or_default().push(rollup.playback_seconds(timing));
        }
    }
    by_stream
        .into_iter()
        .map(|(stream, mut playbacks)| {
            playbacks.sort_unstable();
            let rank = (playbacks.len() * 95).div_ceil(100).saturating_sub(1);
            let p95 = playbacks.get(rank).copied().unwrap_or(0);
            (stream.to_owned(), (p95, playbacks.len()))
        })
        .collect()
}

fn most_first<K: Clone>(entries: impl Iterator<Item = (K, u64)>, key: impl Fn(&K) -> String) -> Vec<(K, u64)> {
    let mut entries: Vec<(K, u64)> = entries.collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| key(&a.0).cmp(&key(&b.0))));
    entries
}

fn row(
    token: &str,
    activity: &TokenActivity,
    timing: super::Timing,
    table: &NetworkTable,
    indicators: Vec<Indicator>,
    score: u8,
) -> TokenRow {
    let countries = most_first(activity.countries.iter().map(|(c, u)| (c.clone(), u.events)), Clone::clone);
    let providers = most_first(activity.providers.iter().map(|(&asn, p)| (asn, p.events)), |asn| format!("{asn:010}"));
    let mut referrers: Vec<NamedCount> =
        most_first(activity.referrers.iter().map(|(h, &c)| (Some(h.clone()), c)), |h| h.clone().unwrap_or_default())
            .into_iter()
            .map(|(name, count)| NamedCount { name, count })
            .collect();
    if activity.missing_referrer > 0 {
        referrers.push(NamedCount { name: None, count: activity.missing_referrer });
        referrers.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    }
    referrers.truncate(ROW_LIST_LIMIT);
    let streams = most_first(activity.streams.iter().map(|(s, &c)| (s.clone(), c)), Clone::clone);
    TokenRow {
        token: token.to_owned(),
        sub: activity.sub.clone(),
        score,
        severity: if indicators.is_empty() { Severity::Low } else { Severity::of(f64::from(score) / 100.0) },
        indicators,
        ips: activity.ip_count(),
        sessions: activity.session_count(),
        peak_concurrency: activity.peak_concurrency(timing),
        countries: countries.into_iter().map(|(c, _)| c).collect(),
        providers: providers
            .into_iter()
            .take(ROW_LIST_LIMIT)
            .map(|(asn, count)| ProviderCount {
                asn,
                organization: activity
                    .providers
                    .get(&asn)
                    .and_then(|p| p.organization.clone())
                    .or_else(|| table.asn_name(asn).map(str::to_owned)),
                count,
            })
            .collect(),
        referrers,
        playback_seconds: activity.playback_seconds(timing),
        bytes: activity.bytes,
        streams: streams.into_iter().take(ROW_LIST_LIMIT).map(|(s, _)| s).collect(),
        first_seen: activity.first_seen,
        last_seen: activity.last_seen,
    }
}

/// Every network across all tokens, most tokens first.
pub fn ip_activity(activity: &Aggregator, networks: &NetworkTable) -> Vec<IpRow> {
    let mut by_ip: HashMap<&str, IpRow> = HashMap::new();
    for (_, rollup) in activity.tokens() {
        for (key, used) in &rollup.networks {
            let row = by_ip.entry(key).or_insert_with(|| IpRow {
                ip: key.clone(),
                tokens: 0,
                events: 0,
                asn: used.asn,
                organization: used.as_organization.clone(),
                country: used.country.clone(),
                network_class: None,
                first_seen: used.first,
                last_seen: used.last,
            });
            row.tokens += 1;
            row.events = row.events.saturating_add(used.events);
            row.first_seen = row.first_seen.min(used.first);
            row.last_seen = row.last_seen.max(used.last);
            row.asn = row.asn.or(used.asn);
            if row.organization.is_none() {
                row.organization.clone_from(&used.as_organization);
            }
            if row.country.is_none() {
                row.country.clone_from(&used.country);
            }
        }
    }
    let mut rows: Vec<IpRow> = by_ip
        .into_values()
        .map(|mut row| {
            row.network_class = networks.classify(row.asn, row.organization.as_deref(), Some(&row.ip));
            if row.organization.is_none() {
                row.organization = row.asn.and_then(|asn| networks.asn_name(asn)).map(str::to_owned);
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(b.events.cmp(&a.events)).then_with(|| a.ip.cmp(&b.ip)));
    rows
}

/// Tokens and events per country, provider, referrer, user agent and stream.
pub fn breakdown(activity: &Aggregator) -> Vec<BreakdownRow> {
    let mut counts: BTreeMap<(Dimension, String), (u64, u64)> = BTreeMap::new();
    let mut add = |dimension: Dimension, key: String, events: u64| {
        let entry = counts.entry((dimension, key)).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.saturating_add(events);
    };
    for (_, rollup) in activity.tokens() {
        for (country, used) in &rollup.countries {
            add(Dimension::Country, country.clone(), used.events);
        }
        for (asn, provider) in &rollup.providers {
            add(Dimension::Provider, format!("AS{asn}"), provider.events);
        }
        for (host, &count) in &rollup.referrers {
            add(Dimension::Referrer, host.clone(), count);
        }
        if rollup.missing_referrer > 0 {
            add(Dimension::Referrer, "-".to_owned(), rollup.missing_referrer);
        }
        for (agent, &count) in &rollup.user_agents {
            add(Dimension::UserAgent, agent.clone(), count);
        }
        for (stream, &count) in &rollup.streams {
            add(Dimension::Stream, stream.clone(), count);
        }
    }
    let mut rows: Vec<BreakdownRow> = counts
        .into_iter()
        .map(|((dimension, key), (tokens, events))| BreakdownRow { dimension, key, tokens, events })
        .collect();
    rows.sort_by(|a, b| a.dimension.cmp(&b.dimension).then(b.events.cmp(&a.events)).then_with(|| a.key.cmp(&b.key)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_windows_from_a_span_a_range_or_the_default() {
        let now = 10_000;
        assert_eq!(Window::from_query(Some("1h"), None, None, 60, now), Ok(Window::new(6_401, 10_001)));
        assert_eq!(Window::from_query(None, Some("5"), Some("9"), 60, now), Ok(Window::new(5, 9)));
        assert_eq!(Window::from_query(None, None, None, 60, now), Ok(Window::new(9_941, 10_001)));
        assert!(Window::from_query(None, Some("9"), Some("5"), 60, now).is_err());
        assert!(Window::from_query(Some("1h"), Some("5"), None, 60, now).is_err());
        assert_eq!((parse_span("90m"), parse_span(" 45 "), parse_span("1d")), (Ok(5_400), Ok(45), Ok(86_400)));
        for bad in ["", "0s", "32d", "3w", "h", "-1h", "99999999999999999999d"] {
            assert!(parse_span(bad).is_err(), "{bad:?}");
        }
    }
}
