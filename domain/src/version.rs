//! Clerk's order of events: the version rule of docs/src/contract.md, Semantics 3.
//!
//! A version is the event's time in milliseconds (`data.updated_at` for
//! `user.created`/`user.updated`, the envelope's `timestamp` for
//! `user.deleted`), ties broken by type (deleted > updated > created), then by
//! svix-id, byte-wise. Deriving `Ord` on the fields in that order is the rule.

/// Values below this are seconds (Clerk's published examples), not ms.
const FIRST_MILLISECOND_VALUE: i64 = 1_000_000_000_000;

/// Clerk timestamps are milliseconds, but its published examples use
/// seconds: a value below 10^12 is read as seconds.
pub fn to_millis(value: i64) -> i64 {
    if value < FIRST_MILLISECOND_VALUE {
        value.saturating_mul(1000)
    } else {
        value
    }
}

/// The tie-breaking rank of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    Created = 0,
    Updated = 1,
    Deleted = 2,
}

impl Rank {
    pub fn as_i16(self) -> i16 {
        self as i16
    }

    pub fn from_i16(value: i16) -> Option<Self> {
        match value {
            0 => Some(Self::Created),
            1 => Some(Self::Updated),
            2 => Some(Self::Deleted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub at_ms: i64,
    pub rank: Rank,
    pub svix_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(at_ms: i64, rank: Rank, svix_id: &str) -> Version {
        Version {
            at_ms,
            rank,
            svix_id: svix_id.to_owned(),
        }
    }

    #[test]
    fn seconds_become_milliseconds() {
        assert_eq!(to_millis(1_716_883_200), 1_716_883_200_000);
        assert_eq!(to_millis(1_654_012_591_835), 1_654_012_591_835);
    }

    #[test]
    fn time_then_type_then_svix_id() {
        assert!(v(2, Rank::Created, "a") > v(1, Rank::Deleted, "z"));
        assert!(v(1, Rank::Deleted, "a") > v(1, Rank::Updated, "z"));
        assert!(v(1, Rank::Updated, "a") > v(1, Rank::Created, "z"));
        assert!(v(1, Rank::Updated, "msg_b") > v(1, Rank::Updated, "msg_a"));
        assert!(
            v(1, Rank::Updated, "msg_a") > v(1, Rank::Updated, "msg_B"),
            "byte-wise: 'a' > 'B'"
        );
    }

    proptest! {
        #[test]
        fn to_millis_is_idempotent_on_realistic_times(seconds in 0i64..4_000_000_000) {
            let ms = to_millis(seconds);
            prop_assert_eq!(to_millis(ms.max(FIRST_MILLISECOND_VALUE)), ms.max(FIRST_MILLISECOND_VALUE));
        }
    }
}
