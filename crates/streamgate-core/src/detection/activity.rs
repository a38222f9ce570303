//! Per-token rollups: events in, mergeable activity out.
//!
//! Exactness of merges: a session (and a country) is kept as *runs*, maximal groups of
//! event times whose neighbours are at most a gap apart. The runs of a union of events are
//! the runs of the parts, coalesced wherever two come within the gap, so merging rollups
//! in any order gives what one pass over all the events gives. Counters add; first/last
//! take min/max. The one exception is the cap on distinct values per map
//! ([`MAX_DISTINCT`]): past it, events with new values are counted in `overflow_events`
//! and not kept, and which values made it in depends on arrival order.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::UsageEvent;

/// Most distinct keys one map of a [`TokenActivity`] keeps (sessions, networks,
/// countries, providers, referrers, user agents, streams), so one hostile token cannot
/// grow a rollup without bound.
pub const MAX_DISTINCT: usize = 20_000;

/// Most distinct Referer hosts, User-Agents and streams one [`TokenActivity`] keeps: they
/// are the viewers' own text (up to 320 bytes each), and the edge stores a rollup per token
/// and time bucket as one database row, which a viewer sending a new User-Agent on every
/// request would otherwise grow past what the database returns (review).
pub const MAX_FREE_TEXT_KEYS: usize = 100;

/// The two gaps a rollup is built with; rollups merge only when they agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// A session's activity ends this many seconds after its last event (default 60, the
    /// gate's `SESSION_IDLE`); a later event of the same `sid` starts a new run.
    pub idle_seconds: i64,
    /// The short sub-window in which countries count together for `multi_country`
    /// (default 3600).
    pub country_window_seconds: i64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { idle_seconds: 60, country_window_seconds: 3600 }
    }
}

impl Timing {
    /// This timing with an idle gap of at least the gate's `session_idle_seconds`: a
    /// session the gate still counts records at least that often (a video on demand's
    /// background heartbeat comes every half of it), so a shorter gap would split one
    /// viewer into many sessions and flag `many_sessions` (review).
    pub fn covering_sessions(self, session_idle_seconds: i64) -> Timing {
        Timing { idle_seconds: self.idle_seconds.max(session_idle_seconds), ..self }
    }
}

/// A borrowed view of one [`UsageEvent`], for callers that parse without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are UsageEvent's, documented there
pub struct EventView<'a> {
    pub at: i64,
    pub token: &'a str,
    pub sid: &'a str,
    pub ip: Option<&'a str>,
    pub country: Option<&'a str>,
    pub asn: Option<u32>,
    pub as_organization: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub stream: Option<&'a str>,
    pub bytes: Option<u64>,
    pub sub: Option<&'a str>,
    pub max_sessions: Option<u32>,
}

impl UsageEvent {
    /// This event as an [`EventView`].
    pub fn view(&self) -> EventView<'_> {
        EventView {
            at: self.at,
            token: &self.token,
            sid: &self.sid,
            ip: self.ip.as_deref(),
            country: self.country.as_deref(),
            asn: self.asn,
            as_organization: self.as_organization.as_deref(),
            referer: self.referer.as_deref(),
            user_agent: self.user_agent.as_deref(),
            stream: self.stream.as_deref(),
            bytes: self.bytes,
            sub: self.sub.as_deref(),
            max_sessions: self.max_sessions,
        }
    }
}

/// Activity runs: sorted, disjoint `[first, last]` pairs of event times (JSON: `[[a, b], …]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<(i64, i64)>")]
pub struct Runs(Vec<(i64, i64)>);

impl From<Vec<(i64, i64)>> for Runs {
    /// Orders and coalesces overlapping pairs, so stored JSON cannot break the invariant.
    fn from(pairs: Vec<(i64, i64)>) -> Runs {
        let mut runs = Runs(pairs.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect());
        runs.coalesce(0);
        runs
    }
}

