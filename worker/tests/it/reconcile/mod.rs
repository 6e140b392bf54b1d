//! `clerk-sync-worker reconcile` against a fake Clerk Backend API that the
//! test serves on 127.0.0.1 (the real API is not reachable here): missed
//! creates, updates and deletes are fixed by synthetic events in the log,
//! a dry run writes nothing, and every failure is one line that leaves the
//! database as it was.

mod failures;
mod fixes;
mod helpers;
mod resume;
