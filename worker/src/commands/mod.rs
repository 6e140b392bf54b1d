//! The operators' commands of `clerk-sync-worker`. Each prints a summary on
//! stdout (JSON with `--json`), logs only warnings on stderr, shows progress
//! on a terminal for long work, and returns its exit code: see [`exit`].

pub mod age;
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

/// Exit codes shared by the commands (clap exits 2 on bad arguments, and a
/// settings fault is 2 as well; an unreachable service or failed work is 1).
pub mod exit {
    /// What the command was asked to check is not right: a status threshold
    /// was crossed, or verify-log found events that do not verify.
    pub const CHECK_FAILED: u8 = 3;
}
