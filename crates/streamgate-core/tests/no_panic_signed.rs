//! Panic-freedom past the signature: `no_panic.rs` feeds garbage, which a signature check
//! stops at once. Here every credential is validly signed (every JWT algorithm, WMSAuth,
//! EdgeAuth, secure_link, the gate's session credential) over random claims, and checked
//! against random request facts under a random operator policy. Nothing may panic, a
//! validly signed credential is never refused for its signature, every denial maps to a
//! reason code and a documented stage, and an allowed request is inside the grant's scope.
//! The coverage-guided counterparts are the fuzz targets in `fuzz/` (`scripts/fuzz.sh`).

#![allow(clippy::disallowed_types)] // tests bring their own randomness, as callers do

mod common;

use std::net::IpAddr;
use std::sync::OnceLock;

use common::Stores;
use proptest::prelude::*;
use rand_core::OsRng;
use streamgate_core::claims::{AccessRule, CountryCode, NumericDate, PlaybackClaims, Purpose, RuleAction, RuleMatcher};
use streamgate_core::grant::{Grant, Scope};
use streamgate_core::keys::{Algorithm, Key, KeySet};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::policy::path::normalize_path;
use streamgate_core::policy::{check_public_path, ReferrerRules, UserAgentRules};
use streamgate_core::schemes::edgeauth::{self, EdgeAlgorithm, EdgeAuthRequest, EdgeAuthScheme, EscapeStyle};
use streamgate_core::schemes::jwt::{self, JwtScheme};
use streamgate_core::schemes::secure_link::SecureLinkScheme;
use streamgate_core::schemes::session::{SessionBinding, SessionOptions, SessionScheme, UrlTokenScope};
use streamgate_core::schemes::wmsauth::{self, DateStyle, WmsAuthRequest, WmsAuthScheme};
use streamgate_core::schemes::{
    detect_scheme, find_in_query, signed_url, split_url, strip_credentials, Credential, SchemeKind,
};
use streamgate_core::sessions::{AtLimit, SessionTable};
use streamgate_core::{Decision, Denial, Gate, Policy, ReasonCode, RequestContext};

const NOW: i64 = 1_700_000_000;
const SESSION_SECRET: &[u8] = b"a session secret of at least 32 bytes";

/// One key per algorithm, generated once (RSA takes seconds).
fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        common::built_algorithms()
            .map(|alg| Key::generate(alg, &mut OsRng).unwrap().with_kid(Some(alg.as_str())))
            .collect()
    })
}

fn jwt_verifier() -> JwtScheme {
    JwtScheme::new(KeySet::new(keys().iter().map(|k| k.public_key().unwrap_or_else(|| k.clone())).collect()))
}

/// Addresses from a small pool (so bindings, rules and block lists meet the client) or any.
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => prop::sample::select(vec!["192.0.2.1", "192.0.2.200", "198.51.100.7", "2001:db8::1", "2001:db8:0:1::9", "::ffff:192.0.2.1", "10.0.0.1"])
            .prop_map(|s| s.parse().unwrap()),
        1 => any::<[u8; 4]>().prop_map(IpAddr::from),
        1 => any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

fn range() -> impl Strategy<Value = IpRange> {
    (ip(), any::<u8>()).prop_map(|(addr, prefix)| {
        let max = if addr.is_ipv4() { 33 } else { 129 };
        IpRange::parse(&format!("{addr}/{}", prefix % max)).unwrap_or_else(|_| IpRange::single(addr))
    })
}

fn rule() -> impl Strategy<Value = AccessRule> {
    let action = prop_oneof![Just(RuleAction::Allow), Just(RuleAction::Block)];
    let matcher = prop_oneof![
        prop::collection::vec(range(), 0..3).prop_map(|ip| RuleMatcher::Ip { ip }),
        prop::collection::vec("[A-Za-z]{2}", 0..3).prop_map(|codes| RuleMatcher::Country {
            country: codes.iter().filter_map(|c| CountryCode::parse(c).ok()).collect(),
        }),
        Just(RuleMatcher::Any),
    ];
    (action, matcher).prop_map(|(action, matcher)| AccessRule { action, matcher })
}

/// Host patterns and User-Agent patterns, wildcards included.
fn host_pattern() -> impl Strategy<Value = String> {
    prop_oneof!["(\\*\\.)?[a-z]{1,6}\\.(example|test)", "\\*", any::<String>()]
}