impl Runs {
    /// The `[first, last]` pairs, in time order.
    pub fn as_slice(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub(super) fn add(&mut self, at: i64, gap: i64) {
        self.add_run(at, at, gap);
    }

    /// Empties it, keeping its buffer.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Adds the run `[first, last]` of events no more than `gap` apart: what adding each
    /// of its events gives, in one step when it lies at or after the last run's start.
    fn add_run(&mut self, first: i64, last: i64, gap: i64) {
        match self.0.last_mut() {
            Some(run) if first >= run.0 => {
                if first <= run.1.saturating_add(gap) {
                    run.1 = run.1.max(last);
                } else {
                    self.0.push((first, last));
                }
            }
            Some(_) => {
                self.0.push((first, last));
                self.coalesce(gap);
            }
            None => self.0.push((first, last)),
        }
    }

    /// Adds other runs built with the same `gap`, in their order.
    fn add_runs(&mut self, runs: &[(i64, i64)], gap: i64) {
        for &(first, last) in runs {
            self.add_run(first, last, gap);
        }
    }

    fn merge(&mut self, other: &Runs, gap: i64) {
        self.0.extend_from_slice(&other.0);
        self.coalesce(gap);
    }

    fn coalesce(&mut self, gap: i64) {
        self.0.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.0.len());
        for &(first, last) in &self.0 {
            match merged.last_mut() {
                Some(previous) if first <= previous.1.saturating_add(gap) => previous.1 = previous.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        self.0 = merged;
    }
}

/// One network (an IPv4 address or an IPv6 /64) as a token used it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkUse {
    /// Events from it.
    pub events: u64,
    /// First event, unix seconds.
    pub first: i64,
    /// Last event, unix seconds.
    pub last: i64,
    /// Its autonomous system, where the events said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Its AS organization, where the events said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_organization: Option<String>,
    /// Its country, where the events said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// One country as a token used it: events, and runs coalesced by the country window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryUse {
    /// Events from it.
    pub events: u64,
    /// When it was seen, runs at most [`Timing::country_window_seconds`] apart.
    pub runs: Runs,
}

/// One autonomous system as a token used it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderUse {
    /// Its AS organization, where the events said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Events from it.
    pub events: u64,
}

/// Everything one token did, as a serializable, exactly mergeable rollup: what the worker
/// stores per token and time bucket (as JSON) and what the detector judges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenActivity {
    /// The token's `sub`, for user-bound tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The token's session limit, when it sets one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// First event, unix seconds.
    pub first_seen: i64,
    /// Last event, unix seconds.
    pub last_seen: i64,
    /// Events.
    pub events: u64,
    /// Media bytes reported.
    pub bytes: u64,
    /// Per session id, its activity runs (gap [`Timing::idle_seconds`]).
    pub sessions: BTreeMap<String, Runs>,
    /// Per network: an IPv4 address, or an IPv6 /64 as `prefix::/64`.
    pub networks: BTreeMap<String, NetworkUse>,
    /// Per two-letter country.
    pub countries: BTreeMap<String, CountryUse>,
    /// Per autonomous system number.
    pub providers: BTreeMap<u32, ProviderUse>,
    /// Events per Referer host.
    pub referrers: BTreeMap<String, u64>,
    /// Events without a Referer (or with one that names no host).
    pub missing_referrer: u64,
    /// Events per User-Agent.
    pub user_agents: BTreeMap<String, u64>,
    /// Events per stream.
    pub streams: BTreeMap<String, u64>,
    /// Events whose new key a full map ([`MAX_DISTINCT`], [`MAX_FREE_TEXT_KEYS`]) did not keep.
    pub overflow_events: u64,
    /// Of those, events with a Referer host the full `referrers` map did not keep: the
    /// `unknown_referrer` indicator counts them as unknown (a host not kept cannot be shown
    /// to be allowed), so many hosts do not hide a player embedded elsewhere.
    pub unkept_referrers: u64,
}

