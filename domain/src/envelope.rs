//! The outer shape of a Clerk webhook body, read just far enough to know the
//! event type and the user it concerns.
//!
//! Reading never fails: a body that is not JSON, or not an object, simply has
//! no type and no user. The ingest routes such a body by its svix-id and the
//! worker decides what to do with it.

use crate::ids;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

/// What the ingest (for routing) and the event log need from any body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeSummary {
    /// The envelope's `type`, e.g. `user.updated`.
    pub event_type: Option<String>,
    /// `data.id` for `user.*` events, else `data.user_id` where present,
    /// when it names a user ([`ids::is_user_id`]).
    pub clerk_user_id: Option<String>,
}

impl EnvelopeSummary {
    pub fn read(body: &[u8]) -> Self {
        let Ok(raw) = serde_json::from_slice::<RawEnvelope>(body) else {
            return Self::default();
        };
        let field = raw.event_type.as_deref().map(user_id_field);
        let clerk_user_id = raw.data.and_then(|data| match field {
            Some("id") => data.id,
            _ => data.user_id,
        });
        Self {
            event_type: raw.event_type,
            clerk_user_id: clerk_user_id.filter(|id| ids::is_user_id(id)),
        }
    }

    /// The key that chooses the shard: the user id, or else the svix-id so
    /// that events about no user still spread over the shards.
    pub fn routing_key<'a>(&'a self, svix_id: &'a str) -> &'a str {
        self.clerk_user_id.as_deref().unwrap_or(svix_id)
    }
}

/// The field of `data` that names the user an event of `event_type` is
/// about: `id` for `user.*` events (`data` is the user), else `user_id`
/// (sessions, e-mails, ... name their user there).
pub fn user_id_field(event_type: &str) -> &'static str {
    if event_type.starts_with("user.") {
        "id"
    } else {
        "user_id"
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
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
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
fn lenient_data<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<RawData>, D::Error> {
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

#[cfg(test)]
mod tests {
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
}
