//! One node's state in memory: revocations and blocks (persisted to the `--state` file on
//! every change, read back at start), one [`SessionHubState`] per session key behind its
//! own lock, and a bounded log of usage records.
//!
//! Session hubs and usage records live in memory only: a restart forgets open sessions
//! (their players are admitted again on their next playlist fetch, within the limit) and the
//! usage not yet exported. Revocations and blocks, which a restart must never lose, are on
//! disk before the admin API answers.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use streamgate_core::detection::{UsageEvent, Window};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::{in_force, Blocks};
use streamgate_core::sessions::SessionHubState;

use super::persist::{self, BlockedRange, BlockedReferrer, Persisted, RevokedId};
use super::{State, StateError, StateResult};

/// Usage records kept at most (about 30 MB); the oldest go first.
pub const MAX_USAGE_RECORDS: usize = 100_000;

/// How often idle hubs are swept, seconds.
const SWEEP_INTERVAL_SECONDS: i64 = 60;

/// Revocations and blocks, with the block lists as the request path reads them.
#[derive(Clone, Default)]
struct Lists {
    revocations: HashMap<String, Option<i64>>,
    blocks: Vec<(IpRange, Option<i64>)>,
    referrers: Vec<(String, Option<i64>)>,
    /// The block lists built for requests, and until when they stand (a referrer block
    /// lapses then); `None` after a change.
    snapshot: Option<(Arc<Blocks>, Option<i64>)>,
}

impl Lists {
    /// These lists with every entry of `before` that outlasts its counterpart here (or
    /// has none) put back: the stronger of the two. Also tells what differed: whether
    /// `before` was stronger anywhere (the change lifted or shortened something), and
    /// whether these lists were (it added or extended something).
    fn strongest_with(self, before: Lists) -> (Lists, Effect) {
        let (revocations, a) = keep_outlasting(self.revocations, before.revocations);
        let (blocks, b) = keep_outlasting(self.blocks, before.blocks);
        let (referrers, c) = keep_outlasting(self.referrers, before.referrers);
        let effect = Effect { lifted: a.lifted || b.lifted || c.lifted, added: a.added || b.added || c.added };
        (Lists { revocations, blocks, referrers, snapshot: None }, effect)
    }

    fn from_persisted(persisted: Persisted) -> Lists {
        Lists {
            revocations: persisted.revocations.into_iter().map(|r| (r.id, r.until)).collect(),
            blocks: persisted.blocks.into_iter().map(|b| (b.range, b.until)).collect(),
            referrers: persisted.referrers.into_iter().map(|r| (r.host, r.until)).collect(),
            snapshot: None,
        }
    }

    /// What the file keeps: the entries still in force at `now`.
    fn to_persisted(&self, now: i64) -> Persisted {
        let live = |until: &Option<i64>| in_force(*until, now);
        let mut revocations: Vec<RevokedId> = self
            .revocations
            .iter()
            .filter(|(_, until)| live(until))
            .map(|(id, until)| RevokedId { id: id.clone(), until: *until })
            .collect();
        revocations.sort_by(|a, b| a.id.cmp(&b.id));
        Persisted {
            revocations,
            blocks: self
                .blocks
                .iter()
                .filter(|(_, until)| live(until))
                .map(|(range, until)| BlockedRange { range: *range, until: *until })
                .collect(),
            referrers: self
                .referrers
                .iter()
                .filter(|(_, until)| live(until))
                .map(|(host, until)| BlockedReferrer { host: host.clone(), until: *until })
                .collect(),
            ..Persisted::empty()
        }
    }

    fn build_snapshot(&self, now: i64) -> (Arc<Blocks>, Option<i64>) {
        let live_referrers = self.referrers.iter().filter(|(_, until)| in_force(*until, now));
        let stands_until = live_referrers.clone().filter_map(|(_, until)| *until).min();
        let blocks = Blocks {
            lookup: self.blocks.iter().copied().collect(),
            referrers: live_referrers.map(|(host, _)| host.clone()).collect(),
        };
        (Arc::new(blocks), stands_until)
    }
}

