//! What clerk-sync's binaries share at run time: settings (`settings`),
//! logging (`telemetry`), URLs that hold secrets (`secret_url`), and
//! RabbitMQ: connecting, reading its version and declaring the topology
//! (`amqp`, `broker_version`). The decisions stay in `clerk-sync-domain`,
//! which does no I/O.

pub mod amqp;
pub mod broker_version;
pub mod secret_url;
pub mod settings;
pub mod telemetry;
