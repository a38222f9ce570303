//! State shared by several `streamgate serve` nodes in Redis (`--redis URL`): revocations,
//! block lists, session hubs and usage records, so every node enforces one session limit
//! and sees a revocation as soon as it is stored.
//!
//! Keys, all under `streamgate:`:
//! - `revoked:<id>`: a revoked `jti` or token fingerprint; the value is when the revocation
//!   lapses (unix seconds, empty until lifted). Lapsed is decided on the caller's `now`; the
//!   key also expires in Redis a minute after it lapses (a relative TTL, so Redis's clock
//!   does not matter), which is only garbage collection.
//! - `blocks` and `referrers`: hashes from a blocked range or referrer host to when its
//!   block lapses (empty until lifted). One field per entry, so two admins blocking at once
//!   never lose each other's change. Lapsed fields are dropped on the next change.
//! - `hub:<session key>`: a hash with the hub's JSON (`state`) and a version (`v`), expiring
//!   after the hub retention (longer while a revocation it holds is in force).
//! - `usage`: a sorted set of usage records scored by time, each member prefixed by a
//!   sequence number from `usage:seq` so equal records stay distinct and in order; the
//!   newest [`MAX_USAGE_RECORDS`] are kept.
//!
//! **Admission is atomic across nodes** by optimistic concurrency: an update reads the hub
//! and its version, runs the core's rule on it in Rust ([`SessionHubState::heartbeat`] and
//! the rest, whatever the closure does), and stores the result with a compare-and-set
//! script that writes only if the version is still the one read, in the same step as the
//! usage records. On a conflict it starts over on fresh state. The script holds no rule: it
//! compares, writes and appends. (`WATCH`/`MULTI`/`EXEC` would do the same, but `WATCH` is
//! the state of one connection, and every request of a node shares one multiplexed
//! connection here; a pool of dedicated connections would be needed for it.)
//!
//! Failures are errors, never answers: a revocation lookup that fails makes the request
//! fail (closed), and a session update that fails is decided by the configuration's
//! `sessions.onStoreError`, as at the edge. Every command times out after
//! [`RESPONSE_TIMEOUT`]; a lost connection is tried again, once, by the next request, so
//! while Redis is down requests fail at once instead of waiting on retries.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use streamgate_core::detection::{UsageEvent, Window};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::Blocks;
use streamgate_core::sessions::SessionHubState;

use super::memory::MAX_USAGE_RECORDS;
use super::{State, StateError, StateResult};

/// Every key's prefix.
const PREFIX: &str = "streamgate:";

/// How long a command may take before it fails.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connecting may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How many times an update of a hub starts over after losing a race with another one
/// before it fails. Each loss means another update committed, so this bounds the wait of
/// the unluckiest of that many parallel session starts on one key.
const MAX_ATTEMPTS: usize = 100;

/// Hub updates on one node that lost a race take turns per key, in this many stripes: a
/// flood of parallel starts on one key then races only with other nodes' updates, so it
/// cannot spend [`MAX_ATTEMPTS`] (a failed update is a store error, which
/// `onStoreError: open` admits uncounted).
const HUB_TURNS: usize = 64;

/// How long past its lapse a revocation key is kept, seconds (the nodes decide lapse on
/// their own `now`, which may run a little behind the node that revoked).
const EXPIRY_SLACK_SECONDS: i64 = 60;

/// Writes a hub only if its version is still the one read, and appends the usage records
/// the same update left, atomically.
///
/// KEYS: hub, usage, usage sequence. ARGV: version read (`0` for no hub), the hub's JSON,
/// its time to live in seconds, usage records kept at most, then pairs of (time, record).
const COMPARE_AND_SET: &str = r"
local current = redis.call('HGET', KEYS[1], 'v') or '0'
if current ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(current) + 1), 'state', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
for i = 5, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], ARGV[i], string.format('%020d', seq) .. ' ' .. ARGV[i + 1])
end
if #ARGV > 4 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
end
return 1
";

/// Sets field `ARGV[1]` of hash `KEYS[1]` to `ARGV[2]`, first dropping the other fields
/// that lapsed by `ARGV[3]` (a whole number of seconds not after it; any other value is in
/// force, as `in_force` reads it). One script, so a field another node sets meanwhile is
/// never dropped as lapsed.
const SET_ENTRY: &str = r"
local entries = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[3])
for i = 1, #entries, 2 do
  local field, value = entries[i], entries[i + 1]
  if field ~= ARGV[1] and string.match(value, '^%-?%d+$') and tonumber(value) <= now then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// The Redis backend (see the module docs).
