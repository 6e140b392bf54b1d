//! The AMQP 0-9-1 frames the publisher writes and reads, as bytes. Pure.
//!
//! amq-protocol encodes and parses each frame; this module cuts the byte
//! stream into whole frames. A publish is written by hand (`publish.rs`).

use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame, parse_frame};

/// Type, channel and size before a frame's payload, the end marker after it.
pub const FRAME_HEADER: usize = 7;
pub const FRAME_OVERHEAD: usize = FRAME_HEADER + 1;
pub const FRAME_END: u8 = 0xCE;
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
    use amq_protocol::protocol::{AMQPClass, connection};

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
    }
}
