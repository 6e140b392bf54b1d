//! The one-pass reader against the reading it replaced: the body read
//! into a JSON tree, then each field taken from the tree (`tree_parse`
//! below, as `ParsedEvent::parse` was). Both must give the same event, or
//! the same error, for any body: well-formed or not (then both say it is
//! not JSON), with fields of the wrong type, repeated keys, escaped keys
//! and nested values.

use crate::clerk_event::{ClerkUser, EmailAddress, EventKind, Metadata, ParseError, ParsedEvent};
use crate::envelope::user_id_field;
use crate::ids;
use crate::storable::{self, MAX_EMAIL_BYTES, MAX_ID_BYTES};
use crate::version::{Rank, to_millis};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn tree_parse(body: &[u8]) -> Result<ParsedEvent, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ParseError::NotJson(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(ParseError::NotAnObject);
    };
    let event_type = text(&envelope, "type").ok_or(ParseError::NoType)?;
    let unstorable =
        |event_type: Option<&str>, user_id: Option<&str>, field, problem| ParseError::Unstorable {
            event_type: event_type.map(str::to_owned),
            user_id: user_id.map(str::to_owned),
            field,
            problem,
        };
    let time_problem = |value: Option<i64>| {
        let value = value?;
        storable::time_problem(to_millis(value)).map(|problem| format!("{value} {problem}"))
    };
    if let Some(problem) = storable::text_problem(&event_type) {
        return Err(unstorable(None, None, "type", problem));
    }
    let timestamp = integer(&envelope, "timestamp");
    if let Some(problem) = time_problem(timestamp) {
        return Err(unstorable(Some(&event_type), None, "timestamp", problem));
    }
    let kind = match event_type.as_str() {
        "user.created" | "user.updated" | "user.deleted" => {
            let Some(Value::Object(mut data)) = envelope.remove("data") else {
                return Err(ParseError::NoData { event_type });
            };
            let Some(id) = text(&data, "id").filter(|id| !id.is_empty()) else {
                return Err(ParseError::NoUserId { event_type });
            };
            if let Some(problem) = storable::key_problem(&id, MAX_ID_BYTES) {
                return Err(unstorable(Some(&event_type), None, "data.id", problem));
            }
            if event_type == "user.deleted" {
                EventKind::UserDeleted { user_id: id }
            } else {
                for (key, field) in [
                    ("created_at", "data.created_at"),
                    ("updated_at", "data.updated_at"),
                ] {
                    if let Some(problem) = time_problem(integer(&data, key)) {
                        return Err(unstorable(Some(&event_type), Some(&id), field, problem));
                    }
                }
                let user = user(id, &mut data);
                let texts = [
                    ("data.first_name", user.first_name.as_deref()),
                    ("data.last_name", user.last_name.as_deref()),
                    ("data.image_url", user.image_url.as_deref()),
                ];
                let email = user
                    .primary_email()
                    .and_then(|email| storable::key_problem(email, MAX_EMAIL_BYTES));
                if let Some((field, problem)) = texts
                    .into_iter()
                    .find_map(|(field, value)| Some((field, storable::text_problem(value?)?)))
                    .or_else(|| email.map(|problem| ("the primary e-mail address", problem)))
                {
                    return Err(unstorable(
                        Some(&event_type),
                        Some(&user.id),
                        field,
                        problem,
                    ));
                }
                let rank = match event_type.as_str() {
                    "user.created" => Rank::Created,
                    _ => Rank::Updated,
                };
                EventKind::UserUpsert {
                    rank,
                    user: Box::new(user),
                }
            }
        }
        _ => EventKind::Unhandled {
            user_id: match envelope.get("data") {
                Some(Value::Object(data)) => {
                    text(data, user_id_field(&event_type)).filter(|id| ids::is_user_id(id))
                }
                _ => None,
            },
        },
    };
    Ok(ParsedEvent {
        event_type,
        timestamp_ms: timestamp.map(to_millis),
        kind,
    })
}

