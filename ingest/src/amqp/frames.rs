//! The AMQP 0-9-1 frames the publisher writes and reads, as bytes. Pure.
//!
//! amq-protocol encodes and parses each frame; this module cuts the byte
//! stream into whole frames, and writes a publish as its three parts: the
//! `basic.publish` method, the content header (properties) and the body,
//! split into frames of at most the size agreed with the server.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use amq_protocol::types::ShortString;

/// Type, channel and size before a frame's payload, the end marker after it.
const FRAME_HEADER: usize = 7;
const FRAME_OVERHEAD: usize = FRAME_HEADER + 1;
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;
/// The class of `basic.*` content.
const BASIC_CLASS: u16 = 60;
/// The frame size every peer accepts before `connection.tune` agreed one.
pub const FRAME_MIN_SIZE: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("cannot encode an AMQP frame ({0})")]
    Encode(String),
    #[error("RabbitMQ sent bytes that are not an AMQP 0-9-1 frame ({0})")]
    Malformed(String),
    #[error("RabbitMQ sent a frame of {0} bytes, larger than the {1} agreed")]
    TooLarge(usize, u32),
}

/// Append one frame to `out`.
pub fn put(out: &mut Vec<u8>, frame: &AMQPFrame) -> Result<(), FrameError> {
    let written = gen_frame::<Vec<u8>>(frame)(WriteContext::from(Vec::new()))
        .map_err(|e| FrameError::Encode(format!("{e:?}")))?;
    out.extend_from_slice(&written.into_inner().0);
    Ok(())
}

/// A mandatory `basic.publish` of `body` on `channel`: its method, header
/// and body frames, none larger than `frame_max` (0: no limit).
pub fn put_publish(
    out: &mut Vec<u8>,
    channel: u16,
    exchange: &str,
    routing_key: &str,
    properties: BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), FrameError> {
    let short = |name: &str| {
        ShortString::try_new(name).map_err(|e| FrameError::Encode(format!("{name}: {e}")))
    };
    let method = basic::Publish {
        exchange: short(exchange)?,
        routing_key: short(routing_key)?,
        mandatory: true,
        immediate: false,
    };
    let header = AMQPContentHeader {
        class_id: BASIC_CLASS,
        body_size: body.len() as u64,
        properties,
    };
    let start = out.len();
    let framed = put(
        out,
        &AMQPFrame::Method(
            channel,
            AMQPClass::Basic(basic::AMQPMethod::Publish(method)),
        ),
    )
    .and_then(|()| put(out, &AMQPFrame::Header(channel, header)));
    if let Err(e) = framed {
        out.truncate(start);
        return Err(e);
    }
    let most = match frame_max as usize {
        0 => body.len().max(1),
        max => max.saturating_sub(FRAME_OVERHEAD).max(1),
    };
    for chunk in body.chunks(most) {
        // Written by hand: amq-protocol's body frame would own a copy.
        out.push(FRAME_BODY);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
        out.push(FRAME_END);
    }
    Ok(())
}

/// The first whole frame of `buffer` and how many bytes it took, or None
/// until the rest of it has come. A frame over `frame_max` is an error.
pub fn next(buffer: &[u8], frame_max: u32) -> Result<Option<(AMQPFrame, usize)>, FrameError> {
    if buffer.first() == Some(&b'A') {
        // "AMQP" and a version: the server does not speak 0-9-1.
        return Err(FrameError::Malformed(
            "a protocol header: the server wants another AMQP version".to_owned(),
        ));
    }
    let Some(size) = buffer.get(3..FRAME_HEADER) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
    let total = size + FRAME_OVERHEAD;
    if frame_max != 0 && total > frame_max.max(FRAME_MIN_SIZE) as usize {
        return Err(FrameError::TooLarge(total, frame_max));
    }
    let Some(frame) = buffer.get(..total) else {
        return Ok(None);
    };
    match parse_frame(frame) {
        Ok((_, frame)) => Ok(Some((frame, total))),
        Err(e) => Err(FrameError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::connection;

    fn all(mut bytes: &[u8], frame_max: u32) -> Vec<AMQPFrame> {
        let mut frames = Vec::new();
        while let Some((frame, used)) = next(bytes, frame_max).unwrap() {
            frames.push(frame);
            bytes = &bytes[used..];
        }
        assert!(bytes.is_empty(), "{} bytes left over", bytes.len());
        frames
    }

    #[test]
    fn a_publish_is_a_method_a_header_and_its_body_in_frames_of_the_agreed_size() {
        let body: Vec<u8> = (0..10_000_u32).map(|i| (i % 251) as u8).collect();
        let properties = BasicProperties::default().with_message_id("msg_1".into());
        let mut out = Vec::new();
        put_publish(
            &mut out,
            1,
            "events",
            "shard.3",
            properties.clone(),
            &body,
            4096,
        )
        .unwrap();
        let frames = all(&out, 4096);
        let AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(method))) = &frames[0]
        else {
            panic!("{:?}", frames[0]);
        };
        assert_eq!(method.exchange.as_str(), "events");
        assert_eq!(method.routing_key.as_str(), "shard.3");
        assert!(method.mandatory);
        let AMQPFrame::Header(1, header) = &frames[1] else {
            panic!("{:?}", frames[1]);
        };
        assert_eq!(header.body_size, 10_000);
        assert_eq!(header.properties, properties);
        let chunks: Vec<&[u8]> = frames[2..]
            .iter()
            .map(|f| match f {
                AMQPFrame::Body(1, chunk) => chunk.as_slice(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(chunks.len(), 3, "4088 + 4088 + 1824 bytes");
        assert!(chunks.iter().all(|c| c.len() + FRAME_OVERHEAD <= 4096));
        assert_eq!(chunks.concat(), body);
    }

    #[test]
    fn frames_are_read_only_once_whole_and_one_at_a_time() {
        let mut out = Vec::new();
        put(&mut out, &AMQPFrame::Heartbeat).unwrap();
        let close = connection::Close {
            reply_code: 320,
            reply_text: "CONNECTION_FORCED".into(),
            class_id: 0,
            method_id: 0,
        };
        put(
            &mut out,
            &AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(close)),
            ),
        )
        .unwrap();
        for cut in 0..8 {
            assert_eq!(next(&out[..cut], 0).unwrap(), None);
        }
        let (first, used) = next(&out, 0).unwrap().unwrap();
        assert_eq!(first, AMQPFrame::Heartbeat);
        assert_eq!(next(&out[used..out.len() - 1], 0).unwrap(), None);
        assert!(matches!(
            next(&out[used..], 0).unwrap(),
            Some((AMQPFrame::Method(0, _), _))
        ));
    }

    #[test]
    fn bad_or_oversized_frames_are_errors_not_panics() {
        assert!(matches!(
            next(b"AMQP\x00\x00\x09\x01", 0),
            Err(FrameError::Malformed(_))
        ));
        let huge = [1, 0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            next(&huge, 131_072),
            Err(FrameError::TooLarge(..))
        ));
        let garbage = [1, 0, 0, 0, 0, 0, 2, 0xff, 0xff, FRAME_END];
        assert!(matches!(next(&garbage, 0), Err(FrameError::Malformed(_))));
        let long = "x".repeat(300);
        let mut out = vec![9];
        let refused = put_publish(&mut out, 1, &long, "k", BasicProperties::default(), b"", 0);
        assert!(matches!(refused, Err(FrameError::Encode(_))));
        assert_eq!(out, [9], "nothing half-written");
    }
}
