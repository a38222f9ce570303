//! The request flow every adapter in front of an origin shares (`gateway`), driven through an
//! in-memory `Io`: what reaches the origin, what the viewer gets back, and what the session
//! store is told, without workerd or a network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pollster::block_on;

use streamgate_core::claims::{AccessRule, NumericDate, PlaybackClaims};
use streamgate_core::config::{Deployment, GateConfig};
use streamgate_core::detection::UsageEvent;
use streamgate_core::gateway::{
    Authorization, Gateway, Geo, Incoming, Io, OriginRequest, Outcome, Reply, Tallies, Upstream, FORWARDED_HEADERS,
    MANIFEST_FORWARDED_HEADERS,
};
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::Blocks;
use streamgate_core::schemes::jwt;
use streamgate_core::sessions::{BeatKind, Heartbeat, SessionHubState, Verdict, MAX_RECORDS_PER_MINUTE};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "a playback secret of thirty-two bytes";
const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n";

#[derive(Debug)]
struct Page {
    status: u16,
    headers: Vec<(&'static str, String)>,
}

impl Upstream for Page {
    fn status(&self) -> u16 {
        self.status
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

/// An origin of fixed files, a revocation set, block lists and one session hub per key.
#[derive(Default)]
struct Memory {
    files: HashMap<String, (&'static str, String)>,
    revoked: Vec<String>,
    /// Whether the store answers that it holds no revocation (true to its list, unless a
    /// test says otherwise), and how often it was asked for revocations.
    says_no_revocations: Option<bool>,
    revocation_reads: Mutex<u32>,
    blocks: Arc<Blocks>,
    hubs: Mutex<HashMap<String, SessionHubState>>,
    store_down: bool,
    /// The origin answers its files with 206 (as for a `Range` it honoured).
    partial: bool,
    fetched: Mutex<Vec<OriginRequest>>,
    beats: Mutex<Vec<(String, BeatKind)>>,
    tallies: Mutex<Tallies>,
    geo: Geo,
    geo_reads: Mutex<u32>,
    /// The usage record of every heartbeat, as sent.
    records: Mutex<Vec<Heartbeat>>,
    /// The records the store made, handed over at once (as serve's stores do).
    flushed: Mutex<Vec<UsageEvent>>,
}

impl Memory {
    fn with_files() -> Memory {
        let mut files = HashMap::new();
        files.insert("/hls/master.m3u8".to_owned(), ("application/vnd.apple.mpegurl", MASTER.to_owned()));
        files.insert("/hls/low/seg1.ts".to_owned(), ("video/mp2t", "x".repeat(1000)));
        files.insert("/posters/a.jpg".to_owned(), ("image/jpeg", "jpeg".to_owned()));
        Memory { files, ..Memory::default() }
    }

    fn fetched_urls(&self) -> Vec<String> {
        self.fetched.lock().unwrap().iter().map(|r| r.url.clone()).collect()
    }
}

impl Io for Memory {
    type Response = Page;
    type Blocks = Arc<Blocks>;
    type Error = String;

    async fn revoked(&self, ids: &[String], _now: i64) -> Result<Vec<String>, String> {
        *self.revocation_reads.lock().unwrap() += 1;
        Ok(ids.iter().filter(|id| self.revoked.contains(id)).cloned().collect())
    }

    fn revocations_known_empty(&self) -> bool {
        self.says_no_revocations.unwrap_or(self.revoked.is_empty())
    }

    async fn blocks(&self, _now: i64) -> Result<Arc<Blocks>, String> {
        Ok(self.blocks.clone())
    }

    async fn fetch(&self, request: OriginRequest) -> Result<Page, String> {
        let path = request.url.strip_prefix("https://origin.example").unwrap_or("?").to_owned();
        let path = path.split('?').next().unwrap_or("").to_owned();
        self.fetched.lock().unwrap().push(request);
        Ok(match self.files.get(&path) {
            Some((kind, body)) => Page {
                status: if self.partial { 206 } else { 200 },
                headers: vec![("Content-Type", (*kind).to_owned()), ("Content-Length", body.len().to_string())],
            },
            None => Page { status: 404, headers: vec![] },
        })
    }

    async fn text(&self, _response: Page) -> Result<String, String> {
        Ok(MASTER.to_owned())
    }

    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict, String> {
        if self.store_down {
            return Err("store down".into());
        }
        self.beats.lock().unwrap().push((key.to_owned(), beat.kind));
        self.records.lock().unwrap().push(beat.clone());
        let mut hubs = self.hubs.lock().unwrap();
        let hub = hubs.entry(key.to_owned()).or_default();
        let verdict = hub.heartbeat(beat.clone());
        self.flushed.lock().unwrap().extend(hub.take_flush().records);
        Ok(verdict)
    }

    fn heartbeat_in_background(&self, key: String, beat: Heartbeat) {
        // As the adapters do: the store's answer settles the tally when it comes.
        let answer = block_on(self.heartbeat(&key, &beat));
        self.tallies(|t| t.settle(&beat, &answer));
    }

    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T {
        update(&mut self.tallies.lock().unwrap())
    }

    fn geo(&self) -> Geo {
        *self.geo_reads.lock().unwrap() += 1;
        self.geo.clone()
    }
}

/// A deployment whose `sessions` member also holds `sessions_extra`.
fn deployment(sessions_extra: &str) -> Deployment {
    let doc = format!(
        r#"{{"keys": [{{"alg": "HS256", "secret": "{SECRET}"}}],
            "sessions": {{"secret": "a session secret of thirty-two bytes!"{sessions_extra}}},
            "policy": {{"publicPaths": ["posters"]}}}}"#
    );
    GateConfig::from_json(&doc).and_then(GateConfig::build_deployment).unwrap()
}

fn gateway(sessions_extra: &str) -> Gateway {
    Gateway::new(deployment(sessions_extra), "https://origin.example/").unwrap()
}

fn token(claims: PlaybackClaims) -> String {
    let key = Key::hmac(Algorithm::HS256, SECRET.as_bytes()).unwrap();
    jwt::sign(&PlaybackClaims { exp: Some(NumericDate(NOW + 600)), ..claims }, &key).unwrap()
}

fn request(method: &str, path: &str, query: &str, agent: &str) -> Incoming {
    Incoming {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        base: "https://gate.example".into(),
        peer_ip: "198.51.100.7".parse().ok(),
        user_agent: Some(agent.into()),
        ..Incoming::default()
    }
}

fn reply(outcome: Outcome<Page>) -> Reply {
    match outcome {
        Outcome::Reply(reply) => reply,
        Outcome::Pass(page) => panic!("passed the origin's {page:?}"),
    }
}

fn reason(outcome: Outcome<Page>) -> (u16, String) {
    let reply = reply(outcome);
    (reply.status, reply.header("X-Streamgate-Reason").unwrap_or("").to_owned())
}

/// A heartbeat the session store keeps no record of (the key used its records for the
/// minute) hands the bytes it carried back to the tally: the next record reports them.
#[test]
fn bytes_of_an_unrecorded_heartbeat_go_to_the_next_record() {
    let (gate, io) = (gateway(""), Memory::with_files());
    let entry = token(PlaybackClaims { streams: Some(vec!["hls/*".into()]), ..PlaybackClaims::default() });
    let master = |query: &str, agent: &str| request("GET", "/hls/master.m3u8", query, agent);
    let start = reply(block_on(gate.handle(&io, &master(&format!("token={entry}"), "p"), NOW)).unwrap());
    let sgs = start.body.lines().find_map(|l| l.split_once("sgs=")).map(|(_, v)| v.to_owned()).unwrap();
    let segment = request("GET", "/hls/low/seg1.ts", &format!("sgs={sgs}"), "p");
    let _ = block_on(gate.handle(&io, &segment, NOW + 1)).unwrap();
    // Other players of the same token use up the key's records for the minute.
    for i in 1..MAX_RECORDS_PER_MINUTE {
        let other = master(&format!("token={entry}"), &format!("player {i}"));
        assert_eq!(reply(block_on(gate.handle(&io, &other, NOW + 2)).unwrap()).status, 200);
    }
    let reload = master(&format!("sgs={sgs}"), "p");
    assert_eq!(reply(block_on(gate.handle(&io, &reload, NOW + 3)).unwrap()).status, 200);
    assert_eq!(reply(block_on(gate.handle(&io, &reload, NOW + 60)).unwrap()).status, 200);
    // Every record made, as the store flushed it.
    let records = io.flushed.lock().unwrap();
    let ours: Vec<(i64, Option<u64>)> =
        records.iter().filter(|r| r.user_agent.as_deref() == Some("p")).map(|r| (r.at - NOW, r.bytes)).collect();
    assert_eq!(ours, [(0, None), (60, Some(1000))], "the reload at +3 was over the budget; its bytes waited");
}

#[test]
fn a_playlist_is_rewritten_and_its_segments_pass_without_the_credential() {
    let (gate, io) = (gateway(""), Memory::with_files());
    let entry = token(PlaybackClaims { streams: Some(vec!["hls/*".into()]), ..PlaybackClaims::default() });
    let master = reply(
        block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &format!("token={entry}"), "p"), NOW)).unwrap(),
    );
    assert_eq!(master.status, 200);
    assert_eq!(master.header("Cache-Control"), Some("private, no-store"));
    let line = master.body.lines().find(|l| l.starts_with("low/")).unwrap();
    let sgs = line.split_once("sgs=").map(|(_, v)| v.to_owned()).unwrap();
    assert!(!master.body.contains(&entry), "the entry token never goes into the manifest");

    let segment =
        block_on(gate.handle(&io, &request("GET", "/hls/low/seg1.ts", &format!("sgs={sgs}"), "p"), NOW + 1)).unwrap();
    assert!(matches!(segment, Outcome::Pass(Page { status: 200, .. })));
    assert_eq!(
        io.fetched_urls(),
        ["https://origin.example/hls/master.m3u8", "https://origin.example/hls/low/seg1.ts"],
        "no credential reaches the origin"
    );
    let fetched = io.fetched.lock().unwrap();
    assert!(fetched.get(1).is_some_and(|r| r.cacheable) && !fetched.first().is_some_and(|r| r.cacheable));
    drop(fetched);
    // The segment's bytes wait in the tally for the session's next heartbeat.
    let sid = io.hubs.lock().unwrap().values().next().and_then(|h| h.list.sessions.first().map(|s| s.sid.clone()));
    assert_eq!(io.tallies(|t| t.take_served(&sid.unwrap(), NOW + 2)), Some(1000));
    let beats = || io.beats.lock().unwrap().iter().map(|(_, kind)| *kind).collect::<Vec<_>>();
    assert_eq!(beats(), [BeatKind::Start], "a segment soon after the playlist sends no heartbeat");
    // A session that only fetches segments (a VOD) keeps itself counted, in the background,
    // every half idle gap (60 s by default).
    let later = request("GET", "/hls/low/seg1.ts", &format!("sgs={sgs}"), "p");
    let _ = block_on(gate.handle(&io, &later, NOW + 31)).unwrap();
    assert_eq!(beats(), [BeatKind::Start, BeatKind::Background]);
}

