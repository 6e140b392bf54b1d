//! `clerk-sync-worker dlq`: listing and showing lose nothing and keep the
//! order; redrive puts a message back on its user's shard and the worker
//! applies it; discard logs the decision and removes the message; unknown
//! ids and unreachable services change nothing.

mod deciding;
mod helpers;
mod reading;
