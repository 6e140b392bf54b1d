//! The `payload` of a `clerk_sync.events` row: the body exactly as received
//! and its Svix headers. A body is kept as text (`body`) when it is UTF-8
//! without NUL characters, which `jsonb` can hold; any other body (which
//! cannot be a Clerk event) in base64 (`body_base64`), byte for byte, so
//! that logging it never fails.

use crate::incoming::Incoming;
use crate::plan::LogRow;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::HashMap;

/// SQL that selects the body's two forms as `body` and `body_base64`.
pub const BODY_COLUMNS: &str = "payload->>'body' AS body, payload->>'body_base64' AS body_base64";

/// The payload of `message`.
pub fn of(message: &Incoming) -> Value {
    let mut payload = json!({
        "headers": {
            "svix-id": message.svix_id,
            "svix-timestamp": message.svix_timestamp,
            "svix-signature": message.svix_signature,
        },
    });
    let (key, body) = match std::str::from_utf8(&message.body) {
        Ok(text) if !text.contains('\0') => ("body", text.to_owned()),
        _ => ("body_base64", STANDARD.encode(&message.body)),
    };
    payload[key] = Value::String(body);
    if let Some(command) = message.recorded_by {
        payload[RECORDED_BY] = Value::from(command);
    }
    payload
}

/// The payload key naming the command that recorded an event clerk-sync
/// made itself (see [`Incoming::recorded_by`]).
pub const RECORDED_BY: &str = "recorded_by";

/// The payloads of `rows`, in order: each that of the message with its
/// svix-id (the first, when a batch holds one twice).
pub fn of_rows(rows: &[LogRow], messages: &[Incoming]) -> Vec<Value> {
    let mut by_id: HashMap<&str, &Incoming> = HashMap::with_capacity(messages.len());
    for message in messages {
        by_id.entry(message.svix_id.as_str()).or_insert(message);
    }
    rows.iter()
        .map(|row| {
            by_id
                .get(row.svix_id.as_str())
                .map_or(Value::Null, |m| of(m))
        })
        .collect()
}

/// The body from its two stored forms (see [`BODY_COLUMNS`]).
pub fn body(text: Option<String>, base64: Option<&str>) -> Vec<u8> {
    match (text, base64) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(base64)) => STANDARD.decode(base64).unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::clerk_event::ParsedEvent;

    fn message(body: &[u8]) -> Incoming {
        Incoming {
            svix_id: "m1".to_owned(),
            svix_timestamp: Some("1700000000".to_owned()),
            svix_signature: None,
            received_at_ms: None,
            body: body.to_vec(),
            event: ParsedEvent::parse(body),
            delivery_count: 0,
            recorded_by: None,
        }
    }

    fn stored(payload: &Value) -> Vec<u8> {
        body(
            payload["body"].as_str().map(str::to_owned),
            payload["body_base64"].as_str(),
        )
    }

    #[test]
    fn text_is_kept_as_text() {
        let payload = of(&message(br#"{"b": 1}"#));
        assert_eq!(payload["body"], r#"{"b": 1}"#);
        assert_eq!(payload["headers"]["svix-id"], "m1");
        assert_eq!(stored(&payload), br#"{"b": 1}"#);
    }

    #[test]
    fn nul_and_invalid_utf8_are_kept_byte_for_byte_in_base64() {
        for body in [&b"{\"a\":1}\0"[..], b"\xff\xfe", b"\0"] {
            let payload = of(&message(body));
            assert!(payload.get("body").is_none(), "{payload}");
            assert!(!payload.to_string().contains("\\u0000"));
            assert_eq!(stored(&payload), body);
        }
    }

    #[test]
    fn each_row_gets_the_payload_of_its_message() {
        let first = message(b"{\"n\":1}");
        let mut again = message(b"{\"n\":2}");
        again.svix_id = "m1".to_owned();
        let mut other = message(b"{\"n\":3}");
        other.svix_id = "m2".to_owned();
        let plan = crate::plan::plan(
            &[first, again, other.clone()],
            &std::collections::BTreeMap::new(),
            &std::collections::HashSet::new(),
            &clerk_sync_domain::roles::RolePolicy::default(),
            None,
            0,
        );
        let payloads = of_rows(&plan.log, &[other, message(b"{\"n\":1}")]);
        assert_eq!(plan.log.len(), 2, "a svix-id is logged once");
        assert_eq!(payloads[0]["body"], "{\"n\":1}");
        assert_eq!(payloads[0]["headers"]["svix-id"], "m1");
        assert_eq!(payloads[1]["body"], "{\"n\":3}");
    }
}
