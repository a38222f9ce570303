//! Concurrent-session counting: the trait the policy engine asks, and a pure session table
//! that an edge Durable Object or the CLI can hold.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One session start (or heartbeat) to admit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRequest<'a> {
    /// What sessions are counted under (see [`crate::Grant::session_key`]).
    pub key: &'a str,
    /// The player's session id; a known id is a heartbeat or a reconnect, never a new slot.
    pub session_id: Option<&'a str>,
    /// Maximum concurrent sessions.
    pub limit: u32,
}

/// The answer to a [`SessionRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The session may play.
    Admitted,
    /// The limit is reached.
    Full {
        /// The limit in force.
        limit: u32,
        /// Sessions active now.
        active: u32,
    },
}

/// Admits or refuses sessions.
pub trait SessionLimiter {
    /// Registers the session (or refreshes it) if the limit allows.
    fn admit(&mut self, request: &SessionRequest<'_>, now: i64) -> Admission;
}

/// A limiter for callers that already know how many sessions are active (an offline
/// check, or a count fetched from a store): admits while that count is under the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownCount(pub u32);

impl SessionLimiter for KnownCount {
    fn admit(&mut self, request: &SessionRequest<'_>, _now: i64) -> Admission {
        if self.0 < request.limit {
            Admission::Admitted
        } else {
            Admission::Full { limit: request.limit, active: self.0 }
        }
    }
}

/// The session id for a session started with an entry token: the same viewer (same token,
/// client IP and User-Agent) coming back — a page reload, a player restart — gets the same
/// id, so within the idle time it reuses its slot instead of counting twice.
pub fn reconnect_id(
    credential_fingerprint: &str,
    client_ip: Option<std::net::IpAddr>,
    user_agent: Option<&str>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(credential_fingerprint.as_bytes());
    hash.update([0]);
    hash.update(client_ip.map(|ip| ip.to_string()).unwrap_or_default().as_bytes());
    hash.update([0]);
    hash.update(user_agent.unwrap_or("").as_bytes());
    let digest = hash.finalize();
    crate::encoding::hex(digest.get(..16).unwrap_or(&digest))
}

/// What to do with a new session when the limit is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AtLimit {
    /// Refuse the newcomer (the default).
    #[default]
    RejectNew,
    /// Admit the newcomer and end the least recently seen session.
    EvictOldest,
}

/// The sessions of one key: what a per-token Durable Object persists. Pure: time comes in
/// as `now`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    /// `(session id, last seen)` pairs.
    pub sessions: Vec<(String, i64)>,
}

impl SessionList {
    /// Drops sessions idle for `idle_timeout` seconds or more.
    pub fn expire(&mut self, now: i64, idle_timeout: i64) {
        self.sessions.retain(|(_, seen)| now - seen < idle_timeout);
    }

    /// Refreshes session `sid` if it is still active (seen within `idle_timeout`); returns
    /// whether it was. A session that went idle or was evicted stays ended.
    pub fn renew(&mut self, sid: &str, now: i64, idle_timeout: i64) -> bool {
        self.expire(now, idle_timeout);
        match self.sessions.iter_mut().find(|(id, _)| id == sid) {
            Some(entry) => {
                entry.1 = now;
                true
            }
            None => false,
        }
    }

    /// Admits (or refreshes) session `sid` under `limit`, per `at_limit`.
    pub fn admit(&mut self, sid: &str, limit: u32, now: i64, idle_timeout: i64, at_limit: AtLimit) -> Admission {
        self.expire(now, idle_timeout);
        if let Some(entry) = self.sessions.iter_mut().find(|(id, _)| id == sid) {
            entry.1 = now;
            return Admission::Admitted;
        }
        let active = u32::try_from(self.sessions.len()).unwrap_or(u32::MAX);
        if active >= limit {
            if at_limit == AtLimit::RejectNew || limit == 0 {
                return Admission::Full { limit, active };
            }
            self.sessions.sort_by_key(|(_, seen)| *seen);
            let excess = self.sessions.len() + 1 - limit as usize;
            self.sessions.drain(..excess.min(self.sessions.len()));
        }
        self.sessions.push((sid.to_owned(), now));
        Admission::Admitted
    }
}

