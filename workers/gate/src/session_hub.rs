//! `SessionHub`: one Durable Object per session key (a user's `sub`, a token's `jti`, or the
//! fingerprint of a token with neither). It only loads and stores: admission, renewal,
//! revocation and usage bounding are [`SessionHubState`]'s, in the core.
//!
//! Segment requests never wait for the hub (that is the hot path): the bytes they serve are
//! counted in the isolate and reported with the session's next heartbeat from it, so a
//! usage record's `bytes` is what that isolate served since its previous heartbeat. A
//! session that only fetches segments (a VOD, which loads its playlist once) sends that
//! heartbeat in the background, at most every half `SESSION_IDLE` per isolate, so it stays
//! counted while it plays.

use std::cell::RefCell;

use streamgate_core::gateway::Tallies;
pub use streamgate_core::sessions::Revocation;
use streamgate_core::sessions::{FlushBatch, Heartbeat, SessionHubState, Verdict, FLUSH_LEASE_SECONDS};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

/// The Durable Object binding.
pub const BINDING: &str = "SESSIONS";

thread_local! {
    static TALLIES: RefCell<Tallies> = RefCell::new(Tallies::default());
}

/// Runs `update` on this isolate's session tallies.
pub fn with_tallies<T>(update: impl FnOnce(&mut Tallies) -> T) -> T {
    TALLIES.with(|tallies| update(&mut tallies.borrow_mut()))
}

const STATE: [&str; 9] =
    ["sessions", "revocations", "usage", "pending", "unrolled", "shapes", "budget", "flushing", "flush"];

/// Where the hub remembers its own key (a Durable Object cannot read the name it was
/// addressed by), for naming what it flushes.
const KEY: &str = "key";

#[durable_object]
pub struct SessionHub {
    state: State,
    env: Env,
}

impl SessionHub {
    /// Each part in its own key, so each has the whole value limit.
    async fn load(&self) -> Result<SessionHubState> {
        let storage = self.state.storage();
        let [sessions, revocations, usage, pending, unrolled, shapes, budget, flushing, flush] = STATE;
        Ok(SessionHubState {
            list: storage.get(sessions).await?.unwrap_or_default(),
            revocations: storage.get(revocations).await?.unwrap_or_default(),
            usage: storage.get(usage).await?.unwrap_or_default(),
            pending: storage.get(pending).await?.unwrap_or_default(),
            unrolled: storage.get(unrolled).await?.unwrap_or_default(),
            shapes: storage.get(shapes).await?.unwrap_or_default(),
            budget: storage.get(budget).await?.unwrap_or_default(),
            flushing: storage.get(flushing).await?,
            flush: storage.get(flush).await?.unwrap_or_default(),
        })
    }

    async fn store(&self, hub: &SessionHubState) -> Result<()> {
        let storage = self.state.storage();
        let [sessions, revocations, usage, pending, unrolled, shapes, budget, flushing, flush] = STATE;
        storage.put(sessions, &hub.list).await?;
        storage.put(revocations, &hub.revocations).await?;
        storage.put(usage, &hub.usage).await?;
        storage.put(pending, &hub.pending).await?;
        storage.put(unrolled, &hub.unrolled).await?;
        storage.put(shapes, &hub.shapes).await?;
        storage.put(budget, &hub.budget).await?;
        storage.put(flush, &hub.flush).await?;
        match hub.flushing {
            Some(until) => storage.put(flushing, until).await,
            None => storage.delete(flushing).await.map(|_| ()),
        }
    }

    /// Starts a flush of `hub`'s pending usage records: in the alarm's handler, of all of
    /// them; on a heartbeat, when one is due. The hub, stored with the flush's lease before
    /// the flush awaits R2 and D1, keeps them until they are written. A heartbeat makes sure
    /// an alarm comes: at the lease's end while a flush runs (its writer may be evicted),
    /// else when the oldest record's bucket ends (the alarm's handler sets none: the
    /// heartbeats that add records meanwhile do). Scheduling errors are left to the next
    /// heartbeat: the verdict stands.
    async fn begin_flush(&self, hub: &mut SessionHubState, now: i64, in_alarm: bool) -> Option<FlushBatch> {
        let bucket = bucket_seconds(&self.env);
        let batch = hub.begin_flush(now, (!in_alarm).then_some(bucket));
        if in_alarm {
            return batch;
        }
        let next = match (&batch, hub.flush_due(now, bucket)) {
            (Some(_), _) => Some(FLUSH_LEASE_SECONDS),
            (None, Some(due)) => Some(due.saturating_sub(now).max(1)),
            (None, None) => None,
        };
        if let Some(seconds) = next {
            let storage = self.state.storage();
            if batch.is_some() || matches!(storage.get_alarm().await, Ok(None)) {
                // An i64 is an offset from now, in milliseconds.
                let _ = storage.set_alarm(seconds.saturating_mul(1000)).await;
            }
        }
        batch
    }

