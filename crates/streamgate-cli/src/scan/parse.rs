//! One line in, one usage event out: JSON Lines `UsageEvent`s and nginx/Apache combined logs.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use streamgate_core::detection::{EventView, NetworkClass, NetworkTable};
use streamgate_core::schemes::{find_in_query, jwt, split_url, SchemeKind};
use streamgate_core::unverified;

/// A `UsageEvent` line, borrowing its text from the input buffer where it has no escapes:
/// the general path behind [`super::fastjson`], with serde_json's exact semantics.
/// serde_json rather than simd-json or sonic-rs: it is already a dependency, needs no
/// mutable buffer or SIMD-specific build, and only sees the lines the fast path declines.
#[derive(Deserialize)]
pub struct RawEvent<'a> {
    at: i64,
    #[serde(borrow, default)]
    token: Cow<'a, str>,
    #[serde(borrow)]
    sid: Cow<'a, str>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(borrow, default)]
    as_organization: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    referer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(default)]
    bytes: Option<u64>,
    #[serde(borrow, default)]
    sub: Option<Cow<'a, str>>,
    #[serde(default)]
    max_sessions: Option<u32>,
}

impl RawEvent<'_> {
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

pub fn json_line(line: &[u8]) -> Option<RawEvent<'_>> {
    serde_json::from_slice(line).ok()
}

/// What names a token, read from its credential without verifying it.
#[derive(Clone)]
pub struct TokenName {
    pub token: String,
    pub sub: Option<String>,
    pub max_sessions: Option<u32>,
}

/// Credential text → its name, so each distinct credential is decoded once per worker;
/// and client IP → whether it is a privacy relay or VPN egress.
pub struct Names<'t> {
    names: HashMap<String, Option<TokenName>>,
    relays: HashMap<String, bool>,
    table: &'t NetworkTable,
}

impl<'t> Names<'t> {
    pub fn new(table: &'t NetworkTable) -> Names<'t> {
        Names { names: HashMap::new(), relays: HashMap::new(), table }
    }

    /// Relay egress changes mid-playback: its addresses count as one client.
    fn is_relay(&mut self, ip: &str) -> bool {
        if let Some(&relay) = self.relays.get(ip) {
            return relay;
        }
        let class = self.table.classify(None, None, Some(ip));
        let relay = matches!(class, Some(NetworkClass::PrivacyRelay | NetworkClass::Vpn));
        self.relays.insert(ip.to_owned(), relay);
        relay
    }

    fn name(&mut self, kind: SchemeKind, value: &str, path: &str, query: &str) -> Option<TokenName> {
        // EdgeAuth URL tokens are named with their path; other credentials by their text.
        let key = if kind == SchemeKind::EdgeAuth { format!("{path}?{value}") } else { value.to_owned() };
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name = if kind == SchemeKind::Jwt {
            jwt::decode_unverified(value).ok().and_then(|decoded| {
                let text = |field: &str| decoded.claims.get(field).and_then(Value::as_str).map(str::to_owned);
                let max_sessions =
                    decoded.claims.get("max_sessions").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
                let identity = unverified::identity(value).ok();
                let token = text("jti").or_else(|| identity.map(|i| i.fingerprint))?;
                Some(TokenName { token, sub: text("sub"), max_sessions })
            })
        } else {
            unverified::identity(&format!("{path}?{query}")).ok().map(|identity| TokenName {
                token: identity.token_id.unwrap_or(identity.fingerprint),
                sub: identity.subject,
                max_sessions: None,
            })
        };
        self.names.insert(key, name.clone());
        name
    }
}

/// A combined-log line's fields.
pub struct LogLine<'a> {
    pub at: i64,
    pub ip: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub bytes: Option<u64>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// `%h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`; `None` when it is not one.
pub fn combined_line<'a>(line: &'a str) -> Option<LogLine<'a>> {
    let (ip, rest) = line.split_once(' ')?;
    let rest = rest.get(rest.find('[')? + 1..)?;
    let (time, rest) = rest.split_once(']')?;
    let at = parse_clf_time(time)?;
    let (request, rest) = quoted(rest.trim_start())?;
    let mut words = request.split(' ');
    let _method = words.next()?;
    let target = words.next()?;
    let mut fields = rest.trim_start().splitn(3, ' ');
    let _status: u16 = fields.next()?.parse().ok()?;
    let bytes = fields.next()?.parse().ok();
    let rest = fields.next().unwrap_or("");
    let (referer, rest) = quoted(rest.trim_start()).unwrap_or(("-", ""));
    let (user_agent, _) = quoted(rest.trim_start()).unwrap_or(("-", ""));
    let (path, query) = split_url(target);
    let dash = |s: &'a str| -> Option<&'a str> { (s != "-" && !s.is_empty()).then_some(s) };
    Some(LogLine { at, ip, path, query, bytes, referer: dash(referer), user_agent: dash(user_agent) })
}

