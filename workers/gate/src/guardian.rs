//! Token Guardian's storage at the edge: per-token activity rollups, findings, the actions
//! log and "expected" marks in D1 (binding `GUARDIAN`, schema in `workers/gate/migrations`),
//! raw usage events in R2 (binding `USAGE`). Detection itself is the core's
//! (`streamgate_core::detection`); this module only reads and writes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use streamgate_core::detection::UsageEvent;
use streamgate_core::grant::fingerprint;
use streamgate_core::sessions::bucket_start;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env, Result};

/// The D1 binding.
pub const BINDING: &str = "GUARDIAN";

/// Actions listed at most, newest first.
const MAX_LISTED_ACTIONS: u32 = 500;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// An operator, through the admin API or the Guardian view.
    Operator,
    /// The scheduled detection's automatic revocation.
    Guardian,
}

impl Actor {
    fn as_str(self) -> &'static str {
        match self {
            Actor::Operator => "operator",
            Actor::Guardian => "guardian",
        }
    }
}

/// One logged action, with the request that undoes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Action {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub ttl: Option<i64>,
    pub undone: bool,
    /// The admin request body that made it (what an undo inverts).
    pub request: Value,
}

/// An action as D1 returns it (booleans are integers, JSON is text).
#[derive(Deserialize)]
struct ActionRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    reason: Option<String>,
    ttl: Option<i64>,
    undone: i64,
    request: String,
}

impl From<ActionRow> for Action {
    fn from(row: ActionRow) -> Action {
        Action {
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            reason: row.reason,
            ttl: row.ttl,
            undone: row.undone != 0,
            request: serde_json::from_str(&row.request).unwrap_or(Value::Null),
        }
    }
}

fn db(env: &Env) -> Result<D1Database> {
    env.d1(BINDING)
}

fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

fn number(value: i64) -> JsValue {
    // D1 numbers are doubles; every value here (unix seconds, ids, TTLs) is far below 2^53.
    JsValue::from_f64(value as f64)
}

fn optional(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, text)
}

/// What to log.
pub struct Logged<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub target: &'a str,
    pub reason: Option<&'a str>,
    pub ttl: Option<u64>,
    pub request: &'a Value,
}

/// Appends an action to the log; returns its id.
pub async fn log(env: &Env, entry: &Logged<'_>, now: i64) -> Result<i64> {
    let ttl = entry.ttl.and_then(|t| i64::try_from(t).ok()).map_or(JsValue::NULL, number);
    let statement = db(env)?
        .prepare(
            "INSERT INTO actions (at, actor, action, target, reason, ttl, request) VALUES (?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(&[
            number(now),
            text(entry.actor.as_str()),
            text(entry.action),
            text(entry.target),
            optional(entry.reason),
            ttl,
            text(&entry.request.to_string()),
        ])?;
    Ok(statement.first::<i64>(Some("id")).await?.unwrap_or(0))
}

/// The latest actions, newest first.
pub async fn actions(env: &Env) -> Result<Vec<Action>> {
    let rows = db(env)?
        .prepare("SELECT * FROM actions ORDER BY id DESC LIMIT ?")
        .bind(&[number(i64::from(MAX_LISTED_ACTIONS))])?
        .all()
        .await?
        .results::<ActionRow>()?;
    Ok(rows.into_iter().map(Action::from).collect())
}

/// One action by id.
pub async fn action(env: &Env, id: i64) -> Result<Option<Action>> {
    let row =
        db(env)?.prepare("SELECT * FROM actions WHERE id = ?").bind(&[number(id)])?.first::<ActionRow>(None).await?;
    Ok(row.map(Action::from))
}

/// Marks action `id` as undone.
pub async fn mark_undone(env: &Env, id: i64) -> Result<()> {
    db(env)?.prepare("UPDATE actions SET undone = 1 WHERE id = ?").bind(&[number(id)])?.run().await.map(|_| ())
}

/// An operator's "expected" mark: `indicator` is silenced for a token, a network or an ASN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub indicator: String,
    pub kind: String,
    pub value: String,
}

