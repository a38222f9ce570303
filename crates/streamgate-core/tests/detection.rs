//! Token Guardian against generated traffic: every planted misuse found with its expected
//! indicator, the benign behaviours left below `medium`, exact merges, the row shapes.

use std::collections::BTreeSet;

use serde_json::Value;
use streamgate_core::detection::simulate::{self, Scenario, SplitMix64};
use streamgate_core::detection::{
    Aggregator, Detector, DetectorConfig, Folder, IndicatorCode, NetworkClass, NetworkTable, Severity, TokenRow,
    UsageEvent, Window,
};

fn config() -> DetectorConfig {
    DetectorConfig { allowed_referrers: vec![simulate::ALLOWED_REFERRER.into()], ..DetectorConfig::default() }
}

fn events(scenario: Scenario, seed: u64) -> (Vec<UsageEvent>, Vec<simulate::Planted>) {
    let mut events = Vec::new();
    let planted = simulate::generate(&mut SplitMix64::new(seed), scenario, &mut |e| events.push(e));
    (events, planted)
}

fn aggregate(events: &[UsageEvent], config: &DetectorConfig) -> Aggregator {
    let mut aggregator = Aggregator::new(config.timing);
    for event in events {
        aggregator.add(event);
    }
    aggregator
}

fn rows(events: &[UsageEvent], config: DetectorConfig) -> Vec<TokenRow> {
    let aggregator = aggregate(events, &config);
    Detector::new(config, &NetworkTable::shipped()).unwrap().token_rows(&aggregator)
}

fn codes(row: &TokenRow) -> Vec<&'static str> {
    row.indicators.iter().map(|i| i.code.as_str()).collect()
}

#[test]
fn planted_misuse_is_found_and_ordinary_viewers_are_not_flagged() {
    let scenario = Scenario { viewers: 3_000, ..Scenario::default() };
    let (events, planted) = events(scenario, 7);
    let rows = rows(&events, config());
    let flagged: Vec<&TokenRow> = rows.iter().filter(|r| r.is_finding(Severity::Medium)).collect();

    let mut found = 0;
    for plant in &planted {
        let row = rows.iter().find(|r| r.token == plant.token).expect("planted token has a row");
        let hit = row.severity >= Severity::Medium && row.indicators.iter().any(|i| i.code == plant.expected);
        println!("{:?}: score {} {:?} {:?}", plant.misuse, row.score, row.severity, codes(row));
        assert!(
            hit,
            "{:?} not found with {}: {}",
            plant.misuse,
            plant.expected.as_str(),
            serde_json::to_string(row).unwrap()
        );
        found += 1;
    }
    let planted_tokens: BTreeSet<&str> = planted.iter().map(|p| p.token.as_str()).collect();
    let false_positives: Vec<&&TokenRow> =
        flagged.iter().filter(|r| !planted_tokens.contains(r.token.as_str())).collect();
    for row in &false_positives {
        println!("false positive: {}", serde_json::to_string(row).unwrap());
    }
    let normal = rows.len() - planted.len();
    let true_positives = flagged.len() - false_positives.len();
    let precision = true_positives as f64 / flagged.len().max(1) as f64;
    let recall = found as f64 / planted.len() as f64;
    let fp_rate = false_positives.len() as f64 / normal as f64;
    println!(
        "precision {precision:.3} recall {recall:.3} ({} events, {normal} ordinary tokens, {} flagged medium+, \
         {} of them ordinary = {:.2}%)",
        events.len(),
        flagged.len(),
        false_positives.len(),
        100.0 * fp_rate
    );
    assert_eq!(found, 7);
    assert!(fp_rate <= 0.005, "{} ordinary tokens flagged medium or above", false_positives.len());
}

