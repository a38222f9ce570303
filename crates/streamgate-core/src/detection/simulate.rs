//! A deterministic traffic generator (feature `simulate`): ordinary viewers with the benign
//! behaviours that must not be flagged, plus planted misuse, for tests, precision/recall
//! and benchmarks. Randomness comes in as an [`RngCore`]; [`SplitMix64`] is a small seeded
//! one, so the same seed gives the same events everywhere.
//!
//! Benign behaviours, at rates chosen to look like a day of a regional broadcaster:
//! phones moving from Wi-Fi to cellular (25% of viewers), cellular IPs rotating inside a
//! carrier's carrier-grade NAT pool that many viewers share, IPv6 privacy addresses
//! rotating inside a /64 (30% of home lines), iCloud Private Relay with egress changing
//! mid-playback (8% of browsers), households on phone and TV at once (15% of user-bound
//! tokens), native apps and TVs without Referer (30%), whole six-hour events (10%),
//! commercial VPN users (1%), travellers crossing a border (1%), and popular tokens shared
//! by design (no `sub`, `max_sessions` 500). Viewer ASNs are residential and mobile
//! networks that the shipped hosting list does not name; planted hosting traffic uses ASNs
//! and ranges that it does (the tests check both).

use rand_core::{impls, Error as RandError, RngCore};

use super::{IndicatorCode, UsageEvent};

/// SplitMix64: a tiny seeded generator (not for secrets).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
}

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RandError> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Ordinary viewers, one token each.
    pub viewers: usize,
    /// Popular tokens shared by design (no `sub`, `max_sessions` 500), ~150 viewers each.
    pub popular_tokens: usize,
    /// Whether to plant the seven misuse cases.
    pub plant_misuse: bool,
    /// Start of the day generated, unix seconds.
    pub start: i64,
    /// Seconds between heartbeats of one session.
    pub heartbeat_seconds: i64,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario { viewers: 2_000, popular_tokens: 3, plant_misuse: true, start: 1_767_225_600, heartbeat_seconds: 30 }
    }
}

/// The operator's own page, the allowed Referer host of the generated traffic.
pub const ALLOWED_REFERRER: &str = "www.example.com";

/// The planted misuse cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Misuse {
    /// One user-bound token shared from 6 IPs in 3 countries.
    SharedAcrossCountries,
    /// A relay from a cloud provider, no Referer, ffmpeg User-Agent.
    CloudRelay,
    /// An embed on an unknown site, many viewers on one token.
    UnknownEmbed,
    /// A 14-hour restream from a hosting network.
    HostingRestream,
    /// A user-bound token playing on 4 devices at once.
    FourDevices,
    /// VPN exits in 4 countries within an hour.
    VpnHopping,
    /// A relay that forges an allowed Referer and a browser User-Agent.
    ForgedReferrerRelay,
}

/// One planted token and the indicator that must find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    /// The token id.
    pub token: String,
    /// What it does.
    pub misuse: Misuse,
    /// The indicator expected among its findings.
    pub expected: IndicatorCode,
}

