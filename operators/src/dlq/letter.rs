//! A dead-lettered message, read into what an operator needs to judge it:
//! its svix-id, type, user, why it was dead-lettered, how often it was
//! delivered, its age. Pure: no broker, no clock (the caller passes "now").
//!
//! Dead letters arrive two ways. The worker publishes a message that kept
//! failing, with the error in `x-clerk-sync-error` and its deliveries in
//! `x-clerk-sync-deliveries`. RabbitMQ dead-letters a message delivered more
//! than `x-delivery-limit` times (a worker crashed or lost its connection on
//! it each time), recording why in `x-death`. Either way RabbitMQ then
//! restarts `x-delivery-count` for the dead-letter queue, so that header
//! says nothing about the shard deliveries.

use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::message_headers::{
    DEAD_LETTER_DELIVERIES, DEAD_LETTER_ERROR, DEAD_LETTERING, DEATH,
};
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp_value::{self, integer};
use clerk_sync_store::incoming::Incoming;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};

/// Who dead-lettered a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetteredBy {
    /// The worker, after the message failed at its last allowed delivery.
    Worker,
    /// RabbitMQ (`x-death`), e.g. past the queue's delivery limit.
    RabbitMq,
    Unknown,
}

impl DeadLetteredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::RabbitMq => "rabbitmq",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The svix-id, as the worker would log it.
    pub svix_id: String,
    pub event_type: Option<String>,
    pub user: Option<String>,
    /// The shard queue the message belongs on now.
    pub queue: String,
    pub reason: String,
    pub by: DeadLetteredBy,
    /// Deliveries from the shard queue before it was dead-lettered.
    pub deliveries: Option<u32>,
    /// When the ingest accepted it (Unix ms).
    pub received_at_ms: Option<i64>,
    /// When RabbitMQ dead-lettered it (Unix ms), if RabbitMQ did.
    pub dead_lettered_at_ms: Option<i64>,
    pub headers: Map<String, Value>,
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// Read a delivery from the dead-letter queue. `delivery_limit` is the
    /// shard queues' `x-delivery-limit` (`amqp.delivery_limit`): RabbitMQ
    /// dead-letters a message at the delivery after it.
    pub fn read(delivery: &Delivery, topology: &Topology, delivery_limit: u32) -> Self {
        let incoming = Incoming::from_delivery(delivery);
        let empty = FieldTable::default();
        let headers = delivery.properties.headers().as_ref().unwrap_or(&empty);
        let summary = EnvelopeSummary::read(&delivery.data);
        let parsed = ParsedEvent::parse(&delivery.data).ok();
        let death = first_death(headers);
        let worker_error = text(headers.inner().get(DEAD_LETTER_ERROR));
        let (by, reason) = match (&worker_error, &death) {
            (Some(error), _) => (DeadLetteredBy::Worker, error.clone()),
            (None, Some(death)) => (
                DeadLetteredBy::RabbitMq,
                match &death.queue {
                    Some(queue) => format!("{} (RabbitMQ, from {queue})", death.reason),
                    None => format!("{} (RabbitMQ)", death.reason),
                },
            ),
            (None, None) => (DeadLetteredBy::Unknown, "unknown".to_owned()),
        };
        let deliveries = match headers
            .inner()
            .get(DEAD_LETTER_DELIVERIES)
            .and_then(integer)
        {
            Some(n) => u32::try_from(n).ok(),
            None => death
                .as_ref()
                .filter(|d| d.reason == "delivery_limit")
                .map(|_| delivery_limit.saturating_add(1)),
        };
        let received_at_ms = incoming.received_at_ms.or_else(|| {
            delivery
                .properties
                .timestamp()
                .and_then(|secs| i64::try_from(secs).ok())
                .map(|secs| secs * 1000)
        });
        Self {
            queue: topology.queue_for(summary.routing_key(&incoming.svix_id)),
            event_type: parsed
                .as_ref()
                .map(|e| e.event_type.clone())
                .or(summary.event_type),
            user: parsed
                .as_ref()
                .and_then(|e| e.subject_user_id().map(str::to_owned))
                .or(summary.clerk_user_id),
            svix_id: incoming.svix_id,
            reason,
            by,
            deliveries,
            received_at_ms,
            dead_lettered_at_ms: death.and_then(|d| d.time_ms),
            headers: headers_json(headers),
            body: delivery.data.clone(),
        }
    }

    /// Seconds since the ingest accepted it (else since it was dead-lettered).
    pub fn age_secs(&self, now_ms: i64) -> Option<f64> {
        let since = self.received_at_ms.or(self.dead_lettered_at_ms)?;
        Some((now_ms - since).max(0) as f64 / 1000.0)
    }

    /// The body as text (lossy where it is not UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body pretty-printed when it is JSON, else as received.
    pub fn body_pretty(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| self.body_text())
    }

    /// What `dlq list --json` prints of it.
    pub fn summary_json(&self, now_ms: i64) -> Value {
        json!({
            "svix_id": self.svix_id,
            "event_type": self.event_type,
            "user": self.user,
            "reason": self.reason,
            "dead_lettered_by": self.by.as_str(),
            "deliveries": self.deliveries,
            "age_secs": self.age_secs(now_ms),
            "received_at": self.received_at_ms.and_then(rfc3339),
            "dead_lettered_at": self.dead_lettered_at_ms.and_then(rfc3339),
            "redrive_queue": self.queue,
        })
    }

    /// What `dlq show --json` prints: the summary, the headers and the body.
    pub fn full_json(&self, now_ms: i64) -> Value {
        let mut value = self.summary_json(now_ms);
        if let Value::Object(object) = &mut value {
            object.insert("headers".into(), Value::Object(self.headers.clone()));
            object.insert("body".into(), Value::String(self.body_text()));
        }
        value
    }
}

