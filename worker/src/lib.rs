//! clerk-sync-worker: the service that takes Clerk user events from the
//! shard queues (`taking`) and applies them to the application's tables
//! with `clerk-sync-store` (which decides and stores), serving its health
//! and metrics (`serving`); `service` runs it, `migrate` prepares the
//! database and the queues. The binary also runs the operators' commands
//! (`clerk-sync-operators`).

pub mod migrate;
pub mod service;
pub mod serving;
pub mod taking;
