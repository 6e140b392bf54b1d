CREATE INDEX IF NOT EXISTS users_email_idx ON clerk_sync.users ((profile->>'email')) WHERE NOT deleted;
DROP INDEX IF EXISTS clerk_sync.users_email_column_idx;
ALTER TABLE clerk_sync.users DROP COLUMN IF EXISTS email;
ALTER TABLE clerk_sync.users RESET (fillfactor);
