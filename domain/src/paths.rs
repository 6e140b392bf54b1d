//! The HTTP paths clerk-sync serves, for the servers (the ingest; the
//! worker's health and metrics) and their clients (`send`, the tests, the
//! benchmarks) alike.

/// Where Clerk's webhooks are posted (the ingest).
pub const WEBHOOK: &str = "/api/webhooks/clerk";
/// Liveness: the process answers.
pub const HEALTH: &str = "/healthz";
/// Readiness: the services it needs are usable.
pub const READY: &str = "/readyz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