#[test]
fn the_session_limit_is_the_stores_verdict() {
    let (gate, io) = (gateway(""), Memory::with_files());
    let entry = token(PlaybackClaims { max_sessions: Some(1), ..PlaybackClaims::default() });
    let query = format!("token={entry}");
    let first = reply(block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &query, "phone"), NOW)).unwrap());
    assert_eq!(first.status, 200);
    let again =
        reply(block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &query, "phone"), NOW + 5)).unwrap());
    assert_eq!(again.status, 200, "the same viewer reloading with its entry token is one session");
    let other = block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &query, "tv"), NOW + 6)).unwrap();
    assert_eq!(reason(other), (429, "too_many_sessions".into()));
}

#[test]
fn a_failing_session_store_admits_or_refuses_as_configured() {
    let io = Memory { store_down: true, ..Memory::with_files() };
    let query = format!("token={}", token(PlaybackClaims::default()));
    let open = reply(block_on(gateway("").handle(&io, &request("GET", "/hls/master.m3u8", &query, "p"), NOW)).unwrap());
    assert_eq!(open.status, 200);
    let closed = gateway(r#", "onStoreError": "closed""#);
    let refused = reply(block_on(closed.handle(&io, &request("GET", "/hls/master.m3u8", &query, "p"), NOW)).unwrap());
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("session_store_unavailable"));
}

