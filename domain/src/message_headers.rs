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

/// Set by the worker on a message it dead-letters: why it failed.
pub const DEAD_LETTER_ERROR: &str = "x-clerk-sync-error";
/// Set by the worker on a message it dead-letters: how many deliveries it
/// had (RabbitMQ resets [`DELIVERY_COUNT`] in the dead-letter queue).
pub const DEAD_LETTER_DELIVERIES: &str = "x-clerk-sync-deliveries";

/// RabbitMQ's: how many times a quorum queue delivered the message before.
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// RabbitMQ's: the history of the message's dead-lettering.
pub const DEATH: &str = "x-death";

/// Headers that describe the dead-lettering, not the event: RabbitMQ's and
/// the worker's. A redriven message goes back without them, as the ingest
/// first published it.
pub const DEAD_LETTERING: [&str; 10] = [
    DEATH,
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    DELIVERY_COUNT,
    DEAD_LETTER_ERROR,
    DEAD_LETTER_DELIVERIES,
];
