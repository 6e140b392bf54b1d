//! `clerk-sync-worker replay`: rebuild the projection from `clerk_sync.events`.
//!
//! Users are rebuilt a batch at a time, each batch in one transaction that
//! first locks the users' sync states (as a worker does, in the same order),
//! then re-reads and re-parses their logged events, folds them with the live
//! planner and corrects the state, the rows and the log's judgements. So
//! workers may keep running: an event for these users is either committed
//! before the lock (and read) or waits for it (and builds on the result).

mod batch;
mod report;
mod run;

pub use run::{Args, run};
