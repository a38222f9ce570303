//! The policy engine: given a verified [`Grant`] and the request's facts, allow or deny.
//!
//! Checks run in a fixed order and the first failure decides: validity window,
//! revocation, IP block list, purpose, stream scope, IP binding, Referer, User-Agent,
//! access rules (operator's, then the token's), and last the session limit, so that a
//! denied request never occupies a session slot.

pub mod ip;
pub mod path;
pub mod pattern;

use std::net::IpAddr;

use serde::Deserialize;

use crate::claims::{AccessRule, Purpose, RuleAction, RuleMatcher};
use crate::denial::Denial;
use crate::grant::Grant;
use crate::revocation::{IpBlocklist, RevocationList};
use crate::sessions::{Admission, SessionLimiter, SessionRequest};
use ip::{any_contains, IpRange};
use pattern::{host_matches, referrer_host, referrer_host_as_written, wildcard_match};

/// The facts of one request, as the adapter saw them. All optional but `path`.
/// From JSON (see [`crate::config`]), members are camelCase and `peer_ip` is `ip`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RequestContext {
    /// The request path as received (may be percent-encoded; normalized by the engine).
    pub path: String,
    /// The direct peer's address (socket, or `CF-Connecting-IP`).
    #[serde(rename = "ip")]
    pub peer_ip: Option<IpAddr>,
    /// `X-Forwarded-For`, believed only from trusted proxies.
    pub forwarded_for: Option<String>,
    /// `Referer` header.
    pub referer: Option<String>,
    /// `User-Agent` header; missing is treated as empty.
    pub user_agent: Option<String>,
    /// Two-letter country of the client.
    pub country: Option<String>,
    /// Autonomous system number of the client.
    pub asn: Option<u32>,
    /// What the request does, when the adapter does not pass `method`.
    pub purpose: Purpose,
    /// The HTTP method as received. When present it decides the purpose (GET and HEAD
    /// play, POST and PUT publish) and every other method is refused.
    pub method: Option<String>,
    /// Player session id (for reconnects), when the adapter knows one.
    pub session_id: Option<String>,
    /// Whether this request starts or refreshes a session (a manifest fetch).
    pub starts_session: bool,
}

impl RequestContext {
    /// What the request does: from `method` when present, else `purpose`.
    pub fn request_purpose(&self) -> Result<Purpose, Denial> {
        match &self.method {
            Some(method) => purpose_of_method(method),
            None => Ok(self.purpose),
        }
    }
}

/// What the engine derives from a [`RequestContext`] before any check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    /// The normalized path (see [`path::normalize_path`]).
    pub path: String,
    /// The client IP, `X-Forwarded-For` applied where the peer is trusted.
    pub client_ip: Option<IpAddr>,
}

/// Referer rules set by the operator (Wrench-style lists).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ReferrerRules {
    /// Hosts allowed; empty means any host.
    pub allow: Vec<String>,
    /// Hosts denied, checked first.
    pub deny: Vec<String>,
    /// Whether a request without Referer passes (native players and privacy settings
    /// send none, so the default is yes).
    pub allow_missing: bool,
}

impl Default for ReferrerRules {
    fn default() -> Self {
        ReferrerRules { allow: Vec::new(), deny: Vec::new(), allow_missing: true }
    }
}

/// User-Agent rules set by the operator: `*` wildcards, case-insensitive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct UserAgentRules {
    /// Patterns allowed; empty means any.
    pub allow: Vec<String>,
    /// Patterns denied, checked first.
    pub deny: Vec<String>,
}

