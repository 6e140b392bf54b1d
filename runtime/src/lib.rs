//! What clerk-sync's binaries share at run time: settings (`settings`),
//! logging (`telemetry`), URLs that hold secrets (`secret_url`), and
//! RabbitMQ: connecting (`amqp_target`: a node's URI and TLS settings),
//! reading its version and declaring the topology
//! (`amqp`, `amqp_value`, `broker_version`; `topology_check` where
//! the user may not declare it), and what a binary reports of its
//! broker connection (`broker_link`); the health, readiness and
//! metrics answers (`serving`); Svix signatures (`signatures`). The
//! decisions stay in `clerk-sync-domain`, which does no I/O.

pub mod amqp;
pub mod amqp_target;
pub mod amqp_value;
pub mod broker_link;
pub mod broker_version;
pub mod confirm_channel;
pub mod secret_url;
pub mod serving;
pub mod settings;
pub mod signatures;
pub mod telemetry;
pub mod topology_check;
pub mod traces;