/// Revocations and blocks, and the file they are kept in; shared with the task that
/// writes a change.
struct Durable {
    lists: RwLock<Lists>,
    /// The `--state` file, if any.
    file: Option<PathBuf>,
    /// One file write at a time, each with the state as it is when it starts.
    writing: tokio::sync::Mutex<()>,
}

impl Durable {
    /// Applies `change` to the lists and writes them to the file, one change at a time. If
    /// the write fails, whatever the change lifted or shortened (an unrevoke, an unblock, a
    /// revocation or block given an earlier end) is undone, so this node never enforces
    /// less than a restart would bring back; what it added or extended stays in force here
    /// (failing closed), and the error says that a restart would lose it.
    async fn change<T>(&self, now: i64, change: impl FnOnce(&mut Lists) -> T) -> StateResult<T> {
        let _one_writer = self.writing.lock().await;
        let (before, changed) = {
            let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
            let before = lists.clone();
            let changed = change(&mut lists);
            lists.snapshot = None;
            (before, changed)
        };
        let Err(StateError(why)) = self.save_locked(now).await else { return Ok(changed) };
        let Effect { lifted, added } = {
            let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
            let (strongest, effect) = std::mem::take(&mut *lists).strongest_with(before);
            *lists = strongest;
            effect
        };
        let mut error = why;
        if lifted {
            error.push_str("; nothing was lifted");
        }
        if added {
            error.push_str("; in force on this node, but a restart would lose it: retry");
        }
        Err(StateError(error))
    }

    /// Writes the lists as they are now to the file, if there is one.
    async fn save(&self, now: i64) -> StateResult<()> {
        let _one_writer = self.writing.lock().await;
        self.save_locked(now).await
    }

    /// [`Self::save`], the caller holding the writer lock.
    async fn save_locked(&self, now: i64) -> StateResult<()> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        let persisted = self.lists.read().unwrap_or_else(PoisonError::into_inner).to_persisted(now);
        tokio::task::spawn_blocking(move || persist::store(&file, &persisted))
            .await
            .map_err(|e| StateError(format!("the state writer stopped: {e}")))?
    }
}

/// Removes the entries named `name` from `entries`; returns whether one was in force.
fn take_entry<T: PartialEq>(entries: &mut Vec<(T, Option<i64>)>, name: &T, now: i64) -> bool {
    let mut lifted = false;
    entries.retain(|(kept, until)| {
        let taken = kept == name;
        lifted |= taken && in_force(*until, now);
        !taken
    });
    lifted
}

/// The hubs, and when they were last swept.
#[derive(Default)]
struct Hubs {
    by_key: HashMap<String, Arc<Mutex<SessionHubState>>>,
    swept: i64,
}

/// The in-memory backend (see the module docs).
pub struct MemoryState {
    durable: Arc<Durable>,
    hubs: Mutex<Hubs>,
    usage: Mutex<VecDeque<UsageEvent>>,
    /// A hub with no session seen, no usage recorded and no revocation in force for this
    /// long is dropped.
    hub_retention: i64,
}

/// What a change did to the lists, judged by its effect.
#[derive(Clone, Copy, Default)]
struct Effect {
    /// Something stopped being enforced, or will stop sooner.
    lifted: bool,
    /// Something is enforced that was not, or will be for longer.
    added: bool,
}

/// Whether an entry lasting `until` outlasts one lasting `other` (`None` is for ever).
fn outlasts(until: Option<i64>, other: Option<i64>) -> bool {
    match (until, other) {
        (None, other) => other.is_some(),
        (Some(_), None) => false,
        (Some(end), Some(other_end)) => end > other_end,
    }
}

