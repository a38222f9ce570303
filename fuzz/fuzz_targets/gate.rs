//! A whole `Gate::check` with every scheme configured and a random operator policy, fed
//! structured input (`arbitrary`): path, query, headers, client IP, stores, and a
//! credential that is raw text, found in the query, or validly signed over random claims
//! with the test keys (so the policy engine sees what only a signer can produce).
//!
//! Invariants: no panic; every denial maps to a reason code; an allowed request was decided
//! on its normalized path, inside the grant's scope, and its origin URL stays under the
//! origin; and a session credential the gate issues for an allowed request is allowed for
//! that same request (it is never narrower than the scheme's own rules say, and the policy
//! applies to it exactly as to the token).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use streamgate_core::claims::{AccessRule, CountryCode, NumericDate, PlaybackClaims, Purpose, RuleAction, RuleMatcher};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::{ReferrerRules, UserAgentRules};
use streamgate_core::revocation::{MemoryBlocklist, MemoryRevocations};
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EscapeStyle};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest};
use streamgate_core::schemes::{find_in_query, jwt, Credential, SchemeKind};
use streamgate_core::sessions::{AtLimit, SessionTable};
use streamgate_core::{Hooks, Policy, RequestContext};
use streamgate_fuzz::{
    assert_decision_sound, full_gate, jwt_keys, secure_link_scheme, session_scheme, EDGE_KEY, NOW, WMS_KEY,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
    /// A few fixed addresses, so that bindings and rules meet the client.
    Known(u8),
}