/// Operator policy: what applies to every credential, whatever the scheme.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Policy {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpRange>,
    /// Client ranges exempt from IP binding (office networks, monitoring).
    pub ip_bypass: Vec<IpRange>,
    /// Widen single-address IPv4 bindings to this prefix (e.g. 24) for mobile hand-offs.
    pub ipv4_binding_prefix: Option<u8>,
    /// Widen single-address IPv6 bindings to this prefix (e.g. 64).
    pub ipv6_binding_prefix: Option<u8>,
    /// Referer rules.
    pub referrers: ReferrerRules,
    /// User-Agent rules.
    pub user_agents: UserAgentRules,
    /// Ordered IP/country rules evaluated before the token's own.
    pub access_rules: Vec<AccessRule>,
    /// Session limit for tokens that set none; `None` means unlimited.
    pub default_max_sessions: Option<u32>,
    /// Streams (globs, as in the `streams` claim) served to GET and HEAD without a
    /// credential: posters, thumbnails, subtitles. The IP block list still applies. A glob
    /// whose first segment is a wildcard would open every stream and is refused.
    pub public_paths: Vec<String>,
}

/// What a request with HTTP `method` does: GET and HEAD play, POST and PUT publish. Every
/// other method is refused, never forwarded. A CORS preflight never gets here: the gate
/// answers it itself in proxy mode, and forward-auth lets it through to the origin after
/// the block lists (the proxy, not the gate, serves it).
pub fn purpose_of_method(method: &str) -> Result<Purpose, Denial> {
    match method {
        "GET" | "HEAD" => Ok(Purpose::Play),
        "POST" | "PUT" => Ok(Purpose::Publish),
        other => Err(Denial::MethodNotAllowed { method: other.chars().take(32).collect() }),
    }
}

/// Parses a comma-separated list of public stream globs (see [`Policy::public_paths`]).
pub fn parse_public_paths(list: &str) -> Result<Vec<String>, String> {
    let globs = list.split(',').map(|g| g.trim().trim_matches('/')).filter(|g| !g.is_empty());
    globs.map(|glob| check_public_path(glob).map(|()| glob.to_owned())).collect()
}

/// Refuses a public glob that would open every stream.
pub fn check_public_path(glob: &str) -> Result<(), String> {
    match glob.trim_matches('/').split('/').next() {
        Some(first) if !first.is_empty() && !first.contains('*') => Ok(()),
        _ => Err(format!("public path {glob:?} starts with a wildcard and would open every stream")),
    }
}

/// The state the engine consults: revocations, the IP block list and session counting.
/// Adapters implement these over KV, Durable Objects or memory.
pub struct Hooks<'a> {
    /// Revoked token ids.
    pub revocations: &'a dyn RevocationList,
    /// Blocked client ranges.
    pub blocklist: &'a dyn IpBlocklist,
    /// Session counting; `None` when the caller does not count sessions.
    pub sessions: Option<&'a mut dyn SessionLimiter>,
}

impl Policy {
    /// Applies every check to `grant` for the request `ctx` at `now`. `facts` holds what
    /// was derived from `ctx` once: the normalized path and the resolved client IP.
    pub fn evaluate(
        &self,
        grant: &Grant,
        ctx: &RequestContext,
        facts: &RequestFacts,
        now: i64,
        hooks: &mut Hooks<'_>,
    ) -> Result<(), Denial> {
        let client = facts.client_ip;
        let normalized_path = facts.path.as_str();
        check_validity(grant, now)?;
        if !hooks.revocations.is_empty() {
            // The fingerprint costs a hash: only when there is a list to look it up in.
            for id in grant.revocation_ids() {
                if hooks.revocations.is_revoked(&id, now) {
                    return Err(Denial::Revoked { token_id: id });
                }
            }
        }
        check_blocklist(client, hooks.blocklist, now)?;
        let purpose = ctx.request_purpose()?;
        if grant.purpose != purpose {
            return Err(Denial::PurposeMismatch { token: grant.purpose, request: purpose });
        }
        if !grant.scope.covers(normalized_path) {
            return Err(Denial::ScopeMismatch { path: normalized_path.to_owned(), scope: grant.scope.to_string() });
        }
        self.check_ip_binding(grant, client)?;
        self.check_referrer(grant, ctx.referer.as_deref())?;
        self.check_user_agent(grant, ctx.user_agent.as_deref().unwrap_or(""))?;
        check_access_rules(&self.access_rules, client, ctx.country.as_deref(), "operator")?;
        check_access_rules(&grant.access_rules, client, ctx.country.as_deref(), "token")?;
        self.check_sessions(grant, ctx, now, hooks)
    }

