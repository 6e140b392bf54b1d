-- clerk-sync's own tables, in their own schema.
CREATE SCHEMA IF NOT EXISTS clerk_sync;

-- The event log: every event a worker took from RabbitMQ, exactly once
-- (svix_id is the idempotency key). Operators query it; replay rebuilds the
-- projection from it.
CREATE TABLE IF NOT EXISTS clerk_sync.events (
    svix_id       TEXT PRIMARY KEY,
    event_type    TEXT,
    clerk_user_id TEXT,
    occurred_at   TIMESTAMPTZ,
    received_at   TIMESTAMPTZ NOT NULL,
    -- {"headers": {"svix-id", "svix-timestamp", "svix-signature"}, "body": "<the body exactly as received>"}
    payload       JSONB NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('applied', 'stale', 'ignored', 'failed')),
    error         TEXT,
    recorded_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_clerk_user_id_idx ON clerk_sync.events (clerk_user_id);
CREATE INDEX IF NOT EXISTS events_recorded_at_idx ON clerk_sync.events (recorded_at);

-- Per-user sync state: the version of the newest applied event, the
-- tombstone, the roles held and the newest profile. The projection rows of a
-- user are a function of this row.
CREATE TABLE IF NOT EXISTS clerk_sync.users (
    clerk_user_id   TEXT PRIMARY KEY,
    version_ms      BIGINT,
    version_rank    SMALLINT,
    version_svix_id TEXT,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    roles           TEXT[] NOT NULL DEFAULT '{}',
    profile         JSONB,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