#[test]
fn generated_networks_match_the_table() {
    let table = NetworkTable::shipped();
    let (viewers, relays) = simulate::viewer_and_relay_asns();
    for asn in viewers {
        assert_eq!(table.asn_class(asn), None, "viewer ASN {asn} is in the hosting list");
    }
    for asn in relays {
        assert_eq!(table.asn_class(asn), Some(NetworkClass::Hosting), "relay ASN {asn}");
    }
    let ranges = NetworkTable::shipped_with_ranges();
    for ip in ["52.1.17.20", "5.9.44.101", "51.68.12.9"] {
        assert_eq!(ranges.ip_class(ip.parse().unwrap()), Some(NetworkClass::Hosting), "{ip}");
    }
    let (events, _) = events(Scenario { viewers: 300, plant_misuse: false, ..Scenario::default() }, 1);
    for event in &events {
        let class = ranges.classify(None, None, event.ip.as_deref());
        let expected = match event.asn {
            // VPN viewers are classified by ASN; their generated addresses are not listed.
            Some(9009) => continue,
            Some(13335) => Some(NetworkClass::Vpn),
            Some(36183) => Some(NetworkClass::PrivacyRelay),
            _ => None,
        };
        assert_eq!(class, expected, "viewer address {:?} ({:?})", event.ip, event.asn);
    }
}

#[test]
fn merging_shards_and_stored_rollups_is_exact() {
    let config = config();
    let (events, _) = events(Scenario { viewers: 400, ..Scenario::default() }, 3);
    let whole = aggregate(&events, &config);
    // Three shards that interleave every token's events, merged in a different order.
    let mut shards: Vec<Aggregator> = (0..3).map(|_| Aggregator::new(config.timing)).collect();
    for (n, event) in events.iter().enumerate() {
        shards[n % 3].add(event);
    }
    let mut merged = shards.pop().unwrap();
    for shard in shards.into_iter().rev() {
        // Through JSON, as the worker stores per-bucket rollups.
        let stored: Aggregator = serde_json::from_str(&serde_json::to_string(&shard).unwrap()).unwrap();
        merged.merge(stored).unwrap();
    }
    assert_eq!(merged, whole);
    let mut other = Aggregator::new(streamgate_core::detection::Timing { idle_seconds: 30, ..config.timing });
    other.add(&events[0]);
    assert!(merged.merge(other).is_err());
}

#[test]
fn the_folder_equals_one_event_at_a_time() {
    let config = config();
    let (mut events, _) = events(Scenario { viewers: 400, ..Scenario::default() }, 5);
    let whole = aggregate(&events, &config);
    let fold = |events: &[UsageEvent]| {
        let mut folder = Folder::new(config.timing);
        for event in events {
            folder.add(&event.view());
        }
        folder.finish()
    };
    assert_eq!(fold(&events), whole);
    // Ordered by time, as a log of many tokens at once is; shards of it merge exactly too.
    events.sort_by_key(|e| e.at);
    assert_eq!(fold(&events), whole);
    let (left, right) = events.split_at(events.len() / 3);
    let mut merged = fold(right);
    merged.merge(fold(left)).unwrap();
    assert_eq!(merged, whole);
}

fn beat(token: &str, sid: &str, at: i64, ip: &str, asn: u32, org: &str, country: &str) -> UsageEvent {
    UsageEvent {
        at,
        token: token.into(),
        sid: sid.into(),
        ip: Some(ip.into()),
        country: Some(country.into()),
        asn: Some(asn),
        as_organization: Some(org.into()),
        referer: Some("https://www.example.com/watch".into()),
        user_agent: Some("Mozilla/5.0 Safari".into()),
        stream: Some("/live/news/index.m3u8".into()),
        bytes: Some(1_000_000),
        sub: None,
        max_sessions: Some(1),
    }
}

fn judge_one(events: Vec<UsageEvent>) -> TokenRow {
    let rows = rows(&events, config());
    assert_eq!(rows.len(), 1);
    rows.into_iter().next().unwrap()
}

fn below_medium(row: &TokenRow) {
    assert!(row.severity < Severity::Medium, "{}", serde_json::to_string(row).unwrap());
}

