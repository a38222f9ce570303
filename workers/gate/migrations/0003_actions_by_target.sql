-- The Guardian asks, before each automatic revocation, when an operator last lifted one
-- of the token's revocations: by target, not by a scan of the whole actions log.
CREATE INDEX IF NOT EXISTS actions_by_target ON actions (target, action);
