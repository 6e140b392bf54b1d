-- Who holds an e-mail address is decided from the claims of the users whose
-- current profile has it (README, "An e-mail address that moves between
-- users"): this index finds them.
CREATE INDEX IF NOT EXISTS users_email_idx ON clerk_sync.users ((profile->>'email')) WHERE NOT deleted;
