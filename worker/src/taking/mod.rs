//! Taking messages from the shard queues: the channels and the batches in
//! flight (`channels`), and one batch applied with the failure rules:
//! retries, dead letters, acknowledgements in order (`batch`).

pub mod batch;
pub mod channels;