    /// Whether [`Policy::evaluate`] reads the request's country for `grant`: whenever an
    /// access rule applies, the operator's or the token's (a country rule matches on it, and
    /// a block names it).
    pub fn reads_country(&self, grant: &Grant) -> bool {
        !self.access_rules.is_empty() || !grant.access_rules.is_empty()
    }

    /// The request's facts when it may pass without a credential: a GET or HEAD whose
    /// normalized path is one of the public paths. `None` for everything else (which then
    /// needs a credential); the IP block list is the caller's to apply.
    pub fn public(&self, ctx: &RequestContext) -> Option<RequestFacts> {
        if self.public_paths.is_empty() || ctx.request_purpose() != Ok(Purpose::Play) {
            return None;
        }
        let facts = self.resolve(ctx).ok()?;
        self.public_paths.iter().any(|glob| path::stream_in_scope(glob, &facts.path)).then_some(facts)
    }

    /// Derives the normalized path and the client IP (after the trusted-proxy rules).
    pub fn resolve(&self, ctx: &RequestContext) -> Result<RequestFacts, Denial> {
        ctx.request_purpose()?;
        Ok(RequestFacts {
            path: path::normalize_path(&ctx.path)?,
            client_ip: ip::client_ip(ctx.peer_ip, ctx.forwarded_for.as_deref(), &self.trusted_proxies),
        })
    }

    fn check_ip_binding(&self, grant: &Grant, client: Option<IpAddr>) -> Result<(), Denial> {
        let token = grant.ip_binding.map(|b| b.widened(self.ipv4_binding_prefix, self.ipv6_binding_prefix));
        for binding in token.into_iter().chain(grant.network_binding) {
            match client {
                Some(ip) if binding.contains(ip) || any_contains(&self.ip_bypass, ip) => {}
                _ => return Err(Denial::IpMismatch { client, expected: binding.to_string() }),
            }
        }
        Ok(())
    }

    fn check_referrer(&self, grant: &Grant, referer: Option<&str>) -> Result<(), Denial> {
        let rules = &self.referrers;
        let present = referer.map(str::trim).filter(|r| !r.is_empty());
        let Some(raw) = present else {
            let allowed =
                rules.allow_missing && (grant.referrers.is_empty() || grant.allow_no_referrer.unwrap_or(false));
            return if allowed {
                Ok(())
            } else {
                Err(Denial::ReferrerDenied { referrer: None, why: "a Referer is required" })
            };
        };
        let Some(written) = referrer_host_as_written(raw) else {
            return Err(Denial::ReferrerDenied {
                referrer: Some(raw.to_owned()),
                why: "Referer is not a URL with a host",
            });
        };
        if rules.deny.is_empty() && rules.allow.is_empty() && grant.referrers.is_empty() {
            return Ok(());
        }
        let host = written.to_ascii_lowercase();
        let denied = |why| Err(Denial::ReferrerDenied { referrer: Some(host.clone()), why });
        if rules.deny.iter().any(|p| host_matches(p, &host)) {
            return denied("host is on the deny list");
        }
        if !rules.allow.is_empty() && !rules.allow.iter().any(|p| host_matches(p, &host)) {
            return denied("host is not on the operator's allow list");
        }
        if !grant.referrers.is_empty() && !grant.referrers.iter().any(|p| host_matches(p, &host)) {
            return denied("host is not among the token's referrers");
        }
        Ok(())
    }

    fn check_user_agent(&self, grant: &Grant, user_agent: &str) -> Result<(), Denial> {
        let rules = &self.user_agents;
        let matches = |patterns: &[String]| patterns.iter().any(|p| wildcard_match(p, user_agent, true));
        let why = if matches(&rules.deny) {
            "matches a denied pattern"
        } else if !rules.allow.is_empty() && !matches(&rules.allow) {
            "matches no allowed pattern"
        } else if !grant.user_agents.is_empty() && !matches(&grant.user_agents) {
            "matches none of the token's patterns"
        } else {
            return Ok(());
        };
        Err(Denial::UserAgentDenied { user_agent: user_agent.to_owned(), why })
    }