/// The properties to publish a redriven message with: the original ones
/// (message id, Svix headers, received-at, ...) without the dead-letter
/// bookkeeping, persistent.
pub fn redrive_properties(properties: &BasicProperties) -> BasicProperties {
    without_headers(properties, &DEAD_LETTERING).with_delivery_mode(2)
}

/// `properties` without the headers named in `names`.
pub fn without_headers(properties: &BasicProperties, names: &[&str]) -> BasicProperties {
    let headers: FieldTable = properties
        .headers()
        .as_ref()
        .map(|headers| {
            headers
                .inner()
                .iter()
                .filter(|(name, _)| !names.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into()
        })
        .unwrap_or_default();
    properties.clone().with_headers(headers)
}

/// An RFC 3339 time (UTC, milliseconds) for a Unix time in ms.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

struct Death {
    reason: String,
    queue: Option<String>,
    time_ms: Option<i64>,
}

/// The first `x-death` entry (the most recent dead-lettering).
fn first_death(headers: &FieldTable) -> Option<Death> {
    let AMQPValue::FieldArray(deaths) = headers.inner().get(DEATH)? else {
        return None;
    };
    let AMQPValue::FieldTable(death) = deaths.as_slice().first()? else {
        return None;
    };
    let field = |name: &str| death.inner().get(name);
    Some(Death {
        reason: text(field("reason")).unwrap_or_else(|| "unknown".to_owned()),
        queue: text(field("queue")),
        time_ms: field("time").and_then(integer).map(|secs| secs * 1000),
    })
}

fn text(value: Option<&AMQPValue>) -> Option<String> {
    amqp_value::text(value?)
}

/// AMQP headers as JSON: strings as text, numbers and times as numbers.
pub fn headers_json(headers: &FieldTable) -> Map<String, Value> {
    headers
        .inner()
        .iter()
        .map(|(name, value)| (name.to_string(), value_json(value)))
        .collect()
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Timestamp(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(format!("{}e-{}", d.value, d.scale)),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(bytes) => json!(String::from_utf8_lossy(bytes.as_slice())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(value_json).collect())
        }
        AMQPValue::FieldTable(table) => Value::Object(headers_json(table)),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::message_headers::{self as header, DELIVERY_COUNT};
    use clerk_sync_runtime::amqp_value::long_string as long;
    use lapin::types::FieldArray;

    fn delivery(headers: FieldTable, body: &str) -> Delivery {
        let mut delivery = Delivery::mock(1, "".into(), "".into(), false, body.as_bytes().to_vec());
        delivery.properties = BasicProperties::default()
            .with_message_id("msg_1".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        delivery
    }

    fn original_headers() -> FieldTable {
        let mut headers = FieldTable::default();
        headers
            .insert(header::SVIX_ID.into(), long("msg_1"))
            .insert(header::SVIX_TIMESTAMP.into(), long("1700000000"))
            .insert(header::SVIX_SIGNATURE.into(), long("v1,abc"))
            .insert(
                header::RECEIVED_AT_MS.into(),
                AMQPValue::Timestamp(1_700_000_000_000),
            );
        headers
    }

    const BODY: &str = r#"{"type":"user.updated","data":{"id":"user_1","updated_at":1}}"#;

    #[test]
    fn a_worker_dead_letter_carries_its_error_and_deliveries() {
        let mut headers = original_headers();
        headers
            .insert(DEAD_LETTER_ERROR.into(), long("duplicate key"))
            .insert(DEAD_LETTER_DELIVERIES.into(), AMQPValue::LongLongInt(10))
            .insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(3));
        let topology = Topology::new("p", 4);
        let letter = DeadLetter::read(&delivery(headers, BODY), &topology, 10);
        assert_eq!(letter.svix_id, "msg_1");
        assert_eq!(letter.event_type.as_deref(), Some("user.updated"));
        assert_eq!(letter.user.as_deref(), Some("user_1"));
        assert_eq!(letter.queue, topology.queue_for("user_1"));
        assert_eq!(letter.reason, "duplicate key");
        assert_eq!(letter.by, DeadLetteredBy::Worker);
        assert_eq!(letter.deliveries, Some(10));
        assert_eq!(letter.age_secs(1_700_000_060_000), Some(60.0));
        assert_eq!(letter.headers["svix-signature"], "v1,abc");
    }

    #[test]
    fn a_rabbitmq_dead_letter_is_read_from_x_death() {
        let mut death = FieldTable::default();
        death
            .insert("reason".into(), long("delivery_limit"))
            .insert("queue".into(), long("p.shard.1"))
            .insert("count".into(), AMQPValue::LongLongInt(1))
            .insert("time".into(), AMQPValue::Timestamp(1_700_000_100));
        let mut headers = original_headers();
        headers.insert(
            DEATH.into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
        );
        let letter = DeadLetter::read(&delivery(headers, "not json"), &Topology::new("p", 4), 10);
        assert_eq!(letter.by, DeadLetteredBy::RabbitMq);
        assert_eq!(letter.reason, "delivery_limit (RabbitMQ, from p.shard.1)");
        assert_eq!(letter.deliveries, Some(11), "dead-lettered after the limit");
        assert_eq!(letter.dead_lettered_at_ms, Some(1_700_000_100_000));
        assert_eq!(letter.event_type, None);
        assert_eq!(letter.headers["x-death"][0]["queue"], "p.shard.1");
        assert_eq!(letter.body_pretty(), "not json");
    }

    #[test]
    fn a_message_without_headers_still_reads() {
        let letter = DeadLetter::read(
            &delivery(FieldTable::default(), "{}"),
            &Topology::new("p", 2),
            3,
        );
        assert_eq!(letter.by, DeadLetteredBy::Unknown);
        assert_eq!(letter.deliveries, None);
        assert_eq!(letter.age_secs(0), None);
        assert_eq!(letter.summary_json(0)["svix_id"], "msg_1");
    }

    #[test]
    fn redriving_drops_only_the_dead_letter_bookkeeping() {
        let mut headers = original_headers();
        headers
            .insert(DEAD_LETTER_ERROR.into(), long("boom"))
            .insert(DEAD_LETTER_DELIVERIES.into(), AMQPValue::LongLongInt(10))
            .insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(2))
            .insert(DEATH.into(), AMQPValue::FieldArray(FieldArray::default()))
            .insert("x-first-death-reason".into(), long("delivery_limit"));
        let properties = delivery(headers, BODY).properties;
        let redriven = redrive_properties(&properties);
        assert_eq!(redriven.headers().as_ref(), Some(&original_headers()));
        assert_eq!(redriven.message_id(), properties.message_id());
        assert_eq!(redriven.delivery_mode(), &Some(2));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            rfc3339(1_700_000_000_123).as_deref(),
            Some("2023-11-14T22:13:20.123Z")
        );
    }
}
