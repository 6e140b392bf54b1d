DROP INDEX IF EXISTS clerk_sync.users_email_idx;
