//! The whole request flow in front of an origin (`gateway::Gateway::handle`, and
//! `Gateway::authorize` for forward-auth), driven through an in-memory `Io` whose origin
//! answers what the input says (status, content type, a manifest or junk), with a request
//! whose method, path, query, cookie and `Authorization` are the input's, and a credential
//! that is absent, raw text, or an HS256 token validly signed over random claims and placed
//! in the query, the cookie, the `Authorization` header or the `/~sg/` path prefix. When a
//! manifest comes back, one session credential from it is replayed on a second request to
//! a random path, as a viewer who copied it would.
//!
//! Invariants: no panic; every denial names a reason code; nothing but GET and HEAD reaches
//! the origin; every origin URL stays under the origin, carries no credential, and its path
//! is a normalized one; without a validly signed token only public paths are fetched (no
//! encoding, method or transport gets past the gate); every path fetched under a token or
//! under a session credential issued for it is inside that token's own scope; what
//! forward-auth allows, a proxy that decodes the path and resolves its dot segments serves
//! from the public paths or the token's scope only; and a rewritten manifest never holds
//! the entry token.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pollster::block_on;
use serde_json::json;
use streamgate_core::claims::{NumericDate, PlaybackClaims};
use streamgate_core::config::{Deployment, GateConfig};
use streamgate_core::gateway::{
    Authorization, Gateway, Incoming, Io, OriginRequest, Outcome, Reply, Tallies, Upstream, SESSION_PARAM,
};
use streamgate_core::keys::{Algorithm, Key};
use streamgate_core::policy::path::normalize_path;
use streamgate_core::revocation::Blocks;
use streamgate_core::schemes::{jwt, Credential, SchemeKind};
use streamgate_core::sessions::{Heartbeat, SessionHubState, Verdict};
use streamgate_core::ReasonCode;
use streamgate_fuzz::{assert_origin_url_sound, HMAC_SECRET, NOW, SESSION_SECRET};

const ORIGIN: &str = "https://origin.example/base";
const PUBLIC: &str = "posters";
const HLS: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n#EXT-X-KEY:METHOD=AES-128,URI=\"../k/key\"\nseg1.ts\n/abs/seg2.ts\n../../up.ts\nhttps://origin.example/base/full.ts\n";
const DASH: &str = "<?xml version=\"1.0\"?><MPD><BaseURL>media/</BaseURL><Period><AdaptationSet><SegmentTemplate media=\"$Number$.m4s\" initialization=\"init.mp4\"/></AdaptationSet></Period></MPD>";

#[derive(Arbitrary, Debug, Clone)]
enum Body {
    Hls(String),
    Dash(String),
    Junk(String),
}

#[derive(Arbitrary, Debug, Clone)]
struct OriginIn {
    status: u16,
    content_type: u8,
    body: Body,
}

struct Response {
    status: u16,
    content_type: Option<String>,
    body: String,
}

impl Upstream for Response {
    fn status(&self) -> u16 {
        self.status
    }

    fn header(&self, name: &str) -> Option<String> {
        if name.eq_ignore_ascii_case("Content-Type") {
            self.content_type.clone()
        } else if name.eq_ignore_ascii_case("Content-Length") {
            Some(self.body.len().to_string())
        } else {
            None
        }
    }
}

/// An origin that answers every fetch as the input says, stores that always answer (or a
/// session store that is down), and a record of what was fetched.
struct Memory {
    origin: OriginIn,
    store_down: bool,
    revoked: Vec<String>,
    blocks: Arc<Blocks>,
    hubs: Mutex<HashMap<String, SessionHubState>>,
    tallies: Mutex<Tallies>,
    fetched: Mutex<Vec<OriginRequest>>,
}

impl Io for Memory {
    type Response = Response;
    type Blocks = Arc<Blocks>;
    type Error = &'static str;

