//! Revocation and IP block lists: the traits the policy engine asks, in-memory stores, and
//! the pure part of the admin requests that change them (what a revocation names, which
//! ranges may be blocked), so every adapter applies the same rules.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{de, Deserialize, Deserializer};
use serde_json::Value;

use crate::denial::Error;
use crate::grant::session_key;
use crate::policy::ip::IpRange;
use crate::unverified;

/// Answers whether a token id (a `jti`, an EdgeAuth `id`, or a credential fingerprint)
/// is revoked at `now`.
pub trait RevocationList {
    /// Whether `token_id` is revoked.
    fn is_revoked(&self, token_id: &str, now: i64) -> bool;

    /// Whether the list is known to hold nothing, so lookups (and hashing the credential
    /// for its fingerprint) can be skipped. Stores that cannot tell cheaply say `false`.
    fn is_empty(&self) -> bool {
        false
    }
}

/// Answers whether a client IP is blocked at `now`.
pub trait IpBlocklist {
    /// Whether `ip` is blocked.
    fn is_blocked(&self, ip: IpAddr, now: i64) -> bool;

    /// Whether the list is known to hold nothing. A request whose client IP is unknown is
    /// refused while the list holds anything (it cannot be shown not to be blocked); stores
    /// that cannot tell cheaply say `false`.
    fn is_empty(&self) -> bool {
        false
    }
}

/// The block lists an adapter reads for a request: client IP ranges, as the lookup the
/// policy engine asks, and referrer hosts.
#[derive(Clone, Debug, Default)]
pub struct Blocks {
    /// Blocked client ranges.
    pub lookup: MemoryBlocklist,
    /// Blocked referrer hosts.
    pub referrers: Vec<String>,
}

/// Whether an entry ending at `until` (unix seconds; `None`: never) is in force at `now`.
pub fn in_force(until: Option<i64>, now: i64) -> bool {
    until.is_none_or(|end| now < end)
}

/// Revocations held in memory, each with an optional end (unix seconds).
#[derive(Clone, Debug, Default)]
pub struct MemoryRevocations {
    entries: HashMap<String, Option<i64>>,
}

impl MemoryRevocations {
    /// Revokes `token_id` until `until` (forever when `None`).
    pub fn revoke(&mut self, token_id: impl Into<String>, until: Option<i64>) {
        self.entries.insert(token_id.into(), until);
    }

    /// Lifts a revocation; returns whether there was one.
    pub fn unrevoke(&mut self, token_id: &str) -> bool {
        self.entries.remove(token_id).is_some()
    }
}

impl RevocationList for MemoryRevocations {
    fn is_revoked(&self, token_id: &str, now: i64) -> bool {
        self.entries.get(token_id).is_some_and(|until| in_force(*until, now))
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Blocked ranges held in memory, each with an optional end (unix seconds).
#[derive(Clone, Debug, Default)]
pub struct MemoryBlocklist {
    entries: Vec<(IpRange, Option<i64>)>,
}

impl MemoryBlocklist {
    /// Blocks `range` until `until` (forever when `None`).
    pub fn block(&mut self, range: IpRange, until: Option<i64>) {
        self.entries.retain(|(r, _)| *r != range);
        self.entries.push((range, until));
    }

    /// Unblocks exactly `range`; returns whether it was blocked.
    pub fn unblock(&mut self, range: &IpRange) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(r, _)| r != range);
        before != self.entries.len()
    }

    /// The narrowest live entry that blocks `ip`: what to lift to unblock it (a wider
    /// entry may still block it after).
    pub fn blocked_by(&self, ip: IpAddr, now: i64) -> Option<&IpRange> {
        self.entries
            .iter()
            .filter(|(range, until)| range.contains(ip) && in_force(*until, now))
            .map(|(range, _)| range)
            .max_by_key(|range| range.prefix_len())
    }
}

