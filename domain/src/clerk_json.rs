//! A Clerk webhook body read in one pass into the few fields clerk-sync
//! uses, as leniently as a JSON tree would be read: a field of another type
//! than expected reads as absent, a repeated key's last value wins, and
//! everything else is skipped without being kept. Only JSON that is not
//! well-formed fails, with serde_json's error. Nothing here decides what
//! the fields mean: see [`crate::clerk_event`].
//!
//! `data` is read before the event's type is known (Clerk writes `data`
//! first), so it keeps what any event needs: a user's fields and the
//! `user_id` other objects name their user by.

use crate::clerk_event::EmailAddress;
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The envelope's fields.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    /// `type`, when a string.
    pub event_type: Option<String>,
    /// `timestamp`, when an integer that fits an i64.
    pub timestamp: Option<i64>,
    /// `data`, when an object.
    pub data: Option<Data>,
}

/// The fields of `data` clerk-sync reads: strings and integers when they
/// are of that type, the e-mail addresses that are objects with a string
/// `id` and `email_address`, and the `role` of each metadata object.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub id: Option<String>,
    pub user_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub primary_email_address_id: Option<String>,
    pub email_addresses: Vec<EmailAddress>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub public_metadata: Metadata,
    pub private_metadata: Metadata,
    pub unsafe_metadata: Metadata,
}

/// What clerk-sync reads of a metadata object: its `role`, when a string
/// (a `role` of another type, or metadata that is not an object, names
/// none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub role: Option<String>,
}

/// Read `body`: its envelope, or None when it is JSON but not an object;
/// Err only when it is not well-formed JSON.
pub(crate) fn read(body: &[u8]) -> Result<Option<Envelope>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let envelope = ObjectOf::<Envelope>::new().deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(envelope)
}

/// An object whose fields are read one by one, each key once unescaped.
trait Fields: Default {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

impl Fields for Envelope {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "type" => self.event_type = map.next_value_seed(AnyValue)?.text(),
            "timestamp" => self.timestamp = map.next_value_seed(AnyValue)?.integer(),
            "data" => self.data = map.next_value_seed(ObjectOf::new())?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Data {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        let text = match key {
            "id" => &mut self.id,
            "user_id" => &mut self.user_id,
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "image_url" => &mut self.image_url,
            "primary_email_address_id" => &mut self.primary_email_address_id,
            "created_at" => {
                self.created_at = map.next_value_seed(AnyValue)?.integer();
                return Ok(());
            }
            "updated_at" => {
                self.updated_at = map.next_value_seed(AnyValue)?.integer();
                return Ok(());
            }
            "email_addresses" => {
                self.email_addresses = map.next_value_seed(Addresses)?;
                return Ok(());
            }
            "public_metadata" => {
                self.public_metadata = metadata(map)?;
                return Ok(());
            }
            "private_metadata" => {
                self.private_metadata = metadata(map)?;
                return Ok(());
            }
            "unsafe_metadata" => {
                self.unsafe_metadata = metadata(map)?;
                return Ok(());
            }
            _ => return skip(map),
        };
        *text = map.next_value_seed(AnyValue)?.text();
        Ok(())
    }
}

fn metadata<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Metadata, A::Error> {
    Ok(map.next_value_seed(ObjectOf::new())?.unwrap_or_default())
}

impl Fields for Metadata {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "role" => self.role = map.next_value_seed(AnyValue)?.text(),
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// One e-mail address, kept when both fields are strings.
#[derive(Default)]
struct Address {
    id: Option<String>,
    email_address: Option<String>,
}

impl Fields for Address {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "id" => self.id = map.next_value_seed(AnyValue)?.text(),
            "email_address" => self.email_address = map.next_value_seed(AnyValue)?.text(),
            _ => skip(map)?,
        }
        Ok(())
    }
}

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(drop)
}

/// Any JSON value, keeping only a string or an integer.
enum Scalar {
    Text(String),
    /// An integer that fits an i64 (as `Value::as_i64` reads one).
    Integer(i64),
    Other,
}

impl Scalar {
    fn text(self) -> Option<String> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    fn integer(self) -> Option<i64> {
        match self {
            Self::Integer(integer) => Some(integer),
            _ => None,
        }
    }
}

/// Reads any JSON value into a [`Scalar`].
struct AnyValue;

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: Error>(self, text: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(text.to_owned()))
    }
    fn visit_string<E: Error>(self, text: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(text))
    }
    fn visit_i64<E: Error>(self, integer: i64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(integer))
    }
    fn visit_u64<E: Error>(self, integer: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(integer).map_or(Scalar::Other, Scalar::Integer))
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        drain_seq(seq).map(|()| Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        drain_map(map).map(|()| Scalar::Other)
    }
}

/// The visitor methods of every JSON value but arrays and objects, each
/// answering `$value`.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// An object read by its `Fields`, or `None` for any other value.
struct ObjectOf<T>(PhantomData<T>);

impl<T> ObjectOf<T> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: Fields> DeserializeSeed<'de> for ObjectOf<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Fields> Visitor<'de> for ObjectOf<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut fields = T::default();
        while let Some(key) = map.next_key_seed(Key)? {
            fields.field(&key, &mut map)?;
        }
        Ok(Some(fields))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    scalars_are!(None);
}

/// `email_addresses`: the addresses that are objects with a string `id`
/// and `email_address`, in order; none when it is not an array.
struct Addresses;

impl<'de> DeserializeSeed<'de> for Addresses {
    type Value = Vec<EmailAddress>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Addresses {
    type Value = Vec<EmailAddress>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut addresses = Vec::new();
        while let Some(address) = seq.next_element_seed(ObjectOf::<Address>::new())? {
            if let Some(Address {
                id: Some(id),
                email_address: Some(email_address),
            }) = address
            {
                addresses.push(EmailAddress { id, email_address });
            }
        }
        Ok(addresses)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Vec::new())
    }
    scalars_are!(Vec::new());
}

/// An object's key, unescaped; borrowed from the body when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }
    fn visit_str<E: Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
    fn visit_string<E: Error>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
#[path = "clerk_json_tests.rs"]
mod tests;