/// Residential and mobile networks: `(asn, organization, country, IPv4 /16 base, IPv6 /32 base)`.
const HOME_ISPS: [(u32, &str, &str, [u8; 2], u32); 12] = [
    (3320, "Deutsche Telekom AG", "DE", [79, 192], 0x2003_00e0),
    (3209, "Vodafone GmbH", "DE", [88, 64], 0x2a02_8100),
    (3215, "Orange S.A.", "FR", [90, 0], 0x2a01_cb00),
    (12322, "Free SAS", "FR", [78, 192], 0x2a01_0e00),
    (7922, "Comcast Cable Communications, LLC", "US", [73, 0], 0x2601_0000),
    (7018, "AT&T Services, Inc.", "US", [99, 0], 0x2600_1700),
    (2856, "British Telecommunications PLC", "GB", [86, 128], 0x2a00_2300),
    (5089, "Virgin Media Limited", "GB", [82, 0], 0x2a02_c7c0),
    (5432, "Proximus NV", "BE", [37, 160], 0x2a02_a000),
    (6830, "Liberty Global B.V.", "NL", [95, 90], 0x2001_1c00),
    (12389, "PJSC Rostelecom", "PL", [176, 0], 0x2a02_2a00),
    (8881, "1&1 Versatel Deutschland GmbH", "DE", [2, 96], 0x2001_16b8),
];
/// Mobile carriers, each a carrier-grade NAT pool shared by its viewers.
const MOBILE: [(u32, &str, &str, [u8; 2]); 4] = [
    (6805, "Telefonica Germany GmbH & Co.OHG", "DE", [176, 0]),
    (51207, "Free Mobile SAS", "FR", [37, 160]),
    (21928, "T-Mobile USA, Inc.", "US", [172, 56]),
    (12576, "EE Limited", "GB", [2, 96]),
];
const CGNAT_POOL: u32 = 48;
const BROWSERS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];
const APPS: [&str; 3] = [
    "ExoPlayerLib/2.19.1 (Linux; Android 14)",
    "AppleCoreMedia/1.0.0.22A3354 (iPhone; U; CPU OS 18_0 like Mac OS X)",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 TV Safari/537.36",
];
const STREAMS: [&str; 4] =
    ["/live/news/index.m3u8", "/live/sport/index.m3u8", "/live/channel-1/index.m3u8", "/vod/film-7/index.m3u8"];
const SIX_HOUR_EVENT: &str = "/live/final/index.m3u8";

struct Gen<'r, R: RngCore> {
    rng: &'r mut R,
    scenario: Scenario,
    sid_counter: u64,
}

/// Where one stretch of playback comes from.
#[derive(Clone, Debug)]
struct Network {
    asn: u32,
    organization: String,
    country: String,
    /// Addresses to rotate through, or a fixed one.
    address: Address,
}

#[derive(Clone, Debug)]
enum Address {
    Fixed(String),
    /// An IPv6 /64 (upper 64 bits) whose interface id rotates hourly (privacy addresses).
    Privacy(u64),
    /// A carrier's NAT pool: a new address from the pool every 20–40 minutes.
    Pool([u8; 2], u32, i64),
    /// Relay egress changing every 5–15 minutes.
    Relay([u8; 2], i64),
}

/// The fixed facts of a token's player.
#[derive(Clone, Debug)]
struct Player {
    token: String,
    sub: Option<String>,
    max_sessions: Option<u32>,
    referer: Option<String>,
    user_agent: String,
}

