//! Revocation and IP block lists: the traits the policy engine asks, and in-memory stores.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::policy::ip::IpRange;

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
        self.entries.get(token_id).is_some_and(|until| until.is_none_or(|end| now < end))
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
}

impl FromIterator<(IpRange, Option<i64>)> for MemoryBlocklist {
    /// Builds a list in one pass, keeping entries as given (no de-duplication).
    fn from_iter<I: IntoIterator<Item = (IpRange, Option<i64>)>>(entries: I) -> Self {
        Self { entries: entries.into_iter().collect() }
    }
}

impl IpBlocklist for MemoryBlocklist {
    fn is_blocked(&self, ip: IpAddr, now: i64) -> bool {
        self.entries.iter().any(|(range, until)| range.contains(ip) && until.is_none_or(|end| now < end))
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
