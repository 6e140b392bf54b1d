//! The outer shape of a Clerk webhook body, read just far enough to know the
//! event type and the user it concerns.
//!
//! Reading never fails: a body that is not JSON, or not an object, simply has
//! no type and no user. The ingest routes such a body by its svix-id and the
//! worker decides what to do with it.

use crate::ids;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

#[derive(Debug, Default)]
struct RawData {
    id: Option<String>,
    user_id: Option<String>,
}

/// A string, or `None` for any other JSON value (never an error).
fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(LenientString)
}

/// An object's `id` and `user_id` (each a string or `None`), or `None` for
/// any other JSON value or an object naming either twice. Read in one pass,
/// skipping everything else: the rest of `data` (most of the body) is
/// never kept.
fn lenient_data<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<RawData>, D::Error> {
    deserializer.deserialize_any(LenientData)
}

/// The visitor methods of the JSON values a lenient reader takes as
/// `None`: booleans, numbers, null, arrays (read to their end).
macro_rules! none_for_the_other_values {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq).map(|_| None)
        }
    };
}

struct LenientString;

impl<'de> Visitor<'de> for LenientString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Some(text))
    }

    none_for_the_other_values!();

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| None)
    }
}

struct LenientData;

/// The fields of `data` that matter, read without copying the key.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Id,
    UserId,
    #[serde(other)]
    Other,
}

struct LenientSeed;

impl<'de> DeserializeSeed<'de> for LenientSeed {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        lenient_string(deserializer)
    }
}

impl<'de> Visitor<'de> for LenientData {
    type Value = Option<RawData>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = RawData::default();
        let (mut seen_id, mut seen_user_id, mut twice) = (false, false, false);
        while let Some(key) = map.next_key::<Key>()? {
            let (field, seen) = match key {
                Key::Id => (&mut data.id, &mut seen_id),
                Key::UserId => (&mut data.user_id, &mut seen_user_id),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            twice |= std::mem::replace(seen, true);
            *field = map.next_value_seed(LenientSeed)?;
        }
        Ok((!twice).then_some(data))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    none_for_the_other_values!();
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