#[test]
fn revoked_blocked_and_wrong_method_requests_never_reach_the_origin() {
    let entry = token(PlaybackClaims { jti: Some("t-1".into()), ..PlaybackClaims::default() });
    let query = format!("token={entry}");
    let io = Memory { revoked: vec!["t-1".into()], ..Memory::with_files() };
    let gate = gateway("");
    assert_eq!(
        reason(block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &query, "p"), NOW)).unwrap()).1,
        "revoked"
    );
    let delete = block_on(gate.handle(&io, &request("DELETE", "/hls/master.m3u8", &query, "p"), NOW)).unwrap();
    assert_eq!(reason(delete), (405, "method_not_allowed".into()));
    let climb =
        block_on(gate.handle(&io, &request("GET", "/posters/%252e%252e/hls/master.m3u8", "", "p"), NOW)).unwrap();
    assert_eq!(reason(climb).0, 403);

    let mut blocks = Blocks::default();
    blocks.lookup.block(IpRange::parse("198.51.100.0/24").unwrap(), None);
    let blocked = Memory { blocks: Arc::new(blocks), ..Memory::with_files() };
    let poster = block_on(gate.handle(&blocked, &request("GET", "/posters/a.jpg", "", "p"), NOW)).unwrap();
    assert_eq!(reason(poster).1, "ip_blocked");
    assert!(io.fetched_urls().is_empty() && blocked.fetched_urls().is_empty());

    let preflight = reply(block_on(gate.handle(&io, &request("OPTIONS", "/hls/master.m3u8", "", "p"), NOW)).unwrap());
    assert_eq!(preflight.status, 204);
    let poster = block_on(gate.handle(&io, &request("GET", "/posters/a.jpg", "", "p"), NOW)).unwrap();
    assert!(matches!(poster, Outcome::Pass(Page { status: 200, .. })), "a public path needs no credential");
}