    fn check_sessions(
        &self,
        grant: &Grant,
        ctx: &RequestContext,
        now: i64,
        hooks: &mut Hooks<'_>,
    ) -> Result<(), Denial> {
        let limit = grant.max_sessions.or(self.default_max_sessions);
        let (Some(limit), true, Some(sessions)) = (limit, ctx.starts_session, hooks.sessions.as_deref_mut()) else {
            return Ok(());
        };
        let request = SessionRequest { key: &grant.session_key(), session_id: ctx.session_id.as_deref(), limit };
        match sessions.admit(&request, now) {
            Admission::Admitted => Ok(()),
            Admission::Full { limit, active } => Err(Denial::TooManySessions { limit, active }),
        }
    }
}

/// The IP block list: a blocked client is refused, and so is an unknown one while the list
/// holds anything (it cannot be shown not to be blocked). Public paths use it too.
pub fn check_blocklist(client: Option<IpAddr>, blocklist: &dyn IpBlocklist, now: i64) -> Result<(), Denial> {
    match client {
        Some(ip) if blocklist.is_blocked(ip, now) => Err(Denial::IpBlocked { ip }),
        None if !blocklist.is_empty() => {
            Err(Denial::IpMismatch { client: None, expected: "a known client IP (IPs are blocked)".into() })
        }
        _ => Ok(()),
    }
}

/// A host for the referrer block list, normalized (lower case, no trailing dot): a DNS
/// name, or `*.` and a DNS name for every subdomain. Anything else (a URL, a path, a bare
/// `*`) is refused, so a block never matches more or less than the operator meant.
pub fn blocked_referrer_host(text: &str) -> Result<String, String> {
    let host = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    if host.len() > 253 || !is_host_name(name) {
        return Err(format!("{text:?} is not a host name (example.com, or *.example.com for its subdomains)"));
    }
    Ok(host)
}

/// Whether `host` (lower case, no trailing dot) is a DNS name of two labels or more, or
/// `localhost`: what a referrer block may name, without a wildcard.
pub fn is_host_name(host: &str) -> bool {
    let label_ok =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    host.len() <= 253 && (host.contains('.') || host == "localhost") && host.split('.').all(label_ok)
}

/// The operator's referrer block list (hosts or `*.` wildcards blocked at run time, e.g.
/// from the Guardian view): a request whose Referer host matches one is refused. Public
/// paths use it too. A request without Referer is not affected.
pub fn check_referrer_blocklist(referer: Option<&str>, blocked: &[String]) -> Result<(), Denial> {
    if blocked.is_empty() {
        return Ok(());
    }
    let Some(host) = referer.map(str::trim).filter(|r| !r.is_empty()).and_then(referrer_host) else {
        return Ok(());
    };
    if blocked.iter().any(|pattern| host_matches(pattern, &host)) {
        return Err(Denial::ReferrerDenied { referrer: Some(host), why: "host is on the referrer block list" });
    }
    Ok(())
}

fn check_validity(grant: &Grant, now: i64) -> Result<(), Denial> {
    let v = grant.validity;
    let leeway = i64::from(v.leeway);
    if let Some(exp) = v.expires_at {
        if now >= exp.saturating_add(leeway) {
            return Err(Denial::Expired { expires_at: exp, now, leeway: v.leeway });
        }
    }
    if let Some(nbf) = v.not_before {
        if now < nbf.saturating_sub(leeway) {
            return Err(Denial::NotYetValid { not_before: nbf, now, leeway: v.leeway });
        }
    }
    Ok(())
}

