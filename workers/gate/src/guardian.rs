//! Token Guardian's storage at the edge: per-token activity rollups, findings, the actions
//! log and "expected" marks in D1 (binding `GUARDIAN`, schema in `workers/gate/migrations`),
//! raw usage events in R2 (binding `USAGE`). Detection itself is the core's
//! (`streamgate_core::detection`); this module only reads and writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use streamgate_core::detection::{
    may_revoke_automatically, Aggregator, Detector, Expectation as DetectorExpectation, NetworkTable, Report, Severity,
    TokenActivity, UsageEvent, Window,
};
use streamgate_core::grant::fingerprint;
use streamgate_core::sessions::{bucket_start, FlushBatch, Flushed, TokenShape};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env, Result};

use crate::settings::Settings;

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

/// When an operator last lifted a revocation of `token` (an unrevoke, or the undo of a
/// revoke), if ever.
async fn lifted_at(env: &Env, token: &str) -> Result<Option<i64>> {
    #[derive(Deserialize)]
    struct Lifted {
        at: Option<i64>,
    }
    let row = db(env)?
        .prepare("SELECT MAX(at) AS at FROM actions WHERE action = 'unrevoke' AND actor = 'operator' AND target = ?")
        .bind(&[text(token)])?
        .first::<Lifted>(None)
        .await?;
    Ok(row.and_then(|r| r.at))
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

/// Raw usage objects are named `usage/<bucket start>/<hub>-<first event>-<content>.jsonl`,
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

/// Stores what a session key's hub flushes, each step only after the one before: the raw
/// records in R2 (one object per flush), the per-token activity rollups of their buckets
/// (and of the records an earlier flush stored raw only) in D1, then the token shapes.
/// Returns how far it got, and the error that stopped it.
pub async fn store_flush(env: &Env, hub_key: &str, batch: &FlushBatch, bucket: i64, now: i64) -> (Flushed, Result<()>) {
    if let Err(error) = store_raw(env, hub_key, &batch.records, bucket).await {
        return (Flushed::Nothing, Err(error));
    }
    if let Err(error) = store_rollups(env, batch.unrolled.iter().chain(&batch.records), bucket).await {
        return (Flushed::Raw, Err(error));
    }
    // A retry of the shapes alone has no record to date them by: now is close.
    let first_seen = batch.unrolled.first().or(batch.records.first()).map_or(now, |e| e.at);
    match store_shapes(env, &batch.shapes, first_seen).await {
        Ok(()) => (Flushed::Everything, Ok(())),
        Err(error) => (Flushed::Rollups, Err(error)),
    }
}

/// Stores raw usage records in R2, one object per flush.
async fn store_raw(env: &Env, hub_key: &str, events: &[UsageEvent], bucket: i64) -> Result<()> {
    let Some(first) = events.first() else { return Ok(()) };
    let lines = json_lines(events);
    // Named by content: two batches of one hub never share a name (they did when their
    // first records had the same second and count, and the second overwrote the first),
    // and writing the same batch again replaces its object.
    let name = format!(
        "{}{}-{}-{}.jsonl",
        usage_dir(bucket_start(first.at, bucket)),
        fingerprint(hub_key).get(..16).unwrap_or("hub"),
        first.at,
        fingerprint(&lines).get(..16).unwrap_or("batch")
    );
    env.bucket(USAGE_BINDING)?.put(name, lines).execute().await.map(|_| ())
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
            let object = bucket_store.get(&key).execute().await?;
            if let Some(body) = object.as_ref().and_then(|o| o.body()) {
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
        let old: Vec<String> =
            page.objects().iter().map(|o| o.key()).filter(|k| k.as_str() < first_kept.as_str()).collect();
        let done = old.len() < page.objects().len() || !page.truncated();
        if !old.is_empty() {
            store.delete_multiple(old).await?;
        }
        if done {
            break;
        }
    }
    db(env)?
        .prepare("DELETE FROM rollups WHERE bucket < ?")
        .bind(&[number(bucket_start(cutoff, bucket))])?
        .run()
        .await?;
    Ok(())
}

/// The detector for this isolate: the configuration (`GUARDIAN_CONFIG`) over the shipped
/// ASN table (the edge knows each client's ASN from `request.cf`, so it needs no CIDRs),
/// plus the operators' "expected" marks.
fn detector(settings: &Settings, marks: &[Expectation]) -> std::result::Result<Detector, String> {
    let mut config = settings.guardian.detector.clone();
    config.expected.extend(marks.iter().filter_map(Expectation::for_detector));
    Detector::new(config, &NetworkTable::shipped()).map_err(|e| format!("GUARDIAN_CONFIG: {e}"))
}

impl Expectation {
    fn for_detector(&self) -> Option<DetectorExpectation> {
        let indicator = match self.indicator.as_str() {
            "" | "*" => None,
            code => Some(serde_json::from_value(Value::String(code.to_owned())).ok()?),
        };
        let mut mark = DetectorExpectation { indicator, ..DetectorExpectation::default() };
        match self.kind.as_str() {
            "token" => mark.token = Some(self.value.clone()),
            "network" => mark.network = Some(self.value.clone()),
            "asn" => mark.asn = Some(self.value.parse().ok()?),
            _ => return None,
        }
        Some(mark)
    }
}

/// Records what tokens grant, the first time each starts a session.
async fn store_shapes(env: &Env, shapes: &[TokenShape], first_seen: i64) -> Result<()> {
    let db = db(env)?;
    let mut writes = Vec::new();
    for shape in shapes {
        writes.push(
            db.prepare("INSERT OR IGNORE INTO tokens (token, claims, scope, first_seen) VALUES (?, ?, ?, ?)").bind(
                &[text(&shape.token), optional(shape.claims.as_deref()), text(&shape.scope), number(first_seen)],
            )?,
        );
    }
    if !writes.is_empty() {
        db.batch(writes).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct ShapeRow {
    claims: Option<String>,
    scope: String,
}

/// A rollup as D1 returns it.
#[derive(Deserialize)]
struct RollupRow {
    token: String,
    bucket: i64,
    data: String,
}

/// Folds flushed events into their tokens' rollups in D1: one row per token and bucket,
/// merged with what a flush earlier in the same bucket wrote.
async fn store_rollups(env: &Env, events: impl IntoIterator<Item = &UsageEvent>, bucket: i64) -> Result<()> {
    let settings = crate::settings::get(env).map_err(worker::Error::RustError)?;
    let timing = settings.guardian.detector.timing;
    let mut buckets: BTreeMap<i64, Aggregator> = BTreeMap::new();
    for event in events {
        buckets.entry(bucket_start(event.at, bucket)).or_insert_with(|| Aggregator::new(timing)).add(event);
    }
    let db = db(env)?;
    let rollups: Vec<(i64, String, TokenActivity)> = buckets
        .into_iter()
        .flat_map(|(start, aggregator)| aggregator.into_tokens().map(move |(t, a)| (start, t, a)))
        .collect();
    // What earlier flushes stored for the same token and bucket, read in one round trip.
    let reads = rollups
        .iter()
        .map(|(start, token, _)| {
            db.prepare("SELECT token, bucket, data FROM rollups WHERE token = ? AND bucket = ?")
                .bind(&[text(token), number(*start)])
        })
        .collect::<Result<Vec<_>>>()?;
    let earlier = if reads.is_empty() { Vec::new() } else { db.batch(reads).await? };
    let mut writes = Vec::new();
    for ((start, token, mut activity), read) in rollups.into_iter().zip(earlier) {
        let stored = read.results::<RollupRow>()?.into_iter().next();
        if let Some(mut merged) = stored.and_then(|r| serde_json::from_str::<TokenActivity>(&r.data).ok()) {
            merged.merge(activity, timing);
            activity = merged;
        }
        let data = serde_json::to_string(&activity).map_err(|e| worker::Error::RustError(e.to_string()))?;
        writes.push(
            db.prepare("INSERT OR REPLACE INTO rollups (token, bucket, sub, events, data) VALUES (?, ?, ?, ?, ?)")
                .bind(&[
                    text(&token),
                    number(start),
                    optional(activity.sub.as_deref()),
                    number(i64::try_from(activity.events).unwrap_or(i64::MAX)),
                    text(&data),
                ])?,
        );
    }
    if !writes.is_empty() {
        db.batch(writes).await?;
    }
    Ok(())
}

/// Rollups read for one dashboard or scan request at most (about 36 buckets of 3 h for
/// 1,000 tokens); a larger window is cut, and the answer says so.
const MAX_ROLLUPS_READ: i64 = 40_000;

/// Tokens named in one D1 query (D1 binds at most 100 parameters; three are the window and
/// the limit).
const TOKENS_PER_QUERY: usize = 90;

/// The merged activity of `tokens` (all tokens when `None`) in `window`, and whether the
/// read was cut at [`MAX_ROLLUPS_READ`].
async fn activity(
    env: &Env,
    settings: &Settings,
    window: Window,
    tokens: Option<&[String]>,
) -> Result<(Aggregator, BTreeMap<i64, Aggregator>, bool)> {
    let timing = settings.guardian.detector.timing;
    let bucket = settings.guardian.bucket_seconds;
    let from = bucket_start(window.from, bucket);
    let db = db(env)?;
    let limit = number(MAX_ROLLUPS_READ + 1);
    let statements = match tokens {
        None => vec![db
            .prepare("SELECT token, bucket, data FROM rollups WHERE bucket >= ? AND bucket < ? LIMIT ?")
            .bind(&[number(from), number(window.to), limit])?],
        // D1 binds at most 100 parameters per query: the tokens go in chunks.
        Some(tokens) => tokens
            .chunks(TOKENS_PER_QUERY)
            .map(|chunk| {
                let marks = vec!["?"; chunk.len()].join(", ");
                let mut args = vec![number(from), number(window.to)];
                args.extend(chunk.iter().map(|t| text(t)));
                args.push(limit.clone());
                db.prepare(format!(
                    "SELECT token, bucket, data FROM rollups WHERE bucket >= ? AND bucket < ? AND token IN ({marks}) LIMIT ?"
                ))
                .bind(&args)
            })
            .collect::<Result<Vec<_>>>()?,
    };
    let mut rows = Vec::new();
    for statement in statements {
        rows.extend(statement.all().await?.results::<RollupRow>()?);
    }
    let cut = i64::try_from(rows.len()).unwrap_or(i64::MAX) > MAX_ROLLUPS_READ;
    let mut all = Aggregator::new(timing);
    let mut per_bucket: BTreeMap<i64, Aggregator> = BTreeMap::new();
    for row in rows.into_iter().take(usize::try_from(MAX_ROLLUPS_READ).unwrap_or(usize::MAX)) {
        let Ok(rollup) = serde_json::from_str::<TokenActivity>(&row.data) else { continue };
        if tokens.is_some() {
            per_bucket
                .entry(row.bucket)
                .or_insert_with(|| Aggregator::new(timing))
                .merge_token(&row.token, rollup.clone());
        }
        all.merge_token(&row.token, rollup);
    }
    Ok((all, per_bucket, cut))
}

/// The window a dashboard request names: `?window=3h|1d|90m|3600` back from now, or
/// `?from=&to=` (unix seconds); the scheduled window by default.
pub fn window_of(url: &worker::Url, settings: &Settings, now: i64) -> std::result::Result<Window, String> {
    let get = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let (window, from, to) = (get("window"), get("from"), get("to"));
    Window::from_query(window.as_deref(), from.as_deref(), to.as_deref(), settings.guardian.window_seconds, now)
}

/// The tokens, IPs and breakdown of `window`, as the detector judges them.
pub async fn report(env: &Env, settings: &Settings, window: Window) -> Result<(Report, bool)> {
    let marks = expectations(env).await?;
    let detector = detector(settings, &marks).map_err(worker::Error::RustError)?;
    let (all, _, cut) = activity(env, settings, window, None).await?;
    Ok((detector.report(&all, window), cut))
}

/// One token's row, the networks it was seen from and its activity per bucket.
pub async fn token_detail(env: &Env, settings: &Settings, window: Window, token: &str) -> Result<Option<Value>> {
    let marks = expectations(env).await?;
    let detector = detector(settings, &marks).map_err(worker::Error::RustError)?;
    let tokens = [token.to_owned()];
    let (all, per_bucket, _) = activity(env, settings, window, Some(&tokens)).await?;
    let Some(rollup) = all.get(token) else { return Ok(None) };
    let timing = all.timing();
    let row = detector.judge(token, rollup, timing, None);
    let ips: Vec<Value> = rollup
        .networks
        .iter()
        .map(|(ip, used)| {
            json!({ "ip": ip, "asn": used.asn, "organization": used.as_organization, "events": used.events,
                    "first_seen": used.first, "last_seen": used.last, "country": used.country })
        })
        .collect();
    let activity: Vec<Value> = per_bucket
        .iter()
        .filter_map(|(at, bucket)| {
            let b = bucket.get(token)?;
            Some(json!({ "at": at, "events": b.events, "sessions": b.session_count(), "bytes": b.bytes }))
        })
        .collect();
    let user_agents: Vec<Value> =
        rollup.user_agents.iter().map(|(agent, count)| json!({ "name": agent, "count": count })).collect();
    let shape = db(env)?
        .prepare("SELECT claims, scope FROM tokens WHERE token = ?")
        .bind(&[text(token)])?
        .first::<ShapeRow>(None)
        .await?;
    let claims = shape.as_ref().and_then(|s| s.claims.as_deref()).and_then(|c| serde_json::from_str::<Value>(c).ok());
    Ok(Some(json!({
        "row": row, "claims": claims, "scope": shape.map(|s| s.scope), "ips": ips, "user_agents": user_agents,
        "activity": activity,
    })))
}

/// Tokens one scheduled invocation judges at most; the rest wait for the next one, which
/// resumes after the last token judged (a cursor in D1).
const TOKENS_PER_INVOCATION: i64 = 500;

/// Times one page of tokens is tried; a page that failed this often is passed over, so it
/// cannot hold back the pages after it (its tokens are judged again on the next pass).
const ATTEMPTS_PER_PAGE: u32 = 3;

/// What a scheduled (or on-demand) scan did.
#[derive(Debug, Default, Serialize)]
pub struct ScanSummary {
    pub window: Option<Window>,
    pub judged: usize,
    pub findings: usize,
    pub revoked: Vec<String>,
    pub resumed_after: Option<String>,
    pub next_cursor: Option<String>,
    /// Tokens of a page passed over after [`ATTEMPTS_PER_PAGE`] failed attempts.
    pub passed_over: usize,
}

/// A value in `scan_state`.
async fn scan_state(db: &D1Database, name: &str) -> Result<Option<String>> {
    db.prepare("SELECT value FROM scan_state WHERE name = ?").bind(&[text(name)])?.first::<String>(Some("value")).await
}

/// The statement that sets (or with `None` removes) a value in `scan_state`.
fn set_scan_state(db: &D1Database, name: &str, value: Option<&str>) -> Result<D1PreparedStatement> {
    match value {
        Some(value) => {
            db.prepare("INSERT OR REPLACE INTO scan_state (name, value) VALUES (?, ?)").bind(&[text(name), text(value)])
        }
        None => db.prepare("DELETE FROM scan_state WHERE name = ?").bind(&[text(name)]),
    }
}

/// Runs detection over the tokens active in the scheduled window, a page of
/// [`TOKENS_PER_INVOCATION`] at a time, stores each token's finding, and with
/// `GUARDIAN_AUTO_REVOKE=on` revokes those at or above `GUARDIAN_REVOKE_SCORE` for
/// `GUARDIAN_REVOKE_TTL` through the admin API's own path (logged as `guardian`, undoable).
/// A full pass also drops what is older than the retention. The cursor moves on only
/// once a page was judged: a page that failed is tried again by the next invocation, up
/// to [`ATTEMPTS_PER_PAGE`] times.
pub async fn scan(env: &Env, settings: &Settings, now: i64) -> Result<ScanSummary> {
    let guardian = &settings.guardian;
    let window = Window::ending_at(now, guardian.window_seconds);
    let db = db(env)?;
    let cursor = scan_state(&db, "cursor").await?;
    let mut attempts: u32 = scan_state(&db, "attempts").await?.and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut summary = ScanSummary { window: Some(window), resumed_after: cursor.clone(), ..ScanSummary::default() };
    let mut after = cursor.unwrap_or_default();
    loop {
        let tokens: Vec<String> = db
            .prepare("SELECT DISTINCT token FROM rollups WHERE bucket >= ? AND token > ? ORDER BY token LIMIT ?")
            .bind(&[
                number(bucket_start(window.from, guardian.bucket_seconds)),
                text(&after),
                number(TOKENS_PER_INVOCATION),
            ])?
            .all()
            .await?
            .results::<TokenName>()?
            .into_iter()
            .map(|t| t.token)
            .collect();
        let full = i64::try_from(tokens.len()).unwrap_or(0) == TOKENS_PER_INVOCATION;
        summary.next_cursor = full.then(|| tokens.last().cloned()).flatten();
        let passing_over = !tokens.is_empty() && attempts >= ATTEMPTS_PER_PAGE;
        if passing_over {
            worker::console_error!(
                "Guardian scan: passing over {} tokens after {attempts} failed attempts",
                tokens.len()
            );
            summary.passed_over = summary.passed_over.saturating_add(tokens.len());
        } else if !tokens.is_empty() {
            // Counted before judging, so an invocation cut off mid-way counts too.
            set_scan_state(&db, "attempts", Some(&(attempts + 1).to_string()))?.run().await?;
            judge_page(env, settings, &db, &tokens, window, now, &mut summary).await?;
        }
        // The page is done: the cursor moves on, with a fresh count of attempts.
        db.batch(vec![
            set_scan_state(&db, "attempts", None)?,
            set_scan_state(&db, "cursor", summary.next_cursor.as_deref())?,
        ])
        .await?;
        attempts = 0;
        // A page passed over costs no run of its own: the next one is judged now.
        match (passing_over, &summary.next_cursor) {
            (true, Some(next)) => after.clone_from(next),
            _ => break,
        }
    }
    if summary.next_cursor.is_none() {
        expire(env, now.saturating_sub(guardian.retention_seconds), guardian.bucket_seconds).await?;
    }
    Ok(summary)
}

/// Judges one page of tokens: stores each one's finding and, with automatic revocation on,
/// revokes those at or above the score.
async fn judge_page(
    env: &Env,
    settings: &Settings,
    db: &D1Database,
    tokens: &[String],
    window: Window,
    now: i64,
    summary: &mut ScanSummary,
) -> Result<()> {
    let guardian = &settings.guardian;
    let marks = expectations(env).await?;
    let detector = detector(settings, &marks).map_err(worker::Error::RustError)?;
    // As many tokens at a time as one read holds all the buckets of: a read cut short
    // would judge tokens on part of their window, or not at all.
    let buckets = window.to.saturating_sub(window.from) / guardian.bucket_seconds.max(1) + 2;
    let per_read = usize::try_from(MAX_ROLLUPS_READ / buckets.max(1)).unwrap_or(1).max(1);
    // Judged together, so a stream's playback p95 counts every token of the page.
    let mut all = Aggregator::new(guardian.detector.timing);
    for group in tokens.chunks(per_read) {
        let (part, _, _) = activity(env, settings, window, Some(group)).await?;
        all.merge(part).map_err(|e| worker::Error::RustError(e.to_string()))?;
    }
    let rows = detector.token_rows(&all);
    summary.judged = rows.len();
    let mut writes = Vec::new();
    for row in &rows {
        let json = serde_json::to_string(row).map_err(|e| worker::Error::RustError(e.to_string()))?;
        writes.push(
            db.prepare(
                "INSERT OR REPLACE INTO findings (token, at, window_from, window_to, score, severity, row) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&[
                text(&row.token),
                number(now),
                number(window.from),
                number(window.to),
                number(i64::from(row.score)),
                text(row.severity.as_str()),
                text(&json),
            ])?,
        );
        if row.is_finding(Severity::Low) {
            summary.findings += 1;
        }
    }
    db.batch(writes).await?;
    if guardian.auto_revoke {
        for row in rows.iter().filter(|r| r.score >= guardian.revoke_score && !r.indicators.is_empty()) {
            if !crate::revocations::lookup(env, std::slice::from_ref(&row.token), now).await?.is_empty() {
                continue; // already revoked
            }
            // The window's usage is read from the start of its first bucket.
            let read_from = bucket_start(window.from, guardian.bucket_seconds);
            if !may_revoke_automatically(lifted_at(env, &row.token).await?, read_from) {
                continue; // an operator lifted its revocation after judging this usage
            }
            let codes: Vec<&str> = row.indicators.iter().map(|i| i.code.as_str()).collect();
            let body = json!({
                "jti": row.token, "sub": row.sub, "ttl": guardian.revoke_ttl,
                "reason": format!("score {} ({})", row.score, codes.join(", ")),
            });
            if crate::admin::apply(env, "/admin/revoke", body, Actor::Guardian, now).await?.is_ok() {
                summary.revoked.push(row.token.clone());
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct TokenName {
    token: String,
}