/// The entries of `after`, with those of `before` that outlast theirs (or have none) put
/// back; keyed by what they revoke or block.
fn keep_outlasting<K: Hash + Eq, L>(after: L, before: L) -> (L, Effect)
where
    L: IntoIterator<Item = (K, Option<i64>)> + FromIterator<(K, Option<i64>)>,
{
    let mut merged: HashMap<K, Option<i64>> = after.into_iter().collect();
    let mut effect = Effect { lifted: false, added: false };
    let mut seen = 0;
    for (key, until) in before {
        seen += 1;
        match merged.get_mut(&key) {
            Some(now) if outlasts(until, *now) => {
                *now = until;
                effect.lifted = true;
            }
            Some(now) => effect.added |= outlasts(*now, until),
            None => {
                merged.insert(key, until);
                effect.lifted = true;
            }
        }
    }
    // An entry of `after` that `before` lacked is an addition.
    effect.added |= merged.len() > seen;
    (merged.into_iter().collect(), effect)
}

/// A lock whose holder panicked is still consistent here: every critical section below
/// either completes its change or makes none.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryState {
    /// A state kept in memory only (tests, or a gate whose revocations need not survive).
    pub fn in_memory(hub_retention: i64) -> MemoryState {
        MemoryState::with_durable(Lists::default(), None, hub_retention)
    }

    fn with_durable(lists: Lists, file: Option<PathBuf>, hub_retention: i64) -> MemoryState {
        MemoryState {
            durable: Arc::new(Durable { lists: RwLock::new(lists), file, writing: tokio::sync::Mutex::new(()) }),
            hubs: Mutex::new(Hubs::default()),
            usage: Mutex::new(VecDeque::new()),
            hub_retention,
        }
    }

    /// A state whose revocations and blocks are read from `file` (if it exists) and written
    /// to it on every change. A file that exists but cannot be read is an error.
    pub fn open(file: PathBuf, hub_retention: i64) -> StateResult<MemoryState> {
        let persisted = persist::load(&file)?;
        Ok(MemoryState::with_durable(Lists::from_persisted(persisted), Some(file), hub_retention))
    }

    /// [`Durable::change`] in a task of its own: once applied, a change is saved or undone
    /// even if the request that made it goes away (dropping this future leaves the task
    /// running), so memory and the file never disagree by a lift.
    async fn change<T: Send + 'static>(
        &self,
        now: i64,
        change: impl FnOnce(&mut Lists) -> T + Send + 'static,
    ) -> StateResult<T> {
        let durable = Arc::clone(&self.durable);
        tokio::spawn(async move { durable.change(now, change).await })
            .await
            .map_err(|e| StateError(format!("the state writer stopped: {e}")))?
    }

    /// The hub of `key`, created empty when missing; sweeps idle hubs now and then.
    fn hub_of(&self, key: &str, now: i64) -> Arc<Mutex<SessionHubState>> {
        let mut hubs = lock(&self.hubs);
        if now.saturating_sub(hubs.swept) >= SWEEP_INTERVAL_SECONDS {
            hubs.swept = now;
            let retention = self.hub_retention;
            // A hub someone else holds (its Arc is shared) is never dropped: a second hub
            // for the same key would break the atomicity of admission.
            hubs.by_key.retain(|_, hub| Arc::strong_count(hub) > 1 || !idle(&lock(hub), now, retention));
        }
        hubs.by_key.entry(key.to_owned()).or_default().clone()
    }

    fn keep_usage(&self, records: Vec<UsageEvent>) {
        if records.is_empty() {
            return;
        }
        let mut usage = lock(&self.usage);
        usage.extend(records);
        let excess = usage.len().saturating_sub(MAX_USAGE_RECORDS);
        usage.drain(..excess);
    }
}

/// Whether a hub has nothing worth keeping at `now`.
fn idle(hub: &SessionHubState, now: i64, retention: i64) -> bool {
    let recent = |at: i64| now.saturating_sub(at) < retention;
    !hub.list.sessions.iter().any(|s| recent(s.seen))
        && !hub.usage.last().is_some_and(|record| recent(record.at))
        && !hub.revocations.iter().any(|r| in_force(r.until, now))
}

impl State for MemoryState {
    async fn revoked(&self, ids: &[String], now: i64) -> StateResult<Vec<String>> {
        let lists = self.durable.lists.read().unwrap_or_else(PoisonError::into_inner);
        let revoked = |id: &&String| lists.revocations.get(*id).is_some_and(|until| in_force(*until, now));
        Ok(ids.iter().filter(revoked).cloned().collect())
    }

