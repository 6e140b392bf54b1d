//! Erasing the personal fields of a logged event: what stays is what replay
//! needs to converge (the event's type and time, the user's id, its
//! versions and the tombstone), nothing a person could be recognised by.
//! Pure: the worker applies it to `clerk_sync.events`.

use serde_json::{Map, Value};

/// Envelope fields kept.
const ENVELOPE: [&str; 4] = ["type", "object", "timestamp", "instance_id"];
/// `data` fields kept: ids, object kind, times, the tombstone flag.
const DATA: [&str; 6] = [
    "id",
    "object",
    "user_id",
    "created_at",
    "updated_at",
    "deleted",
];

/// The body with everything but the fields above removed (names, e-mail
/// addresses, phone numbers, image URLs, usernames, metadata, the request's
/// IP and user agent in `event_attributes`, ...). A body that is not a JSON
/// object keeps nothing.
pub fn erase_body(body: &str) -> String {
    let Ok(Value::Object(envelope)) = serde_json::from_str::<Value>(body) else {
        return "{}".to_owned();
    };
    let mut erased = keep(&envelope, &ENVELOPE);
    if let Some(Value::Object(data)) = envelope.get("data") {
        erased.insert("data".to_owned(), Value::Object(keep(data, &DATA)));
    }
    Value::Object(erased).to_string()
}

fn keep(object: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|key| {
            let value = object.get(*key)?;
            // Only scalars: an id or a time is never an object or array.
            (!value.is_object() && !value.is_array()).then(|| ((*key).to_owned(), value.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clerk_event::ParsedEvent;
    use crate::roles::RolePolicy;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../fixtures/clerk/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn an_erased_event_keeps_what_replay_needs() {
        for name in [
            "user.created.json",
            "user.updated.json",
            "user.deleted.json",
        ] {
            let body = fixture(name);
            let erased = erase_body(&body);
            let before = ParsedEvent::parse(body.as_bytes()).unwrap();
            let after = ParsedEvent::parse(erased.as_bytes()).unwrap();
            assert_eq!(after.event_type, before.event_type, "{name}");
            assert_eq!(after.user_id(), before.user_id(), "{name}");
            assert_eq!(after.version("m", 0), before.version("m", 0), "{name}");
        }
    }

    #[test]
    fn no_personal_value_survives() {
        let body = fixture("user.created.json");
        let erased = erase_body(&body);
        let parsed = ParsedEvent::parse(body.as_bytes()).unwrap();
        let Some((change, _)) = parsed.change("m", 0, &RolePolicy::default()) else {
            panic!("a user event");
        };
        let crate::projection::Change::Upsert { profile, .. } = change else {
            panic!("an upsert");
        };
        for personal in [
            profile.email.unwrap_or_default(),
            profile.first_name,
            profile.last_name,
            profile.image_url.unwrap_or_default(),
        ] {
            assert!(!personal.is_empty());
            assert!(!erased.contains(&personal), "{personal} in {erased}");
        }
        for key in [
            "phone",
            "username",
            "metadata",
            "event_attributes",
            "ip",
            "user_agent",
        ] {
            assert!(!erased.contains(key), "{key} in {erased}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_keeps_nothing() {
        for body in ["", "not json", "[1, 2]", "\"ada@example.com\""] {
            assert_eq!(erase_body(body), "{}");
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z@.]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the body: only the listed keys remain, only scalars,
        /// at most two levels deep, and erasing again changes nothing.
        #[test]
        fn only_listed_scalars_remain(data in json(), extra in json(), secret in "[a-z]{16}") {
            let mut envelope = Map::new();
            envelope.insert("type".into(), Value::from("user.updated"));
            envelope.insert("data".into(), data);
            envelope.insert("event_attributes".into(), extra);
            envelope.insert("secret_field".into(), Value::from(secret.clone()));
            let erased = erase_body(&Value::Object(envelope).to_string());
            let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&erased) else {
                panic!("erased body is an object");
            };
            for (key, value) in &top {
                if key == "data" {
                    let Value::Object(data) = value else { panic!("data is an object") };
                    for (key, value) in data {
                        prop_assert!(DATA.contains(&key.as_str()));
                        prop_assert!(!value.is_object() && !value.is_array());
                    }
                } else {
                    prop_assert!(ENVELOPE.contains(&key.as_str()));
                }
            }
            prop_assert!(!erased.contains(&secret));
            prop_assert_eq!(erase_body(&erased), erased);
        }
    }
}