/// Adds (or, with `expected` false, removes) a mark.
pub async fn set_expected(env: &Env, mark: &Expectation, expected: bool, now: i64) -> Result<()> {
    let db = db(env)?;
    let statement =
        if expected {
            db.prepare("INSERT OR REPLACE INTO expectations (indicator, kind, value, at) VALUES (?, ?, ?, ?)")
                .bind(&[text(&mark.indicator), text(&mark.kind), text(&mark.value), number(now)])?
        } else {
            db.prepare("DELETE FROM expectations WHERE indicator = ? AND kind = ? AND value = ?").bind(&[
                text(&mark.indicator),
                text(&mark.kind),
                text(&mark.value),
            ])?
        };
    statement.run().await.map(|_| ())
}

/// Every mark.
pub async fn expectations(env: &Env) -> Result<Vec<Expectation>> {
    db(env)?.prepare("SELECT indicator, kind, value FROM expectations").all().await?.results::<Expectation>()
}

/// The R2 binding for raw usage events.
pub const USAGE_BINDING: &str = "USAGE";

/// Raw usage objects are named `usage/<bucket start>/<hub>-<first event>-<count>.jsonl`,
/// so a listing from `usage/<from>` is in time order and a window is a key range.
const USAGE_PREFIX: &str = "usage/";

fn usage_dir(bucket: i64) -> String {
    format!("{USAGE_PREFIX}{:012}/", bucket.max(0))
}

/// JSON Lines: one event per line.
fn json_lines(events: &[UsageEvent]) -> String {
    let mut out = String::new();
    for event in events {
        if let Ok(line) = serde_json::to_string(event) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Stores what a session key's hub flushes: the raw events in R2, one object per flush,
/// and the per-token activity rollups of their buckets in D1.
pub async fn store_usage(env: &Env, hub_key: &str, events: &[UsageEvent], bucket: i64) -> Result<()> {
    let Some(first) = events.first() else { return Ok(()) };
    let name = format!(
        "{}{}-{}-{}.jsonl",
        usage_dir(bucket_start(first.at, bucket)),
        fingerprint(hub_key).get(..16).unwrap_or("hub"),
        first.at,
        events.len()
    );
    env.bucket(USAGE_BINDING)?.put(name, json_lines(events)).execute().await?;
    store_rollups(env, events, bucket).await
}

/// The raw usage events with `from <= at < to`, as JSON Lines, at most `max_objects`
/// objects read; the flag says whether the window held more.
pub async fn usage(env: &Env, from: i64, to: i64, bucket: i64, max_objects: usize) -> Result<(String, bool)> {
    let bucket_store = env.bucket(USAGE_BINDING)?;
    let last = usage_dir(bucket_start(to, bucket));
    // Keys sort by bucket: start just before the first bucket of the window.
    let mut after = Some(format!("{USAGE_PREFIX}{:012}", bucket_start(from, bucket).max(1) - 1));
    let mut out = String::new();
    let mut read = 0;
    while let Some(start) = after.take() {
        let page = bucket_store.list().prefix(USAGE_PREFIX).start_after(start).limit(100).execute().await?;
        for object in page.objects() {
            let key = object.key();
            if key.as_str() > last.as_str() && !key.starts_with(&last) {
                return Ok((out, false));
            }
            if read == max_objects {
                return Ok((out, true));
            }
            read += 1;
            if let Some(body) = bucket_store.get(&key).execute().await?.and_then(|o| o.body()) {
                let text = body.text().await?;
                for line in text.lines() {
                    let at = serde_json::from_str::<UsageEvent>(line).map(|e| e.at).unwrap_or(i64::MIN);
                    if (from..to).contains(&at) {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
            after = Some(key);
        }
        if !page.truncated() {
            break;
        }
    }
    Ok((out, false))
}

/// Deletes raw usage and rollups older than `cutoff`.
pub async fn expire(env: &Env, cutoff: i64, bucket: i64) -> Result<()> {
    let store = env.bucket(USAGE_BINDING)?;
    let first_kept = usage_dir(bucket_start(cutoff, bucket));
    loop {
        let page = store.list().prefix(USAGE_PREFIX).limit(1000).execute().await?;
        let old: Vec<String> = page.objects().iter().map(|o| o.key()).filter(|k| k.as_str() < first_kept.as_str()).collect();
        let done = old.len() < page.objects().len() || !page.truncated();
        if !old.is_empty() {
            store.delete_multiple(old).await?;
        }
        if done {
            break;
        }
    }
    db(env)?.prepare("DELETE FROM rollups WHERE bucket < ?").bind(&[number(bucket_start(cutoff, bucket))])?.run().await?;
    Ok(())
}
