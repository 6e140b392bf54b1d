-- The app's tables are the app's: make those clerk-sync created match the
-- app's schema (deploy/prisma/schema.prisma) exactly. The first migration
-- gave "Course" the columns "createdAt" and "updatedAt" ("updatedAt" NOT
-- NULL without a default, so the app's Prisma client could not create a
-- course) and "Enrollment" a "createdAt", none of which the app knows, and
-- made "Course"."description" nullable, where the app requires it. The
-- extra columns are dropped (their values were never the app's: clerk-sync
-- never writes a course or an enrollment); no row is lost.
--
-- Only tables clerk-sync created are changed. A table that existed before
-- clerk-sync's first migration ran (a database adopted from Prisma: its
-- tables are the app's own, extra columns included) is older than diesel's
-- bookkeeping table __diesel_schema_migrations, and is left as it is.
DO $$
DECLARE
    bookkeeping oid := to_regclass('__diesel_schema_migrations')::oid;
BEGIN
    IF to_regclass('"Course"')::oid > bookkeeping THEN
        ALTER TABLE "Course" DROP COLUMN IF EXISTS "createdAt", DROP COLUMN IF EXISTS "updatedAt";
        -- The app never writes a null description (its client requires one).
        UPDATE "Course" SET "description" = '' WHERE "description" IS NULL;
        ALTER TABLE "Course" ALTER COLUMN "description" SET NOT NULL;
    END IF;
    IF to_regclass('"Enrollment"')::oid > bookkeeping THEN
        ALTER TABLE "Enrollment" DROP COLUMN IF EXISTS "createdAt";
    END IF;
END $$;
