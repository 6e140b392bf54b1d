//! Hostile or broken clients: bodies that trickle or stall, lengths over
//! the limit, more requests than the ingest takes at once. Each test checks
//! the answer, that the connection was closed, and that every event
//! answered 202 (and nothing else) reached its shard queue.

mod client;
mod memory;
mod process;
mod slots;