/// Adds `by` to `key`'s count, inserting it when `map` holds fewer than `limit` keys;
/// whether it was kept (else `by` counts as overflow).
fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, by: u64, limit: usize, overflow: &mut u64) -> bool {
    if let Some(count) = map.get_mut(&key) {
        *count = count.saturating_add(by);
    } else if map.len() < limit {
        map.insert(key, by);
    } else {
        *overflow = overflow.saturating_add(by);
        return false;
    }
    true
}

/// Finds `key` in `map` without allocating, inserting `make()` when absent and the map
/// holds fewer than `limit` keys; when full, the `events` that brought the key count as
/// overflow.
fn entry<'m, V>(
    map: &'m mut BTreeMap<String, V>,
    key: &str,
    make: impl FnOnce() -> V,
    (events, limit): (u64, usize),
    overflow: &mut u64,
) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        if map.len() >= limit {
            *overflow = overflow.saturating_add(events);
            return None;
        }
        map.insert(key.to_owned(), make());
    }
    map.get_mut(key)
}

/// The network an IP belongs to for counting: IPv4 addresses as they are, IPv6 addresses
/// by their /64 (privacy addresses rotate inside it), IPv4-mapped IPv6 as IPv4.
pub(crate) fn network_key(ip: &str) -> Cow<'_, str> {
    let ip = ip.trim();
    // Digits and dots are an IPv4 address or no address: either way the key is the text.
    if ip.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Cow::Borrowed(ip);
    }
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => Cow::Borrowed(ip),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => Cow::Owned(v4.to_string()),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Cow::Owned(format!("{}/64", Ipv6Addr::from(prefix)))
            }
        },
        Err(_) => Cow::Borrowed(ip),
    }
}

/// Where events disagree (an address moving between ASes), rollups keep the least ASN
/// and the greatest text, so the result does not depend on the order of events or merges.
fn least(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn keep_greater(kept: &mut Option<String>, seen: Option<&str>) {
    if let Some(seen) = seen {
        if kept.as_deref().is_none_or(|kept| seen > kept) {
            *kept = Some(seen.to_owned());
        }
    }
}

/// What records name a Referer host by when it is neither a host name nor an IP address
/// (`*.customer.example`, `-`): a row named so could not be blocked as written, and the
/// view's block of `*.customer.example` would block every subdomain of the real host.
pub const NOT_A_HOST: &str = "(not a host name)";

/// The host of a Referer URL as records name it: lower-cased and without a trailing dot,
/// as the referrer rules read it (`policy::pattern::referrer_host`), or [`NOT_A_HOST`];
/// borrowed when it already is (the common case), without an allocation per event.
fn referrer_host(referer: &str) -> Option<Cow<'_, str>> {
    let (_, rest) = referer.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host =
        if let Some(v6) = host_port.strip_prefix('[') { v6.split(']').next()? } else { host_port.split(':').next()? };
    if host.is_empty() {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    };
    let named = crate::policy::is_host_name(&host) || host.parse::<std::net::IpAddr>().is_ok();
    Some(if named { host } else { Cow::Borrowed(NOT_A_HOST) })
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// Events of one token that share every field but their time and bytes (one session's
/// heartbeats, mostly), taken together: what [`TokenActivity::add_batch`] folds in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Batch<'r> {
    /// How many events.
    pub events: u64,
    /// Their bytes, summed (saturating).
    pub bytes: u64,
    /// The earliest event time.
    pub first: i64,
    /// The latest event time.
    pub last: i64,
    /// Their times as runs with the gap [`Timing::idle_seconds`].
    pub session_runs: &'r [(i64, i64)],
    /// Their times as runs with the gap [`Timing::country_window_seconds`].
    pub country_runs: &'r [(i64, i64)],
}

impl TokenActivity {
    /// Folds one event in.
    pub fn add(&mut self, event: &EventView<'_>, timing: Timing) {
        let at = [(event.at, event.at)];
        let batch = Batch {
            events: 1,
            bytes: event.bytes.unwrap_or(0),
            first: event.at,
            last: event.at,
            session_runs: &at,
            country_runs: &at,
        };
        self.add_batch(event, &batch, timing);
    }

