-- The projection tables hold the application's business data (courses,
-- enrollments, bios) that clerk-sync does not own: reverting clerk-sync's
-- migrations never drops them. Drop them by hand if you really mean to.
SELECT 1;
