//! A message taken from a shard queue, read into what the worker needs.
//! Reading never fails: what cannot be read is judged by the planner.

use clerk_sync_domain::clerk_event::{ParseError, ParsedEvent};
use clerk_sync_domain::message_headers as header;
use clerk_sync_domain::shard::fnv1a_64;
use clerk_sync_domain::storable::{self, MAX_ID_BYTES};
use clerk_sync_runtime::amqp_value::{header_text as text, integer};
use clerk_sync_runtime::signatures::{Signatures, Signed, Tolerance};
use lapin::message::Delivery;
use lapin::types::FieldTable;

#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub svix_id: String,
    pub svix_timestamp: Option<String>,
    pub svix_signature: Option<String>,
    pub received_at_ms: Option<i64>,
    pub body: Vec<u8>,
    /// The body read as a Clerk event, once, when the message arrived.
    pub event: Result<ParsedEvent, ParseError>,
    /// How often RabbitMQ delivered it before (quorum queues count).
    pub delivery_count: u32,
    /// The command that recorded it (`forget`, `reconcile`) when clerk-sync
    /// made the event itself, unsigned; never set for a message taken from
    /// a queue, so nothing published can claim it.
    pub recorded_by: Option<&'static str>,
}

impl Incoming {
    pub fn from_delivery(delivery: &Delivery) -> Self {
        let empty = FieldTable::default();
        let headers = delivery.properties.headers().as_ref().unwrap_or(&empty);
        let svix_id = match delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .or_else(|| text(headers, header::SVIX_ID))
        {
            Some(id) if storable::key_problem(&id, MAX_ID_BYTES).is_none() => id,
            // Not from the ingest: give it a stable id so it is logged once.
            Some(id) => format!("unstorable-{:016x}", fnv1a_64(id.as_bytes())),
            None => format!("unidentified-{:016x}", fnv1a_64(&delivery.data)),
        };
        let delivery_count = match headers.inner().get(header::DELIVERY_COUNT) {
            Some(value) => integer(value)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            None => u32::from(delivery.redelivered),
        };
        Self {
            svix_id,
            svix_timestamp: text(headers, header::SVIX_TIMESTAMP),
            svix_signature: text(headers, header::SVIX_SIGNATURE),
            received_at_ms: headers
                .inner()
                .get(header::RECEIVED_AT_MS)
                .and_then(integer),
            body: delivery.data.clone(),
            event: ParsedEvent::parse(&delivery.data),
            delivery_count,
            recorded_by: None,
        }
    }

    /// Why the message's Svix signature does not verify with `signatures`
    /// (its timestamp is not checked: messages wait in queues), or None
    /// when it does.
    pub fn signature_problem(&self, signatures: &Signatures) -> Option<String> {
        let (Some(timestamp), Some(signature)) = (&self.svix_timestamp, &self.svix_signature)
        else {
            return Some(
                "the message carries no svix-timestamp and svix-signature headers".to_owned(),
            );
        };
        let signed = Signed {
            id: &self.svix_id,
            timestamp,
            signature,
            body: &self.body,
        };
        signatures
            .check(signed, Tolerance::Any)
            .err()
            .map(|rejection| rejection.to_string())
    }

    /// The svix-timestamp header as seconds, if it is one.
    pub fn svix_timestamp_secs(&self) -> Option<i64> {
        self.svix_timestamp.as_deref()?.parse().ok()
    }
}
