//! Names of the AMQP message headers the ingest sets and the worker reads.
//!
//! The message body is the webhook body byte for byte; these headers carry
//! the Svix headers it was signed with and what the ingest learned about it.

/// The Svix message id (also the AMQP `message_id` property).
pub const SVIX_ID: &str = "svix-id";
/// The Svix timestamp header, decimal Unix seconds, as received.
pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
/// The Svix signature header, as received (kept for audits).
pub const SVIX_SIGNATURE: &str = "svix-signature";
/// The envelope's `type`, when the body is a JSON object that has one.
pub const EVENT_TYPE: &str = "clerk-event-type";
/// The user id the message was routed by (the svix-id when there is none).
pub const ROUTING_KEY: &str = "clerk-routing-key";
/// When the ingest accepted the request, Unix milliseconds.
pub const RECEIVED_AT_MS: &str = "clerk-sync-received-at-ms";