/// Sessions per key in memory (the CLI and tests; the edge keeps one [`SessionList`] per
/// Durable Object).
#[derive(Clone, Debug)]
pub struct SessionTable {
    idle_timeout: i64,
    at_limit: AtLimit,
    lists: HashMap<String, SessionList>,
    anonymous_counter: u64,
}

impl SessionTable {
    /// A table whose sessions end after `idle_timeout` seconds without a heartbeat.
    pub fn new(idle_timeout: u32, at_limit: AtLimit) -> SessionTable {
        SessionTable { idle_timeout: i64::from(idle_timeout), at_limit, lists: HashMap::new(), anonymous_counter: 0 }
    }

    /// Active sessions under `key` at `now`.
    pub fn active(&self, key: &str, now: i64) -> u32 {
        self.lists.get(key).map_or(0, |list| {
            let live = list.sessions.iter().filter(|(_, seen)| now - seen < self.idle_timeout).count();
            u32::try_from(live).unwrap_or(u32::MAX)
        })
    }
}

impl SessionLimiter for SessionTable {
    fn admit(&mut self, request: &SessionRequest<'_>, now: i64) -> Admission {
        let id = match request.session_id {
            Some(id) => id.to_owned(),
            None => {
                self.anonymous_counter += 1;
                format!("anonymous-{}", self.anonymous_counter)
            }
        };
        let list = self.lists.entry(request.key.to_owned()).or_default();
        list.admit(&id, request.limit, now, self.idle_timeout, self.at_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renew_refreshes_only_active_sessions() {
        let mut list = SessionList::default();
        assert_eq!(list.admit("a", 1, 0, 60, AtLimit::RejectNew), Admission::Admitted);
        assert!(list.renew("a", 50, 60));
        assert!(list.renew("a", 100, 60), "the renewal at 50 kept it alive");
        assert!(!list.renew("a", 160, 60), "idle for 60 s: ended");
        assert!(!list.renew("never-admitted", 160, 60));
        assert!(list.sessions.is_empty(), "renew never admits");
    }

    fn req<'a>(id: &'a str, limit: u32) -> SessionRequest<'a> {
        SessionRequest { key: "jti:t", session_id: Some(id), limit }
    }

    #[test]
    fn rejects_beyond_limit_but_admits_heartbeats() {
        let mut table = SessionTable::new(60, AtLimit::RejectNew);
        assert_eq!(table.admit(&req("a", 2), 0), Admission::Admitted);
        assert_eq!(table.admit(&req("b", 2), 1), Admission::Admitted);
        assert_eq!(table.admit(&req("c", 2), 2), Admission::Full { limit: 2, active: 2 });
        // Reconnect of a known session does not count twice.
        assert_eq!(table.admit(&req("a", 2), 3), Admission::Admitted);
        assert_eq!(table.active("jti:t", 3), 2);
        // After idle expiry a slot frees up.
        assert_eq!(table.admit(&req("c", 2), 70), Admission::Admitted);
        assert_eq!(table.active("jti:t", 70), 1);
    }

    #[test]
    fn reconnect_ids_are_stable_per_viewer() {
        let ip = "198.51.100.7".parse().ok();
        let a = reconnect_id("fp", ip, Some("hls.js"));
        assert_eq!(a, reconnect_id("fp", ip, Some("hls.js")));
        assert_ne!(a, reconnect_id("fp", "198.51.100.8".parse().ok(), Some("hls.js")));
        assert_ne!(a, reconnect_id("fp", ip, Some("Safari")));
        assert_ne!(a, reconnect_id("other", ip, Some("hls.js")));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn evict_oldest_makes_room() {
        let mut table = SessionTable::new(60, AtLimit::EvictOldest);
        assert_eq!(table.admit(&req("a", 1), 0), Admission::Admitted);
        assert_eq!(table.admit(&req("b", 1), 5), Admission::Admitted);
        assert_eq!(table.active("jti:t", 5), 1);
        // "a" was evicted: it now needs a slot of its own again.
        assert_eq!(table.admit(&req("a", 1), 6), Admission::Admitted);
        assert_eq!(table.active("jti:t", 6), 1);
        let zero = SessionRequest { key: "k", session_id: None, limit: 0 };
        assert_eq!(table.admit(&zero, 0), Admission::Full { limit: 0, active: 0 });
    }
}
