//! `SessionHub`: one Durable Object per session key (a user's `sub`, a token's `jti`, or the
//! fingerprint of a token with neither).
//! It admits sessions against the limit, treats playlist reloads as heartbeats, records
//! what misuse detection needs (bounded), and learns of revocations at once.
//!
//! Segment requests never wait for the hub (that is the hot path): the bytes they serve are
//! counted in the isolate and reported with the session's next heartbeat from it, so a
//! usage record's `bytes` is what that isolate served since its previous heartbeat. A
//! session that only fetches segments (a VOD, which loads its playlist once) sends that
//! heartbeat in the background, at most every half `SESSION_IDLE` per isolate, so it stays
//! counted while it plays.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use streamgate_core::sessions::{Admission, AtLimit, SessionList};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

/// The Durable Object binding.
pub const BINDING: &str = "SESSIONS";
/// Usage records kept per key (oldest dropped first).
pub const MAX_RECORDS: usize = 256;

/// Sessions whose served bytes one isolate tracks between heartbeats; beyond this, new
/// sessions go uncounted (their records say `bytes: null`) until a heartbeat frees a slot.
const MAX_COUNTED_SESSIONS: usize = 4096;

thread_local! {
    static SERVED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
    static LAST_BEAT: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Notes that session `sid` sent a heartbeat from this isolate at `now`.
pub fn note_beat(sid: &str, now: i64) {
    LAST_BEAT.with(|beats| {
        let mut beats = beats.borrow_mut();
        if beats.len() >= MAX_COUNTED_SESSIONS && !beats.contains_key(sid) {
            // Sessions not seen for an hour have long ended or moved to another isolate.
            beats.retain(|_, at| now - *at < 3_600);
            if beats.len() >= MAX_COUNTED_SESSIONS {
                beats.clear();
            }
        }
        beats.insert(sid.to_owned(), now);
    });
}

/// Whether session `sid`, seen on a segment request, is due a heartbeat: none from this
/// isolate in the last `interval` seconds. A due one is noted as sent.
pub fn beat_due(sid: &str, now: i64, interval: i64) -> bool {
    let due = LAST_BEAT.with(|beats| beats.borrow().get(sid).is_none_or(|at| now - at >= interval));
    if due {
        note_beat(sid, now);
    }
    due
}

/// Counts `bytes` of media served to session `sid` by this isolate.
pub fn count_served(sid: &str, bytes: u64) {
    SERVED.with(|served| {
        let mut served = served.borrow_mut();
        if let Some(total) = served.get_mut(sid) {
            *total = total.saturating_add(bytes);
        } else if served.len() < MAX_COUNTED_SESSIONS {
            served.insert(sid.to_owned(), bytes);
        }
    });
}

/// Takes the bytes counted for `sid` since its last heartbeat from this isolate.
pub fn take_served(sid: &str) -> Option<u64> {
    SERVED.with(|served| served.borrow_mut().remove(sid))
}

/// What a heartbeat records for detection.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UsageRecord {
    pub at: i64,
    pub sid: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub as_organization: Option<String>,
    #[serde(default)]
    pub referer: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Media bytes this isolate served to the session since its previous heartbeat, where known.
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// A session start or playlist reload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub sid: String,
    /// The ids a revocation of the token may be stored under ([`Grant::revocation_ids`]).
    ///
    /// [`Grant::revocation_ids`]: streamgate_core::Grant::revocation_ids
    pub ids: Vec<String>,
    pub limit: Option<u32>,
    pub now: i64,
    pub idle: i64,
    pub at_limit: AtLimit,
    /// A lapsed session credential: refresh the session only if it is still active.
    pub renewal: bool,
    pub record: UsageRecord,
}

/// A revocation as a hub keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Revocation {
    /// A `jti` or a token fingerprint.
    pub id: String,
    /// When the revocation lapses (its TTL), unix seconds; `None` until lifted.
    pub until: Option<i64>,
    /// When it was made (or lifted), unix seconds.
    pub at: i64,
}

/// Where a hub keeps its revocations.
const REVOCATIONS: &str = "revocations";

/// The hub's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    Admitted {
        active: u32,
    },
    Full {
        limit: u32,
        active: u32,
    },
    Revoked,
    /// A renewal for a session that went idle or was evicted.
    Ended,
}

#[durable_object]
pub struct SessionHub {
    state: State,
}

impl DurableObject for SessionHub {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/heartbeat") => {
                let beat: Heartbeat = req.json().await?;
                let revoked: Vec<Revocation> = storage.get(REVOCATIONS).await?.unwrap_or_default();
                if revoked.iter().any(|r| r.until.is_none_or(|until| beat.now < until) && beat.ids.contains(&r.id)) {
                    return Response::from_json(&Verdict::Revoked);
                }
                let mut list: SessionList = storage.get("list").await?.unwrap_or_default();
                let mut records: Vec<UsageRecord> = storage.get("usage").await?.unwrap_or_default();
                let limit = beat.limit.unwrap_or(u32::MAX);
                let verdict = if beat.renewal {
                    // A lapsed playlist URL renews only for the player that has been using it:
                    // a copy handed to another player (another User-Agent) dies with its TTL.
                    let last_seen = records.iter().rev().find(|r| r.sid == beat.sid);
                    let same_player = last_seen.is_none_or(|r| r.user_agent == beat.record.user_agent);
                    (!(same_player && list.renew(&beat.sid, beat.now, beat.idle))).then_some(Verdict::Ended)
                } else {
                    match list.admit(&beat.sid, limit, beat.now, beat.idle, beat.at_limit) {
                        Admission::Admitted => None,
                        Admission::Full { limit, active } => Some(Verdict::Full { limit, active }),
                    }
                };
                storage.put("list", &list).await?;
                if verdict.is_none() {
                    records.push(beat.record);
                    let excess = records.len().saturating_sub(MAX_RECORDS);
                    records.drain(..excess);
                    storage.put("usage", &records).await?;
                }
                let active = u32::try_from(list.sessions.len()).unwrap_or(u32::MAX);
                Response::from_json(&verdict.unwrap_or(Verdict::Admitted { active }))
            }
            (Method::Post, "/revoke" | "/unrevoke") => {
                let revocation: Revocation = req.json().await?;
                let mut revoked: Vec<Revocation> = storage.get(REVOCATIONS).await?.unwrap_or_default();
                // Lifted and lapsed revocations go; what remains is bounded by the live ones.
                revoked.retain(|r| r.id != revocation.id && r.until.is_none_or(|until| revocation.at < until));
                if path == "/revoke" {
                    revoked.push(revocation);
                    // Open sessions end at their next playlist reload.
                    storage.put("list", SessionList::default()).await?;
                }
                storage.put(REVOCATIONS, &revoked).await?;
                Response::ok("ok")
            }
            (Method::Get, "/sessions") => {
                let list: SessionList = storage.get("list").await?.unwrap_or_default();
                let usage: Vec<UsageRecord> = storage.get("usage").await?.unwrap_or_default();
                Response::from_json(&serde_json::json!({ "sessions": list.sessions, "usage": usage }))
            }
            _ => Response::error("not found", 404),
        }
    }
}

fn stub(env: &Env, key: &str) -> Result<worker::Stub> {
    env.durable_object(BINDING)?.id_from_name(key)?.get_stub()
}

async fn call(env: &Env, key: &str, method: Method, path: &str, body: Option<String>) -> Result<Response> {
    let mut init = worker::RequestInit::new();
    init.with_method(method);
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
