-- Who holds an e-mail address is found through the users whose current
-- profile has it (README, "An e-mail address that moves between users").
-- The address is now a column computed from the profile, and the index is
-- on that column rather than on the expression: PostgreSQL then updates a
-- user's state in place (a heap-only tuple, no new index entries) when the
-- profile changes but its address does not, which is nearly every event.
-- The free space per page (fillfactor, set first so the rewrite below
-- keeps it) is where those new versions go. Adding a stored column
-- rewrites the table once, under an exclusive lock.
ALTER TABLE clerk_sync.users SET (fillfactor = 80);
ALTER TABLE clerk_sync.users
    ADD COLUMN IF NOT EXISTS email TEXT GENERATED ALWAYS AS (profile->>'email') STORED;
CREATE INDEX IF NOT EXISTS users_email_column_idx ON clerk_sync.users (email) WHERE NOT deleted;
DROP INDEX IF EXISTS clerk_sync.users_email_idx;
