//! clerk-sync-worker: applies Clerk user events from the shard queues to the
//! application's tables, idempotently, and keeps the event log.

pub mod apply;
pub mod clerk_api;
pub mod clock;
pub mod commands;
pub mod consumer;
pub mod http;
pub mod incoming;
pub mod instance;
pub mod metrics;
pub mod migrate;
pub mod payload;
pub mod plan;
pub mod rebuild;
pub mod repository;
pub mod run;
pub mod runner;
pub mod schema;
pub mod settings;
pub mod shard_heads;