#[test]
fn forward_auth_decides_without_an_origin() {
    let gate = Gateway::forward_auth(deployment(""));
    let io = Memory::with_files();
    let entry = token(PlaybackClaims {
        sub: Some("user-1".into()),
        jti: Some("t-9".into()),
        max_sessions: Some(1),
        ..PlaybackClaims::default()
    });
    let query = format!("token={entry}");
    match block_on(gate.authorize(&io, &request("GET", "/hls/master.m3u8", &query, "phone"), NOW)).unwrap() {
        Authorization::Allowed { subject, token_id } => {
            assert_eq!((subject.as_deref(), token_id.as_deref()), (Some("user-1"), Some("t-9")));
        }
        Authorization::Denied(reply) => panic!("denied: {reply:?}"),
    }
    match block_on(gate.authorize(&io, &request("GET", "/hls/master.m3u8", &query, "tv"), NOW + 1)).unwrap() {
        Authorization::Denied(reply) => assert_eq!(reply.header("X-Streamgate-Reason"), Some("too_many_sessions")),
        Authorization::Allowed { .. } => panic!("a second player was admitted past max_sessions 1"),
    }
    let missing = block_on(gate.authorize(&io, &request("GET", "/hls/low/seg1.ts", "", "tv"), NOW)).unwrap();
    assert!(matches!(missing, Authorization::Denied(Reply { status: 401, .. })));
    // Without an origin, the proxy flow fails closed.
    assert_eq!(reply(block_on(gate.handle(&io, &request("GET", "/posters/a.jpg", "", "p"), NOW)).unwrap()).status, 500);
    assert!(io.fetched_urls().is_empty());
}