fn ua_pattern() -> impl Strategy<Value = String> {
    prop_oneof!["\\*?[A-Za-z./ ]{0,8}\\*?", any::<String>()]
}

fn stream_glob() -> impl Strategy<Value = String> {
    prop_oneof!["(live|vod|\\*|\\*\\*)(/[a-z*-]{1,8}){0,3}", any::<String>()]
}

/// Mostly empty lists, so that a fair share of requests gets through every check.
fn few<T: std::fmt::Debug + Clone>(item: impl Strategy<Value = T>, max: usize) -> impl Strategy<Value = Vec<T>> {
    prop_oneof![2 => Just(Vec::new()), 1 => prop::collection::vec(item, 1..=max)]
}

fn policy() -> BoxedStrategy<Policy> {
    (
        (few(range(), 2), few(range(), 2)),
        (prop::option::of(0u8..=40), prop::option::of(0u8..=140)),
        (few(host_pattern(), 3), few(host_pattern(), 2), prop::bool::weighted(0.8)),
        (few(ua_pattern(), 3), few(ua_pattern(), 2)),
        few(rule(), 4),
        prop::option::of(0u32..4),
        few(stream_glob(), 3),
    )
        .prop_map(
            |((trusted, bypass), (v4, v6), (r_allow, r_deny, missing), (ua_allow, ua_deny), rules, max, public)| {
                Policy {
                    trusted_proxies: trusted,
                    ip_bypass: bypass,
                    ipv4_binding_prefix: v4,
                    ipv6_binding_prefix: v6,
                    referrers: ReferrerRules { allow: r_allow, deny: r_deny, allow_missing: missing },
                    user_agents: UserAgentRules { allow: ua_allow, deny: ua_deny },
                    access_rules: rules,
                    default_max_sessions: max,
                    // As configuration takes them: a glob that opens every stream is refused there.
                    public_paths: public.into_iter().filter(|g| check_public_path(g).is_ok()).collect(),
                }
            },
        )
        .boxed()
}

