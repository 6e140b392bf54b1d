-- The worker processes running now, each reported every few seconds with
-- the address of its /metrics, /healthz and /readyz, so that an operator
-- (`clerk-sync-worker status`) finds every worker, however many run on one
-- host. `status` shows only recent reports; workers delete rows a day old,
-- and their own row when they stop.
CREATE TABLE IF NOT EXISTS clerk_sync.workers (
    worker      TEXT PRIMARY KEY,
    metrics_url TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    reported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
