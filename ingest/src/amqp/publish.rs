//! A publish as bytes, written by hand. Pure.
//!
//! Every request publishes one message, so its three parts are written
//! straight into the connection's buffer: the `basic.publish` method, the
//! content header (the properties the ingest sets, and string headers)
//! and the body, split into frames of at most the size agreed with the
//! server. amq-protocol would build the properties as a map of owned
//! strings and encode each frame into a buffer of its own first; the
//! tests check that amq-protocol reads these bytes as the publish meant.

use super::frames::{FRAME_END, FRAME_HEADER, FRAME_OVERHEAD, FrameError};

const FRAME_METHOD: u8 = 1;
const FRAME_CONTENT_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
/// The class of `basic.*` and its `publish` method.
const BASIC_CLASS: u16 = 60;
const BASIC_PUBLISH: u16 = 40;
/// The property flags of the properties written, in the protocol's order:
/// content-type, headers, delivery-mode, message-id, timestamp.
const CONTENT_TYPE: u16 = 1 << 15;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
/// `delivery-mode` of a message written to disk.
const PERSISTENT: u8 = 2;
/// The field-table type tags of the values written.
const LONG_STRING: u8 = b'S';
const TIMESTAMP_VALUE: u8 = b'T';

/// One header's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    /// Unix time (an AMQP timestamp).
    Timestamp(u64),
}

/// A persistent, mandatory publish of a JSON body.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub message_id: &'a str,
    /// Unix seconds.
    pub timestamp: u64,
    pub headers: &'a [(&'a str, Value<'a>)],
    pub body: &'a [u8],
}

/// Append `publish` on `channel` to `out`: its method, header and body
/// frames, none larger than `frame_max` (0: no limit). On an error (a
/// name or id over 255 bytes) nothing is appended.
pub fn put_publish(
    out: &mut Vec<u8>,
    channel: u16,
    publish: &Publish<'_>,
    frame_max: u32,
) -> Result<(), FrameError> {
    let start = out.len();
    let written =
        put_method(out, channel, publish).and_then(|()| put_header(out, channel, publish));
    if let Err(e) = written {
        out.truncate(start);
        return Err(e);
    }
    let most = match frame_max as usize {
        0 => publish.body.len().max(1),
        max => max.saturating_sub(FRAME_OVERHEAD).max(1),
    };
    for chunk in publish.body.chunks(most) {
        let frame = begin(out, FRAME_BODY, channel);
        out.extend_from_slice(chunk);
        end(out, frame);
    }
    Ok(())
}

fn put_method(out: &mut Vec<u8>, channel: u16, publish: &Publish<'_>) -> Result<(), FrameError> {
    let frame = begin(out, FRAME_METHOD, channel);
    out.extend_from_slice(&BASIC_CLASS.to_be_bytes());
    out.extend_from_slice(&BASIC_PUBLISH.to_be_bytes());
    out.extend_from_slice(&0_u16.to_be_bytes()); // reserved (ticket)
    short_string(out, "exchange", publish.exchange)?;
    short_string(out, "routing key", publish.routing_key)?;
    out.push(1); // mandatory; not immediate
    end(out, frame);
    Ok(())
}