pub struct RedisState {
    connection: ConnectionManager,
    compare_and_set: Script,
    set_entry: Script,
    /// A hub with no update for this long is dropped by Redis, seconds.
    hub_retention: i64,
    /// One lock per stripe of hub keys ([`HUB_TURNS`]), and the keyed hash that picks it.
    turns: Box<[tokio::sync::Mutex<()>]>,
    stripe_hasher: std::collections::hash_map::RandomState,
}

fn failed(what: &str, error: RedisError) -> StateError {
    StateError(format!("redis {what}: {error}"))
}

fn key(parts: &[&str]) -> String {
    let mut key = String::from(PREFIX);
    parts.iter().for_each(|part| key.push_str(part));
    key
}

/// A lapse time as stored: unix seconds, or empty for none.
fn encode_until(until: Option<i64>) -> String {
    until.map(|end| end.to_string()).unwrap_or_default()
}

/// Whether an entry stored with `value` (see [`encode_until`]) is in force at `now`. A
/// value that is no time was not written by streamgate: it counts as in force, so a
/// damaged entry errs toward refusing, not toward letting through.
fn in_force(value: &str, now: i64) -> bool {
    // Empty (no end) and not a time both read as no end.
    streamgate_core::revocation::in_force(value.parse().ok(), now)
}

/// A usage record's member in the `usage` set: `<sequence> <JSON>`.
fn decode_usage(member: &str) -> StateResult<UsageEvent> {
    let json = member.split_once(' ').map_or(member, |(_, json)| json);
    serde_json::from_str(json).map_err(|e| StateError(format!("redis usage record is not one: {e}")))
}