    /// Folds in a batch of events that all have `shape`'s fields (its `at` and `bytes` are
    /// not read): the same rollup as adding each of them, in their order, with
    /// [`TokenActivity::add`]. Every map sees the batch at once, so a full map
    /// ([`MAX_DISTINCT`]) counts all of its events as overflow, as it would one by one.
    pub(super) fn add_batch(&mut self, shape: &EventView<'_>, batch: &Batch<'_>, timing: Timing) {
        let n = batch.events;
        if n == 0 {
            return;
        }
        let (first, last) = (batch.first, batch.last);
        if self.events == 0 {
            self.first_seen = first;
            self.last_seen = last;
        } else {
            self.first_seen = self.first_seen.min(first);
            self.last_seen = self.last_seen.max(last);
        }
        self.events = self.events.saturating_add(n);
        self.bytes = self.bytes.saturating_add(batch.bytes);
        keep_greater(&mut self.sub, non_empty(shape.sub));
        self.max_sessions = self.max_sessions.max(shape.max_sessions);
        let overflow = &mut self.overflow_events;

        if let Some(runs) = entry(&mut self.sessions, shape.sid, Runs::default, (n, MAX_DISTINCT), overflow) {
            runs.add_runs(batch.session_runs, timing.idle_seconds);
        }
        let country = non_empty(shape.country);
        let organization = non_empty(shape.as_organization);
        if let Some(ip) = non_empty(shape.ip) {
            let key = network_key(ip);
            let fresh = || NetworkUse { first, last, ..NetworkUse::default() };
            if let Some(network) = entry(&mut self.networks, &key, fresh, (n, MAX_DISTINCT), overflow) {
                network.events = network.events.saturating_add(n);
                network.first = network.first.min(first);
                network.last = network.last.max(last);
                network.asn = least(network.asn, shape.asn);
                keep_greater(&mut network.as_organization, organization);
                keep_greater(&mut network.country, country);
            }
        }
        if let Some(country) = country {
            if let Some(used) = entry(&mut self.countries, country, CountryUse::default, (n, MAX_DISTINCT), overflow) {
                used.events = used.events.saturating_add(n);
                used.runs.add_runs(batch.country_runs, timing.country_window_seconds);
            }
        }
        if let Some(asn) = shape.asn {
            if let Some(provider) = self.providers.get_mut(&asn) {
                provider.events = provider.events.saturating_add(n);
                keep_greater(&mut provider.organization, organization);
            } else if self.providers.len() < MAX_DISTINCT {
                let organization = organization.map(str::to_owned);
                self.providers.insert(asn, ProviderUse { organization, events: n });
            } else {
                *overflow = overflow.saturating_add(n);
            }
        }
        match non_empty(shape.referer).and_then(referrer_host) {
            Some(host) => match entry(&mut self.referrers, &host, || 0, (n, MAX_FREE_TEXT_KEYS), overflow) {
                Some(count) => *count = count.saturating_add(n),
                None => self.unkept_referrers = self.unkept_referrers.saturating_add(n),
            },
            None => self.missing_referrer = self.missing_referrer.saturating_add(n),
        }
        if let Some(agent) = non_empty(shape.user_agent) {
            if let Some(count) = entry(&mut self.user_agents, agent, || 0, (n, MAX_FREE_TEXT_KEYS), overflow) {
                *count = count.saturating_add(n);
            }
        }
        if let Some(stream) = non_empty(shape.stream) {
            if let Some(count) = entry(&mut self.streams, stream, || 0, (n, MAX_FREE_TEXT_KEYS), overflow) {
                *count = count.saturating_add(n);
            }
        }
    }

