//! The worker end to end: events posted to the real ingest, applied by a
//! real `clerk-sync-worker` process to a database of the test's own.

mod helpers;
mod lifecycle;
mod order_and_failures;
