//! How many webhook requests the ingest handles at once, so that what
//! their bodies can hold stays within the pod's memory whatever clients do.
//!
//! Every request takes a slot of `ingest.max_in_flight`; one whose body
//! may exceed [`SMALL_BODY_BYTES`] (declared larger, or of unknown length)
//! also takes one of `ingest.max_large_in_flight`. Without a free slot it
//! is refused at once, its body unread. Bodies in flight therefore hold at
//! most `max_large_in_flight × body_limit_bytes + (max_in_flight −
//! max_large_in_flight) × 64 KiB`, and clients that stall large bodies
//! can take the large slots but never the ones ordinary events (a few KiB)
//! need.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size (every Clerk event we have seen is a few KiB;
/// Clerk caps each metadata object at 8 KiB) need only an ordinary slot.
pub const SMALL_BODY_BYTES: u64 = 64 * 1024;

/// What a request's declared `Content-Length` says of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// At most [`SMALL_BODY_BYTES`].
    Small,
    /// Larger, or of unknown length (chunked).
    Large,
}

impl BodySize {
    pub fn of(declared: Option<u64>) -> Self {
        match declared {
            Some(length) if length <= SMALL_BODY_BYTES => Self::Small,
            _ => Self::Large,
        }
    }
}

/// Why a request found no slot; the `reason` label of the shed metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("too many webhook requests in flight (ingest.max_in_flight); retry later")]
    InFlight,
    #[error("too many large webhook bodies in flight (ingest.max_large_in_flight); retry later")]
    LargeInFlight,
}

impl Busy {
    pub fn reason(self) -> &'static str {
        match self {
            Self::InFlight => "max_in_flight",
            Self::LargeInFlight => "max_large_in_flight",
        }
    }
}

/// The slots, shared by every HTTP worker thread.
#[derive(Debug)]
pub struct Admission {
    all: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

/// A request's slots, given back when dropped (the request answered).
#[derive(Debug)]
pub struct Slot {
    _all: OwnedSemaphorePermit,
    _large: Option<OwnedSemaphorePermit>,
}

impl Admission {
    pub fn new(max_in_flight: usize, max_large_in_flight: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(max_in_flight)),
            large: Arc::new(Semaphore::new(max_large_in_flight)),
        }
    }

    /// Slots for a request whose body is `size`, or why there are none.
    pub fn admit(&self, size: BodySize) -> Result<Slot, Busy> {
        let all = self
            .all
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::InFlight)?;
        let large = match size {
            BodySize::Small => None,
            BodySize::Large => Some(
                self.large
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| Busy::LargeInFlight)?,
            ),
        };
        Ok(Slot {
            _all: all,
            _large: large,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Admission, BodySize, Busy, SMALL_BODY_BYTES};

    #[test]
    fn a_body_is_large_when_declared_over_64_kib_or_of_unknown_length() {
        assert_eq!(BodySize::of(Some(0)), BodySize::Small);
        assert_eq!(BodySize::of(Some(SMALL_BODY_BYTES)), BodySize::Small);
        assert_eq!(BodySize::of(Some(SMALL_BODY_BYTES + 1)), BodySize::Large);
        assert_eq!(BodySize::of(None), BodySize::Large);
    }

    #[test]
    fn large_bodies_fill_their_own_slots_and_leave_the_rest_to_small_ones() {
        let admission = Admission::new(3, 1);
        let large = admission.admit(BodySize::Large).unwrap();
        assert_eq!(
            admission.admit(BodySize::Large).unwrap_err(),
            Busy::LargeInFlight
        );
        let small = admission.admit(BodySize::Small).unwrap();
        let other = admission.admit(BodySize::Small).unwrap();
        assert_eq!(
            admission.admit(BodySize::Small).unwrap_err(),
            Busy::InFlight
        );
        drop(large);
        let again = admission.admit(BodySize::Large).unwrap();
        drop((small, other, again));
        assert!(admission.admit(BodySize::Small).is_ok());
    }

    #[test]
    fn a_large_body_refused_gives_its_ordinary_slot_back() {
        let admission = Admission::new(2, 1);
        let _large = admission.admit(BodySize::Large).unwrap();
        assert!(admission.admit(BodySize::Large).is_err());
        assert!(admission.admit(BodySize::Small).is_ok());
    }
}
