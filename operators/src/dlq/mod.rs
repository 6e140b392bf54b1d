//! `clerk-sync-worker dlq`: the dead-lettered messages.
//!
//! `list` and `show` take messages from the dead-letter queue and give them
//! all back, in order (see [`queue`]); `redrive` publishes messages back to
//! the shard queue their user routes to and removes each once RabbitMQ
//! confirmed it; `discard` records the decision in the event log (outcome
//! `failed`, error `discarded by operator`) and then removes the message.
//! `redrive` and `discard` first check that every id given is in the queue:
//! if one is not, they change nothing and exit 1.

mod browse;
pub(crate) mod discard;
pub mod letter;
pub mod queue;
mod redrive;
mod run;

pub use run::{Args, run};
