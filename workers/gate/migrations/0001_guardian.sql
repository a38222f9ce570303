-- Token Guardian (workers/gate/src/guardian.rs): per-token activity rollups in time
-- buckets, the latest finding per token, operators' "expected" marks, the actions log,
-- and the scheduled scan's cursor. Applied by `wrangler d1 migrations apply GUARDIAN`.

-- One row per token and bucket, written by the token's Durable Object at most once per
-- bucket (a second flush in the same bucket merges into the row).
CREATE TABLE IF NOT EXISTS rollups (
  token TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  sub TEXT,
  events INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (token, bucket)
);
CREATE INDEX IF NOT EXISTS rollups_by_bucket ON rollups (bucket);

-- The latest scheduled finding per token (the row `streamgate scan` prints).
CREATE TABLE IF NOT EXISTS findings (
  token TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  window_from INTEGER NOT NULL,
  window_to INTEGER NOT NULL,
  score INTEGER NOT NULL,
  severity TEXT NOT NULL,
  row TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_by_score ON findings (score);

-- Every manual and automatic action, with what undoes it.
CREATE TABLE IF NOT EXISTS actions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  reason TEXT,
  ttl INTEGER,
  undone INTEGER NOT NULL DEFAULT 0,
  request TEXT NOT NULL
);

-- "Mark as expected": an indicator silenced for a token, a network or an ASN.
CREATE TABLE IF NOT EXISTS expectations (
  indicator TEXT NOT NULL,
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (indicator, kind, value)
);

-- Where an unfinished scheduled scan resumes.
CREATE TABLE IF NOT EXISTS scan_state (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