/// Why an unblock of `range` lifted nothing, naming the wider entry that blocks it, if any
/// (every gate answers it with 404 and logs nothing).
pub fn nothing_to_unblock(range: &IpRange, blocks: &MemoryBlocklist, now: i64) -> String {
    nothing_lifted(range, blocks.blocked_by(range.first_address(), now))
}

/// The message of an unblock of `named` that lifted nothing, naming what blocks it instead.
fn nothing_lifted(named: impl std::fmt::Display, blocked_by: Option<impl std::fmt::Display>) -> String {
    match blocked_by {
        Some(other) => format!("{named} has no block of its own; {other} blocks it: unblock that"),
        None => format!("{named} is not blocked"),
    }
}

/// The referrer block (a host or a `*.` wildcard) of `blocked` that refuses `host`, if
/// any: its own block first, else the narrowest (longest) wildcard, as the IP list names
/// the narrowest range, so that an unblock lifts no more than it must.
pub fn referrer_blocked_by<'b>(host: &str, blocked: &'b [String]) -> Option<&'b str> {
    let matching = blocked.iter().filter(|pattern| crate::policy::pattern::host_matches(pattern, host));
    matching.max_by_key(|pattern| (!pattern.starts_with("*."), pattern.len())).map(String::as_str)
}

/// Why an unblock of referrer `host` lifted nothing, naming the block that refuses it, if any.
pub fn nothing_to_unblock_referrer(host: &str, blocked: &[String]) -> String {
    nothing_lifted(host, referrer_blocked_by(host, blocked))
}

impl FromIterator<(IpRange, Option<i64>)> for MemoryBlocklist {
    /// Builds a list in one pass, keeping entries as given (no de-duplication).
    fn from_iter<I: IntoIterator<Item = (IpRange, Option<i64>)>>(entries: I) -> Self {
        Self { entries: entries.into_iter().collect() }
    }
}

impl IpBlocklist for MemoryBlocklist {
    fn is_blocked(&self, ip: IpAddr, now: i64) -> bool {
        self.entries.iter().any(|(range, until)| range.contains(ip) && in_force(*until, now))
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The body of `POST /admin/revoke` and `/admin/unrevoke`, as every adapter's admin API
/// reads it: a `jti` (with the `sub` its tokens carry, if any) or a `token`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// A token id.
    pub jti: Option<String>,
    /// The subject the token carries.
    pub sub: Option<String>,
    /// A token of any scheme, bare or in a signed URL.
    pub token: Option<String>,
    /// Seconds until the revocation lapses (at least 1); none means until lifted.
    #[serde(default, deserialize_with = "positive_seconds")]
    pub ttl: Option<u64>,
    /// Why, for the actions log (at most [`MAX_REASON_BYTES`]).
    #[serde(default, deserialize_with = "short_reason")]
    pub reason: Option<String>,
}

/// The body of `POST /admin/block` and `/admin/unblock`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// An address or CIDR.
    pub ip: String,
    /// Seconds until the block lapses (at least 1); none means until lifted.
    #[serde(default, deserialize_with = "positive_seconds")]
    pub ttl: Option<u64>,
    /// Allow a range wider than [`check_block_range`] accepts.
    #[serde(default)]
    pub force: bool,
    /// Why, for the actions log (at most [`MAX_REASON_BYTES`]).
    #[serde(default, deserialize_with = "short_reason")]
    pub reason: Option<String>,
}

/// The body of `POST /admin/referrers/block` and `/admin/referrers/unblock`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferrerRequest {
    /// A host, or a `*.` wildcard.
    pub host: String,
    /// Seconds until the block lapses (at least 1); none means until lifted.
    #[serde(default, deserialize_with = "positive_seconds")]
    pub ttl: Option<u64>,
    /// Why, for the actions log (at most [`MAX_REASON_BYTES`]).
    #[serde(default, deserialize_with = "short_reason")]
    pub reason: Option<String>,
}

/// The largest body an admin API reads, bytes.
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