#[test]
fn benign_behaviours_stay_low() {
    let t0 = 1_767_225_600;
    // A phone moving from Wi-Fi to cellular: two providers, one country, one session.
    let mut handoff: Vec<UsageEvent> =
        (0..60).map(|n| beat("phone", "s1", t0 + 30 * n, "79.192.1.2", 3320, "Telekom", "DE")).collect();
    handoff.extend((60..120).map(|n| beat("phone", "s1", t0 + 30 * n, "176.0.7.12", 6805, "Telefonica", "DE")));
    let row = judge_one(handoff);
    below_medium(&row);
    assert_eq!((row.ips, row.sessions, row.providers.len()), (2, 1, 2));

    // IPv6 privacy addresses rotating inside one /64.
    let v6: Vec<UsageEvent> = (0..200)
        .map(|n| beat("v6", "s1", t0 + 30 * n, &format!("2003:e0:12:3400:{n:x}:1:2:3"), 3320, "Telekom", "DE"))
        .collect();
    let row = judge_one(v6);
    assert_eq!(row.ips, 1);
    assert!(row.indicators.is_empty());

    // iCloud Private Relay: egress changing every few minutes mid-playback.
    let relay: Vec<UsageEvent> = (0..240)
        .map(|n| {
            beat("safari", "s1", t0 + 30 * n, &format!("172.224.{}.9", n / 10), 13335, "iCloud Private Relay", "DE")
        })
        .collect();
    let row = judge_one(relay);
    below_medium(&row);
    assert_eq!(codes(&row), vec!["privacy_relay"]);
    assert_eq!(row.score, 0);

    // A household: phone and TV at once on a user-bound token.
    let household: Vec<UsageEvent> = (0..240)
        .flat_map(|n| {
            let mut phone = beat("home", "phone", t0 + 30 * n, "79.192.1.2", 3320, "Telekom", "DE");
            let mut tv = beat("home", "tv", t0 + 30 * n, "79.192.1.2", 3320, "Telekom", "DE");
            for e in [&mut phone, &mut tv] {
                e.sub = Some("user-1".into());
                e.max_sessions = Some(2);
            }
            tv.referer = None;
            [phone, tv]
        })
        .collect();
    let row = judge_one(household);
    assert_eq!(row.peak_concurrency, 2);
    below_medium(&row);

    // A TV app without Referer watching a whole six-hour event.
    let tv: Vec<UsageEvent> = (0..(6 * 120 + 10))
        .map(|n| UsageEvent { referer: None, ..beat("tv", "s1", t0 + 30 * n, "88.64.3.4", 3209, "Vodafone", "DE") })
        .collect();
    let row = judge_one(tv);
    assert!(row.playback_seconds > 6 * 3600);
    assert_eq!(codes(&row), vec!["missing_referrer"]);
    assert_eq!(row.severity, Severity::Low);
}

#[test]
fn carrier_grade_nat_is_judged_per_token() {
    let t0 = 1_767_225_600;
    // Three hundred tokens behind four carrier addresses: each token alone looks ordinary.
    let events: Vec<UsageEvent> = (0..300)
        .flat_map(|token| {
            (0..100).map(move |n| {
                let ip = format!("172.56.7.{}", 10 + (token + n / 50) % 4);
                beat(&format!("t{token}"), "s", t0 + 30 * n, &ip, 21928, "T-Mobile", "US")
            })
        })
        .collect();
    let rows = rows(&events, config());
    assert!(rows.iter().all(|r| r.indicators.is_empty()), "{:?}", rows.first());
}

