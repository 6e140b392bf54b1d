//! Taking messages from the shard queues: the channels and the batches in
//! flight (`channels`), opening them (`opening`), and one batch applied with the failure rules:
//! retries, dead letters, acknowledgements in order (`batch`); the
//! confirmed copy to the dead-letter exchange (`dead_letter`); a batch's
//! spans joined to its webhooks' traces (`traced`).

pub mod batch;
pub mod channels;
pub mod dead_letter;
#[cfg(debug_assertions)]
mod injected_panic;
mod opening;
mod traced;