/// The longest `reason` an admin request may give, bytes: it is stored with the action, and
/// an action that cannot be logged would leave a change no one can undo.
pub const MAX_REASON_BYTES: usize = 1000;

fn short_reason<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let reason = Option::<String>::deserialize(deserializer)?;
    match &reason {
        Some(text) if text.len() > MAX_REASON_BYTES => {
            Err(de::Error::custom(format!("reason is {} bytes, over the {MAX_REASON_BYTES}-byte limit", text.len())))
        }
        _ => Ok(reason),
    }
}

/// The longest `ttl` an admin request may give, seconds (ten years); none means no end.
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 86_400;

/// A `ttl` of at least one second and at most [`MAX_TTL_SECONDS`]. Zero is refused: it
/// would lift at once what it sets, and with it an earlier entry without an end
/// (`unrevoke` and `unblock` lift); a larger one failed at the edge's store, after the
/// change had begun, where `serve` took it.
fn positive_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(deserializer)? {
        Some(0) => Err(de::Error::custom("ttl must be at least 1 second (unrevoke or unblock lifts an entry)")),
        Some(ttl) if ttl > MAX_TTL_SECONDS => Err(de::Error::custom(format!(
            "ttl must be at most {MAX_TTL_SECONDS} seconds (ten years); leave it out for no end"
        ))),
        ttl => Ok(ttl),
    }
}

/// What a revoke or unrevoke request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationTarget {
    /// The ids to store the revocation under: a `jti`, a token's fingerprint.
    pub ids: Vec<String>,
    /// The session keys ([`session_key`]) whose session hubs hold the token's open
    /// sessions, to be told at once.
    pub session_keys: Vec<String>,
}

/// What an admin request names, from a `jti` (with the `sub` its tokens carry, if any) or
/// a `token` (any scheme, bare or in a signed URL; see [`unverified::identity`]).
///
/// Sessions are kept under the token's `sub` when it has one, else its `jti`, else its
/// fingerprint. A `jti` alone reaches the `jti:` hub only; the sessions of a token that
/// carries a `sub` are reached by giving that `sub` too, or the token itself.
pub fn revocation_target(jti: Option<&str>, sub: Option<&str>, token: Option<&str>) -> Result<RevocationTarget, Error> {
    match (jti, sub, token) {
        (Some(jti), sub, None) => {
            if jti.trim().is_empty() {
                return Err(Error::input("jti", "is empty"));
            }
            let mut session_keys = vec![session_key(None, Some(jti), String::new)];
            // A token without `jti` goes by its fingerprint (detection names it so), and
            // its sessions are kept under it as such.
            if crate::grant::is_fingerprint(jti) {
                session_keys.push(session_key(None, None, || jti.to_owned()));
            }
            if let Some(sub) = sub {
                session_keys.push(session_key(Some(sub), Some(jti), String::new));
            }
            Ok(RevocationTarget { ids: vec![jti.to_owned()], session_keys })
        }
        (None, None, Some(token)) => {
            let named = unverified::identity(token).map_err(|denial| Error::input("token", denial.to_string()))?;
            Ok(RevocationTarget { ids: named.revocation_ids(), session_keys: vec![named.session_key()] })
        }
        (None, Some(_), Some(_)) => {
            Err(Error::input("sub", "give \"sub\" with \"jti\" only: a token names its own sub"))
        }
        (None, Some(_), None) => {
            Err(Error::input("sub", "a sub alone names no token: give \"jti\" with it, or \"token\""))
        }
        _ => Err(Error::input("jti", "give exactly one of \"jti\" and \"token\"")),
    }
}

/// The widest IPv4 prefix blocked without `force`: a /8 is already 16 million addresses.
pub const MIN_BLOCK_PREFIX_V4: u8 = 8;
/// The widest IPv6 prefix blocked without `force`: a /16 is wider than most regional
/// registries' allocations.
pub const MIN_BLOCK_PREFIX_V6: u8 = 16;

