//! Logging set-up: `tracing`, filtered by `RUST_LOG` (default: the level
//! the caller gives),
//! human-readable or JSON as `log.format` asks.
//!
//! What may be logged is decided where events are logged: ids (svix-id,
//! Clerk user id, event type) are fine; bodies, e-mail addresses, names and
//! secrets never are. Field names are shared by both binaries: see
//! [`fields`].

use crate::settings::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Span and event field names, spelled the same in both binaries.
pub mod fields {
    pub const SVIX_ID: &str = "svix.id";
    pub const CLERK_USER_ID: &str = "clerk.user_id";
    pub const CLERK_EVENT_TYPE: &str = "clerk.event_type";
}

/// Install the global subscriber. Calling it again (as tests do) is harmless.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
