//! `clerk-sync-worker send` against a running system: the events it builds,
//! the files it sends as they are and the scenarios it posts all end in the
//! tables and the log as stated; every error exits non-zero with one line
//! and posts nothing.

mod builds;
mod helpers;
mod scenarios_and_errors;