impl Ip {
    fn addr(self) -> IpAddr {
        match self {
            Ip::V4(o) => IpAddr::V4(Ipv4Addr::from(o)),
            Ip::V6(s) => IpAddr::V6(Ipv6Addr::from(s)),
            Ip::Known(i) => ["192.0.2.1", "192.0.2.77", "2001:db8::1", "::ffff:192.0.2.1", "10.0.0.1"]
                [usize::from(i) % 5]
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Range {
    ip: Ip,
    prefix: u8,
}

impl Range {
    fn range(&self) -> IpRange {
        let addr = self.ip.addr();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        IpRange::parse(&format!("{addr}/{}", self.prefix % (max + 1))).unwrap_or_else(|_| IpRange::single(addr))
    }
}

#[derive(Arbitrary, Debug)]
enum Rule {
    Ip(bool, Vec<Range>),
    Country(bool, Vec<[u8; 2]>),
    Any(bool),
}

fn rules(list: &[Rule]) -> Vec<AccessRule> {
    let action = |allow: bool| if allow { RuleAction::Allow } else { RuleAction::Block };
    list.iter()
        .map(|rule| match rule {
            Rule::Ip(allow, ranges) => AccessRule {
                action: action(*allow),
                matcher: RuleMatcher::Ip { ip: ranges.iter().map(Range::range).collect() },
            },
            Rule::Country(allow, codes) => AccessRule {
                action: action(*allow),
                matcher: RuleMatcher::Country {
                    country: codes
                        .iter()
                        .filter_map(|c| CountryCode::parse(&String::from_utf8_lossy(c)).ok())
                        .collect(),
                },
            },
            Rule::Any(allow) => AccessRule { action: action(*allow), matcher: RuleMatcher::Any },
        })
        .collect()
}

#[derive(Arbitrary, Debug)]
struct PolicyIn {
    trusted_proxies: Vec<Range>,
    ip_bypass: Vec<Range>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    referrers_allow: Vec<String>,
    referrers_deny: Vec<String>,
    allow_missing_referrer: bool,
    ua_allow: Vec<String>,
    ua_deny: Vec<String>,
    rules: Vec<Rule>,
    default_max_sessions: Option<u8>,
    public_paths: Vec<String>,
}

impl PolicyIn {
    fn policy(&self) -> Policy {
        Policy {
            trusted_proxies: self.trusted_proxies.iter().map(Range::range).collect(),
            ip_bypass: self.ip_bypass.iter().map(Range::range).collect(),
            ipv4_binding_prefix: self.ipv4_prefix,
            ipv6_binding_prefix: self.ipv6_prefix,
            referrers: ReferrerRules {
                allow: self.referrers_allow.clone(),
                deny: self.referrers_deny.clone(),
                allow_missing: self.allow_missing_referrer,
            },
            user_agents: UserAgentRules { allow: self.ua_allow.clone(), deny: self.ua_deny.clone() },
            access_rules: rules(&self.rules),
            default_max_sessions: self.default_max_sessions.map(u32::from),
            // As configuration would take them: wildcard-first globs are refused there.
            public_paths: self
                .public_paths
                .iter()
                .filter(|g| streamgate_core::policy::check_public_path(g).is_ok())
                .cloned()
                .collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ClaimsIn {
    sub: Option<String>,
    jti: Option<String>,
    exp: i32,
    nbf: Option<i32>,
    streams: Option<Vec<String>>,
    ip: Option<Range>,
    publish: Option<bool>,
    max_sessions: Option<u8>,
    referrers: Option<Vec<String>>,
    allow_no_referrer: Option<bool>,
    user_agents: Option<Vec<String>>,
    rules: Option<Vec<Rule>>,
}

#[derive(Arbitrary, Debug)]
enum CredentialIn {
    None,
    /// Whatever `find_in_query` finds in the query.
    FromQuery,
    Raw {
        kind: u8,
        text: String,
    },
    Jwt {
        key: u8,
        claims: ClaimsIn,
    },
    WmsAuth {
        ip: Option<Ip>,
        start: i32,
        minutes: u16,
        stream: Option<u8>,
        padded: bool,
    },
    EdgeAuth {
        acl: Vec<String>,
        ip: Option<Range>,
        start: Option<i32>,
        exp: i32,
        id: Option<String>,
        data: Option<String>,
        escape: u8,
    },
    SecureLink {
        ip: Option<Ip>,
        expires: i32,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    path: String,
    query: String,
    peer: Option<Ip>,
    forwarded_for: Option<String>,
    referer: Option<String>,
    user_agent: Option<String>,
    country: Option<String>,
    asn: Option<u32>,
    publish: bool,
    method: Option<String>,
    session_id: Option<String>,
    starts_session: bool,
    credential: CredentialIn,
    policy: PolicyIn,
    now: i16,
    revoked: Vec<String>,
    blocked: Vec<Range>,
    count_sessions: bool,
}

fn at(offset: i32) -> i64 {
    NOW + i64::from(offset)
}

fn credential(input: &Input, facts_path: &str) -> Option<Credential> {
    let make = |kind, value| Some(Credential { kind, value });
    match &input.credential {
        CredentialIn::None => None,
        CredentialIn::FromQuery => find_in_query(&input.query),
        CredentialIn::Raw { kind, text } => make(SchemeKind::ALL[usize::from(*kind) % 5], text.clone()),
        CredentialIn::Jwt { key, claims } => {
            // RSA signing costs milliseconds: RS256 for one key byte in 256, the other
            // algorithms for the rest (RS256 verification is exercised either way by raw
            // tokens and in the `jwt` target).
            let index = match key {
                &u8::MAX => 3,
                k => [0, 1, 2, 4, 5][usize::from(*k) % 5],
            };
            let key = &jwt_keys()[index];
            let claims = PlaybackClaims {
                sub: claims.sub.clone(),
                jti: claims.jti.clone(),
                exp: Some(NumericDate(at(claims.exp))),
                nbf: claims.nbf.map(|n| NumericDate(at(n))),
                streams: claims.streams.clone(),
                ip: claims.ip.as_ref().map(Range::range),
                purpose: claims.publish.map(|p| if p { Purpose::Publish } else { Purpose::Play }),
                max_sessions: claims.max_sessions.map(u32::from),
                referrers: claims.referrers.clone(),
                allow_no_referrer: claims.allow_no_referrer,
                user_agents: claims.user_agents.clone(),
                access_rules: claims.rules.as_deref().map(rules),
                ..Default::default()
            };
            make(SchemeKind::Jwt, jwt::sign(&claims, key).ok()?)
        }
        CredentialIn::WmsAuth { ip, start, minutes, stream, padded } => {
            let ip = ip.map(|i| i.addr().to_string()).unwrap_or_default();
            let relative = facts_path.strip_prefix('/').unwrap_or(facts_path);
            let stream = stream.and_then(|len| relative.get(..usize::from(len)));
            let request = WmsAuthRequest {
                ip: &ip,
                server_time: at(*start),
                valid_minutes: u32::from(*minutes),
                stream,
                date_style: if *padded { DateStyle::ZeroPadded } else { DateStyle::Php },
            };
            make(SchemeKind::WmsAuth, wmsauth::sign(WMS_KEY, &request).ok()?)
        }
        CredentialIn::EdgeAuth { acl, ip, start, exp, id, data, escape } => {
            let request = EdgeAuthRequest {
                acl: acl.clone(),
                url: acl.is_empty().then(|| facts_path.to_owned()),
                ip: ip.as_ref().map(|r| r.range().to_string()),
                start: start.map(at),
                expires: at(*exp),
                id: id.clone(),
                data: data.clone(),
                salt: None,
                escape: [EscapeStyle::None, EscapeStyle::Python, EscapeStyle::Node][usize::from(*escape) % 3],
            };
            make(SchemeKind::EdgeAuth, edgeauth::sign(EDGE_KEY, EdgeAlgorithm::Sha256, &request).ok()?)
        }
        CredentialIn::SecureLink { ip, expires } => {
            let md5 = secure_link_scheme().sign(facts_path, ip.map(Ip::addr), Some(at(*expires))).ok()?;
            make(SchemeKind::SecureLink, format!("{md5},{}", at(*expires)))
        }
    }
}

fuzz_target!(|input: Input| {
    let ctx = RequestContext {
        path: input.path.clone(),
        peer_ip: input.peer.map(Ip::addr),
        forwarded_for: input.forwarded_for.clone(),
        referer: input.referer.clone(),
        user_agent: input.user_agent.clone(),
        country: input.country.clone(),
        asn: input.asn,
        purpose: if input.publish { Purpose::Publish } else { Purpose::Play },
        method: input.method.clone(),
        session_id: input.session_id.clone(),
        starts_session: input.starts_session,
    };
    let gate = full_gate(input.policy.policy());
    let now = NOW + i64::from(input.now);
    let signed_path = streamgate_core::policy::path::normalize_path(&input.path).unwrap_or_default();
    let credential = credential(&input, &signed_path);

    let mut revocations = MemoryRevocations::default();
    for id in &input.revoked {
        revocations.revoke(id.clone(), None);
    }
    let mut blocklist = MemoryBlocklist::default();
    for range in &input.blocked {
        blocklist.block(range.range(), None);
    }
    let mut table = SessionTable::new(60, AtLimit::RejectNew);
    let mut hooks = Hooks {
        revocations: &revocations,
        blocklist: &blocklist,
        sessions: if input.count_sessions { Some(&mut table) } else { None },
    };
    let _ = gate.public(&ctx);
    let decision = gate.check(credential.as_ref(), &ctx, now, &mut hooks);
    assert_decision_sound(&decision, &input.path, &input.query);

    // A session credential issued for an allowed request opens that same request.
    let streamgate_core::Decision::Allow { grant, facts } = &decision else { return };
    let Ok(session) = session_scheme().issue(grant, "fuzz-sid", &facts.path, facts.client_ip, now, None) else {
        return;
    };
    let mut hooks = Hooks { revocations: &revocations, blocklist: &blocklist, sessions: None };
    let renewed = Credential { kind: SchemeKind::Session, value: session };
    let again = gate.check(Some(&renewed), &ctx, now, &mut hooks);
    assert!(again.is_allowed(), "{grant:?} was allowed, its session credential was not: {again:?}");
});
