//! The indicators: one rule each, evidence out. Scoring is in [`score`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::activity::TokenActivity;
use super::config::DetectorConfig;
use super::networks::{NetworkClass, NetworkTable};
use super::Timing;
use crate::policy::pattern::host_matches;

/// One misuse indicator, by stable snake_case code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IndicatorCode {
    /// More distinct networks than one viewer uses (sharing, relays).
    ManyIps,
    /// More sessions than one viewer starts (sharing, embeds).
    ManySessions,
    /// Traffic from data-centre or cloud networks (relays, restreams).
    HostingNetwork,
    /// Traffic through privacy relays or VPNs: informational, never hosting by itself.
    PrivacyRelay,
    /// Referer hosts outside the operator's allowed list (embedded elsewhere).
    UnknownReferrer,
    /// No Referer: weak alone, since native apps and TVs send none.
    MissingReferrer,
    /// Several countries within a short window.
    MultiCountry,
    /// Playback far longer than the stream's audience watches.
    LongPlayback,
    /// More sessions playing at once than the token allows.
    Concurrency,
}

impl IndicatorCode {
    /// Every code, in documentation order.
    pub const ALL: [IndicatorCode; 9] = [
        IndicatorCode::ManyIps,
        IndicatorCode::ManySessions,
        IndicatorCode::HostingNetwork,
        IndicatorCode::PrivacyRelay,
        IndicatorCode::UnknownReferrer,
        IndicatorCode::MissingReferrer,
        IndicatorCode::MultiCountry,
        IndicatorCode::LongPlayback,
        IndicatorCode::Concurrency,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorCode::ManyIps => "many_ips",
            IndicatorCode::ManySessions => "many_sessions",
            IndicatorCode::HostingNetwork => "hosting_network",
            IndicatorCode::PrivacyRelay => "privacy_relay",
            IndicatorCode::UnknownReferrer => "unknown_referrer",
            IndicatorCode::MissingReferrer => "missing_referrer",
            IndicatorCode::MultiCountry => "multi_country",
            IndicatorCode::LongPlayback => "long_playback",
            IndicatorCode::Concurrency => "concurrency",
        }
    }
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look at most; weak indicators alone stay here.
    #[default]
    Low,
    /// Likely misuse.
    Medium,
    /// Misuse.
    High,
}

impl Severity {
    /// Its snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// The severity of a score or strength 0–1: `high` from 0.7, `medium` from 0.4.
    pub fn of(strength: f64) -> Severity {
        if strength >= 0.7 {
            Severity::High
        } else if strength >= 0.4 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// One indicator that fired for a token, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Which rule.
    pub code: IndicatorCode,
    /// `weight × confidence` as a severity.
    pub severity: Severity,
    /// How sure the rule is, 0–1 (two decimals).
    pub confidence: f64,
    /// What the rule saw (a JSON object; its fields per code in the module docs of `detection`).
    pub evidence: Value,
    /// The rule's weight, for the score.
    #[serde(skip)]
    pub(crate) weight: f64,
}

/// The score 0–100 of a set of indicators: `100 × (1 − Π(1 − weight × confidence))`.
pub fn score(indicators: &[Indicator]) -> u8 {
    let remaining: f64 = indicators.iter().map(|i| 1.0 - (i.weight * i.confidence).clamp(0.0, 1.0)).product();
    let score = (100.0 * (1.0 - remaining)).round().clamp(0.0, 100.0);
    // In 0..=100 after the clamp.
    score as u8
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn indicator(code: IndicatorCode, weight: f64, confidence: f64, evidence: Value) -> Indicator {
    let confidence = round2(confidence.clamp(0.0, 1.0));
    Indicator { code, severity: Severity::of(weight * confidence), confidence, evidence, weight }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One network of the token, classified, with the indicators marked expected for it.
pub(crate) struct ClassifiedNetwork<'a> {
    pub key: &'a str,
    pub events: u64,
    pub asn: Option<u32>,
    pub organization: Option<&'a str>,
    pub class: Option<NetworkClass>,
    /// `None`: nothing expected; `Some(None)`: every indicator; `Some(Some(code))`s otherwise.
    pub expected: Vec<Option<IndicatorCode>>,
}

impl ClassifiedNetwork<'_> {
    fn expected_for(&self, code: IndicatorCode) -> bool {
        self.expected.iter().any(|e| e.is_none_or(|c| c == code))
    }
}

/// What the rules need besides the rollup.
pub(crate) struct Context<'a> {
    pub config: &'a DetectorConfig,
    pub table: &'a NetworkTable,
    pub timing: Timing,
    pub networks: Vec<ClassifiedNetwork<'a>>,
    /// The p95 playback of the token's main stream and the number of tokens behind it.
    pub stream_p95: Option<(i64, usize)>,
}

