//! What the `projection` tests share.

pub(super) use crate::support::system::{System, deleted_event, user_event};
pub(super) use std::time::Duration;

pub(super) const WAIT: Duration = Duration::from_secs(30);
pub(super) const T0: i64 = 1_700_000_000_000;