/// A `"…"` string at the start (with `\"` escapes left in), and what follows.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b'"') => return Some((body.get(..i)?, body.get(i + 1..)?)),
            _ => i += 1,
        }
    }
    None
}

/// `10/Oct/2000:13:55:36 -0700` → unix seconds.
fn parse_clf_time(text: &str) -> Option<i64> {
    let (stamp, zone) = text.split_once(' ').unwrap_or((text, "+0000"));
    let mut parts = stamp.split([':', '/']);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let second: i64 = parts.next()?.parse().ok()?;
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zone_hours: i64 = zone.get(1..3)?.parse().ok()?;
    let zone_minutes: i64 = zone.get(3..5)?.parse().ok()?;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - sign * (zone_hours * 3600 + zone_minutes * 60))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A combined-log line as a usage event: token from the credential in the query, session =
/// client IP + User-Agent (+ the token) within the idle gap, with every privacy-relay or
/// VPN address as one client; stream = the path's directory.
pub struct LogEvent<'a> {
    pub line: LogLine<'a>,
    pub name: TokenName,
    pub sid: String,
}

impl LogEvent<'_> {
    pub fn view(&self) -> EventView<'_> {
        let stream = self.line.path.rsplit_once('/').map_or(self.line.path, |(dir, _)| dir);
        EventView {
            at: self.line.at,
            token: &self.name.token,
            sid: &self.sid,
            ip: Some(self.line.ip),
            referer: self.line.referer,
            user_agent: self.line.user_agent,
            stream: Some(if stream.is_empty() { "/" } else { stream }),
            bytes: self.line.bytes,
            sub: self.name.sub.as_deref(),
            max_sessions: self.name.max_sessions,
            ..EventView::default()
        }
    }
}

/// What became of a log line.
pub enum LogOutcome<'a> {
    Event(Box<LogEvent<'a>>),
    /// A well-formed request without a credential (or with a session credential).
    NoToken,
    Malformed,
}

pub fn log_event<'a>(line: &'a str, names: &mut Names<'_>) -> LogOutcome<'a> {
    let Some(line) = combined_line(line) else { return LogOutcome::Malformed };
    let Some(credential) = find_in_query(line.query) else { return LogOutcome::NoToken };
    if credential.kind == SchemeKind::Session {
        return LogOutcome::NoToken;
    }
    let Some(name) = names.name(credential.kind, &credential.value, line.path, line.query) else {
        return LogOutcome::NoToken;
    };
    let client = if names.is_relay(line.ip) { "relay" } else { line.ip };
    let sid = format!("{client}|{}", line.user_agent.unwrap_or(""));
    LogOutcome::Event(Box::new(LogEvent { line, name, sid }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_lines() {
        let line = r#"203.0.113.9 - - [01/Jan/2026:00:00:10 +0100] "GET /live/a/seg1.ts?token=x.y.z HTTP/1.1" 200 5120 "https://www.example.com/" "Mozilla/5.0 \"quoted\"""#;
        let parsed = combined_line(line).unwrap();
        assert_eq!(parsed.at, 1_767_225_610 - 3600);
        assert_eq!((parsed.ip, parsed.path, parsed.query), ("203.0.113.9", "/live/a/seg1.ts", "token=x.y.z"));
        assert_eq!(parsed.bytes, Some(5120));
        assert_eq!(parsed.referer, Some("https://www.example.com/"));
        assert_eq!(parsed.user_agent, Some(r#"Mozilla/5.0 \"quoted\""#));
        assert!(combined_line("garbage").is_none());
        assert!(combined_line(r#"1.2.3.4 - - [99/Foo/2026:00:00:10 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#).is_none());
    }
}
