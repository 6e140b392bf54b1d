//! The worker's integration tests, one binary (linked once): each module
//! drives real `clerk-sync-worker` processes, or the library, against the
//! real PostgreSQL and RabbitMQ, with a database and a topology of its own
//! (see `support`), so the tests run in parallel and leave nothing behind.

#![cfg(test)]

mod support;

mod app_schema;
mod apply;
mod batching;
mod convergence;
mod database_roles;
mod dead_letter_reads;
mod dlq;
mod email_moves;
mod failover;
mod failures;
mod migrate;
mod postgres_tls;
mod privacy;
mod projection;
mod reconcile;
mod replay;
mod secrets;
mod send;
mod signatures;
mod status;
mod unstorable;
mod visible_failures;
mod workers_per_host;