/// Evaluates ordered rules: the first that matches decides; none matching allows.
/// A block by a catch-all rule is reported as `ip_mismatch` when every earlier allow rule
/// was an IP rule (the request was outside the allowed ranges), else as `geo_denied`.
fn check_access_rules(
    rules: &[AccessRule],
    client: Option<IpAddr>,
    country: Option<&str>,
    owner: &str,
) -> Result<(), Denial> {
    if rules.is_empty() {
        return Ok(());
    }
    let country_code = country.and_then(|c| crate::claims::CountryCode::parse(c).ok());
    let mut only_ip_allows = true;
    let mut any_allow = false;
    for (index, rule) in rules.iter().enumerate() {
        let matched = match (&rule.matcher, client) {
            (RuleMatcher::Ip { ip }, Some(c)) => any_contains(ip, c),
            // An unknown client cannot be shown to be outside a blocked range: fail closed.
            (RuleMatcher::Ip { .. }, None) => rule.action == RuleAction::Block,
            (RuleMatcher::Country { country: list }, _) => country_code.as_ref().is_some_and(|c| list.contains(c)),
            (RuleMatcher::Any, _) => true,
        };
        if rule.action == RuleAction::Allow {
            any_allow = true;
            only_ip_allows &= matches!(rule.matcher, RuleMatcher::Ip { .. });
        }
        if !matched {
            continue;
        }
        if rule.action == RuleAction::Allow {
            return Ok(());
        }
        let described = format!("{owner} access rule #{} ({})", index + 1, describe(&rule.matcher));
        let ip_reason = matches!(rule.matcher, RuleMatcher::Ip { .. })
            || (matches!(rule.matcher, RuleMatcher::Any) && any_allow && only_ip_allows);
        return Err(if ip_reason {
            Denial::IpMismatch { client, expected: described }
        } else {
            Denial::GeoDenied { country: country.map(str::to_owned), rule: described }
        });
    }
    Ok(())
}

fn describe(matcher: &RuleMatcher) -> String {
    match matcher {
        RuleMatcher::Ip { ip } => {
            let list: Vec<String> = ip.iter().map(ToString::to_string).collect();
            format!("block ip {}", list.join(","))
        }
        RuleMatcher::Country { country } => {
            let list: Vec<&str> = country.iter().map(|c| c.as_str()).collect();
            format!("block country {}", list.join(","))
        }
        RuleMatcher::Any => "block any".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_referrer_hosts_are_host_names_only() {
        assert_eq!(blocked_referrer_host(" Pirate.Example. ").unwrap(), "pirate.example");
        assert_eq!(blocked_referrer_host("*.leech.test").unwrap(), "*.leech.test");
        for bad in ["*", "*.", "https://pirate.example/", "pirate.example/x", "com", "a..b", "", "*.*.x.y", "a b.c"] {
            assert!(blocked_referrer_host(bad).is_err(), "{bad}");
        }
        assert!(blocked_referrer_host(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn the_referrer_block_list_refuses_matching_hosts_only() {
        let blocked = vec!["pirate.example".to_owned(), "*.leech.test".to_owned()];
        let reason = |r: Option<&str>| check_referrer_blocklist(r, &blocked).err().map(|d| d.reason());
        assert_eq!(reason(Some("https://pirate.example/watch")), Some(crate::ReasonCode::ReferrerDenied));
        assert_eq!(reason(Some("https://PIRATE.example.:8443/")), Some(crate::ReasonCode::ReferrerDenied));
        assert_eq!(reason(Some("https://a.b.leech.test/")), Some(crate::ReasonCode::ReferrerDenied));
        assert_eq!(reason(Some("https://leech.test/")), None, "a wildcard needs a subdomain");
        assert_eq!(reason(Some("https://pirate.example.com/")), None);
        assert_eq!(reason(None), None);
        assert_eq!(reason(Some("not a url")), None);
    }

    #[test]
    fn public_paths_are_trimmed_globs_that_never_open_everything() {
        assert_eq!(parse_public_paths(" posters/ , /thumbs/*.jpg,,").unwrap(), ["posters", "thumbs/*.jpg"]);
        assert!(parse_public_paths("").unwrap().is_empty());
        for wide in ["**", "*", "*/posters", "posters,**/x", "p*/x"] {
            assert!(parse_public_paths(wide).unwrap_err().contains("would open every stream"), "{wide}");
        }
    }
}
