-- What each running worker holds of each shard queue, reported every few
-- seconds, so that `clerk-sync-worker status` can tell the age of a shard
-- queue's oldest message without taking anything from the queue (which
-- would count as a delivery). One row per (queue, worker); `status` reads
-- only recent reports, and workers delete rows a day old.
CREATE TABLE IF NOT EXISTS clerk_sync.shard_heads (
    queue              TEXT NOT NULL,
    worker             TEXT NOT NULL,
    -- received_at of the oldest message the worker holds; null: none
    oldest_received_at TIMESTAMPTZ,
    held               INTEGER NOT NULL DEFAULT 0,
    reported_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, worker)
);
