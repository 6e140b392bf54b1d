DROP TABLE IF EXISTS clerk_sync.reconcile_listed;
DROP TABLE IF EXISTS clerk_sync.reconcile_checkpoint;