/// Checks a range an operator asks to block: one wider than [`MIN_BLOCK_PREFIX_V4`] or
/// [`MIN_BLOCK_PREFIX_V6`] (`0.0.0.0/0`, `::/0`, `::ffff:0:0/96`, which is IPv4's /0) is
/// refused unless `force`, since one typo would shut out every viewer.
pub fn check_block_range(range: &IpRange, force: bool) -> Result<(), Error> {
    let min = if range.is_ipv4() { MIN_BLOCK_PREFIX_V4 } else { MIN_BLOCK_PREFIX_V6 };
    if range.prefix_len() < min && !force {
        return Err(Error::input(
            "ip",
            format!(
                "{range} is wider than /{min}: blocking it shuts out whole networks; send \"force\": true if you mean it"
            ),
        ));
    }
    Ok(())
}

/// What an admin change lifted, for its entry in the action log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifted {
    /// Not a lift: a revoke, a block, a mark.
    NotALift,
    /// An unrevoke of a revocation that had lapsed: logged (the operator's word keeps the
    /// Guardian from revoking the token again), with nothing to undo.
    Nothing,
    /// An entry that would have lapsed at this time, unix seconds (`None`: never).
    Entry(Option<i64>),
}

/// The member of a logged unrevoke that lifted nothing.
const LIFTED_NOTHING: &str = "liftedNothing";

/// The request an admin `action` is logged with, so that [`undo`] restores what it changed:
/// a lift's undo restores the entry for the time it had left (`ttl`; none for an entry
/// without an end), an unblock's undo blocks the range again however wide it is (`force`:
/// it was blocked), and an unrevoke that lifted nothing is marked as having no undo.
pub fn logged_request(action: &str, mut request: Value, lifted: Lifted, now: i64) -> Value {
    if let Some(object) = request.as_object_mut() {
        if action == "unblock" && matches!(lifted, Lifted::Entry(_)) {
            object.insert("force".into(), Value::Bool(true));
        }
        match lifted {
            Lifted::Entry(Some(until)) => {
                let left = u64::try_from(until.saturating_sub(now)).unwrap_or(0).clamp(1, MAX_TTL_SECONDS);
                object.insert("ttl".into(), Value::from(left));
            }
            Lifted::Entry(None) => drop(object.remove("ttl")),
            Lifted::Nothing => drop(object.insert(LIFTED_NOTHING.into(), Value::Bool(true))),
            Lifted::NotALift => {}
        }
    }
    request
}

/// Why a logged action has no undo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoUndo {
    /// An unrevoke that lifted nothing (the revocation had lapsed).
    LiftedNothing,
    /// An action of a kind that is not undone.
    NotUndoable(String),
}

impl core::fmt::Display for NoUndo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NoUndo::LiftedNothing => f.write_str("that unrevoke lifted nothing (the revocation had lapsed)"),
            NoUndo::NotUndoable(action) => write!(f, "an action {action:?} cannot be undone"),
        }
    }
}

