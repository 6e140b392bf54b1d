//! `clerk-sync-worker reconcile`: page through Clerk's user list and bring
//! clerk-sync in line for every user that differs (a webhook Svix gave up
//! on). Each fix is a synthetic Clerk-shaped event (`reconcile_...` svix-id,
//! no signature) applied exactly as the worker applies a webhook, so it is
//! in the log and `replay` stays exact. With `--prune`, users Clerk no
//! longer has (checked one by one) get a synthetic `user.deleted`.
//!
//! Within a request budget, paced evenly; after each page, where the next
//! one starts is written down, so a run stopped half-way goes on.
//!
//! Memory is one page of users plus the set of ids Clerk listed.

mod compare;
mod progress_log;
mod report;
mod run;

pub use run::{Args, ORIGIN, run};