/// `url` with the password in its user info shown as `***`, for messages and logs.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl RedisState {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`); hubs
    /// nobody updated for `hub_retention` seconds are dropped.
    pub async fn connect(url: &str, hub_retention: i64) -> StateResult<RedisState> {
        let client = Client::open(url).map_err(|e| StateError(format!("--redis {:?}: {e}", without_password(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_connection_timeout(CONNECTION_TIMEOUT)
            // One attempt, no backoff: while Redis is down, requests fail at once rather
            // than queue behind retries; the next request connects again.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_with_config(client, config).await.map_err(|e| failed("connect", e))?;
        Ok(RedisState {
            connection,
            compare_and_set: Script::new(COMPARE_AND_SET),
            set_entry: Script::new(SET_ENTRY),
            hub_retention,
            turns: (0..HUB_TURNS).map(|_| tokio::sync::Mutex::new(())).collect(),
            stripe_hasher: std::collections::hash_map::RandomState::new(),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Sets `field` of hash `name` to `until`, dropping the fields that lapsed by `now`.
    async fn set_entry(&self, name: &str, field: &str, until: Option<i64>, now: i64) -> StateResult<()> {
        let mut invocation = self.set_entry.key(key(&[name]));
        invocation.arg(field).arg(encode_until(until)).arg(now);
        invocation.invoke_async::<i64>(&mut self.conn()).await.map(drop).map_err(|e| failed("set entry", e))
    }

    /// Removes `field` of hash `name`; returns whether it was there and in force at `now`.
    async fn remove_entry(&self, name: &str, field: &str, now: i64) -> StateResult<bool> {
        let (value, _removed): (Option<String>, u64) = ::redis::pipe()
            .atomic()
            .cmd("HGET")
            .arg(key(&[name]))
            .arg(field)
            .cmd("HDEL")
            .arg(key(&[name]))
            .arg(field)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| failed("HGET and HDEL", e))?;
        Ok(value.is_some_and(|v| in_force(&v, now)))
    }

    /// The hub of `key` and its version (`0` when there is none).
    async fn load_hub(&self, hub_key: &str) -> StateResult<(String, SessionHubState)> {
        let (version, state): (Option<String>, Option<String>) = ::redis::cmd("HMGET")
            .arg(hub_key)
            .arg("v")
            .arg("state")
            .query_async(&mut self.conn())
            .await
            .map_err(|e| failed("HMGET", e))?;
        let hub = match state {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StateError(format!("redis {hub_key} does not hold a session hub: {e}")))?,
            None => SessionHubState::default(),
        };
        Ok((version.unwrap_or_else(|| "0".to_owned()), hub))
    }

    /// How long a hub is kept after an update at `now`: the retention, or longer while a
    /// revocation it holds is in force.
    fn hub_ttl(&self, hub: &SessionHubState, now: i64) -> i64 {
        let revoked_until = hub.revocations.iter().map(|r| r.until.map_or(i64::MAX, |end| end.saturating_sub(now)));
        revoked_until.fold(self.hub_retention, i64::max).clamp(1, i64::from(i32::MAX))
    }
}

impl State for RedisState {
    async fn revoked(&self, ids: &[String], now: i64) -> StateResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| key(&["revoked:", id])).collect();
        let values: Vec<Option<String>> =
            ::redis::cmd("MGET").arg(&keys).query_async(&mut self.conn()).await.map_err(|e| failed("MGET", e))?;
        let revoked = ids.iter().zip(values).filter(|(_, value)| value.as_deref().is_some_and(|v| in_force(v, now)));
        Ok(revoked.map(|(id, _)| id.clone()).collect())
    }

    async fn revoke(&self, id: &str, until: Option<i64>, now: i64) -> StateResult<()> {
        let name = key(&["revoked:", id]);
        let mut set = ::redis::cmd("SET");
        set.arg(&name).arg(encode_until(until));
        match until {
            Some(end) if end <= now => return self.unrevoke(id, now).await.map(drop),
            Some(end) => {
                set.arg("EX").arg(end.saturating_sub(now).saturating_add(EXPIRY_SLACK_SECONDS));
            }
            None => {}
        }
        set.query_async::<()>(&mut self.conn()).await.map_err(|e| failed("SET", e))
    }

    async fn unrevoke(&self, id: &str, now: i64) -> StateResult<bool> {
        // A lapsed entry (kept a while past its end) is removed, but was lifted already.
        ::redis::cmd("GETDEL")
            .arg(key(&["revoked:", id]))
            .query_async::<Option<String>>(&mut self.conn())
            .await
            .map(|value| value.is_some_and(|v| in_force(&v, now)))
            .map_err(|e| failed("GETDEL", e))
    }

    async fn blocks(&self, now: i64) -> StateResult<Arc<Blocks>> {
        let (ranges, referrers): (HashMap<String, String>, HashMap<String, String>) = ::redis::pipe()
            .cmd("HGETALL")
            .arg(key(&["blocks"]))
            .cmd("HGETALL")
            .arg(key(&["referrers"]))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| failed("HGETALL", e))?;
        let mut lookup = Vec::with_capacity(ranges.len());
        for (range, until) in ranges.iter().filter(|(_, until)| in_force(until, now)) {
            let range = IpRange::parse(range)
                .map_err(|e| StateError(format!("redis {}blocks holds {range:?}, no range: {e}", PREFIX)))?;
            lookup.push((range, until.parse().ok()));
        }
        let referrers = referrers.into_iter().filter(|(_, until)| in_force(until, now)).map(|(host, _)| host).collect();
        Ok(Arc::new(Blocks { lookup: lookup.into_iter().collect(), referrers }))
    }

    async fn block(&self, range: IpRange, until: Option<i64>, now: i64) -> StateResult<()> {
        self.set_entry("blocks", &range.to_string(), until, now).await
    }

    async fn unblock(&self, range: IpRange, now: i64) -> StateResult<bool> {
        self.remove_entry("blocks", &range.to_string(), now).await
    }

    async fn block_referrer(&self, host: &str, until: Option<i64>, now: i64) -> StateResult<()> {
        self.set_entry("referrers", host, until, now).await
    }

    async fn unblock_referrer(&self, host: &str, now: i64) -> StateResult<bool> {
        self.remove_entry("referrers", host, now).await
    }

    async fn update_hub<T, F>(&self, key_name: &str, now: i64, mut update: F) -> StateResult<T>
    where
        T: Send,
        F: FnMut(&mut SessionHubState) -> T + Send,
    {
        let hub_key = key(&["hub:", key_name]);
        let (usage_key, sequence_key) = (key(&["usage"]), key(&["usage:seq"]));
        // A stripe, not a lock per key: keys are the viewers' to choose. Taken only after
        // a lost race, so a flood on one key never holds up the other keys of its stripe
        // (their first try goes through untouched).
        let stripe = self.stripe_hasher.hash_one(key_name) as usize % HUB_TURNS;
        let mut _turn = None;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt == 1 {
                if let Some(turn) = self.turns.get(stripe) {
                    _turn = Some(turn.lock().await);
                }
            }
            let (version, mut hub) = self.load_hub(&hub_key).await?;
            let result = update(&mut hub);
            // Token shapes feed the edge's Guardian view, which this gate has not; pending
            // records go to the usage log with this very write.
            let records = hub.take_flush().records;
            let json = serde_json::to_string(&hub).map_err(|e| StateError(format!("session hub: {e}")))?;
            let mut invocation = self.compare_and_set.key(&hub_key);
            invocation.key(&usage_key).key(&sequence_key);
            invocation.arg(&version).arg(json).arg(self.hub_ttl(&hub, now)).arg(MAX_USAGE_RECORDS);
            for record in &records {
                let text = serde_json::to_string(record).map_err(|e| StateError(format!("usage record: {e}")))?;
                invocation.arg(record.at).arg(text);
            }
            let written: i64 =
                invocation.invoke_async(&mut self.conn()).await.map_err(|e| failed("session hub update", e))?;
            if written == 1 {
                return Ok(result);
            }
            // Lost to another node: wait a random while, longer with each loss (up to 8 ms),
            // so that an update cannot lose every round to the other node's stream of turns.
            let ceiling_ms = 1_u64 << attempt.min(3);
            let jitter =
                std::collections::hash_map::RandomState::new().hash_one((key_name, attempt)) % (ceiling_ms + 1);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
        Err(StateError(format!("the session hub {key_name:?} changed under {MAX_ATTEMPTS} updates in a row")))
    }

    async fn hub(&self, key_name: &str) -> StateResult<SessionHubState> {
        self.load_hub(&key(&["hub:", key_name])).await.map(|(_, hub)| hub)
    }

    async fn usage(&self, window: Window, max_records: usize) -> StateResult<(Vec<UsageEvent>, bool)> {
        let members: Vec<String> = ::redis::cmd("ZRANGEBYSCORE")
            .arg(key(&["usage"]))
            .arg(window.from)
            .arg(format!("({}", window.to))
            .arg("LIMIT")
            .arg(0)
            .arg(max_records.saturating_add(1))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| failed("ZRANGEBYSCORE", e))?;
        let truncated = members.len() > max_records;
        let records = members.iter().take(max_records).map(|m| decode_usage(m)).collect::<StateResult<_>>()?;
        Ok((records, truncated))
    }

    async fn flush(&self, _now: i64) -> StateResult<()> {
        // Every change is in Redis before it is acknowledged.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lapse_times_round_trip_and_damage_errs_toward_refusing() {
        assert_eq!(encode_until(None), "");
        assert_eq!(encode_until(Some(100)), "100");
        assert!(in_force("", i64::MAX), "no lapse: in force until lifted");
        assert!(in_force("100", 99));
        assert!(!in_force("100", 100));
        assert!(in_force("soon", 1_000), "a value streamgate did not write counts as in force");
    }

    /// Regression (review): a URL that failed to parse was echoed with its password.
    #[test]
    fn a_redis_url_is_shown_without_its_password() {
        assert_eq!(without_password("redis://app:s3cr%40t@h:6379/0"), "redis://app:***@h:6379/0");
        assert_eq!(without_password("redis://:s3cret@h"), "redis://:***@h");
        assert_eq!(without_password("rediss://s3cret@h/1?x=@"), "rediss://:***@h/1?x=@");
        assert_eq!(without_password("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(without_password("not a url"), "not a url");
    }

    #[test]
    fn usage_members_carry_a_sequence_before_the_record() {
        let record = UsageEvent { at: 7, sid: "s".into(), token: "t".into(), ..UsageEvent::default() };
        let member = format!("{:020} {}", 42, serde_json::to_string(&record).unwrap());
        assert_eq!(decode_usage(&member).unwrap(), record);
        assert!(decode_usage("00000000000000000042 {").unwrap_err().0.contains("usage record"));
    }
}