    /// Merges another rollup of the same token (built with the same `timing`) into this one.
    pub fn merge(&mut self, other: TokenActivity, timing: Timing) {
        if other.events == 0 {
            return;
        }
        if self.events == 0 {
            self.first_seen = other.first_seen;
            self.last_seen = other.last_seen;
        } else {
            self.first_seen = self.first_seen.min(other.first_seen);
            self.last_seen = self.last_seen.max(other.last_seen);
        }
        self.events = self.events.saturating_add(other.events);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.sub = self.sub.take().max(other.sub);
        self.max_sessions = self.max_sessions.max(other.max_sessions);
        self.missing_referrer = self.missing_referrer.saturating_add(other.missing_referrer);
        self.overflow_events = self.overflow_events.saturating_add(other.overflow_events);
        self.unkept_referrers = self.unkept_referrers.saturating_add(other.unkept_referrers);
        let overflow = &mut self.overflow_events;

        for (sid, runs) in other.sessions {
            if let Some(mine) = entry(&mut self.sessions, &sid, Runs::default, (1, MAX_DISTINCT), overflow) {
                mine.merge(&runs, timing.idle_seconds);
            }
        }
        for (key, theirs) in other.networks {
            let fresh = || NetworkUse { first: theirs.first, last: theirs.last, ..NetworkUse::default() };
            if let Some(network) = entry(&mut self.networks, &key, fresh, (1, MAX_DISTINCT), overflow) {
                network.events = network.events.saturating_add(theirs.events);
                network.first = network.first.min(theirs.first);
                network.last = network.last.max(theirs.last);
                network.asn = least(network.asn, theirs.asn);
                network.as_organization = network.as_organization.take().max(theirs.as_organization);
                network.country = network.country.take().max(theirs.country);
            }
        }
        for (country, theirs) in other.countries {
            if let Some(used) = entry(&mut self.countries, &country, CountryUse::default, (1, MAX_DISTINCT), overflow) {
                used.events = used.events.saturating_add(theirs.events);
                used.runs.merge(&theirs.runs, timing.country_window_seconds);
            }
        }
        for (asn, theirs) in other.providers {
            if let Some(provider) = self.providers.get_mut(&asn) {
                provider.events = provider.events.saturating_add(theirs.events);
                provider.organization = provider.organization.take().max(theirs.organization);
            } else if self.providers.len() < MAX_DISTINCT {
                self.providers.insert(asn, theirs);
            } else {
                *overflow = overflow.saturating_add(theirs.events);
            }
        }
        for (host, count) in other.referrers {
            if !bump(&mut self.referrers, host, count, MAX_FREE_TEXT_KEYS, overflow) {
                self.unkept_referrers = self.unkept_referrers.saturating_add(count);
            }
        }
        for (agent, count) in other.user_agents {
            bump(&mut self.user_agents, agent, count, MAX_FREE_TEXT_KEYS, overflow);
        }
        for (stream, count) in other.streams {
            bump(&mut self.streams, stream, count, MAX_FREE_TEXT_KEYS, overflow);
        }
    }

    /// Distinct networks: IPv4 addresses and IPv6 /64s.
    pub fn ip_count(&self) -> usize {
        self.networks.len()
    }

    /// Sessions: activity runs of each session id (a session idle past the gap and
    /// resumed counts twice).
    pub fn session_count(&self) -> usize {
        self.sessions.values().map(|runs| runs.as_slice().len()).sum()
    }

