DROP TABLE IF EXISTS clerk_sync.workers;
