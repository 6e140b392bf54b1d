//! clerk-sync-ingest: verifies Clerk's Svix-signed webhooks on the raw body
//! and publishes each to RabbitMQ, answering 2xx only once it is durable.

pub mod admission;
pub mod amqp;
pub mod body;
pub mod broker;
pub mod cli;
pub mod connection_limits;
pub mod links;
pub mod metrics;
pub mod publisher;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod verify;