impl<R: RngCore> Gen<'_, R> {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + i64::try_from(self.below(u64::try_from(high - low + 1).unwrap_or(1))).unwrap_or(0)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(index)
    }
    fn sid(&mut self) -> String {
        self.sid_counter += 1;
        format!("s{:x}-{}", self.rng.next_u32(), self.sid_counter)
    }
    fn v4(&mut self, base: [u8; 2]) -> String {
        let [a, b] = base;
        format!("{a}.{b}.{}.{}", self.below(256), 1 + self.below(254))
    }

    fn home(&mut self) -> Network {
        let &(asn, organization, country, v4, v6) = self.pick(&HOME_ISPS).unwrap_or(&HOME_ISPS[0]);
        let address = if self.chance(30) {
            Address::Privacy((u64::from(v6) << 32) | self.below(1 << 32))
        } else {
            Address::Fixed(self.v4(v4))
        };
        Network { asn, organization: organization.into(), country: country.into(), address }
    }

    fn home_in(&mut self, country: &str) -> Network {
        let options: Vec<_> = HOME_ISPS.iter().filter(|isp| isp.2 == country).collect();
        let &&(asn, organization, country, v4, _) = self.pick(&options).unwrap_or(&&HOME_ISPS[0]);
        let address = Address::Fixed(self.v4(v4));
        Network { asn, organization: organization.into(), country: country.into(), address }
    }

    /// The country's carrier, if the generator knows one.
    fn cellular(&mut self, country: &str) -> Option<Network> {
        let &(asn, organization, country, pool) = MOBILE.iter().find(|m| m.2 == country)?;
        let offset = u32::try_from(self.below(200)).unwrap_or(0);
        let address = Address::Pool(pool, offset, self.between(1200, 2400));
        Some(Network { asn, organization: organization.into(), country: country.into(), address })
    }

    fn fixed(asn: u32, organization: &str, country: &str, ip: String) -> Network {
        Network { asn, organization: organization.into(), country: country.into(), address: Address::Fixed(ip) }
    }

    fn address_at(&mut self, network: &Network, at: i64) -> String {
        match &network.address {
            Address::Fixed(ip) => ip.clone(),
            Address::Privacy(prefix) => {
                // The interface id changes every hour: deterministic per hour, random-looking.
                let mut mix = SplitMix64::new(prefix ^ (at / 3600) as u64);
                let iid = mix.next_u64();
                let words = [prefix >> 48, (prefix >> 32) & 0xffff, (prefix >> 16) & 0xffff, prefix & 0xffff];
                let iids = [iid >> 48, (iid >> 32) & 0xffff, (iid >> 16) & 0xffff, iid & 0xffff];
                let text: Vec<String> = words.iter().chain(iids.iter()).map(|w| format!("{w:x}")).collect();
                text.join(":")
            }
            Address::Pool([a, b], offset, period) => {
                let slot = (u64::from(*offset) + (at / period.max(&1)) as u64) % u64::from(CGNAT_POOL);
                format!("{a}.{b}.7.{}", 10 + slot)
            }
            Address::Relay([a, b], period) => {
                let slot = (at / period.max(&1)) as u64;
                if [*a, *b] == [104, 28] {
                    format!("104.28.28.{}", 64 + slot % 12)
                } else {
                    format!("{a}.{b}.{}.{}", slot % 16, 1 + slot % 250)
                }
            }
        }
    }

    /// One session from `start` for `seconds`, on `networks` in turn (a handoff halfway
    /// when there are two).
    #[allow(clippy::too_many_arguments)]
    fn session(
        &mut self,
        player: &Player,
        sid: Option<String>,
        stream: &str,
        start: i64,
        seconds: i64,
        networks: &[Network],
        sink: &mut dyn FnMut(UsageEvent),
    ) {
        let sid = sid.unwrap_or_else(|| self.sid());
        let beat = self.scenario.heartbeat_seconds.max(1);
        let mut at = start;
        let end = start + seconds.max(0);
        let parts = networks.len().max(1) as i64;
        while at <= end {
            let part = usize::try_from(((at - start) * parts / seconds.max(1)).min(parts - 1)).unwrap_or(0);
            let Some(network) = networks.get(part) else { return };
            let ip = self.address_at(network, at);
            sink(UsageEvent {
                at,
                token: player.token.clone(),
                sid: sid.clone(),
                ip: Some(ip),
                country: Some(network.country.clone()),
                asn: Some(network.asn),
                as_organization: Some(network.organization.clone()),
                referer: player.referer.clone(),
                user_agent: Some(player.user_agent.clone()),
                stream: Some(stream.to_owned()),
                bytes: Some(1_200_000 + self.below(600_000) * 20),
                sub: player.sub.clone(),
                max_sessions: player.max_sessions,
            });
            at += beat + self.between(0, 4);
        }
    }

    fn viewer(&mut self, index: usize, sink: &mut dyn FnMut(UsageEvent)) {
        let app = self.chance(30);
        let user_bound = self.chance(50);
        let mut home = self.home();
        let relay = !app && self.chance(8);
        if relay {
            // Behind Cloudflare (104.28.28.64/28 is in the upstream VPN list) or Akamai (172.224/12).
            let (asn, organization, base) = if self.chance(80) {
                (13335, "iCloud Private Relay", [104, 28])
            } else {
                (36183, "Akamai Technologies, Inc.", [172, 224])
            };
            let address = Address::Relay(base, self.between(300, 900));
            home = Network { asn, organization: organization.into(), country: home.country, address };
        }
        if self.chance(1) {
            home = Network {
                asn: 9009,
                organization: "M247 Europe SRL".into(),
                country: home.country,
                address: Address::Fixed(self.v4([185, 94])),
            };
        }
        let player = Player {
            token: format!("viewer-{index}"),
            sub: user_bound.then(|| format!("user-{index}")),
            max_sessions: if user_bound {
                Some(2 + u32::from(self.chance(30)))
            } else if self.chance(80) {
                Some(1)
            } else {
                None
            },
            referer: (!app).then(|| format!("https://{ALLOWED_REFERRER}/watch/{}", self.below(40))),
            user_agent: if app { self.pick(&APPS) } else { self.pick(&BROWSERS) }.copied().unwrap_or("").to_owned(),
        };
        let mobile = self.chance(25);
        let traveller = self.chance(1);
        let sessions = self.between(1, 3);
        // One viewer's sessions follow each other through the day.
        let mut start = self.scenario.start + self.between(0, 12 * 3600);
        for n in 0..sessions {
            let seconds =
                if n == 0 && self.chance(10) { 6 * 3600 + self.between(0, 300) } else { self.between(600, 3 * 3600) };
            if start + seconds > self.scenario.start + 86_400 {
                break;
            }
            let stream = if seconds >= 6 * 3600 {
                SIX_HOUR_EVENT
            } else {
                self.pick(&STREAMS).copied().unwrap_or(SIX_HOUR_EVENT)
            };
            let mut networks = vec![home.clone()];
            if mobile && self.chance(50) {
                // Leaving the house: Wi-Fi to cellular within the session, same session id.
                networks.extend(self.cellular(&home.country));
            }
            if traveller && n > 0 {
                networks = vec![self.home_in(if home.country == "DE" { "NL" } else { "DE" })];
            }
            self.session(&player, None, stream, start, seconds, &networks, sink);
            if user_bound && n == 0 && self.chance(15) {
                // The household's TV joins: two sessions at once, within the user-bound limit.
                let tv = Player { referer: None, user_agent: APPS[2].to_owned(), ..player.clone() };
                let (tv_start, tv_seconds) = (start + self.between(0, seconds / 2), self.between(900, 2 * 3600));
                self.session(&tv, None, stream, tv_start, tv_seconds, std::slice::from_ref(&home), sink);
            }
            start += seconds + self.between(600, 4 * 3600);
        }
    }

    fn popular(&mut self, index: usize, sink: &mut dyn FnMut(UsageEvent)) {
        let player = Player {
            token: format!("popular-{index}"),
            sub: None,
            max_sessions: Some(500),
            referer: Some(format!("https://{ALLOWED_REFERRER}/live")),
            user_agent: BROWSERS[0].to_owned(),
        };
        let stream = STREAMS.get(index % 2).copied().unwrap_or(SIX_HOUR_EVENT);
        for _ in 0..150 {
            let network = self.home();
            let seconds = self.between(600, 2 * 3600);
            let start = self.scenario.start + 18 * 3600 + self.between(0, 3 * 3600);
            let agent = self.pick(&BROWSERS).copied().unwrap_or("").to_owned();
            let viewer = Player { user_agent: agent, ..player.clone() };
            self.session(&viewer, None, stream, start, seconds, &[network], sink);
        }
    }

    fn plant(&mut self, sink: &mut dyn FnMut(UsageEvent)) -> Vec<Planted> {
        let evening = self.scenario.start + 19 * 3600;
        let browser = |token: &str, sub: Option<&str>, max: Option<u32>| Player {
            token: token.into(),
            sub: sub.map(str::to_owned),
            max_sessions: max,
            referer: Some(format!("https://{ALLOWED_REFERRER}/watch/1")),
            user_agent: BROWSERS[0].into(),
        };
        let mut planted = Vec::new();
        let mut note = |token: &str, misuse, expected| planted.push(Planted { token: token.into(), misuse, expected });

        let shared = browser("planted-shared", Some("user-shared"), Some(2));
        for (n, country) in ["DE", "DE", "FR", "FR", "PL", "GB"].iter().enumerate() {
            let network = if n == 5 { self.home_in("FR") } else { self.home_in(country) };
            let start = evening + self.between(0, 1800);
            self.session(&shared, None, STREAMS[1], start, 2 * 3600, &[network], sink);
        }
        note("planted-shared", Misuse::SharedAcrossCountries, IndicatorCode::ManyIps);

        let relay = Player {
            referer: None,
            user_agent: "Lavf/60.16.100".into(),
            ..browser("planted-cloud-relay", None, Some(1))
        };
        let aws = Gen::<R>::fixed(16509, "AMAZON-02", "US", "52.1.17.20".into());
        self.session(&relay, None, STREAMS[0], self.scenario.start + 8 * 3600, 6 * 3600, &[aws], sink);
        note("planted-cloud-relay", Misuse::CloudRelay, IndicatorCode::HostingNetwork);

        let embed = Player {
            referer: Some("https://free-streams.example.net/watch?v=42".into()),
            ..browser("planted-embed", None, Some(3))
        };
        for _ in 0..90 {
            let network = self.home();
            let start = evening + self.between(0, 3600);
            let seconds = self.between(2700, 5400);
            self.session(&embed, None, STREAMS[1], start, seconds, &[network], sink);
        }
        note("planted-embed", Misuse::UnknownEmbed, IndicatorCode::UnknownReferrer);

        let restream = Player {
            referer: None,
            user_agent: "VLC/3.0.20 LibVLC/3.0.20".into(),
            ..browser("planted-restream", None, Some(1))
        };
        let hetzner = Gen::<R>::fixed(24940, "Hetzner Online GmbH", "DE", "5.9.44.101".into());
        self.session(&restream, None, STREAMS[2], self.scenario.start + 3600, 14 * 3600, &[hetzner], sink);
        note("planted-restream", Misuse::HostingRestream, IndicatorCode::LongPlayback);

        let family = browser("planted-four-devices", Some("user-four"), Some(4));
        let house = self.home_in("DE");
        for n in 0..4 {
            let stream = STREAMS.get(n % 2).copied().unwrap_or(SIX_HOUR_EVENT);
            self.session(&family, None, stream, evening + 60 * n as i64, 2 * 3600, std::slice::from_ref(&house), sink);
        }
        note("planted-four-devices", Misuse::FourDevices, IndicatorCode::Concurrency);

        let hopper = browser("planted-vpn-hopper", None, Some(1));
        let exits: Vec<Network> = ["NL", "SE", "US", "CH"]
            .iter()
            .map(|country| {
                let ip = self.v4([185, 94]);
                Gen::<R>::fixed(9009, "M247 Europe SRL", country, ip)
            })
            .collect();
        let sid = self.sid();
        self.session(&hopper, Some(sid), STREAMS[3], evening, 3600, &exits, sink);
        note("planted-vpn-hopper", Misuse::VpnHopping, IndicatorCode::MultiCountry);

        let forged = browser("planted-forged-relay", None, Some(1));
        let ovh = Gen::<R>::fixed(16276, "OVH SAS", "FR", "51.68.12.9".into());
        self.session(&forged, None, STREAMS[0], self.scenario.start + 9 * 3600, 10 * 3600, &[ovh], sink);
        note("planted-forged-relay", Misuse::ForgedReferrerRelay, IndicatorCode::HostingNetwork);
        planted
    }
}

/// Generates one day of traffic, handing each event to `sink` (grouped per token, in time
/// order within each session), and returns the planted tokens.
pub fn generate(rng: &mut impl RngCore, scenario: Scenario, sink: &mut dyn FnMut(UsageEvent)) -> Vec<Planted> {
    let mut generator = Gen { rng, scenario, sid_counter: 0 };
    for index in 0..scenario.viewers {
        generator.viewer(index, sink);
    }
    for index in 0..scenario.popular_tokens {
        generator.popular(index, sink);
    }
    if scenario.plant_misuse {
        generator.plant(sink)
    } else {
        Vec::new()
    }
}

/// The residential and mobile ASNs viewers use, and the hosting ASNs the planted relays use,
/// so tests can check them against the network table.
pub fn viewer_and_relay_asns() -> (Vec<u32>, Vec<u32>) {
    let viewers = HOME_ISPS.iter().map(|isp| isp.0).chain(MOBILE.iter().map(|m| m.0)).collect();
    (viewers, vec![16509, 24940, 16276])
}
