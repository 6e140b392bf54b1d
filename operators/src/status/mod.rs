//! `clerk-sync-worker status`: the shard queues (messages waiting,
//! consumers, oldest message), the dead letters, the event log by outcome
//! and its newest event, the users and rows; exit 3 (`exit::CHECK_FAILED`)
//! when a `[status]` threshold is crossed, so it can serve as a probe.
//! Reads only: nothing is taken from a shard queue (see `gather`).

mod gather;
pub mod report;
mod run;
pub mod workers;

pub use run::{Args, run};
