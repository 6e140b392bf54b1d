//! AMQP header values: written as clerk-sync writes them, read whichever
//! AMQP type a publisher chose.

use lapin::types::{AMQPValue, FieldTable, LongString};

/// A string header or argument, as clerk-sync writes them.
pub fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// The string header `name` of `headers`, if there is one.
pub fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    text(headers.inner().get(name)?)
}

/// A string header (long or short string).
pub fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}

/// An integer or timestamp header.
pub fn integer(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok(),
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}
