//! Where the gate keeps what outlives a request: revocations, block lists, the session hubs
//! (one [`SessionHubState`] per session key, as the edge keeps one Durable Object per key)
//! and usage records. Behind one trait, so a backend shared by several nodes (Redis) can
//! stand in for the one-node [`memory::MemoryState`].
//!
//! What a backend must guarantee:
//! - **Admission is atomic per session key.** [`State::update_hub`] runs its closure on the
//!   hub of one key with no other update of that key interleaved, so 20 parallel session
//!   starts under a limit of 3 admit exactly 3, whichever node they reach. A backend with
//!   optimistic concurrency (Redis `WATCH`/`MULTI`) may run the closure more than once, each
//!   time on fresh state, and keeps only the run that committed: the closure is `FnMut` and
//!   must not have effects outside the hub it is given.
//! - **Revocations and blocks are durable** once the call returns: the admin API answers
//!   only after they are stored, and a restart loses none of them.
//! - **Usage records are kept** for [`State::usage`]: records an update leaves in the hub's
//!   `pending` list belong to the backend from then on (the edge flushes the same list to
//!   R2), so the backend takes them out of the hub.
//!
//! Every method takes `now` where time matters; backends read no clock, so tests and the
//! core agree on time.

pub mod memory;
mod persist;
pub mod redis;

use std::future::Future;
use std::sync::Arc;

use streamgate_core::detection::{UsageEvent, Window};
use streamgate_core::policy::ip::IpRange;
use streamgate_core::revocation::Blocks;
use streamgate_core::sessions::SessionHubState;

/// A store failure (an I/O or network error), as text for logs and the 503 it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state store: {}", self.0)
    }
}

impl std::error::Error for StateError {}

/// The result of a state operation.
pub type StateResult<T> = Result<T, StateError>;

/// Revocations, block lists, session hubs and usage records (see the module docs for what
/// each backend must guarantee).
pub trait State: Send + Sync + 'static {
    /// Which of `ids` (a `jti`, a token fingerprint) are revoked at `now`.
    fn revoked(&self, ids: &[String], now: i64) -> impl Future<Output = StateResult<Vec<String>>> + Send;

    /// Whether no revocation is stored, known without a round trip (see
    /// [`Io::revocations_known_empty`]); the provided `false` is always safe.
    ///
    /// [`Io::revocations_known_empty`]: streamgate_core::gateway::Io::revocations_known_empty
    fn revocations_known_empty(&self) -> bool {
        false
    }

    /// Revokes `id` until `until` (unix seconds; `None` until lifted).
    fn revoke(&self, id: &str, until: Option<i64>, now: i64) -> impl Future<Output = StateResult<()>> + Send;

    /// Lifts the revocation of `id`; returns whether there was one.
    fn unrevoke(&self, id: &str, now: i64) -> impl Future<Output = StateResult<bool>> + Send;

    /// The IP and referrer block lists in force at `now`.
    fn blocks(&self, now: i64) -> impl Future<Output = StateResult<Arc<Blocks>>> + Send;

    /// Blocks `range` until `until` (`None` until lifted).
    fn block(&self, range: IpRange, until: Option<i64>, now: i64) -> impl Future<Output = StateResult<()>> + Send;

    /// Lifts the block of exactly `range`; returns whether there was one.
    fn unblock(&self, range: IpRange, now: i64) -> impl Future<Output = StateResult<bool>> + Send;

    /// Blocks referrer `host` (a host or a `*.` wildcard, as
    /// [`streamgate_core::policy::blocked_referrer_host`] gives it) until `until`.
    fn block_referrer(&self, host: &str, until: Option<i64>, now: i64) -> impl Future<Output = StateResult<()>> + Send;

    /// Lifts the block of exactly referrer `host`; returns whether there was one.
    fn unblock_referrer(&self, host: &str, now: i64) -> impl Future<Output = StateResult<bool>> + Send;

    /// Runs `update` on the hub of session key `key` atomically (see the module docs), and
    /// keeps the usage records it leaves pending. A key without a hub starts from an empty one.
    fn update_hub<T, F>(&self, key: &str, now: i64, update: F) -> impl Future<Output = StateResult<T>> + Send
    where
        T: Send,
        F: FnMut(&mut SessionHubState) -> T + Send;

    /// The hub of `key` as it is (empty when there is none), for `GET /admin/sessions`.
    fn hub(&self, key: &str) -> impl Future<Output = StateResult<SessionHubState>> + Send;

    /// The usage records with `window.from <= at < window.to`, oldest first, at most
    /// `max_records`; the flag says whether the window held more.
    fn usage(
        &self,
        window: Window,
        max_records: usize,
    ) -> impl Future<Output = StateResult<(Vec<UsageEvent>, bool)>> + Send;

    /// Writes out whatever is still only in memory, as of `now` (called at shutdown).
    fn flush(&self, now: i64) -> impl Future<Output = StateResult<()>> + Send;
}