/// Regression: in forward-auth the proxy serves the URI it was asked for, after decoding
/// it and resolving dot segments (nginx, Caddy), while the gate decided on the path after a
/// `/~sg/<credential>` segment: `/~sg/x%2F..%2F..%2Fpremium/hls/a.ts` is `/premium/hls/a.ts`
/// to nginx, and the gate checked `/hls/a.ts`, so a token's scope, or a public path, opened
/// another tree. Forward-auth now decides on the whole path (the proxy does not strip the
/// prefix); proxy mode, which fetches the path after the prefix itself, refuses a prefix
/// segment with dot segments too, for a CDN in front that would resolve them.
#[test]
fn the_path_credential_prefix_never_moves_the_checked_path() {
    let gate = Gateway::forward_auth(deployment(""));
    let io = Memory::with_files();
    let entry = token(PlaybackClaims { streams: Some(vec!["hls/**".into()]), ..PlaybackClaims::default() });
    let query = format!("token={entry}");
    let allowed = |path: &str, query: &str| match block_on(gate.authorize(&io, &request("GET", path, query, "p"), NOW))
        .unwrap()
    {
        Authorization::Allowed { .. } => Ok(()),
        Authorization::Denied(reply) => Err(reply.header("X-Streamgate-Reason").unwrap_or("").to_owned()),
    };
    assert_eq!(allowed("/hls/low/seg1.ts", &query), Ok(()));
    assert_eq!(allowed(&format!("/~sg/{entry}/hls/low/seg1.ts"), ""), Err("missing_token".to_owned()));
    assert_eq!(allowed(&format!("/~sg/{entry}/hls/low/seg1.ts"), &query), Err("scope_mismatch".to_owned()));
    let proxied = Gateway::new(deployment(""), "https://origin.example/").unwrap();
    let fetched =
        block_on(proxied.handle(&io, &request("GET", &format!("/~sg/{entry}/hls/low/seg1.ts"), "", "p"), NOW));
    assert!(matches!(fetched.unwrap(), Outcome::Pass(Page { status: 200, .. })), "proxy mode strips the prefix");
    // A credential whose text holds a slash but no dot segment (base64) is not refused for it.
    let slash = block_on(proxied.handle(&io, &request("GET", "/~sg/ab%2Fcd/hls/low/seg1.ts", &query, "p"), NOW));
    assert!(matches!(slash.unwrap(), Outcome::Pass(Page { status: 200, .. })));
    // Forward-auth allows exactly what the proxy then serves: `/~sg/%2E%2E/hls/…` is
    // `/hls/…` to both, an encoded slash is refused.
    for (climbing, in_scope_for_the_proxy) in [
        ("/~sg/x%2F..%2F..%2Fpremium/hls/low/seg1.ts", false),
        ("/~sg/x%2f..%2f..%2fpremium/hls/low/seg1.ts", false),
        ("/~sg/%2E%2E/hls/low/seg1.ts", true),
        ("/~sg/x%2F.%2F..%2F..%2Fp/hls/low/seg1.ts", false),
        ("/~sg/../hls/low/seg1.ts", true),
        ("/~sg/x%2F..%2F..%2Fpremium/posters/a.jpg", false),
    ] {
        assert_eq!(allowed(climbing, &query).is_ok(), in_scope_for_the_proxy, "{climbing} with a query token");
        assert!(allowed(climbing, "").is_err(), "{climbing} alone");
        let outcome = block_on(proxied.handle(&io, &request("GET", climbing, &query, "p"), NOW)).unwrap();
        assert_eq!(reason(outcome), (401, "malformed".to_owned()), "{climbing} in proxy mode");
    }
    // Dot segments after the prefix climb out of it for the proxy too: never allowed.
    for after in ["/../../premium/hls/low/seg1.ts", "/%2e%2e/%2e%2e/premium/hls/low/seg1.ts", "/../hls/low/seg1.ts"] {
        assert!(allowed(&format!("/~sg/{entry}{after}"), "").is_err(), "{after}: allowed");
    }
}

/// Regression (review): forward-auth allowed every OPTIONS once the block lists passed, and
/// Caddy's file server answers OPTIONS with the file: any file, without a credential. The
/// proxy answers preflights itself; the gate refuses them, and proxy mode answers them.
#[test]
fn forward_auth_refuses_preflights() {
    let gate = Gateway::forward_auth(deployment(""));
    let io = Memory::with_files();
    for path in ["/hls/low/seg1.ts", "/posters/a.jpg"] {
        match block_on(gate.authorize(&io, &request("OPTIONS", path, "", "p"), NOW)).unwrap() {
            Authorization::Denied(reply) => {
                assert_eq!((reply.status, reply.header("X-Streamgate-Reason")), (405, Some("method_not_allowed")))
            }
            Authorization::Allowed { .. } => panic!("a preflight for {path} was allowed"),
        }
    }
    let proxied = Gateway::new(deployment(""), "https://origin.example/").unwrap();
    let preflight = block_on(proxied.handle(&io, &request("OPTIONS", "/hls/low/seg1.ts", "", "p"), NOW)).unwrap();
    assert_eq!(reply(preflight).status, 204);
    assert!(io.fetched_urls().is_empty());
}

