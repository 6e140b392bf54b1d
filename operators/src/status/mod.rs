//! `clerk-sync-worker status`: the shard queues (messages waiting,
//! consumers, oldest message), the dead letters, the event log by outcome
//! and its newest event, the users and rows, and with
//! `status.management_url` each RabbitMQ node's queue leaders and members;
//! exit 3 (`exit::CHECK_FAILED`) when a `[status]` threshold is crossed or
//! a quorum queue lost its majority, so it can serve as a probe.
//! Reads only: nothing is taken from a shard queue (see `gather`).

pub mod cluster;
mod gather;
pub mod report;
mod run;
pub mod workers;

pub use run::{Args, run};
