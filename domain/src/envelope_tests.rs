//! The envelope's reading: fixtures, unreadable bodies, and agreement
//! with the reader it replaced.

use super::*;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/clerk/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

#[test]
fn user_events_are_about_data_id() {
    for (file, user) in [
        ("user.created.json", "user_29w83sxmDNGwOuEthce5gg56FcC"),
        ("user.updated.json", "user_29w83sxmDNGwOuEthce5gg56FcC"),
        ("user.deleted.json", "user_29wBMCtzATuFJut8jO2VNTVekS4"),
        (
            "user.created.captured-anonymized.compact.json",
            "user_2xtKOmOKFZcYQ8kBGzxhPlrgBJv",
        ),
    ] {
        let summary = EnvelopeSummary::read(&fixture(file));
        assert_eq!(summary.clerk_user_id.as_deref(), Some(user), "{file}");
        assert!(
            summary
                .event_type
                .as_deref()
                .is_some_and(|t| t.starts_with("user."))
        );
    }
}

#[test]
fn other_events_are_about_data_user_id_when_they_name_one() {
    let session = EnvelopeSummary::read(&fixture("session.created.json"));
    assert_eq!(session.event_type.as_deref(), Some("session.created"));
    assert!(
        session
            .clerk_user_id
            .as_deref()
            .is_some_and(|u| u.starts_with("user_"))
    );

    let org = EnvelopeSummary::read(&fixture("organization.created.json"));
    assert_eq!(org.event_type.as_deref(), Some("organization.created"));
    assert_eq!(org.clerk_user_id, None);
    assert_eq!(org.routing_key("msg_1"), "msg_1");
}

#[test]
fn unreadable_bodies_have_no_type_and_no_user() {
    for body in [
        &b""[..],
        b"not json",
        b"[1,2]",
        br#"{"type": 7, "data": "x"}"#,
        br#"{"type": "user.created", "data": {"id": 42}}"#,
        br#"{"type": "user.created", "data": {"id": ""}}"#,
    ] {
        assert_eq!(EnvelopeSummary::read(body).clerk_user_id, None);
    }
    assert_eq!(
        EnvelopeSummary::read(br#"{"type": "user.created", "data": {"id": 42}}"#)
            .event_type
            .as_deref(),
        Some("user.created")
    );
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = EnvelopeSummary::read(&body);
    }
}

/// The reading before it was made one pass: serde's untagged enums, which
/// buffer all of `data`. The new one must agree with it on every body
/// where `data` is not an array (the old one read an array as a struct's
/// fields in order: a quirk no Clerk body has; the new one finds no user).
mod reference {
    use super::super::{EnvelopeSummary, ids, user_id_field};
    use serde::Deserialize;
    use serde::de::{Deserializer, IgnoredAny};

    pub fn read(body: &[u8]) -> EnvelopeSummary {
        let Ok(raw) = serde_json::from_slice::<RawEnvelope>(body) else {
            return EnvelopeSummary::default();
        };
        let field = raw.event_type.as_deref().map(user_id_field);
        let clerk_user_id = raw.data.and_then(|data| match field {
            Some("id") => data.id,
            _ => data.user_id,
        });
        EnvelopeSummary {
            event_type: raw.event_type,
            clerk_user_id: clerk_user_id.filter(|id| ids::is_user_id(id)),
        }
    }

    #[derive(Deserialize)]
    struct RawEnvelope {
        #[serde(rename = "type", default, deserialize_with = "lenient_string")]
        event_type: Option<String>,
        #[serde(default, deserialize_with = "lenient_data")]
        data: Option<RawData>,
    }

    #[derive(Deserialize)]
    struct RawData {
        #[serde(default, deserialize_with = "lenient_string")]
        id: Option<String>,
        #[serde(default, deserialize_with = "lenient_string")]
        user_id: Option<String>,
    }

    /// A string, or `None` for any other JSON value (never an error).
    fn lenient_string<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Lenient {
            Text(String),
            Other(IgnoredAny),
        }
        Ok(match Lenient::deserialize(deserializer)? {
            Lenient::Text(text) => Some(text),
            Lenient::Other(_) => None,
        })
    }

    /// An object with the fields above, or `None` for any other JSON value.
    fn lenient_data<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<RawData>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Lenient {
            Data(RawData),
            Other(IgnoredAny),
        }
        Ok(match Lenient::deserialize(deserializer)? {
            Lenient::Data(data) => Some(data),
            Lenient::Other(_) => None,
        })
    }
}

/// A JSON value as a body may hold it, but no array (see `reference`).
fn scalar_or_object() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        (-5i64..5).prop_map(|n| n.to_string()),
        "user_[a-z0-9]{0,6}".prop_map(|s| format!("{s:?}")),
        "[a-z._ ]{0,8}".prop_map(|s| format!("{s:?}")),
        Just(r#"{"id": "user_nested"}"#.to_owned()),
    ]
}

/// A JSON value, an array included: inside `data`, where the old reader
/// took arrays as any other value.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![scalar_or_object(), Just(r#"["user_in_array"]"#.to_owned())]
}

/// An object of some of `keys`, each maybe twice, with `values`.
fn object(
    keys: &'static [&'static str],
    values: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(keys), values), 0..5).prop_map(|fields| {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
        format!("{{{}}}", fields.join(", "))
    })
}

proptest! {
    #[test]
    fn reads_as_the_buffering_reader_did(
        body in object(
            &["type", "data", "object", "timestamp"],
            prop_oneof![
                scalar_or_object(),
                Just(r#""user.created""#.to_owned()),
                Just(r#""session.created""#.to_owned()),
                object(&["id", "user_id", "email", "i\\u0064"], value().boxed()),
            ].boxed(),
        )
    ) {
        prop_assert_eq!(EnvelopeSummary::read(body.as_bytes()), reference::read(body.as_bytes()), "{}", body);
    }
}

#[test]
fn an_array_at_data_names_no_user() {
    let body = br#"{"type": "user.created", "data": ["user_1", "user_2"]}"#;
    assert_eq!(EnvelopeSummary::read(body).clerk_user_id, None);
}