/// Regression (review): a viewer's `Range` reached the origin with a playlist request, and
/// the origin's 206 passed through as it was: no rewrite, no session counted.
#[test]
fn a_playlist_is_fetched_and_passed_whole_or_not_at_all() {
    let gate = gateway("");
    let entry =
        token(PlaybackClaims { jti: Some("t-5".into()), streams: Some(vec!["**".into()]), ..Default::default() });
    let query = format!("token={entry}");
    let io = Memory::with_files();
    let master = block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &query, "p"), NOW)).unwrap();
    assert_eq!(reply(master).status, 200);
    let segment = block_on(gate.handle(&io, &request("GET", "/hls/low/seg1.ts", &query, "p"), NOW)).unwrap();
    assert!(matches!(segment, Outcome::Pass(_)));
    let fetched = io.fetched.lock().unwrap();
    assert_eq!(fetched[0].viewer_headers, MANIFEST_FORWARDED_HEADERS, "no Range nor If-* for a playlist");
    assert_eq!(fetched[1].viewer_headers, FORWARDED_HEADERS, "a segment's Range goes to the origin");
    drop(fetched);
    // A playlist known by its type only (no extension), answered in part: never passed on.
    let mut partial = Memory { partial: true, ..Memory::with_files() };
    partial.files.insert("/live/stream".to_owned(), ("application/vnd.apple.mpegurl", MASTER.to_owned()));
    let answer = block_on(gate.handle(&partial, &request("GET", "/live/stream", &query, "p"), NOW)).unwrap();
    assert_eq!(reply(answer).status, 502);
}

/// A store that knows it holds no revocation is not asked (nor the token hashed for its
/// fingerprint); one that holds any is asked on every request, and its answer decides.
#[test]
fn revocations_are_looked_up_unless_the_store_knows_it_holds_none() {
    let gate = Gateway::forward_auth(deployment(""));
    let entry = token(PlaybackClaims { jti: Some("t-3".into()), ..PlaybackClaims::default() });
    let segment = request("GET", "/hls/low/seg1.ts", &format!("token={entry}"), "p");
    let allowed =
        |io: &Memory| matches!(block_on(gate.authorize(io, &segment, NOW)), Ok(Authorization::Allowed { .. }));
    let empty = Memory::with_files();
    assert!(allowed(&empty));
    assert_eq!(*empty.revocation_reads.lock().unwrap(), 0);
    let other = Memory { revoked: vec!["t-other".into()], ..Memory::with_files() };
    assert!(allowed(&other) && allowed(&other));
    assert_eq!(*other.revocation_reads.lock().unwrap(), 2);
    let revoked = Memory { revoked: vec!["t-3".into()], ..Memory::with_files() };
    assert!(!allowed(&revoked));
    // The hint is believed: a store that wrongly says it is empty lets a revoked token by.
    let wrong = Memory { revoked: vec!["t-3".into()], says_no_revocations: Some(true), ..Memory::with_files() };
    assert!(allowed(&wrong));
}

/// Native adapters run the flow on a multi-threaded runtime: its future must be `Send`
/// when the adapter's `Io` is.
#[test]
fn the_flow_is_send_for_a_send_io() {
    fn send<T: Send>(_: T) {}
    let (gate, io, incoming) = (gateway(""), Memory::with_files(), request("GET", "/a", "", "p"));
    send(gate.handle(&io, &incoming, NOW));
    send(gate.authorize(&io, &incoming, NOW));
}

