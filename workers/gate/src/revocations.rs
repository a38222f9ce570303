//! Revoked token ids and blocked IP ranges in KV, looked up on every request through a
//! short in-isolate cache. KV propagates writes within about a minute; open sessions learn
//! of a revocation at once through their Durable Object (see session_hub).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::{MemoryBlocklist, RevocationList};
use worker::{Env, Result};

/// The KV namespace binding.
pub const BINDING: &str = "REVOCATIONS";
/// How long this isolate trusts what it read, seconds.
pub const CACHE_SECONDS: i64 = 10;
/// KV's smallest expiration: a revocation TTL below it is raised to it.
pub const MIN_TTL_SECONDS: u64 = 60;
/// Token ids cached per isolate; past this, stale entries go, then all (isolate memory is small).
const MAX_CACHED_IDS: usize = 8192;
const BLOCKLIST_KEY: &str = "blocklist";

/// One block-list entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Block {
    pub range: IpRange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// The block list as read from KV, with the lookup the policy engine asks, built once per read.
pub struct Blocks {
    pub list: Vec<Block>,
    pub lookup: MemoryBlocklist,
}

impl Blocks {
    fn new(list: Vec<Block>) -> Rc<Self> {
        let lookup = list.iter().map(|b| (b.range, b.until)).collect();
        Rc::new(Self { list, lookup })
    }
}

thread_local! {
    static REVOKED: RefCell<HashMap<String, (bool, i64)>> = RefCell::new(HashMap::new());
    static BLOCKS: RefCell<Option<(Rc<Blocks>, i64)>> = const { RefCell::new(None) };
}

/// The revocation state of the ids a request names, as read for it.
pub struct Snapshot(Vec<String>);

impl RevocationList for Snapshot {
    fn is_revoked(&self, token_id: &str, _now: i64) -> bool {
        self.0.iter().any(|id| id == token_id)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
pub async fn lookup(env: &Env, ids: &[String], now: i64) -> Result<Snapshot> {
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
    Ok(Snapshot(revoked))
}

/// Revokes `id`, for `ttl` seconds or until lifted.
pub async fn revoke(env: &Env, id: &str, ttl: Option<u64>, now: i64) -> Result<()> {
    let mut put = env.kv(BINDING)?.put(&key(id), "1").map_err(worker::Error::from)?;
    if let Some(ttl) = ttl {
        put = put.expiration_ttl(ttl.max(MIN_TTL_SECONDS));
    }
    put.execute().await.map_err(worker::Error::from)?;
    remember(id, true, now);
    Ok(())
}

/// Lifts a revocation.
pub async fn unrevoke(env: &Env, id: &str, now: i64) -> Result<()> {
    env.kv(BINDING)?.delete(&key(id)).await.map_err(worker::Error::from)?;
    remember(id, false, now);
    Ok(())
}

/// The block list (cached for [`CACHE_SECONDS`]).
pub async fn blocks(env: &Env, now: i64) -> Result<Rc<Blocks>> {
    if let Some(blocks) = BLOCKS
        .with(|b| b.borrow().as_ref().filter(|(_, at)| now - at < CACHE_SECONDS).map(|(blocks, _)| blocks.clone()))
    {
        return Ok(blocks);
    }
    let list: Vec<Block> =
        env.kv(BINDING)?.get(BLOCKLIST_KEY).json().await.map_err(worker::Error::from)?.unwrap_or_default();
    let blocks = Blocks::new(list);
    BLOCKS.with(|b| *b.borrow_mut() = Some((blocks.clone(), now)));
    Ok(blocks)
}

/// Replaces the block list (an admin action; KV allows about one write per second per key).
pub async fn save_blocks(env: &Env, list: Vec<Block>, now: i64) -> Result<Rc<Blocks>> {
    env.kv(BINDING)?
        .put(BLOCKLIST_KEY, &list)
        .map_err(worker::Error::from)?
        .execute()
        .await
        .map_err(worker::Error::from)?;
    let blocks = Blocks::new(list);
    BLOCKS.with(|b| *b.borrow_mut() = Some((blocks.clone(), now)));
    Ok(blocks)
}