/// Request paths: mostly ones a player sends, some hostile, some anything.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "/(live|vod|posters)(/[a-z0-9_.-]{1,10}){1,3}",
        1 => prop::sample::select(vec!["/posters/%252e%252e/hls/master.m3u8", "/live/%2e%2e/x", "/live/a;b", "/live/%ff", "//x", "/"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn context() -> BoxedStrategy<RequestContext> {
    (
        path(),
        prop::option::of(ip()),
        prop::option::of(prop_oneof!["[0-9., a-f:]{0,40}", any::<String>()]),
        prop::option::of(prop_oneof!["https?://[a-z]{1,6}\\.(example|test)/[a-z]{0,5}", any::<String>()]),
        prop::option::of(prop_oneof!["[A-Za-z./ ()0-9]{0,20}", any::<String>()]),
        prop::option::of("[A-Za-z]{2}|.{0,3}"),
        (prop::bool::weighted(0.1), prop::option::of(prop_oneof!["GET|HEAD|POST|PUT|DELETE|PROPFIND", ".{0,8}"])),
        prop::option::of("[a-z0-9-]{1,12}"),
        any::<bool>(),
    )
        .prop_map(
            |(
                path,
                peer_ip,
                forwarded_for,
                referer,
                user_agent,
                country,
                (publish, method),
                session_id,
                starts_session,
            )| {
                RequestContext {
                    method,
                    path,
                    peer_ip,
                    forwarded_for,
                    referer,
                    user_agent,
                    country,
                    asn: None,
                    purpose: if publish { Purpose::Publish } else { Purpose::Play },
                    session_id,
                    starts_session,
                }
            },
        )
        .boxed()
}

/// The stores a request meets: revocations (maybe of the credential's own id), blocked
/// ranges, session counting or not.
#[derive(Debug, Clone)]
struct StoresIn {
    revoked: Vec<String>,
    blocked: Vec<IpRange>,
    count_sessions: bool,
}

fn stores() -> impl Strategy<Value = StoresIn> {
    (few(prop_oneof!["jti-[0-9]", "[a-z]{1,4}"], 2), few(range(), 2), any::<bool>())
        .prop_map(|(revoked, blocked, count_sessions)| StoresIn { revoked, blocked, count_sessions })
}

fn run(gate: &Gate, kind: SchemeKind, value: &str, ctx: &RequestContext, now: i64, stores: &StoresIn) -> Decision {
    let mut s = Stores::default();
    for id in &stores.revoked {
        s.revocations.revoke(id.clone(), None);
    }
    for range in &stores.blocked {
        s.blocklist.block(*range, None);
    }
    if stores.count_sessions {
        s.sessions = Some(SessionTable::new(60, AtLimit::RejectNew));
    }
    let _ = gate.public(ctx);
    s.check(gate, kind, value, ctx, now)
}

/// What every decision on a validly signed credential satisfies.
fn assert_sound(decision: &Decision, ctx: &RequestContext) -> Result<(), TestCaseError> {
    match decision {
        Decision::Deny { denial, .. } => {
            let code = denial.reason();
            prop_assert_eq!(ReasonCode::parse(code.as_str()), Some(code));
            prop_assert!(Denial::STAGES.contains(&denial.stage()), "{:?}", denial);
            prop_assert!(
                !matches!(code, ReasonCode::BadSignature | ReasonCode::UnknownKey | ReasonCode::AlgNotAllowed),
                "a validly signed credential was refused for its signature: {:?}",
                denial
            );
        }
        Decision::Allow { grant, facts } => {
            let normalized = normalize_path(&ctx.path).ok();
            prop_assert_eq!(Some(&facts.path), normalized.as_ref());
            prop_assert!(grant.scope.covers(&facts.path), "{:?} does not cover {}", grant.scope, facts.path);
            prop_assert_eq!(Ok(grant.purpose), ctx.request_purpose(), "the method decides the purpose");
            let _ = grant.scope.directory();
        }
    }
    Ok(())
}

fn claims() -> BoxedStrategy<PlaybackClaims> {
    (
        (
            prop::option::of("[ -~]{0,12}"),
            prop::option::of("jti-[0-9]"),
            prop_oneof![4 => 120i64..3_600, 1 => -600i64..120],
            prop::option::weighted(0.3, -600i64..600),
        ),
        (
            prop::option::weighted(0.25, prop::collection::vec(stream_glob(), 0..3)),
            prop::option::weighted(0.15, range()),
            prop::option::of(prop::bool::weighted(0.1)),
        ),
        (
            prop::option::of(0u32..4),
            prop::option::weighted(0.3, prop::collection::vec(host_pattern(), 0..3)),
            prop::option::of(any::<bool>()),
        ),
        (
            prop::option::weighted(0.3, prop::collection::vec(ua_pattern(), 0..3)),
            prop::option::weighted(0.3, prop::collection::vec(rule(), 0..3)),
        ),
    )
        .prop_map(|((sub, jti, exp, nbf), (streams, ip, publish), (max, refs, no_ref), (uas, rules))| PlaybackClaims {
            sub,
            jti,
            exp: Some(NumericDate(NOW + exp)),
            nbf: nbf.map(|n| NumericDate(NOW + n)),
            iat: Some(NumericDate(NOW - 1)),
            streams,
            ip,
            purpose: publish.map(|p| if p { Purpose::Publish } else { Purpose::Play }),
            max_sessions: max,
            referrers: refs,
            allow_no_referrer: no_ref,
            user_agents: uas,
            access_rules: rules,
            ..Default::default()
        })
        .boxed()
}

/// A session credential, issued for the request's own path (as the gate issues it with the
/// manifest), checked like any other credential.
fn session_check(
    gate: &Gate,
    decision: &Decision,
    ctx: &RequestContext,
    now: i64,
    stores: &StoresIn,
) -> Result<(), TestCaseError> {
    let Decision::Allow { grant, facts } = decision else { return Ok(()) };
    let scheme = SessionScheme::new(SESSION_SECRET, SessionOptions::default()).unwrap();
    let Ok(credential) = scheme.issue(grant, "sid-1", &facts.path, facts.client_ip, now, Some(600)) else {
        return Ok(());
    };
    let again =
        run(gate, SchemeKind::Session, &credential, ctx, now, &StoresIn { count_sessions: false, ..stores.clone() });
    prop_assert!(again.is_allowed(), "{:?} was allowed, its session credential was not: {:?}", grant, again);
    Ok(())
}

fn gate_with(policy: Policy, scheme: Box<dyn streamgate_core::schemes::Scheme>) -> Gate {
    let session = SessionScheme::new(SESSION_SECRET, SessionOptions::default()).unwrap();
    Gate::new(policy).with_scheme(scheme).with_scheme(Box::new(session))
}

/// Indexes into `keys()` of every key but the slow RS256 one (tested on its own, below).
fn fast_keys() -> Vec<usize> {
    (0..keys().len()).filter(|&i| keys().get(i).is_some_and(|k| k.alg() != Algorithm::RS256)).collect()
}

fn check_jwt(
    alg: usize,
    claims: &PlaybackClaims,
    policy: Policy,
    ctx: &RequestContext,
    now: i64,
    stores: &StoresIn,
) -> Result<(), TestCaseError> {
    let Ok(token) = jwt::sign(claims, &keys()[alg]) else { return Ok(()) };
    let gate = gate_with(policy, Box::new(jwt_verifier()));
    let decision = run(&gate, SchemeKind::Jwt, &token, ctx, now, stores);
    assert_sound(&decision, ctx)?;
    session_check(&gate, &decision, ctx, now, stores)
}

/// An entry grant of any scheme's shape, for session credentials to be issued from.
/// (Boxed: one flat strategy of this many parts overflows a test thread's stack unoptimised.)
fn entry_grant() -> BoxedStrategy<Grant> {
    let scope = prop_oneof![
        3 => Just(Scope::Any),
        1 => prop::collection::vec(stream_glob(), 0..3).prop_map(Scope::Streams),
        1 => prop::collection::vec("/[a-z/*]{0,10}", 0..3).prop_map(Scope::Acl),
        1 => "/?[a-z/]{0,10}".prop_map(Scope::SignedPrefix),
        1 => path().prop_map(Scope::SignedPath),
    ]
    .boxed();
    let ids =
        (prop::option::weighted(0.3, range()), prop::option::of("jti-[0-9]"), prop::option::of("[a-z]{1,6}")).boxed();
    let limits = (prop::option::of(-100i64..3_600), prop::option::of(0u32..3), prop::bool::weighted(0.1)).boxed();
    let lists = (few(host_pattern(), 2), few(ua_pattern(), 2), few(rule(), 2)).boxed();
    (scope, ids, limits, lists)
        .prop_map(|(scope, (ip, jti, sub), (exp, max, publish), (refs, uas, rules))| {
            let mut grant = Grant::new(SchemeKind::Jwt, "entry token", "{}".into());
            grant.scope = scope;
            grant.ip_binding = ip;
            grant.token_id = jti;
            grant.subject = sub;
            grant.validity.expires_at = exp.map(|e| NOW + e);
            grant.max_sessions = max;
            grant.referrers = refs;
            grant.user_agents = uas;
            grant.access_rules = rules;
            grant.purpose = if publish { Purpose::Publish } else { Purpose::Play };
            grant
        })
        .boxed()
}

fn session_options() -> BoxedStrategy<SessionOptions> {
    (1u32..600, 0u32..1_000, 1u32..10_000, any::<bool>(), any::<bool>())
        .prop_map(|(ttl, grace, max_age, bind, widen)| SessionOptions {
            ttl,
            grace,
            max_age,
            binding: if bind { SessionBinding::Network } else { SessionBinding::None },
            url_tokens: if widen { UrlTokenScope::Directory } else { UrlTokenScope::Exact },
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_jwts_with_random_claims(alg in prop::sample::select(fast_keys()), claims in claims(), policy in policy(),
                                      ctx in context(), now in prop_oneof![4 => -60i64..60, 1 => -60i64..3_700], stores in stores()) {
        check_jwt(alg, &claims, policy, &ctx, NOW + now, &stores)?;
    }

    #[test]
    fn signed_wmsauth_with_random_fields(client in ip(), ip_bound in any::<bool>(), start in prop_oneof![4 => -600i64..0, 1 => -6_000i64..600], minutes in 1u32..200,
                                         stream_len in prop::option::of(1usize..30), padded in any::<bool>(), tolerance in 0u32..200,
                                         policy in policy(), mut ctx in context(), stores in stores()) {
        ctx.peer_ip = Some(client);
        let path = normalize_path(&ctx.path).unwrap_or_default();
        let relative = path.strip_prefix('/').unwrap_or(&path);
        // A stream that starts with a digit is never signed (see wmsauth): none is generated.
        let stream = stream_len.and_then(|len| relative.get(..len)).filter(|s| !s.starts_with(|c: char| c.is_ascii_digit()));
        let signed_ip = if ip_bound { client.to_string() } else { String::new() };
        let request = WmsAuthRequest {
            ip: &signed_ip, server_time: NOW + start, valid_minutes: minutes, stream,
            date_style: if padded { DateStyle::ZeroPadded } else { DateStyle::Php },
        };
        let sign = wmsauth::sign("wms key", &request).unwrap();
        let scheme = WmsAuthScheme { ip_bound, tolerance, ..WmsAuthScheme::new("wms key") };
        // The client IP the policy derives may differ from the peer (a trusted proxy):
        // the hashed IP is then another one, and a signature mismatch is the right answer.
        let client_ip = streamgate_core::policy::ip::client_ip(ctx.peer_ip, ctx.forwarded_for.as_deref(), &policy.trusted_proxies);
        let gate = gate_with(policy, Box::new(scheme));
        let decision = run(&gate, SchemeKind::WmsAuth, &sign, &ctx, NOW, &stores);
        if ip_bound && client_ip != Some(client) {
            prop_assert!(!decision.is_allowed());
            return Ok(());
        }
        assert_sound(&decision, &ctx)?;
        session_check(&gate, &decision, &ctx, NOW, &stores)?;
    }

    #[test]
    fn signed_edgeauth_with_random_fields(acl in prop::collection::vec(prop_oneof!["/(live|vod)?/?\\*?", "/[a-z/*!]{0,12}"], 0..3),
                                          ip in prop::option::weighted(0.3, range()), start in prop::option::of(prop_oneof![4 => -600i64..0, 1 => 0i64..600]),
                                          exp in prop_oneof![4 => 60i64..3_600, 1 => -60i64..60],
                                          id in prop::option::of("[ -}]{0,12}"), data in prop::option::of("[ -}]{0,12}"),
                                          escape in prop::sample::select(vec![EscapeStyle::None, EscapeStyle::Python, EscapeStyle::Node]),
                                          algorithm in prop::sample::select(vec![EdgeAlgorithm::Sha256, EdgeAlgorithm::Sha1, EdgeAlgorithm::Md5]),
                                          salt in prop::option::of("[a-z]{1,6}"), leeway in 0u32..60,
                                          policy in policy(), ctx in context(), stores in stores()) {
        let path = normalize_path(&ctx.path).unwrap_or_default();
        let request = EdgeAuthRequest {
            acl: acl.clone(), url: acl.is_empty().then(|| path.clone()), ip: ip.map(|r| r.to_string()),
            start: start.map(|s| NOW + s), expires: NOW + exp, id, data, salt: salt.clone(), escape,
        };
        let Ok(token) = edgeauth::sign("00112233445566778899aabbccddeeff", algorithm, &request) else { return Ok(()) };
        let mut scheme = EdgeAuthScheme::new("00112233445566778899aabbccddeeff", algorithm).unwrap();
        scheme.salt = salt;
        scheme.leeway = leeway;
        let gate = gate_with(policy, Box::new(scheme));
        let decision = run(&gate, SchemeKind::EdgeAuth, &token, &ctx, NOW, &stores);
        assert_sound(&decision, &ctx)?;
        session_check(&gate, &decision, &ctx, NOW, &stores)?;
    }

    #[test]
    fn signed_secure_links_with_random_fields(expression in prop::sample::select(vec![
                                                  "$secure_link_expires$uri$remote_addr $key", "$uri$key", "${secure_link_expires}:${uri}:${key}",
                                                  "$key$remote_addr", "x$secure_link_expires$key"]),
                                              client in ip(), expires in prop_oneof![4 => 60i64..3_600, 1 => -60i64..60], leeway in 0u32..60,
                                              policy in policy(), mut ctx in context(), stores in stores()) {
        ctx.peer_ip = Some(client);
        let mut scheme = SecureLinkScheme::new("link secret", expression).unwrap();
        scheme.leeway = leeway;
        let path = normalize_path(&ctx.path).unwrap_or_default();
        let client_ip = streamgate_core::policy::ip::client_ip(ctx.peer_ip, ctx.forwarded_for.as_deref(), &policy.trusted_proxies);
        let with_expiry = expression.contains("expires");
        let Ok(md5) = scheme.sign(&path, client_ip, with_expiry.then_some(NOW + expires)) else { return Ok(()) };
        let credential = if with_expiry { format!("{md5},{}", NOW + expires) } else { md5 };
        let gate = gate_with(policy, Box::new(scheme));
        let decision = run(&gate, SchemeKind::SecureLink, &credential, &ctx, NOW, &stores);
        assert_sound(&decision, &ctx)?;
        session_check(&gate, &decision, &ctx, NOW, &stores)?;
    }

    #[test]
    fn session_credentials_over_random_grants(grant in entry_grant(), options in session_options(),
                                              elapsed in prop_oneof![4 => -10i64..60, 1 => -10i64..2_000], policy in policy(), ctx in context(), stores in stores()) {
        let scheme = SessionScheme::new(SESSION_SECRET, options).unwrap();
        let manifest = normalize_path(&ctx.path).unwrap_or_else(|_| "/live/x.m3u8".into());
        let client = streamgate_core::policy::ip::client_ip(ctx.peer_ip, ctx.forwarded_for.as_deref(), &policy.trusted_proxies);
        let Ok(credential) = scheme.issue(&grant, "sid", &manifest, client, NOW, None) else { return Ok(()) };
        let gate = Gate::new(policy).with_scheme(Box::new(scheme));
        let decision = run(&gate, SchemeKind::Session, &credential, &ctx, NOW + elapsed, &stores);
        assert_sound(&decision, &ctx)?;
        if let Some(renewable) = decision.grant().and_then(|g| streamgate_core::schemes::session::lift_expiry_for_renewal(g, NOW + elapsed)) {
            prop_assert_eq!(renewable.validity.expires_at, None);
        }
    }

    #[test]
    fn credential_finding_on_random_queries_cookies_and_paths(
        pairs in prop::collection::vec((prop_oneof![
            prop::sample::select(vec!["token", "sgs", "wmsAuthSign", "hdnts", "__token__", "md5", "expires", "_HLS_msn", "tok%65n", "TOKEN", " token", "token\t"]).prop_map(str::to_owned),
            "[a-z_%0-9]{0,6}", any::<String>()], prop_oneof!["[A-Za-z0-9._~=%+-]{0,16}", any::<String>()], any::<bool>()), 0..6),
        separator in prop::sample::select(vec!["&", "; ", ";"]),
        path in path(),
        prefix in prop::sample::select(vec!["", "https://gate.example.com", "http://h:8080", "//h", "x:"]),
        fragment in prop::option::of(any::<String>()),
    ) {
        // Queries and Cookie headers (`a=1; b=2`) alike: the core has no cookie parser, and
        // a Cookie header handed to the query helpers must not panic either.
        let query: Vec<String> = pairs.iter().map(|(k, v, has_value)| if *has_value { format!("{k}={v}") } else { k.clone() }).collect();
        let query = query.join(separator);
        let url = format!("{prefix}{path}?{query}{}", fragment.map(|f| format!("#{f}")).unwrap_or_default());
        let (split_path, split_query) = split_url(&url);
        prop_assert!(!split_path.is_empty());
        let stripped = strip_credentials(split_query);
        prop_assert_eq!(find_in_query(&stripped), None, "{:?} stripped to {:?}", split_query, stripped);
        let _ = detect_scheme(&query);
        let _ = streamgate_core::unverified::inspect(&url);
        if let Some(found) = find_in_query(split_query) {
            let _ = detect_scheme(&found.value);
            if !found.value.contains(['&', '#', '?']) && !found.value.contains("://") {
                let resigned = signed_url(&format!("{split_path}?{stripped}"), &found);
                let refound = find_in_query(split_url(&resigned).1).map(|c| c.kind);
                prop_assert_eq!(refound, Some(found.kind), "{}", resigned);
            }
        }
        // A path-relative URL keeps its own path, whatever its query holds.
        if !path.contains(['?', '#']) && path.starts_with('/') && !path.starts_with("//") {
            let relative = format!("{path}?{query}");
            prop_assert_eq!(split_url(&relative).0, path.as_str());
        }
    }
}

proptest! {
    // RSA key generation and signing are slow: a few cases.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[cfg(feature = "public-key")]
    #[test]
    fn signed_rs256_jwts_with_random_claims(claims in claims(), policy in policy(), ctx in context(), now in -60i64..60, stores in stores()) {
        check_jwt(3, &claims, policy, &ctx, NOW + now, &stores)?;
    }
}

#[test]
fn every_credential_kind_is_covered() {
    // The properties above sign every scheme the gate accepts.
    let covered =
        [SchemeKind::Jwt, SchemeKind::WmsAuth, SchemeKind::EdgeAuth, SchemeKind::SecureLink, SchemeKind::Session];
    assert!(SchemeKind::ALL.iter().all(|k| covered.contains(k)));
    let _ = Credential { kind: SchemeKind::Jwt, value: String::new() };
}