#[test]
fn the_viewers_geo_is_read_only_when_a_rule_or_a_usage_record_needs_it() {
    let fr = Geo { country: Some("FR".into()), asn: Some(3215), as_organization: Some("Orange".into()) };
    let io = Memory { geo: fr, ..Memory::with_files() };
    let reads = || *io.geo_reads.lock().unwrap();
    let plain = format!("token={}", token(PlaybackClaims::default()));
    let segment = block_on(gateway("").handle(&io, &request("GET", "/hls/low/seg1.ts", &plain, "p"), NOW)).unwrap();
    assert!(matches!(segment, Outcome::Pass(Page { status: 200, .. })));
    let poster = block_on(gateway("").handle(&io, &request("GET", "/posters/a.jpg", "", "p"), NOW)).unwrap();
    assert!(matches!(poster, Outcome::Pass(Page { status: 200, .. })));
    assert_eq!(reads(), 0, "no rule and no usage record: the platform is never asked");

    // A token's country rule, and the operator's, are applied when configured.
    let rule: AccessRule =
        serde_json::from_str(r#"{"type": "ip.geoip.country", "action": "block", "country": ["FR"]}"#).unwrap();
    let fenced =
        format!("token={}", token(PlaybackClaims { access_rules: Some(vec![rule]), ..PlaybackClaims::default() }));
    let denied = block_on(gateway("").handle(&io, &request("GET", "/hls/low/seg1.ts", &fenced, "p"), NOW)).unwrap();
    assert_eq!(reason(denied), (403, "geo_denied".into()));
    let doc = format!(
        r#"{{"keys": [{{"alg": "HS256", "secret": "{SECRET}"}}], "sessions": {{"secret": "a session secret of thirty-two bytes!"}},
            "policy": {{"accessRules": [{{"type": "ip.geoip.country", "action": "block", "country": ["FR"]}}]}}}}"#
    );
    let operator = GateConfig::from_json(&doc).and_then(GateConfig::build_deployment).unwrap();
    let operator = Gateway::new(operator, "https://origin.example/").unwrap();
    let denied = block_on(operator.handle(&io, &request("GET", "/hls/low/seg1.ts", &plain, "p"), NOW)).unwrap();
    assert_eq!(reason(denied), (403, "geo_denied".into()));
    assert_eq!(reads(), 2);

    // A playlist fetch's usage record carries where the viewer is.
    let master =
        reply(block_on(gateway("").handle(&io, &request("GET", "/hls/master.m3u8", &plain, "p"), NOW)).unwrap());
    assert_eq!(master.status, 200);
    let records = io.records.lock().unwrap();
    let record = &records.last().unwrap().record;
    assert_eq!(
        (record.country.as_deref(), record.asn, record.as_organization.as_deref()),
        (Some("FR"), Some(3215), Some("Orange"))
    );
}

/// Regression (review): behind a trusted proxy (the client IP from its forwarded header),
/// the platform's geo describes the proxy, yet usage records and country rules took it as
/// the viewer's: every token showed the proxy's (often hosting) network.
#[test]
fn behind_a_trusted_proxy_the_platforms_geo_is_not_the_viewers() {
    let aws = Geo { country: Some("US".into()), asn: Some(16509), as_organization: Some("AMAZON-02".into()) };
    let io = Memory { geo: aws, ..Memory::with_files() };
    let doc = format!(
        r#"{{"keys": [{{"alg": "HS256", "secret": "{SECRET}"}}], "sessions": {{"secret": "a session secret of thirty-two bytes!"}},
            "policy": {{"trustedProxies": ["198.51.100.0/24"],
                        "accessRules": [{{"type": "ip.geoip.country", "action": "allow", "country": ["US"]}}, {{"type": "any", "action": "block"}}]}}}}"#
    );
    let gate = Gateway::new(
        GateConfig::from_json(&doc).and_then(GateConfig::build_deployment).unwrap(),
        "https://origin.example/",
    )
    .unwrap();
    let query = format!("token={}", token(PlaybackClaims::default()));
    let proxied =
        Incoming { forwarded_for: Some("203.0.113.5".into()), ..request("GET", "/hls/master.m3u8", &query, "p") };
    // The proxy is in the US; the viewer may not be: the allow-list cannot say yes.
    assert_eq!(reason(block_on(gate.handle(&io, &proxied, NOW)).unwrap()), (403, "geo_denied".into()));
    // Directly connected, the platform's geo is the viewer's.
    let direct = request("GET", "/hls/master.m3u8", &query, "p");
    assert_eq!(reply(block_on(gate.handle(&io, &direct, NOW)).unwrap()).status, 200);

    let open = gateway("");
    let proxied = Incoming { forwarded_for: Some("203.0.113.5".into()), ..proxied };
    let doc = format!(
        r#"{{"keys": [{{"alg": "HS256", "secret": "{SECRET}"}}], "sessions": {{"secret": "a session secret of thirty-two bytes!"}},
            "policy": {{"trustedProxies": ["198.51.100.0/24"]}}}}"#
    );
    let behind_proxy = Gateway::new(
        GateConfig::from_json(&doc).and_then(GateConfig::build_deployment).unwrap(),
        "https://origin.example/",
    )
    .unwrap();
    assert_eq!(reply(block_on(behind_proxy.handle(&io, &proxied, NOW)).unwrap()).status, 200);
    assert_eq!(
        reply(block_on(open.handle(&io, &request("GET", "/hls/master.m3u8", &query, "q"), NOW)).unwrap()).status,
        200
    );
    let records = io.records.lock().unwrap();
    let seen: Vec<(Option<&str>, Option<u32>)> =
        records.iter().map(|b| (b.record.ip.as_deref(), b.record.asn)).collect();
    assert_eq!(
        seen,
        [(Some("198.51.100.7"), Some(16509)), (Some("203.0.113.5"), None), (Some("198.51.100.7"), Some(16509))]
    );
}