/// The admin route and body that undo a logged `action`, made with `request` as
/// [`logged_request`] wrote it.
pub fn undo(action: &str, request: &Value) -> Result<(&'static str, Value), NoUndo> {
    if request.get(LIFTED_NOTHING).is_some() {
        return Err(NoUndo::LiftedNothing);
    }
    let route = match action {
        "revoke" => "/admin/unrevoke",
        "unrevoke" => "/admin/revoke",
        "block" => "/admin/unblock",
        "unblock" => "/admin/block",
        "block_referrer" => "/admin/referrers/unblock",
        "unblock_referrer" => "/admin/referrers/block",
        "expect" => "/admin/unexpect",
        "unexpect" => "/admin/expect",
        other => return Err(NoUndo::NotUndoable(other.to_owned())),
    };
    Ok((route, request.clone()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A lift's log entry restores the entry as it was; an unrevoke of nothing has no undo.
    #[test]
    fn an_undo_restores_what_the_action_changed() {
        let now = 1_000;
        let unblock = logged_request("unblock", json!({"ip": "10.0.0.0/8"}), Lifted::Entry(Some(now + 90)), now);
        assert_eq!(
            undo("unblock", &unblock),
            Ok(("/admin/block", json!({"ip": "10.0.0.0/8", "force": true, "ttl": 90})))
        );
        let lapsing = logged_request("unblock", json!({"ip": "192.0.2.1"}), Lifted::Entry(Some(now - 5)), now);
        assert_eq!(lapsing["ttl"], 1, "an entry lapsing as it was lifted comes back for a second");
        let forever = logged_request("unrevoke", json!({"jti": "t", "ttl": 60}), Lifted::Entry(None), now);
        assert_eq!(undo("unrevoke", &forever), Ok(("/admin/revoke", json!({"jti": "t"}))));
        let nothing = logged_request("unrevoke", json!({"jti": "t"}), Lifted::Nothing, now);
        assert_eq!(undo("unrevoke", &nothing), Err(NoUndo::LiftedNothing));
        let revoke = logged_request("revoke", json!({"jti": "t", "ttl": 60}), Lifted::NotALift, now);
        assert_eq!(undo("revoke", &revoke), Ok(("/admin/unrevoke", json!({"jti": "t", "ttl": 60}))));
        let block = logged_request("block", json!({"ip": "192.0.2.1"}), Lifted::NotALift, now);
        assert_eq!(block.get("force"), None, "only an unblock's undo is forced");
        assert_eq!(undo("scan", &json!({})), Err(NoUndo::NotUndoable("scan".into())));
    }

    /// Regression (review): `ttl: 0` overwrote a revocation without an end with one that
    /// had already lapsed, lifting it.
    #[test]
    fn a_ttl_is_at_least_one_second() {
        let revoke = |body: &str| serde_json::from_str::<RevokeRequest>(body).map(|r| r.ttl).map_err(|e| e.to_string());
        assert!(revoke(r#"{"jti": "x", "ttl": 0}"#).unwrap_err().contains("at least 1 second"));
        assert_eq!(revoke(r#"{"jti": "x", "ttl": 5}"#), Ok(Some(5)));
        assert_eq!(revoke(r#"{"jti": "x"}"#), Ok(None));
        // Review: a TTL past the edge store's range failed there, after the change began.
        assert_eq!(revoke(&format!(r#"{{"jti": "x", "ttl": {MAX_TTL_SECONDS}}}"#)), Ok(Some(MAX_TTL_SECONDS)));
        for huge in [MAX_TTL_SECONDS + 1, u64::MAX] {
            let refused = revoke(&format!(r#"{{"jti": "x", "ttl": {huge}}}"#)).unwrap_err();
            assert!(refused.contains("at most"), "{refused}");
        }
        assert!(serde_json::from_str::<BlockRequest>(r#"{"ip": "192.0.2.1", "ttl": 0}"#).is_err());
        assert!(serde_json::from_str::<ReferrerRequest>(r#"{"host": "a.test", "ttl": 0}"#).is_err());
    }

    /// Regression (review): a reason of any length was logged after the change it explains,
    /// and a log write that failed left the change without an undo.
    #[test]
    fn a_reason_fits_the_actions_log() {
        let body =
            |kind: &str, reason: &str| match kind {
                "revoke" => {
                    serde_json::from_value::<RevokeRequest>(json!({"jti": "x", "reason": reason})).map(|r| r.reason)
                }
                "block" => serde_json::from_value::<BlockRequest>(json!({"ip": "192.0.2.1", "reason": reason}))
                    .map(|r| r.reason),
                _ => serde_json::from_value::<ReferrerRequest>(json!({"host": "a.test", "reason": reason}))
                    .map(|r| r.reason),
            };
        for kind in ["revoke", "block", "referrer"] {
            let longest = "é".repeat(MAX_REASON_BYTES / 2);
            assert_eq!(body(kind, &longest).unwrap().as_deref(), Some(longest.as_str()), "{kind}");
            let refused = body(kind, &format!("{longest}x")).unwrap_err().to_string();
            assert!(refused.contains("1001 bytes, over the 1000-byte limit"), "{kind}: {refused}");
        }
        assert_eq!(serde_json::from_str::<RevokeRequest>(r#"{"jti": "x", "reason": null}"#).unwrap().reason, None);
    }

    /// Regression (review): the first matching block was named, and `*` sorts first in a
    /// listing, so the view's Unblock of a host with its own block lifted the wildcard.
    #[test]
    fn an_unblock_is_pointed_at_the_narrowest_block() {
        let blocked: Vec<String> = ["*.test", "*.wild.test", "a.wild.test"].map(String::from).to_vec();
        assert_eq!(referrer_blocked_by("a.wild.test", &blocked), Some("a.wild.test"));
        assert_eq!(referrer_blocked_by("b.wild.test", &blocked), Some("*.wild.test"));
        assert_eq!(referrer_blocked_by("c.test", &blocked), Some("*.test"));
        assert_eq!(referrer_blocked_by("other.example", &blocked), None);
        let mut ranges = MemoryBlocklist::default();
        ranges.block(IpRange::parse("10.0.0.0/8").unwrap(), None);
        ranges.block(IpRange::parse("10.1.0.0/16").unwrap(), Some(100));
        assert_eq!(
            ranges.blocked_by("10.1.2.3".parse().unwrap(), 50).map(ToString::to_string).as_deref(),
            Some("10.1.0.0/16")
        );
        assert_eq!(
            ranges.blocked_by("10.1.2.3".parse().unwrap(), 150).map(ToString::to_string).as_deref(),
            Some("10.0.0.0/8"),
            "a lapsed entry blocks nothing"
        );
    }

    fn target(jti: Option<&str>, sub: Option<&str>, token: Option<&str>) -> Result<RevocationTarget, Error> {
        revocation_target(jti, sub, token)
    }

    #[test]
    fn a_jti_reaches_its_hub_and_the_subs_when_given() {
        assert_eq!(
            target(Some("t1"), None, None),
            Ok(RevocationTarget { ids: vec!["t1".into()], session_keys: vec!["jti:t1".into()] })
        );
        // Regression: a token with a sub keeps its sessions under `sub:`; revoking its jti
        // told only `jti:t1`, so its open sessions played on.
        assert_eq!(
            target(Some("t1"), Some("u1"), None),
            Ok(RevocationTarget { ids: vec!["t1".into()], session_keys: vec!["jti:t1".into(), "sub:u1".into()] })
        );
    }

    /// Regression (review): detection names a token without `jti` by its fingerprint, and
    /// revokes it as `{"jti": fingerprint}`; only `jti:<fingerprint>` was told, while the
    /// token's sessions live under `fp:<fingerprint>`, so they played on until KV caught up.
    #[test]
    fn a_fingerprint_named_as_a_jti_reaches_the_fingerprints_hub() {
        let fp = crate::grant::fingerprint("some token text");
        let keys = target(Some(&fp), None, None).map(|t| t.session_keys);
        assert_eq!(keys, Ok(vec![format!("jti:{fp}"), format!("fp:{fp}")]));
        assert_eq!(target(Some("not-a-fingerprint"), None, None).map(|t| t.session_keys.len()), Ok(1));
    }

    #[test]
    fn a_token_reaches_its_fingerprint_jti_and_sub() {
        let token = "st=1700000000~exp=1700000600~acl=/live/*~id=v%2042~hmac=00";
        let named = crate::unverified::identity(token).unwrap();
        assert_eq!(
            target(None, None, Some(token)),
            Ok(RevocationTarget { ids: vec!["v 42".into(), named.fingerprint], session_keys: vec!["jti:v 42".into()] })
        );
        // A signed URL names the same token.
        let url = format!("https://h.test/live/a.m3u8?x=1&hdnts={token}");
        assert_eq!(target(None, None, Some(&url)), target(None, None, Some(token)));
    }

    #[test]
    fn unusable_requests_say_why() {
        let refused = |jti, sub, token, field: &'static str, why: &str| {
            assert_eq!(target(jti, sub, token), Err(Error::input(field, why)), "{jti:?} {sub:?} {token:?}");
        };
        let one_of = "give exactly one of \"jti\" and \"token\"";
        refused(None, None, None, "jti", one_of);
        refused(Some("a"), None, Some("b"), "jti", one_of);
        refused(Some(" "), None, None, "jti", "is empty");
        refused(None, Some("u1"), None, "sub", "a sub alone names no token: give \"jti\" with it, or \"token\"");
        refused(None, Some("u1"), Some("x"), "sub", "give \"sub\" with \"jti\" only: a token names its own sub");
        // Regression: text that is no token was hashed and "revoked", changing nothing.
        refused(
            None,
            None,
            Some("https://h.test/a.m3u8?x=1"),
            "token",
            "malformed credential: the URL carries no credential (token, wmsAuthSign, hdnts, __token__, md5 or sgs)",
        );
        assert!(matches!(target(None, None, Some("garbage")), Err(Error::InvalidInput { field: "token", .. })));
    }

    #[test]
    fn blocks_wider_than_a_slash_8_or_16_need_force() {
        let range = |text: &str| IpRange::parse(text).unwrap();
        for wide in ["0.0.0.0/0", "::/0", "::ffff:0:0/96", "10.0.0.0/7", "2001::/15"] {
            let err = check_block_range(&range(wide), false).unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{wide}");
            assert!(err.to_string().contains("\"force\": true"), "{err}");
            assert_eq!(check_block_range(&range(wide), true), Ok(()), "{wide}");
        }
        assert_eq!(
            check_block_range(&range("0.0.0.0/0"), false),
            Err(Error::input(
                "ip",
                "0.0.0.0/0 is wider than /8: blocking it shuts out whole networks; send \"force\": true if you mean it"
            ))
        );
        for narrow in ["10.0.0.0/8", "192.0.2.7", "2001::/16", "2001:db8::1", "::ffff:192.0.2.0/120"] {
            assert_eq!(check_block_range(&range(narrow), false), Ok(()), "{narrow}");
        }
    }

    #[test]
    fn revocations_expire_and_lift() {
        let mut list = MemoryRevocations::default();
        list.revoke("a", Some(100));
        list.revoke("b", None);
        assert!(list.is_revoked("a", 99));
        assert!(!list.is_revoked("a", 100));
        assert!(list.is_revoked("b", i64::MAX));
        assert!(list.unrevoke("b"));
        assert!(!list.is_revoked("b", 0));
        assert!(!list.unrevoke("b"));
    }

    #[test]
    fn blocklist_matches_ranges() {
        let mut list = MemoryBlocklist::default();
        let range = IpRange::parse("192.0.2.0/24").unwrap();
        list.block(range, None);
        assert!(list.is_blocked("192.0.2.9".parse().unwrap(), 0));
        assert!(!list.is_blocked("192.0.3.9".parse().unwrap(), 0));
        assert!(list.unblock(&range));
        assert!(!list.is_blocked("192.0.2.9".parse().unwrap(), 0));
    }

    #[test]
    fn blocklist_built_in_one_pass_honours_ends() {
        let v4 = IpRange::parse("198.51.100.0/24").unwrap();
        let v6 = IpRange::parse("2001:db8::/32").unwrap();
        let list: MemoryBlocklist = [(v4, Some(50)), (v6, None)].into_iter().collect();
        assert!(list.is_blocked("198.51.100.1".parse().unwrap(), 49));
        assert!(!list.is_blocked("198.51.100.1".parse().unwrap(), 50));
        assert!(list.is_blocked("2001:db8::1".parse().unwrap(), i64::MAX));
        assert!(!list.is_blocked("2001:db9::1".parse().unwrap(), 0));
    }
}