    /// Writes `batch` to detection's storage, then ends the flush in the hub as it is by
    /// then (other requests may have run while R2 and D1 were awaited): what was written
    /// leaves it; a part that failed stays pending, retried by an alarm soon. After a
    /// heartbeat's flush, records added meanwhile get the alarm of their bucket's end.
    async fn flush(&self, batch: FlushBatch, in_alarm: bool) -> Result<()> {
        let key: Option<String> = self.state.storage().get(KEY).await?;
        let hub_key = key.as_deref().unwrap_or("unknown");
        let bucket = bucket_seconds(&self.env);
        let (stored, outcome) =
            crate::guardian::store_flush(&self.env, hub_key, &batch, bucket, crate::now_seconds()).await;
        if let Err(error) = &outcome {
            worker::console_error!("usage flush failed ({stored:?} stored), the rest kept for a retry: {error}");
        }
        let now = crate::now_seconds();
        let mut hub = self.load().await?;
        let dropped = hub.flushed(&batch, stored, now);
        if dropped > 0 {
            worker::console_error!(
                "usage flush: {dropped} records stored raw but never rolled up (rollups kept failing)"
            );
        }
        self.store(&hub).await?;
        let next = match (outcome.is_ok(), hub.flush_due(now, bucket)) {
            // After the back-off the failure set.
            (false, due) => Some(due.or(hub.flush.retry_at).map_or(1, |at| at.saturating_sub(now).max(1))),
            (true, Some(due)) if !in_alarm => Some(due.saturating_sub(now).max(1)),
            (true, _) => None,
        };
        let storage = self.state.storage();
        match next {
            // An i64 is an offset from now, in milliseconds.
            Some(seconds) => drop(storage.set_alarm(seconds.saturating_mul(1000)).await),
            // The lease's alarm would hide the next records' due time from their heartbeats.
            None if !in_alarm => drop(storage.delete_alarm().await),
            None => {}
        }
        outcome
    }
}

/// The Guardian's time bucket, seconds.
fn bucket_seconds(env: &Env) -> i64 {
    crate::settings::get(env).map_or(300, |s| s.guardian.bucket_seconds)
}

impl DurableObject for SessionHub {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/heartbeat") => {
                let beat: Heartbeat = req.json().await?;
                let now = beat.now;
                if let Some(key) = req.headers().get(KEY_HEADER)? {
                    self.state.storage().put(KEY, key).await?;
                }
                let mut hub = self.load().await?;
                let verdict = hub.heartbeat(beat);
                let batch = self.begin_flush(&mut hub, now, false).await;
                self.store(&hub).await?;
                if let Some(batch) = batch {
                    // A failed flush is retried by the alarm; the verdict stands.
                    let _ = self.flush(batch, false).await;
                }
                Response::from_json(&verdict)
            }
            (Method::Post, "/revoke" | "/unrevoke") => {
                let revocation: Revocation = req.json().await?;
                let mut hub = self.load().await?;
                hub.set_revoked(revocation, path == "/revoke");
                self.store(&hub).await?;
                Response::ok("ok")
            }
            (Method::Get, "/sessions") => {
                let hub = self.load().await?;
                Response::from_json(&serde_json::json!({ "sessions": hub.list.sessions, "usage": hub.usage }))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let mut hub = self.load().await?;
        let now = crate::now_seconds();
        let batch = self.begin_flush(&mut hub, now, true).await;
        self.store(&hub).await?;
        match batch {
            // What failed stays pending, and an alarm retries it.
            Some(batch) => drop(self.flush(batch, true).await),
            // A flush cut off mid-way (a deploy) holds its lease a while: come back then.
            None => {
                if let Some(until) = hub.held_back_until(now) {
                    let seconds = until.saturating_sub(now).max(1);
                    // An i64 is an offset from now, in milliseconds.
                    drop(self.state.storage().set_alarm(seconds.saturating_mul(1000)).await);
                }
            }
        }
        Response::ok("flushed")
    }
}

/// The header a heartbeat names its hub's key in.
const KEY_HEADER: &str = "X-Session-Key";

fn stub(env: &Env, key: &str) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.id_from_name(key)?.get_stub()
}

async fn call(env: &Env, key: &str, method: Method, path: &str, body: Option<String>) -> Result<Response> {
    let mut init = worker::RequestInit::new();
    init.with_method(method);
    let headers = worker::Headers::new();
    headers.set(KEY_HEADER, key)?;
    init.with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let request = Request::new_with_init(&format!("https://session-hub{path}"), &init)?;
    stub(env, key)?.fetch_with_request(request).await
}

/// Sends a heartbeat to `key`'s hub.
pub async fn heartbeat(env: &Env, key: &str, beat: &Heartbeat) -> Result<Verdict> {
    let body = serde_json::to_string(beat).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut response = call(env, key, Method::Post, "/heartbeat", Some(body)).await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(format!("session hub answered {}", response.status_code())));
    }
    response.json().await
}

/// Tells `key`'s hub that a revocation id (a `jti` or a token fingerprint) is revoked
/// (until `revocation.until`, when set) or, with `revoked` false, no longer is.
pub async fn set_revoked(env: &Env, key: &str, revocation: &Revocation, revoked: bool) -> Result<()> {
    let path = if revoked { "/revoke" } else { "/unrevoke" };
    let body = serde_json::to_string(revocation).map_err(|e| worker::Error::RustError(e.to_string()))?;
    call(env, key, Method::Post, path, Some(body)).await.map(|_| ())
}

/// The sessions and recent usage of `key`.
pub async fn list(env: &Env, key: &str) -> Result<Response> {
    call(env, key, Method::Get, "/sessions", None).await
}