    /// Each session run as `[first, last + idle)`: when it was playing.
    fn session_intervals(&self, timing: Timing) -> impl Iterator<Item = (i64, i64)> + '_ {
        let idle = timing.idle_seconds.max(0);
        self.sessions
            .values()
            .flat_map(move |runs| runs.as_slice().iter().map(move |&(a, b)| (a, b.saturating_add(idle))))
    }

    /// Total playback: the sum of session spans (first to last event plus the idle gap).
    pub fn playback_seconds(&self, timing: Timing) -> i64 {
        self.session_intervals(timing).map(|(start, end)| end.saturating_sub(start)).fold(0i64, i64::saturating_add)
    }

    /// Most sessions playing at one instant.
    pub fn peak_concurrency(&self, timing: Timing) -> u32 {
        self.sustained_concurrency(timing, 0)
    }

    /// Most sessions playing together for at least `min_seconds` without a break (0: the
    /// instantaneous peak). A player that reconnects under a new session id overlaps its
    /// old session for at most the idle gap, so a minimum above it ignores reconnects.
    pub fn sustained_concurrency(&self, timing: Timing, min_seconds: i64) -> u32 {
        let levels = level_segments(self.session_intervals(timing));
        let peak = levels.iter().map(|&(_, _, level)| level).max().unwrap_or(0);
        // Binary search the highest level held for `min_seconds`: holding k implies k - 1.
        let (mut low, mut high) = (0u32, peak);
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            if held_for(&levels, mid, min_seconds) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        low
    }

    /// Most distinct countries seen within any window of `Timing::country_window_seconds`.
    pub fn countries_within_window(&self, timing: Timing) -> usize {
        // A country's runs have gaps of at most the window, so a window [t, t + w] meets a
        // run [a, b] exactly when it contains one of its events: t in [a - w, b].
        let w = timing.country_window_seconds.max(0);
        let intervals = self
            .countries
            .values()
            .flat_map(|used| used.runs.as_slice().iter().map(|&(a, b)| (a.saturating_sub(w), b)));
        let mut points: Vec<(i64, i32)> = intervals.flat_map(|(a, b)| [(a, -1), (b, 1)]).collect();
        // Closed intervals: at one instant, starts (-1 sorts first) before ends.
        points.sort_unstable();
        let (mut level, mut most) = (0i64, 0i64);
        for (_, step) in points {
            level -= i64::from(step);
            most = most.max(level);
        }
        usize::try_from(most).unwrap_or(0)
    }

    /// The stream with the most events.
    pub fn main_stream(&self) -> Option<&str> {
        self.streams.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(s, _)| s.as_str())
    }
}

/// The concurrency level over time: `(start, end, level)` for each stretch between changes.
fn level_segments(intervals: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64, u32)> {
    // Half-open intervals: at one instant, ends (-1) before starts (+1).
    let mut points: Vec<(i64, i32)> = intervals.flat_map(|(a, b)| [(a, 1), (b, -1)]).collect();
    points.sort_unstable_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut segments = Vec::with_capacity(points.len());
    let mut level: i64 = 0;
    let mut previous: Option<i64> = None;
    for (at, step) in points {
        if let Some(start) = previous {
            if at > start && level > 0 {
                segments.push((start, at, u32::try_from(level).unwrap_or(u32::MAX)));
            }
        }
        level += i64::from(step);
        previous = Some(at);
    }
    segments
}

fn held_for(levels: &[(i64, i64, u32)], level: u32, min_seconds: i64) -> bool {
    let mut stretch: Option<(i64, i64)> = None;
    for &(start, end, at_level) in levels {
        if at_level < level {
            stretch = None;
            continue;
        }
        stretch = match stretch {
            Some((first, last)) if last == start => Some((first, end)),
            _ => Some((start, end)),
        };
        if let Some((first, last)) = stretch {
            if last - first >= min_seconds {
                return true;
            }
        }
    }
    false
}

/// Two rollups built with different [`Timing`]s do not merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeError {
    /// This aggregator's timing.
    pub ours: Timing,
    /// The other's.
    pub theirs: Timing,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rollups built with different timings do not merge ({:?} vs {:?})", self.ours, self.theirs)
    }
}

impl std::error::Error for MergeError {}

