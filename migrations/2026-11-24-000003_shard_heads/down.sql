DROP TABLE IF EXISTS clerk_sync.shard_heads;
