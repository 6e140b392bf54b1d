//! What a worker serves beside its work: `/healthz`, `/readyz` and
//! `/metrics` on an address of its own (`http`, `metrics`), its name and
//! that address (`instance`), and its reports of what it holds of each
//! shard queue, for `status` (`shard_heads`).

pub mod http;
pub mod instance;
pub mod metrics;
pub mod shard_heads;
