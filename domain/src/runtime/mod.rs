//! I/O-facing definitions shared by both binaries (feature `runtime`).

pub mod amqp;
pub mod broker_version;
pub mod secret_url;
pub mod settings;
pub mod telemetry;
