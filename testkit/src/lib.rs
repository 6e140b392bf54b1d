//! What clerk-sync's tests and benchmarks share: the tests' broker, a
//! database and a topology of a test's own (removed when it ends), signed
//! webhooks, a TCP proxy that cuts or slows a service, a RabbitMQ node of a
//! test's own (and TLS files for it), a vhost and users of a test's own,
//! CPU figures, how fast the machine is right now, a lean HTTP/1.1 client
//! for load generators, a service run by a benchmark as a child process, a
//! fake of Clerk's Backend API. Never a dependency of the binaries.

pub mod broker;
pub mod certificates;
pub mod cleanup;
pub mod cpu;
pub mod database;
pub mod fake_clerk;
pub mod http1;
pub mod private_node;
pub mod private_postgres;
pub mod proxy;
pub mod service;
pub mod speed;
pub mod topology;
pub mod vhost;
pub mod webhook;