#[test]
fn marked_as_expected_silences_the_indicator() {
    let (events, _) = events(Scenario { viewers: 50, ..Scenario::default() }, 5);
    let restream =
        |config: DetectorConfig| rows(&events, config).into_iter().find(|r| r.token == "planted-restream").unwrap();
    assert!(codes(&restream(config())).contains(&"hosting_network"));
    let by_asn = DetectorConfig::from_json(
        r#"{"allowed_referrers": ["www.example.com"],
            "expected": [{"indicator": "hosting_network", "asn": 24940, "note": "our monitoring"}]}"#,
    )
    .unwrap();
    assert!(!codes(&restream(by_asn)).contains(&"hosting_network"));
    let by_range = DetectorConfig::from_json(r#"{"expected": [{"network": "5.9.0.0/16"}]}"#).unwrap();
    assert!(restream(by_range).indicators.is_empty());
    let by_token = DetectorConfig::from_json(r#"{"expected": [{"token": "planted-restream"}]}"#).unwrap();
    assert!(restream(by_token).indicators.is_empty());
    // An operator's own hosting ASN makes viewer traffic hosting evidence.
    let own = DetectorConfig::from_json(r#"{"hosting_asns": [3320]}"#).unwrap();
    let detector = Detector::new(own, &NetworkTable::shipped()).unwrap();
    assert_eq!(detector.networks().asn_class(3320), Some(NetworkClass::Hosting));
}

#[test]
fn configuration_from_json() {
    assert_eq!(DetectorConfig::from_json("{}").unwrap(), DetectorConfig::default());
    assert!(DetectorConfig::from_json(r#"{"rules": {"many_ips": {"above": 3}}}"#).is_err(), "weight is required");
    let config = DetectorConfig::from_json(r#"{"rules": {"many_ips": {"above": 3, "weight": 0.9}}}"#).unwrap();
    assert_eq!(config.rules.many_ips.above, 3);
    assert_eq!(config.rules.concurrency.user_bound_limit, 2);
    assert!(DetectorConfig::from_json(r#"{"treshold": 1}"#).is_err());
    let bad_range = DetectorConfig::from_json(r#"{"expected": [{"network": "10.0.0.0/33"}]}"#).unwrap();
    assert!(Detector::new(bad_range, &NetworkTable::empty()).is_err());
    let empty = DetectorConfig::from_json(r#"{"expected": [{"indicator": "many_ips"}]}"#).unwrap();
    assert!(Detector::new(empty, &NetworkTable::empty()).is_err());
}

#[test]
fn rows_have_the_documented_shape() {
    let (events, _) = events(Scenario { viewers: 20, ..Scenario::default() }, 9);
    let aggregator = aggregate(&events, &config());
    let detector = Detector::new(config(), &NetworkTable::shipped()).unwrap();
    let report = detector.report(&aggregator, Window::all());
    let row = report.tokens.iter().find(|r| r.token == "planted-four-devices").unwrap();
    let json: Value = serde_json::to_value(row).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "token",
        "sub",
        "score",
        "severity",
        "indicators",
        "ips",
        "sessions",
        "peak_concurrency",
        "countries",
        "providers",
        "referrers",
        "playback_seconds",
        "bytes",
        "streams",
        "first_seen",
        "last_seen",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    let indicator = &json["indicators"][0];
    assert_eq!(indicator["code"], "concurrency");
    assert_eq!(indicator["severity"], "high");
    assert!(indicator["confidence"].is_f64() && indicator["evidence"].is_object());
    assert!(json["providers"][0]["asn"].is_u64() && json["providers"][0]["count"].is_u64());
    assert!(json["referrers"][0]["name"].is_string());
    let ip = serde_json::to_value(&report.ips[0]).unwrap();
    for key in ["ip", "tokens", "events", "asn", "organization", "country", "network_class", "first_seen", "last_seen"]
    {
        assert!(ip.get(key).is_some(), "{key} in {ip}");
    }
    let dims: BTreeSet<String> = report
        .breakdown
        .iter()
        .map(|b| serde_json::to_value(b.dimension).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(dims, ["country", "provider", "referrer", "stream", "user_agent"].map(String::from).into());
    assert!(IndicatorCode::ALL.iter().all(|c| serde_json::to_value(c).unwrap() == c.as_str()));
}

/// A player embedded on more sites than a rollup keeps Referer hosts for is still judged
/// on all of them: the hosts not kept count as unknown (review: the bound on viewers' free
/// text must not become a way to hide).
#[test]
fn referrer_hosts_past_the_bound_count_as_unknown() {
    let events: Vec<UsageEvent> = (0..600)
        .map(|i| UsageEvent {
            at: 1_000 + i,
            token: "embedded".into(),
            sid: "s".into(),
            referer: Some(format!("https://site{i}.example/")),
            ..UsageEvent::default()
        })
        .collect();
    let rows = rows(&events, config());
    let row = rows.iter().find(|r| r.token == "embedded").unwrap();
    let unknown = row.indicators.iter().find(|i| i.code == IndicatorCode::UnknownReferrer);
    let unknown = unknown.unwrap_or_else(|| panic!("no unknown_referrer in {:?}", codes(row)));
    assert_eq!(unknown.evidence["events"], 600, "{}", unknown.evidence);
}
