-- The log's payload (the request's headers and body: about 2 KB, often
-- more) is compressed by PostgreSQL when its row passes about 2 KB (TOAST).
-- With lz4 that takes about a third of the CPU it takes with pglz,
-- PostgreSQL's default, for rows a fifth larger (docs/src/app/tables.md).
-- Only new values are compressed with it; rows already stored keep
-- theirs, and both are read alike. A server built without lz4 (it lists
-- the methods it has in default_toast_compression's values) keeps pglz.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_settings
        WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)
    ) THEN
        ALTER TABLE clerk_sync.events ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END $$;
