-- Where a `reconcile` run stands, so that a run stopped half-way (killed,
-- a Clerk outage, a deploy) goes on where it stopped: one row while a run
-- is unfinished, none otherwise. `next_offset` is the position in Clerk's
-- user list (newest first) of the next page to read.
CREATE TABLE IF NOT EXISTS clerk_sync.reconcile_checkpoint (
    only_one    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_one),
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_offset BIGINT NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The users the unfinished run has listed, for its end: the users held
-- here that Clerk did not list (reported, or pruned with --prune).
CREATE TABLE IF NOT EXISTS clerk_sync.reconcile_listed (
    clerk_user_id TEXT PRIMARY KEY
);