    async fn revoked(&self, ids: &[String], _now: i64) -> Result<Vec<String>, &'static str> {
        Ok(ids.iter().filter(|id| self.revoked.contains(id)).cloned().collect())
    }

    async fn blocks(&self, _now: i64) -> Result<Arc<Blocks>, &'static str> {
        Ok(self.blocks.clone())
    }

    async fn fetch(&self, request: OriginRequest) -> Result<Response, &'static str> {
        self.fetched.lock().map_err(|_| "poisoned")?.push(request);
        let content_type = match self.origin.content_type % 5 {
            0 => None,
            1 => Some("application/vnd.apple.mpegurl"),
            2 => Some("application/dash+xml"),
            3 => Some("video/mp2t"),
            _ => Some("text/plain; charset=utf-8"),
        };
        let body = match &self.origin.body {
            Body::Hls(tail) => format!("{HLS}{tail}"),
            Body::Dash(tail) => DASH.replace("init.mp4", tail),
            Body::Junk(text) => text.clone(),
        };
        let status = if self.origin.status % 4 == 0 { self.origin.status } else { 200 };
        Ok(Response { status, content_type: content_type.map(str::to_owned), body })
    }

    async fn text(&self, response: Response) -> Result<String, &'static str> {
        Ok(response.body)
    }

    async fn heartbeat(&self, key: &str, beat: &Heartbeat) -> Result<Verdict, &'static str> {
        if self.store_down {
            return Err("store down");
        }
        let mut hubs = self.hubs.lock().map_err(|_| "poisoned")?;
        Ok(hubs.entry(key.to_owned()).or_default().heartbeat(beat.clone()))
    }

    fn heartbeat_in_background(&self, _key: String, _beat: Heartbeat) {}

    fn tallies<T>(&self, update: impl FnOnce(&mut Tallies) -> T) -> T {
        match self.tallies.lock() {
            Ok(mut tallies) => update(&mut tallies),
            Err(poisoned) => update(&mut poisoned.into_inner()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ClaimsIn {
    sub: Option<String>,
    jti: Option<String>,
    exp: i16,
    streams: Option<Vec<String>>,
    max_sessions: Option<u8>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Place {
    Query,
    Cookie,
    Bearer,
    PathPrefix,
}

#[derive(Arbitrary, Debug)]
enum CredentialIn {
    None,
    Raw(Place, String),
    Signed(Place, ClaimsIn),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    other_method: String,
    path: String,
    query: String,
    cookie: Option<String>,
    authorization: Option<String>,
    credential: CredentialIn,
    origin: OriginIn,
    binding: u8,
    at_limit: bool,
    cookie_transport: bool,
    max_sessions: Option<u8>,
    store_closed: bool,
    store_down: bool,
    revoke_jti: bool,
    now: i16,
    /// The second request, under a session credential of the first's manifest.
    replay_path: String,
    replay_method: u8,
    replay_later: u16,
}

fn method(choice: u8, other: &str) -> String {
    ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "get", other][usize::from(choice) % 8].to_owned()
}

/// The deployment the input configures (every combination is a valid configuration).
fn deployment(input: &Input) -> Deployment {
    let binding = ["none", "network"][usize::from(input.binding) % 2];
    let document = json!({
        "keys": [{"alg": "HS256", "secret": String::from_utf8_lossy(HMAC_SECRET)}],
        "policy": {"publicPaths": [PUBLIC], "defaultMaxSessions": input.max_sessions.map(|m| m % 4)},
        "sessions": {
            "secret": String::from_utf8_lossy(SESSION_SECRET),
            "binding": binding,
            "atLimit": if input.at_limit { "reject-new" } else { "evict-oldest" },
            "onStoreError": if input.store_closed { "closed" } else { "open" },
            "cookie": input.cookie_transport,
        },
    });
    let built = GateConfig::from_json(&document.to_string()).and_then(GateConfig::build_deployment);
    built.unwrap_or_else(|e| panic!("{document} does not configure a gate: {e}"))
}

fn sign(claims: &ClaimsIn) -> Option<String> {
    let key = Key::hmac(Algorithm::HS256, HMAC_SECRET).ok()?;
    let claims = PlaybackClaims {
        sub: claims.sub.clone(),
        jti: claims.jti.clone(),
        exp: Some(NumericDate(NOW + i64::from(claims.exp))),
        streams: claims.streams.clone(),
        max_sessions: claims.max_sessions.map(u32::from),
        ..PlaybackClaims::default()
    };
    jwt::sign(&claims, &key).ok()
}

/// The request with `credential` placed where `place` says.
fn place(mut req: Incoming, place: Place, credential: &str) -> Incoming {
    match place {
        Place::Query => {
            let param = format!("token={}", utf8_percent_encode(credential, NON_ALPHANUMERIC));
            req.query = if req.query.is_empty() { param } else { format!("{param}&{}", req.query) };
        }
        Place::Cookie => req.cookie = Some(format!("streamgate={credential}")),
        Place::Bearer => req.authorization = Some(format!("Bearer {credential}")),
        Place::PathPrefix => {
            req.path = format!("/~sg/{}{}", utf8_percent_encode(credential, NON_ALPHANUMERIC), req.path)
        }
    }
    req
}

fn is_public(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(PUBLIC))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A denial (4xx) names one reason code in its header; the gate's own failures (5xx: it is
/// misconfigured, or its store or the origin failed, as a partial playlist does) say why in
/// their body.
fn assert_reply_sound(reply: &Reply, entry_token: Option<&str>) {
    if (400..500).contains(&reply.status) {
        let reason = reply.header("X-Streamgate-Reason").unwrap_or_else(|| panic!("{reply:?} names no reason"));
        assert!(ReasonCode::parse(reason).is_some(), "{reason:?} is not a reason code");
    } else if reply.status >= 500 {
        assert!(reply.body.starts_with("{\"error\":\""), "{reply:?} says not why");
    }
    if let Some(token) = entry_token {
        assert!(!reply.body.contains(token), "the entry token leaked into {:?}", reply.body);
    }
}

/// What was fetched: GET or HEAD only, under the origin, without a credential, on a
/// The path nginx and Caddy serve for a raw request path: cut at a raw `?` or `#`,
/// percent-decoded once, empty segments merged, dot segments resolved (at most up to the
/// root).
fn served_by_a_proxy(raw: &str) -> String {
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

/// normalized path that is public or inside `scope` (`None`: no token was signed).
fn assert_fetches_sound(io: &Memory, query: &str, scope: Option<&streamgate_core::grant::Scope>) {
    let fetched = io.fetched.lock().map(|f| f.clone()).unwrap_or_default();
    for request in fetched {
        assert!(matches!(request.method.as_str(), "GET" | "HEAD"), "{request:?} reached the origin");
        let path = request.url.strip_prefix(ORIGIN).unwrap_or_else(|| panic!("{request:?} left the origin"));
        let path = path.split('?').next().unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned();
        assert_eq!(normalize_path(&decoded).ok().as_deref(), Some(decoded.as_str()), "{request:?}");
        assert_origin_url_sound(ORIGIN, &decoded, query);
        let allowed = is_public(&decoded) || scope.is_some_and(|scope| scope.covers(&decoded));
        assert!(allowed, "{request:?} fetched outside the public paths and the token's scope {scope:?}");
    }
}

fn session_credential(body: &str) -> Option<String> {
    let marker = format!("{SESSION_PARAM}=");
    let start = body.find(&marker)? + marker.len();
    let rest = body.get(start..)?;
    let end = rest.find(|c: char| matches!(c, '&' | '"' | '\n' | '<' | ' ')).unwrap_or(rest.len());
    let value = rest.get(..end)?.replace("&amp;", "&");
    Some(percent_encoding::percent_decode_str(&value).decode_utf8_lossy().into_owned())
}

fuzz_target!(|input: Input| {
    let gateway = Gateway::new(deployment(&input), ORIGIN).expect("a gateway in front of the origin");
    let now = NOW + i64::from(input.now);
    let base = Incoming {
        method: method(input.method, &input.other_method),
        path: input.path.clone(),
        query: input.query.clone(),
        base: "https://gate.example".to_owned(),
        peer_ip: "198.51.100.7".parse().ok(),
        cookie: input.cookie.clone(),
        authorization: input.authorization.clone(),
        user_agent: Some("fuzz".to_owned()),
        ..Incoming::default()
    };
    let (req, entry_token) = match &input.credential {
        CredentialIn::None => (base, None),
        CredentialIn::Raw(at, text) => (place(base, *at, text), None),
        CredentialIn::Signed(at, claims) => {
            let Some(token) = sign(claims) else { return };
            (place(base, *at, &token), Some(token))
        }
    };
    // The scope the entry token itself grants, as the gate verifies it.
    let scope = entry_token.as_ref().and_then(|token| {
        let credential = Credential { kind: SchemeKind::Jwt, value: token.clone() };
        gateway.deployment.gate.verify(Some(&credential), &gateway.context(&req, "/")).ok().map(|(g, _)| g.scope)
    });
    let revoked = match (&input.credential, input.revoke_jti) {
        (CredentialIn::Signed(_, ClaimsIn { jti: Some(jti), .. }), true) => vec![jti.clone()],
        _ => Vec::new(),
    };
    let io = Memory {
        origin: input.origin.clone(),
        store_down: input.store_down,
        revoked,
        blocks: Arc::new(Blocks::default()),
        hubs: Mutex::new(HashMap::new()),
        tallies: Mutex::new(Tallies::default()),
        fetched: Mutex::new(Vec::new()),
    };

    // Forward-auth never fetches: the proxy then serves what it was asked for, as it reads
    // the path itself.
    let forward = Gateway::forward_auth(deployment(&input));
    match block_on(forward.authorize(&io, &req, now)) {
        Ok(Authorization::Denied(reply)) => assert_reply_sound(&reply, entry_token.as_deref()),
        Ok(Authorization::Allowed { .. }) => {
            let served = served_by_a_proxy(&req.path);
            let opens = is_public(&served) || scope.as_ref().is_some_and(|s| s.covers(&served));
            assert!(
                opens || req.method == "OPTIONS",
                "forward-auth allowed {req:?} outside the public paths and {scope:?}"
            );
        }
        Err(_) => {}
    }

    let outcome = block_on(gateway.handle(&io, &req, now));
    assert_fetches_sound(&io, &req.query, scope.as_ref());
    let Ok(Outcome::Reply(reply)) = outcome else { return };
    assert_reply_sound(&reply, entry_token.as_deref());

    // A viewer replays a session credential of the manifest on a path of its choosing.
    let Some(session) = session_credential(&reply.body) else { return };
    let replay = Incoming {
        method: method(input.replay_method, &input.other_method),
        path: input.replay_path.clone(),
        query: format!("{SESSION_PARAM}={}", utf8_percent_encode(&session, NON_ALPHANUMERIC)),
        ..req.clone()
    };
    let replay = Incoming { cookie: None, authorization: None, ..replay };
    if let Ok(Outcome::Reply(reply)) = block_on(gateway.handle(&io, &replay, now + i64::from(input.replay_later))) {
        assert_reply_sound(&reply, entry_token.as_deref());
    }
    assert_fetches_sound(&io, &replay.query, scope.as_ref());
});
