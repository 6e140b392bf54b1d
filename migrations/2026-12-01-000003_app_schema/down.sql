-- Nothing to undo: putting the columns back would break the app's Prisma
-- client again (see up.sql).
SELECT 1;