    fn revocations_known_empty(&self) -> bool {
        self.durable.lists.read().unwrap_or_else(PoisonError::into_inner).revocations.is_empty()
    }

    async fn revoke(&self, id: &str, until: Option<i64>, now: i64) -> StateResult<()> {
        let id = id.to_owned();
        self.change(now, move |lists| {
            lists.revocations.insert(id, until);
        })
        .await
    }

    async fn unrevoke(&self, id: &str, now: i64) -> StateResult<bool> {
        let id = id.to_owned();
        // A lapsed entry is removed, but was lifted already (as at the edge, where KV drops it).
        self.change(now, move |lists| lists.revocations.remove(&id).is_some_and(|until| in_force(until, now))).await
    }

    async fn blocks(&self, now: i64) -> StateResult<Arc<Blocks>> {
        let fresh = |snapshot: &Option<(Arc<Blocks>, Option<i64>)>| {
            snapshot.as_ref().filter(|(_, until)| in_force(*until, now)).map(|(blocks, _)| blocks.clone())
        };
        if let Some(blocks) = fresh(&self.durable.lists.read().unwrap_or_else(PoisonError::into_inner).snapshot) {
            return Ok(blocks);
        }
        let mut lists = self.durable.lists.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(blocks) = fresh(&lists.snapshot) {
            return Ok(blocks);
        }
        let (blocks, until) = lists.build_snapshot(now);
        lists.snapshot = Some((blocks.clone(), until));
        Ok(blocks)
    }

    async fn block(&self, range: IpRange, until: Option<i64>, now: i64) -> StateResult<()> {
        self.change(now, move |lists| {
            lists.blocks.retain(|(r, _)| *r != range);
            lists.blocks.push((range, until));
        })
        .await
    }

    async fn unblock(&self, range: IpRange, now: i64) -> StateResult<bool> {
        self.change(now, move |lists| take_entry(&mut lists.blocks, &range, now)).await
    }

    async fn block_referrer(&self, host: &str, until: Option<i64>, now: i64) -> StateResult<()> {
        let host = host.to_owned();
        self.change(now, move |lists| {
            lists.referrers.retain(|(h, _)| *h != host);
            lists.referrers.push((host, until));
        })
        .await
    }

    async fn unblock_referrer(&self, host: &str, now: i64) -> StateResult<bool> {
        let host = host.to_owned();
        self.change(now, move |lists| take_entry(&mut lists.referrers, &host, now)).await
    }

    async fn update_hub<T, F>(&self, key: &str, now: i64, mut update: F) -> StateResult<T>
    where
        T: Send,
        F: FnMut(&mut SessionHubState) -> T + Send,
    {
        let hub = self.hub_of(key, now);
        let (result, records) = {
            let mut hub = lock(&hub);
            let result = update(&mut hub);
            // Token shapes feed the edge's Guardian view, which this gate has not.
            let records = hub.take_flush().records;
            (result, records)
        };
        self.keep_usage(records);
        Ok(result)
    }

    async fn hub(&self, key: &str) -> StateResult<SessionHubState> {
        let hub = lock(&self.hubs).by_key.get(key).cloned();
        Ok(hub.map(|hub| lock(&hub).clone()).unwrap_or_default())
    }

    async fn usage(&self, window: Window, max_records: usize) -> StateResult<(Vec<UsageEvent>, bool)> {
        let usage = lock(&self.usage);
        let mut in_window = usage.iter().filter(|record| window.contains(record.at));
        let records: Vec<UsageEvent> = in_window.by_ref().take(max_records).cloned().collect();
        let truncated = in_window.next().is_some();
        Ok((records, truncated))
    }

    async fn flush(&self, now: i64) -> StateResult<()> {
        // Every change is on disk before it is acknowledged: this only drops lapsed entries.
        self.durable.save(now).await
    }
}

#[cfg(test)]
mod tests {
    use streamgate_core::revocation::IpBlocklist;
    use streamgate_core::sessions::{AtLimit, BeatKind, Heartbeat, Verdict, Viewer};

