-- What each token grants (verified claims, scope), recorded at its first session start,
-- so the Guardian view can show it next to the token's activity.
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY,
  claims TEXT,
  scope TEXT NOT NULL,
  first_seen INTEGER NOT NULL
);