/// Tokens shared by design (no `sub`, a session limit) are judged relative to the limit.
fn scale(activity: &TokenActivity) -> u32 {
    match (&activity.sub, activity.max_sessions) {
        (None, Some(limit)) => limit.max(1),
        _ => 1,
    }
}

/// Every rule that fires for one token, before token-level silencing.
pub(crate) fn evaluate(activity: &TokenActivity, ctx: &Context<'_>) -> Vec<Indicator> {
    let rules = &ctx.config.rules;
    let mut found = Vec::new();
    let all_expected = |code| !ctx.networks.is_empty() && ctx.networks.iter().all(|n| n.expected_for(code));
    let scale = scale(activity);

    // many_ips: relay and VPN egress rotates, so each relay provider counts once.
    {
        let code = IndicatorCode::ManyIps;
        let counted: Vec<&ClassifiedNetwork<'_>> = ctx.networks.iter().filter(|n| !n.expected_for(code)).collect();
        let relays: BTreeSet<(Option<u32>, Option<&str>)> =
            counted.iter().filter(|n| is_relay(n.class)).map(|n| (n.asn, n.organization)).collect();
        let direct: Vec<&&ClassifiedNetwork<'_>> = counted.iter().filter(|n| !is_relay(n.class)).collect();
        let count = direct.len() + relays.len();
        let limit = u64::from(rules.many_ips.above).saturating_mul(u64::from(scale));
        if count as u64 > limit {
            // Many addresses in one or two providers is a phone on cellular, not sharing.
            let providers: BTreeSet<String> = direct.iter().map(|n| provider_key(n)).collect();
            let diversity = (providers.len() as f64 / 4.0).min(1.0);
            let excess = count as f64 - limit as f64;
            let confidence = (0.5 + 0.1 * excess).min(1.0) * diversity;
            let evidence =
                json!({"ips": count, "limit": limit, "providers": providers.len(), "relay_providers": relays.len()});
            found.push(indicator(code, rules.many_ips.weight, confidence, evidence));
        }
    }

    // many_sessions
    {
        let sessions = activity.session_count() as u64;
        let limit = u64::from(rules.many_sessions.above).saturating_mul(u64::from(scale));
        if sessions > limit && !all_expected(IndicatorCode::ManySessions) {
            let confidence = 0.5 + 0.5 * (sessions as f64 / limit.max(1) as f64 - 1.0);
            let evidence = json!({"sessions": sessions, "limit": limit});
            found.push(indicator(IndicatorCode::ManySessions, rules.many_sessions.weight, confidence, evidence));
        }
    }

    // hosting_network and privacy_relay: shares of events by network class.
    for (code, classes, rule) in [
        (IndicatorCode::HostingNetwork, &[NetworkClass::Hosting][..], rules.hosting_network),
        (IndicatorCode::PrivacyRelay, &[NetworkClass::PrivacyRelay, NetworkClass::Vpn][..], rules.privacy_relay),
    ] {
        let mut matching: Vec<&ClassifiedNetwork<'_>> = ctx
            .networks
            .iter()
            .filter(|n| n.class.is_some_and(|c| classes.contains(&c)) && !n.expected_for(code))
            .collect();
        let events: u64 = matching.iter().map(|n| n.events).sum();
        let part = share(events, activity.events);
        if events > 0 && part >= rule.min_share {
            matching.sort_by(|a, b| b.events.cmp(&a.events).then(a.key.cmp(b.key)));
            let networks: Vec<Value> = matching
                .iter()
                .take(5)
                .map(|n| {
                    let organization = n.organization.or_else(|| n.asn.and_then(|asn| ctx.table.asn_name(asn)));
                    json!({"ip": n.key, "asn": n.asn, "organization": organization,
                           "class": n.class.map(NetworkClass::as_str), "events": n.events})
                })
                .collect();
            let evidence = json!({"share": round2(part), "events": events, "networks": networks});
            found.push(indicator(code, rule.weight, part, evidence));
        }
    }

    // unknown_referrer and missing_referrer
    if !ctx.config.allowed_referrers.is_empty() && !all_expected(IndicatorCode::UnknownReferrer) {
        let allowed = |host: &str| ctx.config.allowed_referrers.iter().any(|p| host_matches(p, host));
        let mut unknown: Vec<(&String, &u64)> = activity.referrers.iter().filter(|(host, _)| !allowed(host)).collect();
        let events = unknown.iter().map(|(_, &count)| count).sum::<u64>().saturating_add(activity.unkept_referrers);
        let part = share(events, activity.events);
        if events > 0 && part >= rules.unknown_referrer.min_share {
            unknown.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let hosts: Vec<Value> = unknown.iter().take(5).map(|(h, c)| json!({"name": h, "count": c})).collect();
            let evidence = json!({"share": round2(part), "events": events, "hosts": hosts});
            found.push(indicator(IndicatorCode::UnknownReferrer, rules.unknown_referrer.weight, part, evidence));
        }
    }
    {
        let part = share(activity.missing_referrer, activity.events);
        if activity.missing_referrer > 0
            && part >= rules.missing_referrer.min_share
            && !all_expected(IndicatorCode::MissingReferrer)
        {
            let evidence = json!({"share": round2(part), "events": activity.missing_referrer});
            found.push(indicator(IndicatorCode::MissingReferrer, rules.missing_referrer.weight, part, evidence));
        }
    }

    // multi_country
    {
        let within = activity.countries_within_window(ctx.timing);
        let above = rules.multi_country.above.saturating_mul(scale) as usize;
        if within > above && !all_expected(IndicatorCode::MultiCountry) {
            let confidence = 0.6 + 0.2 * (within - above - 1) as f64;
            let countries: Vec<&String> = activity.countries.keys().collect();
            let evidence = json!({"countries_within_window": within, "window_seconds": ctx.timing.country_window_seconds,
                                  "countries": countries});
            found.push(indicator(IndicatorCode::MultiCountry, rules.multi_country.weight, confidence, evidence));
        }
    }

    // long_playback: against a threshold and the stream's own audience.
    {
        let rule = rules.long_playback;
        let playback = activity.playback_seconds(ctx.timing);
        let population = ctx.stream_p95.filter(|&(_, n)| n >= rule.min_population);
        let relative = population.map(|(p95, _)| (p95 as f64 * rule.p95_factor) as i64).unwrap_or(0);
        let limit = rule.seconds.max(relative).max(1).saturating_mul(i64::from(scale));
        if playback > limit && !all_expected(IndicatorCode::LongPlayback) {
            let confidence = 0.5 + 0.5 * (playback as f64 / limit as f64 - 1.0);
            let evidence = json!({"playback_seconds": playback, "limit_seconds": limit,
                                  "stream": activity.main_stream(),
                                  "stream_p95_seconds": population.map(|(p95, _)| p95),
                                  "stream_tokens": population.map(|(_, n)| n)});
            found.push(indicator(IndicatorCode::LongPlayback, rule.weight, confidence, evidence));
        }
    }

    // concurrency: user-bound tokens against the household limit, others their own.
    {
        let rule = rules.concurrency;
        let limit = match (&activity.sub, activity.max_sessions) {
            (Some(_), _) => Some((rule.user_bound_limit, "sub")),
            (None, Some(max)) => Some((max, "max_sessions")),
            (None, None) => None,
        };
        if let Some((limit, basis)) = limit {
            let sustained = activity.sustained_concurrency(ctx.timing, rule.min_overlap_seconds);
            if sustained > limit && !all_expected(IndicatorCode::Concurrency) {
                let excess = f64::from(sustained - limit) / f64::from(limit.max(1));
                let confidence = 0.5 + 0.5 * excess;
                let evidence = json!({"sustained_peak": sustained, "peak": activity.peak_concurrency(ctx.timing),
                                      "limit": limit, "basis": basis, "min_overlap_seconds": rule.min_overlap_seconds});
                found.push(indicator(IndicatorCode::Concurrency, rule.weight, confidence, evidence));
            }
        }
    }
    found
}

fn is_relay(class: Option<NetworkClass>) -> bool {
    matches!(class, Some(NetworkClass::PrivacyRelay | NetworkClass::Vpn))
}

/// What tells providers apart: the ASN, else the address's /16 (IPv4) or /32 (IPv6).
fn provider_key(network: &ClassifiedNetwork<'_>) -> String {
    match network.asn {
        Some(asn) => format!("AS{asn}"),
        None => match network.key.split_once(':') {
            Some(_) => network.key.split(':').take(2).collect::<Vec<_>>().join(":"),
            None => network.key.split('.').take(2).collect::<Vec<_>>().join("."),
        },
    }
}
