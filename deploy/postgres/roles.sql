-- clerk-sync's two PostgreSQL roles and their rights: see
-- docs/src/deploy/postgres.md, "PostgreSQL roles".
--
--   migration role  owns clerk-sync's schema and tables: what
--                   `clerk-sync-worker migrate` needs (CREATE on the
--                   database and on schema public).
--   runtime role    what `clerk-sync-worker run` (and the operators'
--                   commands) need: SELECT, INSERT, UPDATE, DELETE on the
--                   tables, USAGE on the schemas, SELECT on diesel's
--                   bookkeeping table (to check the migrations ran); no DDL.
--                   Advisory locks and NOTIFY need no grant.
--
-- Run it connected to clerk-sync's database, as a superuser (or as a role
-- that is a member of the migration role and may create roles):
--
--   psql -v ON_ERROR_STOP=1 -d clerk_sync \
--        -v migrator=clerk_sync_migrate -v runtime=clerk_sync_runtime \
--        -f deploy/postgres/roles.sql
--
-- once before the first `clerk-sync-worker migrate`, and again after each
-- one (it is idempotent). The first run is enough for the worker: the
-- default privileges grant the runtime role its rights on every table the
-- migration role creates. A run after `migrate` also grants on tables that
-- existed before (a database adopted from Prisma) and makes diesel's
-- bookkeeping table read-only for the runtime role.
--
-- It creates the roles if missing, without a password: set one with
-- `\password <role>` (or ALTER ROLE ... PASSWORD) and put it in each
-- role's DATABASE_URL.

\set ON_ERROR_STOP on
\if :{?migrator}
\else
\set migrator clerk_sync_migrate
\endif
\if :{?runtime}
\else
\set runtime clerk_sync_runtime
\endif

-- The roles.
SELECT format('CREATE ROLE %I LOGIN', :'migrator')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'migrator') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'runtime')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'runtime') \gexec

-- The migration role: create schema clerk_sync, and tables in public.
SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', current_database(), :'migrator') \gexec
GRANT USAGE, CREATE ON SCHEMA public TO :"migrator";

-- The runtime role: connect and use the schemas; no CREATE anywhere.
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'runtime') \gexec
GRANT USAGE ON SCHEMA public TO :"runtime";

-- Everything the migration role creates from now on (schema clerk_sync and
-- its tables at the first migrate, the tables of later migrations).
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator"
    GRANT USAGE ON SCHEMAS TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"migrator"
    GRANT USAGE, SELECT ON SEQUENCES TO :"runtime";

-- What exists already (after a migrate, or an adopted database): the tables
-- the worker reads and writes, and the bookkeeping table read-only.
SELECT format('GRANT USAGE ON SCHEMA clerk_sync TO %I', :'runtime')
 WHERE to_regnamespace('clerk_sync') IS NOT NULL \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', relation, :'runtime')
  FROM unnest(ARRAY[
           'clerk_sync.events', 'clerk_sync.users', 'clerk_sync.shard_heads',
           'clerk_sync.workers', 'public."Student"', 'public."Instructor"',
           'public."Course"', 'public."Enrollment"'
       ]) AS relation
 WHERE to_regclass(relation) IS NOT NULL \gexec
SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.__diesel_schema_migrations FROM %I', :'runtime')
 WHERE to_regclass('public.__diesel_schema_migrations') IS NOT NULL \gexec
SELECT format('GRANT SELECT ON public.__diesel_schema_migrations TO %I', :'runtime')
 WHERE to_regclass('public.__diesel_schema_migrations') IS NOT NULL \gexec
