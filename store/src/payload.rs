//! The `payload` of a `clerk_sync.events` row: the body exactly as received
//! and its Svix headers. A body is kept as text (`body`) when it is UTF-8
//! without NUL characters, which `jsonb` can hold; any other body (which
//! cannot be a Clerk event) in base64 (`body_base64`), byte for byte, so
//! that logging it never fails.

use crate::incoming::Incoming;
use crate::plan::LogRow;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use std::collections::HashMap;

/// SQL that selects the body's two forms as `body` and `body_base64`.
pub const BODY_COLUMNS: &str = "payload->>'body' AS body, payload->>'body_base64' AS body_base64";

/// The payload of `message`, as JSON text: written in one pass, the body
/// borrowed and escaped once (no JSON tree, no copy of the body).
pub fn of(message: &Incoming) -> String {
    let (body, body_base64) = match std::str::from_utf8(&message.body) {
        Ok(text) if !text.contains('\0') => (Some(text), None),
        _ => (None, Some(STANDARD.encode(&message.body))),
    };
    let payload = Payload {
        headers: Headers {
            svix_id: &message.svix_id,
            svix_timestamp: message.svix_timestamp.as_deref(),
            svix_signature: message.svix_signature.as_deref(),
        },
        body,
        body_base64,
        recorded_by: message.recorded_by,
    };
    // Strings and options only: serialising cannot fail.
    serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_owned())
}

#[derive(Serialize)]
struct Payload<'a> {
    headers: Headers<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    /// [`RECORDED_BY`].
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_by: Option<&'static str>,
}

#[derive(Serialize)]
struct Headers<'a> {
    #[serde(rename = "svix-id")]
    svix_id: &'a str,
    #[serde(rename = "svix-timestamp")]
    svix_timestamp: Option<&'a str>,
    #[serde(rename = "svix-signature")]
    svix_signature: Option<&'a str>,
}

/// The payload key naming the command that recorded an event clerk-sync
/// made itself (see [`Incoming::recorded_by`]).
pub const RECORDED_BY: &str = "recorded_by";

/// The payloads of `rows`, in order: each that of the message with its
/// svix-id (the first, when a batch holds one twice).
pub fn of_rows(rows: &[LogRow], messages: &[Incoming]) -> Vec<String> {
    let mut by_id: HashMap<&str, &Incoming> = HashMap::with_capacity(messages.len());
    for message in messages {
        by_id.entry(message.svix_id.as_str()).or_insert(message);
    }
    rows.iter()
        .map(|row| {
            by_id
                .get(row.svix_id.as_str())
                .map_or_else(|| "null".to_owned(), |m| of(m))
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
    use serde_json::Value;

    /// `of`, read back as JSON.
    fn payload_of(message: &Incoming) -> Value {
        serde_json::from_str(&of(message)).unwrap()
    }

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

    /// The JSON tree this text replaced, built as it was.
    fn as_before(message: &Incoming) -> Value {
        let mut payload = serde_json::json!({
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

    #[test]
    fn the_text_is_the_json_tree_it_replaced() {
        let mut recorded =
            message(br#"{"type":"user.created","data":{"first_name":"A\"b\\c\u00e9\n"}}"#);
        recorded.recorded_by = Some("reconcile");
        recorded.svix_signature = Some("v1,abc".to_owned());
        let mut untimed = message(b"\xff\x00binary");
        untimed.svix_timestamp = None;
        for message in [
            message(b"{}"),
            message("{\"é\":\"\u{1F600}\"}".as_bytes()),
            recorded,
            untimed,
        ] {
            assert_eq!(payload_of(&message), as_before(&message));
        }
    }

    #[test]
    fn text_is_kept_as_text() {
        let payload = payload_of(&message(br#"{"b": 1}"#));
        assert_eq!(payload["body"], r#"{"b": 1}"#);
        assert_eq!(payload["headers"]["svix-id"], "m1");
        assert_eq!(stored(&payload), br#"{"b": 1}"#);
    }

    #[test]
    fn nul_and_invalid_utf8_are_kept_byte_for_byte_in_base64() {
        for body in [&b"{\"a\":1}\0"[..], b"\xff\xfe", b"\0"] {
            let payload = payload_of(&message(body));
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
        let payloads: Vec<Value> = of_rows(&plan.log, &[other, message(b"{\"n\":1}")])
            .iter()
            .map(|text| serde_json::from_str(text).unwrap())
            .collect();
        assert_eq!(plan.log.len(), 2, "a svix-id is logged once");
        assert_eq!(payloads[0]["body"], "{\"n\":1}");
        assert_eq!(payloads[0]["headers"]["svix-id"], "m1");
        assert_eq!(payloads[1]["body"], "{\"n\":3}");
    }
}
