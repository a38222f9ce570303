//! Revoked token ids and blocked IP ranges in KV, looked up on every request through a
//! short in-isolate cache. KV propagates writes within about a minute; open sessions learn
//! of a revocation at once through their Durable Object (see session_hub).
//!
//! Each block is its own key, `block:<range>`, with its TTL as the key's KV expiration,
//! and the list is read with `list({prefix: "block:"})`: two admins blocking at once each
//! write their own key, so neither write is lost (one JSON list read, changed and written
//! back lost the other's change). Lists written by earlier versions under `blocklist`
//! are still read, and moved to per-range keys on the next block or unblock. Blocked
//! referrer hosts (from the Guardian view) are keys `referrer:<host>` in the same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::Blocks;
use worker::{Env, Result};

/// The KV namespace binding.
pub const BINDING: &str = "REVOCATIONS";
/// How long this isolate trusts what it read, seconds.
pub const CACHE_SECONDS: i64 = 10;
/// KV's smallest expiration: a revocation TTL below it is raised to it.
pub const MIN_TTL_SECONDS: u64 = 60;
/// Token ids cached per isolate; past this, stale entries go, then all (isolate memory is small).
const MAX_CACHED_IDS: usize = 8192;
/// The one-key block list of earlier versions, read until moved (see the module docs).
const LEGACY_BLOCKLIST_KEY: &str = "blocklist";
const BLOCK_PREFIX: &str = "block:";
const REFERRER_PREFIX: &str = "referrer:";

/// One entry of the legacy block list.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LegacyBlock {
    range: IpRange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<i64>,
}

thread_local! {
    static REVOKED: RefCell<HashMap<String, (bool, i64)>> = RefCell::new(HashMap::new());
    static BLOCKS: RefCell<Option<(Rc<Blocks>, i64)>> = const { RefCell::new(None) };
}

fn key(id: &str) -> String {
    format!("revoked:{id}")
}

/// Caches what KV said of `id`, keeping the cache bounded.
fn remember(id: &str, revoked: bool, now: i64) {
    REVOKED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_CACHED_IDS {
            cache.retain(|_, (_, at)| now - *at < CACHE_SECONDS);
            if cache.len() >= MAX_CACHED_IDS {
                cache.clear();
            }
        }
        cache.insert(id.to_owned(), (revoked, now));
    });
}

/// Looks up `ids` (cached for [`CACHE_SECONDS`]); returns those revoked.
pub async fn lookup(env: &Env, ids: &[String], now: i64) -> Result<Vec<String>> {
    let mut revoked = Vec::new();
    for id in ids {
        let cached = REVOKED.with(|c| c.borrow().get(id).filter(|(_, at)| now - at < CACHE_SECONDS).map(|(r, _)| *r));
        let is_revoked = match cached {
            Some(r) => r,
            None => {
                let r = env.kv(BINDING)?.get(&key(id)).text().await.map_err(worker::Error::from)?.is_some();
                remember(id, r, now);
                r
            }
        };
        if is_revoked {
            revoked.push(id.clone());
        }
    }
    Ok(revoked)
}

/// When an entry given `ttl` seconds at `now` lapses, unix seconds: the TTL raised to
/// [`MIN_TTL_SECONDS`], as KV keeps it; `None` for no end.
pub fn lapses_at(ttl: Option<u64>, now: i64) -> Option<i64> {
    ttl.map(|t| now.saturating_add(i64::try_from(t.max(MIN_TTL_SECONDS)).unwrap_or(i64::MAX)))
}

/// Writes a marker key that lapses after `ttl` seconds (raised to [`MIN_TTL_SECONDS`]).
/// Its value is when it lapses (`until:<unix seconds>`, or `until:never`), for an undo of
/// its removal to restore it as it was.
async fn put_marker(env: &Env, name: &str, ttl: Option<u64>, now: i64) -> Result<()> {
    let until = lapses_at(ttl, now).map_or_else(|| "until:never".to_owned(), |end| format!("until:{end}"));
    let mut put = env.kv(BINDING)?.put(name, until).map_err(worker::Error::from)?;
    if let Some(ttl) = ttl {
        put = put.expiration_ttl(ttl.max(MIN_TTL_SECONDS));
    }
    put.execute().await.map_err(worker::Error::from)
}

/// Removes a marker key, whatever a read of it says (a read here may be stale). Returns
/// `None` when the read found none, else when it would have lapsed (`None` inside: never);
/// a marker written before markers said takes its KV expiration.
async fn take_marker(env: &Env, name: &str) -> Result<Option<Option<i64>>> {
    let kv = env.kv(BINDING)?;
    let value = kv.get(name).text().await.map_err(worker::Error::from)?;
    let until = match value.as_deref().map(|v| v.strip_prefix("until:")) {
        None => None,
        Some(Some(until)) => Some(until.parse().ok()),
        // Written as "1": its expiration is in the key's listing.
        Some(None) => Some(listed(env, name).await?.into_iter().find(|(rest, _)| rest.is_empty()).and_then(|(_, e)| e)),
    };
    kv.delete(name).await.map_err(worker::Error::from)?;
    Ok(until)
}

/// Revokes `id`, for `ttl` seconds or until lifted.
pub async fn revoke(env: &Env, id: &str, ttl: Option<u64>, now: i64) -> Result<()> {
    put_marker(env, &key(id), ttl, now).await?;
    remember(id, true, now);
    Ok(())
}

