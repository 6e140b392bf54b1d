DROP TABLE IF EXISTS clerk_sync.users;
DROP TABLE IF EXISTS clerk_sync.events;
DROP SCHEMA IF EXISTS clerk_sync;
