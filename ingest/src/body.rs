//! Reading a webhook's body within its limits: chunk by chunk into one
//! buffer, refused as soon as it passes `ingest.body_limit_bytes` or its
//! deadline (`ingest.body_timeout_ms`). A body whose `Content-Length` is
//! within the limit gets a buffer of that size at once (one allocation,
//! whose pages become resident only as the body arrives); one of unknown
//! length, a buffer that doubles as it arrives, never past the limit.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// The limits of one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `ingest.body_limit_bytes`.
    pub max_bytes: usize,
    /// `ingest.body_timeout_ms`.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("body not received within {0} ms")]
    TimedOut(u128),
    #[error("could not read the request body")]
    Unreadable,
}

impl BodyLimits {
    /// Refuses at once a body declared larger than the limit.
    pub fn check_declared(&self, declared: Option<u64>) -> Result<(), BodyError> {
        match declared {
            Some(length) if length > self.max_bytes as u64 => {
                Err(BodyError::TooLarge(self.max_bytes))
            }
            _ => Ok(()),
        }
    }

    /// What a request refused for want of a slot is told to wait: by then
    /// every body being read now has arrived or been refused.
    pub fn retry_after_secs(&self) -> u64 {
        (self.timeout.as_millis() as u64).div_ceil(1000).max(1)
    }

    /// The whole body, of `declared` length if known, read by `deadline`.
    pub async fn read<S, E>(
        &self,
        chunks: S,
        declared: Option<u64>,
        deadline: Instant,
    ) -> Result<Bytes, BodyError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        tokio::time::timeout_at(deadline, self.read_all(chunks, declared))
            .await
            .unwrap_or(Err(BodyError::TimedOut(self.timeout.as_millis())))
    }

    async fn read_all<S, E>(&self, mut chunks: S, declared: Option<u64>) -> Result<Bytes, BodyError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut body = Vec::with_capacity(initial_capacity(declared, self.max_bytes));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            let length = body.len() + chunk.len();
            if length > self.max_bytes {
                return Err(BodyError::TooLarge(self.max_bytes));
            }
            if length > body.capacity() {
                let wanted = grown_capacity(body.capacity(), length, self.max_bytes);
                body.reserve_exact(wanted - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

/// The buffer for a body of `declared` length: all of it, never past
/// `max` (a longer one is refused before it is read).
fn initial_capacity(declared: Option<u64>, max: usize) -> usize {
    declared.map_or(0, |length| {
        usize::try_from(length).map_or(max, |n| n.min(max))
    })
}

/// The capacity for `needed` bytes: doubling (few copies), never past
/// `max` (so a body at the limit holds no more than the limit).
fn grown_capacity(capacity: usize, needed: usize, max: usize) -> usize {
    capacity.saturating_mul(2).clamp(needed, max.max(needed))
}

#[cfg(test)]
mod tests {
    use super::{BodyError, BodyLimits, grown_capacity, initial_capacity};
    use bytes::Bytes;
    use futures::{StreamExt, stream};
    use std::convert::Infallible;
    use std::time::Duration;
    use tokio::time::Instant;

    const LIMITS: BodyLimits = BodyLimits {
        max_bytes: 10,
        timeout: Duration::from_millis(50),
    };

    fn chunks(parts: &[&'static str]) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        )
    }

    fn soon() -> Instant {
        Instant::now() + LIMITS.timeout
    }

    #[test]
    fn capacity_doubles_but_never_past_the_limit() {
        assert_eq!(grown_capacity(0, 3, 10), 3);
        assert_eq!(grown_capacity(3, 4, 10), 6);
        assert_eq!(grown_capacity(6, 7, 10), 10);
        assert_eq!(grown_capacity(0, 10, 10), 10);
    }

    #[test]
    fn a_declared_length_is_held_at_once_never_past_the_limit() {
        assert_eq!(initial_capacity(Some(7), 10), 7);
        assert_eq!(initial_capacity(Some(11), 10), 10);
        assert_eq!(initial_capacity(Some(u64::MAX), 10), 10);
        assert_eq!(initial_capacity(None, 10), 0);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_at_once() {
        assert_eq!(LIMITS.check_declared(Some(10)), Ok(()));
        assert_eq!(LIMITS.check_declared(None), Ok(()));
        assert_eq!(
            LIMITS.check_declared(Some(11)),
            Err(BodyError::TooLarge(10))
        );
    }

    #[tokio::test]
    async fn the_body_is_what_arrived_held_in_no_more_than_the_limit() {
        let body = LIMITS
            .read(chunks(&["abc", "defg", "hij"]), Some(10), soon())
            .await
            .unwrap();
        assert_eq!(body, "abcdefghij");
    }

    #[tokio::test]
    async fn more_than_the_limit_is_refused_as_soon_as_it_arrives() {
        // The stream never ends: the refusal cannot wait for its end.
        let endless = chunks(&["abcdef", "ghijk"]).chain(stream::pending());
        let error = LIMITS
            .read(Box::pin(endless), None, soon())
            .await
            .unwrap_err();
        assert_eq!(error, BodyError::TooLarge(10));
    }

    #[tokio::test]
    async fn a_body_stalled_past_its_deadline_times_out() {
        let stalled = chunks(&["abc"]).chain(stream::pending());
        let started = Instant::now();
        let error = LIMITS
            .read(Box::pin(stalled), Some(5), soon())
            .await
            .unwrap_err();
        assert_eq!(error, BodyError::TimedOut(50));
        assert!(started.elapsed() >= LIMITS.timeout);
    }

    #[tokio::test]
    async fn a_broken_stream_is_unreadable() {
        let broken = stream::iter([Ok(Bytes::from_static(b"ab")), Err("reset")]);
        let error = LIMITS.read(broken, None, soon()).await.unwrap_err();
        assert_eq!(error, BodyError::Unreadable);
    }
}