fn put_header(out: &mut Vec<u8>, channel: u16, publish: &Publish<'_>) -> Result<(), FrameError> {
    let frame = begin(out, FRAME_CONTENT_HEADER, channel);
    out.extend_from_slice(&BASIC_CLASS.to_be_bytes());
    out.extend_from_slice(&0_u16.to_be_bytes()); // weight
    out.extend_from_slice(&(publish.body.len() as u64).to_be_bytes());
    let flags = CONTENT_TYPE | HEADERS | DELIVERY_MODE | MESSAGE_ID | TIMESTAMP;
    out.extend_from_slice(&flags.to_be_bytes());
    short_string(out, "content type", "application/json")?;
    let table = out.len();
    out.extend_from_slice(&[0; 4]);
    for (name, value) in publish.headers {
        short_string(out, "header name", name)?;
        match value {
            Value::Text(text) => {
                out.push(LONG_STRING);
                let length = u32::try_from(text.len())
                    .map_err(|_| FrameError::Encode(format!("header {name}: too long")))?;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            Value::Timestamp(at) => {
                out.push(TIMESTAMP_VALUE);
                out.extend_from_slice(&at.to_be_bytes());
            }
        }
    }
    let size = out.len() - table - 4;
    patch_size(out, table, size)?;
    out.push(PERSISTENT);
    short_string(out, "message id", publish.message_id)?;
    out.extend_from_slice(&publish.timestamp.to_be_bytes());
    end(out, frame);
    Ok(())
}

/// Write a frame's type and channel, and room for its size; returns where
/// the frame starts.
fn begin(out: &mut Vec<u8>, kind: u8, channel: u16) -> usize {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    start
}

/// Fill in the size of the frame begun at `start` and close it.
fn end(out: &mut Vec<u8>, start: usize) {
    let size = out.len() - start - FRAME_HEADER;
    // A frame's payload is at most a body chunk or a header table, whose
    // sizes were checked to fit in 32 bits.
    out[start + 3..start + FRAME_HEADER].copy_from_slice(&(size as u32).to_be_bytes());
    out.push(FRAME_END);
}

fn patch_size(out: &mut [u8], at: usize, size: usize) -> Result<(), FrameError> {
    let size = u32::try_from(size)
        .map_err(|_| FrameError::Encode("the headers are too long".to_owned()))?;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

fn short_string(out: &mut Vec<u8>, what: &str, text: &str) -> Result<(), FrameError> {
    let length = u8::try_from(text.len())
        .map_err(|_| FrameError::Encode(format!("{what} longer than 255 bytes")))?;
    out.push(length);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::frames::next;
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
    use amq_protocol::types::{AMQPValue, FieldTable, LongString};
    use proptest::prelude::*;

    /// The frames of `bytes`, as amq-protocol reads them.
    fn read(mut bytes: &[u8], frame_max: u32) -> Vec<AMQPFrame> {
        let mut frames = Vec::new();
        while let Some((frame, used)) = next(bytes, frame_max).unwrap() {
            frames.push(frame);
            bytes = &bytes[used..];
        }
        assert!(bytes.is_empty(), "{} bytes left over", bytes.len());
        frames
    }

    /// The properties amq-protocol would have written for `publish`.
    fn properties(publish: &Publish<'_>) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (name, value) in publish.headers {
            let value = match value {
                Value::Text(text) => AMQPValue::LongString(LongString::from(*text)),
                Value::Timestamp(at) => AMQPValue::Timestamp(*at),
            };
            headers.insert((*name).into(), value);
        }
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_headers(headers)
            .with_delivery_mode(PERSISTENT)
            .with_message_id(publish.message_id.into())
            .with_timestamp(publish.timestamp)
    }

    fn check(publish: &Publish<'_>, frame_max: u32) {
        let mut out = vec![7];
        put_publish(&mut out, 1, publish, frame_max).unwrap();
        assert_eq!(out[0], 7, "appended after what was there");
        let frames = read(&out[1..], frame_max);
        let AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(method))) = &frames[0]
        else {
            panic!("{:?}", frames[0]);
        };
        assert_eq!(method.exchange.as_str(), publish.exchange);
        assert_eq!(method.routing_key.as_str(), publish.routing_key);
        assert!(method.mandatory && !method.immediate);
        let AMQPFrame::Header(1, header) = &frames[1] else {
            panic!("{:?}", frames[1]);
        };
        assert_eq!(header.class_id, BASIC_CLASS);
        assert_eq!(header.body_size, publish.body.len() as u64);
        assert_eq!(header.properties, properties(publish));
        let chunks: Vec<&[u8]> = frames[2..]
            .iter()
            .map(|f| match f {
                AMQPFrame::Body(1, chunk) => chunk.as_slice(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            chunks
                .iter()
                .all(|c| frame_max == 0 || c.len() + FRAME_OVERHEAD <= frame_max as usize)
        );
        assert_eq!(chunks.concat(), publish.body);
    }

    #[test]
    fn amq_protocol_reads_the_publish_the_ingest_sends() {
        let body: Vec<u8> = (0..10_000_u32).map(|i| (i % 251) as u8).collect();
        let publish = Publish {
            exchange: "clerk_sync.events",
            routing_key: "clerk_sync.shard.3",
            message_id: "msg_1",
            timestamp: 1_700_000_000,
            headers: &[
                ("svix-id", Value::Text("msg_1")),
                ("svix-signature", Value::Text("v1,abc= v1,def=")),
                (
                    "clerk-sync-received-at-ms",
                    Value::Timestamp(1_700_000_000_123),
                ),
            ],
            body: &body,
        };
        check(&publish, 4096);
        check(&publish, 0);
        let mut out = Vec::new();
        put_publish(&mut out, 1, &publish, 4096).unwrap();
        let bodies = read(&out, 4096).len() - 2;
        assert_eq!(bodies, 3, "4088 + 4088 + 1824 bytes");
    }

    #[test]
    fn a_name_or_id_over_255_bytes_is_refused_and_nothing_is_half_written() {
        let long = "x".repeat(256);
        let fits = Publish {
            exchange: "e",
            routing_key: "k",
            message_id: "m",
            timestamp: 0,
            headers: &[],
            body: b"{}",
        };
        let refused = [
            Publish {
                exchange: &long,
                ..fits
            },
            Publish {
                routing_key: &long,
                ..fits
            },
            Publish {
                message_id: &long,
                ..fits
            },
            Publish {
                headers: &[(&long, Value::Text("v"))],
                ..fits
            },
        ];
        for publish in refused {
            let mut out = vec![9];
            assert!(matches!(
                put_publish(&mut out, 1, &publish, 0),
                Err(FrameError::Encode(_))
            ));
            assert_eq!(out, [9], "nothing half-written");
        }
        check(&Publish { body: b"", ..fits }, 0);
    }

    proptest! {
        #[test]
        fn any_publish_reads_back_as_it_was_meant(
            id in "[ -~]{1,255}",
            key in "[a-z0-9._]{0,255}",
            timestamp: u64,
            names in proptest::collection::btree_set("[a-z-]{1,40}", 0..8),
            text in "\\PC{0,300}",
            body in proptest::collection::vec(any::<u8>(), 0..9_000),
            frame_max in prop_oneof![Just(0_u32), 4096_u32..20_000],
        ) {
            let headers: Vec<(&str, Value<'_>)> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let value = if i % 3 == 2 { Value::Timestamp(timestamp) } else { Value::Text(&text) };
                    (name.as_str(), value)
                })
                .collect();
            let publish = Publish {
                exchange: "clerk_sync.events",
                routing_key: &key,
                message_id: &id,
                timestamp,
                headers: &headers,
                body: &body,
            };
            check(&publish, frame_max);
        }
    }
}