fn user(id: String, data: &mut Map<String, Value>) -> ClerkUser {
    let email_addresses = match data.get("email_addresses") {
        Some(Value::Array(addresses)) => addresses
            .iter()
            .filter_map(|address| {
                let address = address.as_object()?;
                Some(EmailAddress {
                    id: text(address, "id")?,
                    email_address: text(address, "email_address")?,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let metadata = |data: &Map<String, Value>, key| Metadata {
        role: match data.get(key) {
            Some(Value::Object(metadata)) => text(metadata, "role"),
            _ => None,
        },
    };
    ClerkUser {
        id,
        first_name: text(data, "first_name"),
        last_name: text(data, "last_name"),
        image_url: text(data, "image_url"),
        primary_email_address_id: text(data, "primary_email_address_id"),
        email_addresses,
        created_at_ms: integer(data, "created_at").map(to_millis),
        updated_at_ms: integer(data, "updated_at").map(to_millis),
        public_metadata: metadata(data, "public_metadata"),
        private_metadata: metadata(data, "private_metadata"),
        unsafe_metadata: metadata(data, "unsafe_metadata"),
    }
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn integer(map: &Map<String, Value>, key: &str) -> Option<i64> {
    map.get(key).and_then(Value::as_i64)
}

/// Any JSON value, small, nested at most twice.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "user_1",
            "user_2",
            "student",
            "instructor",
            "a\u{0}b",
            "x@example.com",
            "idn_1",
        ])
        .prop_map(Value::from),
        Just(json!(1_700_000_000_000_i64)),
        Just(json!(1_700_000_000_i64)),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..3)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// The keys the reader looks for, and a few it does not.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "type",
        "timestamp",
        "data",
        "object",
        "id",
        "user_id",
        "first_name",
        "last_name",
        "image_url",
        "primary_email_address_id",
        "email_addresses",
        "email_address",
        "created_at",
        "updated_at",
        "public_metadata",
        "private_metadata",
        "unsafe_metadata",
        "role",
        "other",
    ])
    .prop_map(str::to_owned)
}

/// An object written as text, so that a key may repeat, and be escaped.
fn object(fields: &[(String, String)], escape: bool) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| match (escape, key.strip_prefix('t')) {
            (true, Some(rest)) => format!("\"\\u0074{rest}\":{value}"),
            _ => format!("{}:{value}", json!(key)),
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A field's value: usually of the type the reader wants, else anything.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any_value().prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            json!("user_29w83sxmDNGwOuEthce5gg56FcC"),
            json!("user.created"),
            json!("user.updated"),
            json!("user.deleted"),
            json!("session.created"),
            json!(1_654_012_591_835_i64),
            json!([{"id": "idn_1", "email_address": "a@example.com"}, {"id": 2}, "x"]),
            json!({"role": "student", "other": [1]}),
            json!({"role": 7}),
        ])
        .prop_map(|v| v.to_string()),
    ]
}

/// A body shaped like a Clerk event, sometimes not quite.
fn clerk_body() -> impl Strategy<Value = String> {
    let data = (
        prop::collection::vec((key(), field_value()), 0..10),
        any::<bool>(),
    )
        .prop_map(|(fields, escape)| object(&fields, escape));
    let envelope = (
        prop::collection::vec((key(), field_value()), 0..4),
        prop::option::of(data),
        prop::sample::select(vec![
            "\"user.created\"",
            "\"user.updated\"",
            "\"user.deleted\"",
            "\"session.created\"",
            "\"user.signed_in\"",
            "1",
        ]),
        any::<bool>(),
    )
        .prop_map(|(mut fields, data, event_type, escape)| {
            if let Some(data) = data {
                fields.insert(0, ("data".to_owned(), data));
            }
            fields.push(("type".to_owned(), event_type.to_owned()));
            object(&fields, escape)
        });
    prop_oneof![
        8 => envelope,
        1 => any_value().prop_map(|v| v.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn reads_every_body_as_the_tree_did(body in clerk_body()) {
        prop_assert_eq!(ParsedEvent::parse(body.as_bytes()), tree_parse(body.as_bytes()), "{}", body);
    }

    /// Cut short or with a byte changed: the same event, or the same error
    /// (when not JSON, serde_json may classify it otherwise: skipping a
    /// value checks less than reading it, e.g. a number cut short after
    /// its `-` is a syntax error there and an end of file here).
    #[test]
    fn fails_on_broken_json_as_the_tree_did(
        body in clerk_body(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"{}[],:\"\\ 0a-".to_vec()),
        cut in any::<bool>(),
    ) {
        let mut body = body.into_bytes();
        let at = at.index(body.len());
        if cut {
            body.truncate(at);
        } else {
            body[at] = byte;
        }
        match (ParsedEvent::parse(&body), tree_parse(&body)) {
            (Err(ParseError::NotJson(_)), Err(ParseError::NotJson(_))) => {}
            (read, tree) => prop_assert_eq!(read, tree, "{}", String::from_utf8_lossy(&body)),
        }
    }
}

#[test]
fn reads_the_fixtures_as_the_tree_did() {
    let root = format!("{}/../fixtures/clerk", env!("CARGO_MANIFEST_DIR"));
    let mut read = 0;
    for folder in ["", "openapi-spec", "synthetic"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{folder}")) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let body = std::fs::read(&path).unwrap();
                assert_eq!(ParsedEvent::parse(&body), tree_parse(&body), "{path:?}");
                read += 1;
            }
        }
    }
    assert!(read >= 9, "only {read} fixtures");
}
