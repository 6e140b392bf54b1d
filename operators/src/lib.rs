//! clerk-sync-operators: the operators' commands of `clerk-sync-worker`
//! (replay, dlq, status, send, reconcile, forget, verify-log). Each prints a
//! summary on stdout (JSON with `--json`), logs only warnings on stderr,
//! shows progress on a terminal for long work, and returns its exit code:
//! see [`exit`].

pub mod age;
pub mod clerk_api;
pub mod clerk_retry;
pub mod exit;
pub mod pacing;
pub mod progress;
pub mod since;
pub mod synthetic;
pub mod table;

pub mod dlq;
pub mod forget;
pub mod reconcile;
pub mod replay;
pub mod send;
pub mod status;
pub mod verify_log;