/// Rollups of many tokens: fold events in with [`Aggregator::add`], combine shards or
/// stored buckets with [`Aggregator::merge`]. Serializes as
/// `{"timing": {…}, "tokens": {"<token>": TokenActivity, …}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregator {
    timing: Timing,
    tokens: HashMap<String, TokenActivity>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new(timing: Timing) -> Aggregator {
        Aggregator { timing, tokens: HashMap::new() }
    }

    /// The gaps its rollups are built with.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Folds one event in.
    pub fn add(&mut self, event: &UsageEvent) {
        self.add_view(&event.view());
    }

    /// Folds one borrowed event in; allocates only for values it has not seen.
    pub fn add_view(&mut self, event: &EventView<'_>) {
        let timing = self.timing;
        match self.tokens.get_mut(event.token) {
            Some(activity) => activity.add(event, timing),
            None => {
                let mut activity = TokenActivity::default();
                activity.add(event, timing);
                self.tokens.insert(event.token.to_owned(), activity);
            }
        }
    }

    /// Merges one token's stored rollup in (e.g. a bucket read back from storage).
    pub fn merge_token(&mut self, token: &str, activity: TokenActivity) {
        let timing = self.timing;
        match self.tokens.get_mut(token) {
            Some(mine) => mine.merge(activity, timing),
            None => {
                let mut mine = TokenActivity::default();
                mine.merge(activity, timing);
                self.tokens.insert(token.to_owned(), mine);
            }
        }
    }

    /// Merges another aggregator in; both must be built with the same [`Timing`].
    pub fn merge(&mut self, other: Aggregator) -> Result<(), MergeError> {
        if other.timing != self.timing {
            return Err(MergeError { ours: self.timing, theirs: other.timing });
        }
        if self.tokens.len() < other.tokens.len() {
            let mine = std::mem::replace(&mut self.tokens, other.tokens);
            for (token, activity) in mine {
                self.merge_token(&token, activity);
            }
        } else {
            for (token, activity) in other.tokens {
                self.merge_token(&token, activity);
            }
        }
        Ok(())
    }

    /// An aggregator holding these rollups (built with `timing`).
    pub(super) fn from_tokens(timing: Timing, tokens: HashMap<String, TokenActivity>) -> Aggregator {
        Aggregator { timing, tokens }
    }

    /// One token's rollup.
    pub fn get(&self, token: &str) -> Option<&TokenActivity> {
        self.tokens.get(token)
    }

    /// Every token and its rollup, in no particular order.
    pub fn tokens(&self) -> impl Iterator<Item = (&str, &TokenActivity)> {
        self.tokens.iter().map(|(token, activity)| (token.as_str(), activity))
    }

    /// Takes the rollups out, e.g. to store one row per token and bucket.
    pub fn into_tokens(self) -> impl Iterator<Item = (String, TokenActivity)> {
        self.tokens.into_iter()
    }

    /// Tokens seen.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(points: &[i64], gap: i64) -> Runs {
        let mut runs = Runs::default();
        for &at in points {
            runs.add(at, gap);
        }
        runs
    }

    #[test]
    fn runs_coalesce_within_the_gap_in_any_order() {
        assert_eq!(runs(&[0, 50, 100, 300], 60).as_slice(), &[(0, 100), (300, 300)]);
        assert_eq!(runs(&[300, 100, 0, 50], 60).as_slice(), &[(0, 100), (300, 300)]);
        let mut left = runs(&[0, 100], 60);
        left.merge(&runs(&[50, 300], 60), 60);
        assert_eq!(left.as_slice(), &[(0, 100), (300, 300)]);
    }

    #[test]
    fn referrer_hosts_match_the_policy_rule() {
        for referer in [
            "https://WWW.Example.com:8443/x?y",
            "http://a@b.example/",
            "https://[2001:db8::1]/",
            "http://198.51.100.7:8080/",
            "http://localhost/",
            "no-scheme",
            "https:///",
        ] {
            assert_eq!(referrer_host(referer).map(Cow::into_owned), crate::policy::pattern::referrer_host(referer));
        }
    }

    /// Regression (review): a Referer host was kept as written, so `*.customer.example`
    /// or `customer.example.` showed as a row whose block (from the Guardian view) covered
    /// every subdomain of the real host, or its apex; and `-` merged into the "no
    /// referrer" row, which has no block button.
    #[test]
    fn referrer_hosts_are_recorded_as_a_block_would_name_them() {
        let host = |r: &str| referrer_host(r).map(Cow::into_owned);
        assert_eq!(host("https://Customer.Example./x").as_deref(), Some("customer.example"));
        for written in ["*.customer.example", "*", "-", "a..b", "x_y.example", "exa mple.com", "com", "%2a.example"] {
            assert_eq!(host(&format!("https://{written}/")).as_deref(), Some(NOT_A_HOST), "{written}");
        }
        assert!(crate::policy::blocked_referrer_host(NOT_A_HOST).is_err(), "a block cannot name it");
        let mut all = Aggregator::new(Timing::default());
        for (at, referer) in [(1, "https://*.customer.example/"), (2, "https://-/"), (3, "https://customer.example./")]
        {
            all.add(&UsageEvent { at, token: "t".into(), referer: Some(referer.into()), ..UsageEvent::default() });
        }
        let activity = all.get("t").expect("recorded");
        assert_eq!(activity.missing_referrer, 0, "a `-` host is not a missing Referer");
        assert_eq!(
            activity.referrers.iter().map(|(h, n)| (h.as_str(), *n)).collect::<Vec<_>>(),
            [(NOT_A_HOST, 2), ("customer.example", 1)]
        );
    }

    /// Regression (review): one holder sending a new 256-byte User-Agent and Referer host
    /// with each of 1,200 recorded reloads grew the bucket's rollup (one database row at
    /// the edge) to about 1.4 MB; a few such buckets broke the scan and the dashboard.
    #[test]
    fn viewers_free_text_cannot_grow_a_rollup_without_bound() {
        let timing = Timing::default();
        let quotes = "\"".repeat(250);
        let (mut one, mut other) = (TokenActivity::default(), TokenActivity::default());
        for i in 0..1_200_i64 {
            let agent = format!("{quotes}{i}");
            let referer = format!("https://h{i}.{}.example/", vec!["a".repeat(50); 4].join("."));
            let stream = format!("/live/{quotes}{i}");
            let event = EventView {
                at: i,
                token: "t",
                sid: "s",
                referer: Some(&referer),
                user_agent: Some(&agent),
                stream: Some(&stream),
                ..EventView::default()
            };
            if i % 2 == 0 {
                one.add(&event, timing)
            } else {
                other.add(&event, timing)
            }
        }
        one.merge(other, timing);
        let stored = serde_json::to_string(&one).unwrap_or_default();
        assert!(stored.len() < 256 * 1024, "rollup is {} bytes", stored.len());
        assert_eq!((one.user_agents.len(), one.referrers.len(), one.streams.len()), (100, 100, 100));
        // Every event is accounted for: kept, or counted as not kept.
        assert_eq!(one.referrers.values().sum::<u64>() + one.unkept_referrers, 1_200);
        assert_eq!(one.overflow_events, 3 * 1_100);
    }

    #[test]
    fn a_session_recorded_every_half_idle_is_one_session_when_the_timing_covers_it() {
        let session_idle = 300;
        let count = |timing: Timing| {
            let mut a = TokenActivity::default();
            for at in (0..7_200).step_by(150) {
                a.add(&EventView { at, token: "t", sid: "vod", ..EventView::default() }, timing);
            }
            a.session_count()
        };
        assert_eq!(count(Timing::default().covering_sessions(session_idle)), 1);
        assert!(count(Timing::default()) > 40, "a 60 s gap splits it at every beat");
        assert_eq!(Timing { idle_seconds: 900, ..Timing::default() }.covering_sessions(session_idle).idle_seconds, 900);
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(network_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(network_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(network_key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(network_key("198.51.100.7"), "198.51.100.7");
    }

    #[test]
    fn concurrency_from_session_intervals() {
        let timing = Timing::default();
        let mut a = TokenActivity::default();
        let event = |sid: &'static str, at| EventView { at, token: "t", sid, ..EventView::default() };
        for at in (0..600).step_by(30) {
            a.add(&event("one", at), timing);
        }
        // A reconnect under a new id overlaps the old session for the idle gap only.
        for at in (600..900).step_by(30) {
            a.add(&event("two", at), timing);
        }
        assert_eq!(a.peak_concurrency(timing), 2);
        assert_eq!(a.sustained_concurrency(timing, 120), 1);
        assert_eq!(a.playback_seconds(timing), (570 + 60) + (270 + 60));
    }
}