/// Lifts a revocation; returns when it would have lapsed, as [`take_marker`] does.
pub async fn unrevoke(env: &Env, id: &str, now: i64) -> Result<Option<Option<i64>>> {
    let lifted = take_marker(env, &key(id)).await?;
    remember(id, false, now);
    Ok(lifted)
}

fn block_key(range: &IpRange) -> String {
    format!("{BLOCK_PREFIX}{range}")
}

/// The block list (cached for [`CACHE_SECONDS`]).
pub async fn blocks(env: &Env, now: i64) -> Result<Rc<Blocks>> {
    if let Some(blocks) = BLOCKS
        .with(|b| b.borrow().as_ref().filter(|(_, at)| now - at < CACHE_SECONDS).map(|(blocks, _)| blocks.clone()))
    {
        return Ok(blocks);
    }
    // A key whose range no longer parses is skipped rather than failing every request.
    let mut entries: Vec<(IpRange, Option<i64>)> = listed(env, BLOCK_PREFIX)
        .await?
        .into_iter()
        .filter_map(|(name, until)| Some((IpRange::parse(&name).ok()?, until)))
        .collect();
    entries.extend(legacy_blocks(env).await?.into_iter().map(|b| (b.range, b.until)));
    let referrers = listed(env, REFERRER_PREFIX).await?.into_iter().map(|(host, _)| host).collect();
    let blocks = Rc::new(Blocks { lookup: entries.into_iter().collect(), referrers });
    BLOCKS.with(|b| *b.borrow_mut() = Some((blocks.clone(), now)));
    Ok(blocks)
}

/// Every key under `prefix`, without the prefix, with its expiration (unix seconds).
async fn listed(env: &Env, prefix: &str) -> Result<Vec<(String, Option<i64>)>> {
    let kv = env.kv(BINDING)?;
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let mut list = kv.list().prefix(prefix.to_owned());
        if let Some(c) = cursor {
            list = list.cursor(c);
        }
        let page = list.execute().await.map_err(worker::Error::from)?;
        entries.extend(page.keys.iter().filter_map(|k| {
            Some((k.name.strip_prefix(prefix)?.to_owned(), k.expiration.and_then(|e| i64::try_from(e).ok())))
        }));
        match page.cursor.filter(|_| !page.list_complete) {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(entries)
}

/// Blocks referrer `host` (a host or a `*.` wildcard), for `ttl` seconds or until
/// unblocked; enforced by this isolate at once, by others within [`CACHE_SECONDS`] plus
/// KV's propagation.
pub async fn block_referrer(env: &Env, host: &str, ttl: Option<u64>, now: i64) -> Result<()> {
    put_marker(env, &format!("{REFERRER_PREFIX}{host}"), ttl, now).await?;
    forget_blocks();
    Ok(())
}

/// Lifts the block of exactly referrer `host`; returns when it would have lapsed, as
/// [`take_marker`] does (`None`: no block of its own).
pub async fn unblock_referrer(env: &Env, host: &str) -> Result<Option<Option<i64>>> {
    let lifted = take_marker(env, &format!("{REFERRER_PREFIX}{host}")).await?;
    forget_blocks();
    Ok(lifted)
}

async fn legacy_blocks(env: &Env) -> Result<Vec<LegacyBlock>> {
    Ok(env.kv(BINDING)?.get(LEGACY_BLOCKLIST_KEY).json().await.map_err(worker::Error::from)?.unwrap_or_default())
}

/// Moves a legacy block list to per-range keys, then deletes it.
async fn move_legacy_blocks(env: &Env, now: i64) -> Result<()> {
    let legacy = legacy_blocks(env).await?;
    if legacy.is_empty() {
        return Ok(());
    }
    for block in legacy {
        match block.until {
            Some(until) if until <= now => {}
            until => {
                put_marker(env, &block_key(&block.range), until.map(|u| u.saturating_sub(now).unsigned_abs()), now)
                    .await?
            }
        }
    }
    env.kv(BINDING)?.delete(LEGACY_BLOCKLIST_KEY).await.map_err(worker::Error::from)
}

/// Blocks `range`, for `ttl` seconds (at least [`MIN_TTL_SECONDS`], KV's smallest
/// expiration) or until unblocked. Returns when the block lapses, unix seconds.
pub async fn block(env: &Env, range: &IpRange, ttl: Option<u64>, now: i64) -> Result<Option<i64>> {
    move_legacy_blocks(env, now).await?;
    put_marker(env, &block_key(range), ttl, now).await?;
    forget_blocks();
    Ok(lapses_at(ttl, now))
}

/// Lifts the block of exactly `range`; returns when it would have lapsed, as
/// [`take_marker`] does (`None`: `range` had no block of its own).
pub async fn unblock(env: &Env, range: &IpRange, now: i64) -> Result<Option<Option<i64>>> {
    move_legacy_blocks(env, now).await?;
    let lifted = take_marker(env, &block_key(range)).await?;
    forget_blocks();
    Ok(lifted)
}

/// Makes this isolate read the block list again on its next request.
fn forget_blocks() {
    BLOCKS.with(|b| *b.borrow_mut() = None);
}