/// Regression (review): a video on demand's session reloads no playlist, so the store's
/// verdicts on its background heartbeats (network hopping, evicted, past the limit) were
/// dropped, and a published playlist's session credential played anywhere until it
/// expired. The node now refuses the session's media once the store has refused it.
#[test]
fn a_session_the_store_refused_in_the_background_gets_no_more_media() {
    let (gate, io) = (gateway(r#", "ttl": 600"#), Memory::with_files());
    let entry = token(PlaybackClaims::default());
    let master = reply(
        block_on(gate.handle(&io, &request("GET", "/hls/master.m3u8", &format!("token={entry}"), "p"), NOW)).unwrap(),
    );
    let line = master.body.lines().find(|l| l.starts_with("low/")).unwrap();
    let sgs = format!("sgs={}", line.split_once("sgs=").map(|(_, v)| v.to_owned()).unwrap());
    let at = |ip: &str| Incoming { peer_ip: ip.parse().ok(), ..request("GET", "/hls/low/seg1.ts", &sgs, "p") };
    let status = |outcome: Outcome<Page>| match outcome {
        Outcome::Pass(page) => (page.status, String::new()),
        refused => reason(refused),
    };
    // The published playlist plays on another network, then back on the first: the store
    // sees one session hop between networks and ends it.
    assert_eq!(status(block_on(gate.handle(&io, &at("203.0.113.9"), NOW + 31)).unwrap()).0, 200);
    assert_eq!(status(block_on(gate.handle(&io, &at("198.51.100.7"), NOW + 62)).unwrap()).0, 200);
    let beats: Vec<BeatKind> = io.beats.lock().unwrap().iter().map(|(_, kind)| *kind).collect();
    assert_eq!(beats, [BeatKind::Start, BeatKind::Background, BeatKind::Background]);
    for ip in ["198.51.100.7", "203.0.113.9"] {
        // `expired`: the player starts over with its entry token, as for an idle session.
        let refused = reply(block_on(gate.handle(&io, &at(ip), NOW + 63)).unwrap());
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("switching networks"), "{}", refused.body);
    }
    assert_eq!(io.fetched_urls().len(), 3, "the refused requests reached no origin");
    // The refusal holds until the next heartbeat is due; then the store is asked again
    // (review: another node's playlist reload may have had the session admitted anew).
    assert_eq!(status(block_on(gate.handle(&io, &at("198.51.100.7"), NOW + 92)).unwrap()).0, 200);
    assert_eq!(io.beats.lock().unwrap().len(), 4, "the segment sent the session's heartbeat");
    assert_eq!(status(block_on(gate.handle(&io, &at("198.51.100.7"), NOW + 93)).unwrap()).0, 200, "admitted again");
}