    use super::*;

    fn beat(sid: &str, now: i64, limit: u32) -> Heartbeat {
        Heartbeat {
            sid: sid.into(),
            kind: BeatKind::Start,
            ids: vec!["jti-1".into()],
            limit: Some(limit),
            now,
            idle: 60,
            at_limit: AtLimit::RejectNew,
            viewer: Viewer::default(),
            record: UsageEvent { at: now, sid: sid.into(), token: "jti-1".into(), ..UsageEvent::default() },
            shape: None,
        }
    }

    #[tokio::test]
    async fn knows_when_it_holds_no_revocation() {
        let state = MemoryState::in_memory(3_600);
        assert!(state.revocations_known_empty());
        state.revoke("jti-1", Some(50), 10).await.unwrap();
        assert!(!state.revocations_known_empty());
        assert_eq!(state.revoked(&["jti-1".into()], 20).await.unwrap(), ["jti-1"]);
        state.unrevoke("jti-1", 20).await.unwrap();
        assert!(state.revocations_known_empty());
    }

    #[tokio::test]
    async fn hubs_admit_under_the_limit_and_hand_their_records_to_the_usage_log() {
        let state = MemoryState::in_memory(3_600);
        for (i, sid) in ["a", "b", "c"].iter().enumerate() {
            let verdict = state.update_hub("jti:jti-1", 10, |hub| hub.heartbeat(beat(sid, 10 + i as i64, 2))).await;
            let expected = if i < 2 {
                Verdict::Admitted { active: i as u32 + 1, unrecorded_bytes: None }
            } else {
                Verdict::Full { limit: 2, active: 2 }
            };
            assert_eq!(verdict, Ok(expected), "{sid}");
        }
        assert!(state.hub("jti:jti-1").await.unwrap().pending.is_empty(), "pending records moved to the log");
        let (records, truncated) = state.usage(Window::new(0, 100), 10).await.unwrap();
        assert_eq!((records.len(), truncated), (2, false));
        let (first, truncated) = state.usage(Window::new(0, 100), 1).await.unwrap();
        assert_eq!((first.len(), first[0].sid.as_str(), truncated), (1, "a", true));
        assert!(state.usage(Window::new(12, 100), 10).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn idle_hubs_are_swept_and_busy_ones_kept() {
        let state = MemoryState::in_memory(100);
        state.update_hub("jti:old", 0, |hub| hub.heartbeat(beat("a", 0, 5))).await.unwrap();
        state.update_hub("jti:new", 150, |hub| hub.heartbeat(beat("b", 150, 5))).await.unwrap();
        state.update_hub("jti:new", 200, |hub| hub.heartbeat(beat("b", 200, 5))).await.unwrap();
        let keys: Vec<String> = lock(&state.hubs).by_key.keys().cloned().collect();
        assert_eq!(keys, vec!["jti:new".to_owned()]);
    }

    #[tokio::test]
    async fn revocations_and_blocks_lapse_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let state = MemoryState::open(file.clone(), 3_600).unwrap();
        let ids = vec!["jti-1".to_owned(), "jti-2".to_owned()];
        state.revoke("jti-1", None, 0).await.unwrap();
        state.revoke("jti-2", Some(50), 0).await.unwrap();
        assert_eq!(state.revoked(&ids, 49).await.unwrap(), ids);
        assert_eq!(state.revoked(&ids, 50).await.unwrap(), vec!["jti-1".to_owned()]);
        let range = IpRange::parse("192.0.2.0/24").unwrap();
        state.block(range, None, 0).await.unwrap();
        state.block_referrer("pirate.test", Some(20), 0).await.unwrap();
        let blocks = state.blocks(10).await.unwrap();
        assert_eq!(blocks.referrers, vec!["pirate.test".to_owned()]);
        assert!(state.blocks(20).await.unwrap().referrers.is_empty(), "the referrer block lapsed");

        let reopened = MemoryState::open(file.clone(), 3_600).unwrap();
        assert_eq!(reopened.revoked(&ids, 10).await.unwrap(), ids);
        use streamgate_core::revocation::IpBlocklist;
        assert!(reopened.blocks(10).await.unwrap().lookup.is_blocked("192.0.2.9".parse().unwrap(), 10));
        reopened.unrevoke("jti-1", 60).await.unwrap();
        reopened.unblock(range, 60).await.unwrap();
        let persisted = persist::load(&file).unwrap();
        assert!(persisted.revocations.is_empty(), "lifted, and jti-2 lapsed at 50: {persisted:?}");
        assert!(persisted.blocks.is_empty());
    }

    /// Regression (review): a change whose save failed stayed in memory while the admin saw
    /// 503, so an unrevoke "refused" was in fact in force until the next restart brought the
    /// revocation back.
    #[tokio::test]
    async fn a_change_that_cannot_be_saved_lifts_nothing_and_adds_only_in_force() {
        let folder = std::env::temp_dir().join(format!("streamgate-unsaved-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let state = MemoryState::open(folder.join("state.json"), 3_600).unwrap();
        let range = IpRange::parse("203.0.113.0/24").unwrap();
        state.revoke("kept", None, 10).await.unwrap();
        state.block(range, None, 10).await.unwrap();
        state.block_referrer("bad.example", None, 10).await.unwrap();
        // The folder becomes a file: every write fails, even for root.
        std::fs::remove_dir_all(&folder).unwrap();
        std::fs::write(&folder, b"not a folder").unwrap();

        let lifted = state.unrevoke("kept", 20).await.unwrap_err();
        assert!(lifted.0.contains("nothing was lifted"), "{lifted}");
        assert_eq!(state.revoked(&["kept".into()], 20).await.unwrap(), ["kept"]);
        assert!(state.unblock(range, 20).await.is_err());
        assert!(state.unblock_referrer("bad.example", 20).await.is_err());
        let blocks = state.blocks(20).await.unwrap();
        assert!(blocks.lookup.is_blocked("203.0.113.9".parse().unwrap(), 20));
        assert_eq!(blocks.referrers, ["bad.example"]);

        let added = state.revoke("new", None, 30).await.unwrap_err();
        assert!(added.0.contains("a restart would lose it"), "{added}");
        assert!(!added.0.contains("nothing was lifted"), "{added}");
        assert_eq!(state.revoked(&["new".into()], 30).await.unwrap(), ["new"], "in force on this node");

        // Judged by effect, not by the call: a revocation or block given an earlier end is
        // a lift too (review).
        let shortened = state.revoke("kept", Some(25), 30).await.unwrap_err();
        assert!(shortened.0.contains("nothing was lifted"), "{shortened}");
        assert_eq!(state.revoked(&["kept".into()], 40).await.unwrap(), ["kept"]);
        assert!(state.block(range, Some(25), 30).await.is_err());
        assert!(state.blocks(40).await.unwrap().lookup.is_blocked("203.0.113.9".parse().unwrap(), 40));
        std::fs::remove_file(&folder).unwrap();
    }

    /// Regression (review): a change whose request went away while the file was written
    /// (the admin's connection closed) left the write running unwatched: memory and the
    /// file could disagree, and the next change could write the same file at once. The
    /// change runs to its end in a task of its own.
    #[tokio::test]
    async fn a_change_dropped_while_it_saves_still_completes() {
        use std::future::Future;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let state = MemoryState::open(file.clone(), 3_600).unwrap();
        state.revoke("kept", None, 10).await.unwrap();
        // Polled once (it starts), then dropped.
        let mut change = Box::pin(state.unrevoke("kept", 20));
        let polled = change.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        assert!(polled.is_pending(), "the write had not finished");
        drop(change);
        // The next change waits for the writer, then both are in memory and on disk.
        state.revoke("other", None, 30).await.unwrap();
        assert_eq!(state.revoked(&["kept".into(), "other".into()], 30).await.unwrap(), ["other"]);
        let persisted = persist::load(&file).unwrap();
        let ids: Vec<&str> = persisted.revocations.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["other"]);
    }
}
