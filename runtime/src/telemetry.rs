//! Logging set-up: `tracing`, filtered by `RUST_LOG` (default: the level
//! the caller gives), human-readable or JSON as `log.format` asks; and
//! traces over OTLP when the environment asks (`crate::traces`).
//!
//! What may be logged is decided where events are logged: ids (svix-id,
//! Clerk user id, event type) are fine; bodies, e-mail addresses, names and
//! secrets never are. Field names are shared by both binaries: see
//! [`fields`].

use crate::settings::LogFormat;
use crate::traces::Traces;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Span and event field names, spelled the same in both binaries.
pub mod fields {
    pub const SVIX_ID: &str = "svix.id";
    pub const CLERK_USER_ID: &str = "clerk.user_id";
    pub const CLERK_EVENT_TYPE: &str = "clerk.event_type";
}

/// Install the global subscriber: the log on stderr and, when the
/// environment asks for them, traces over OTLP (`crate::traces`), from the
/// spans the filter lets through (INFO and above by default). `service`
/// names the process in the traces. Calling it again (as tests do) is
/// harmless. An OTLP setting the exporter refuses is reported in the log,
/// and the process goes on without traces.
pub fn init(format: LogFormat, default_level: &str, service: &'static str) -> Traces {
    init_with(format, default_level, service, &|name| {
        std::env::var(name).ok()
    })
}

/// As [`init`], reading the `OTEL_*` variables with `var` (a test's).
pub fn init_with(
    format: LogFormat,
    default_level: &str,
    service: &'static str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Traces {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let (log, json) = match format {
        LogFormat::Pretty => (Some(log.with_ansi(std::io::stderr().is_terminal())), None),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            ),
        ),
    };
    let (traces, otlp, problem) = match Traces::start(service, var) {
        Ok((traces, layer)) => (traces, layer, None),
        Err(problem) => (Traces::default(), None, Some(problem)),
    };
    let _already_set = tracing_subscriber::registry()
        .with(filter)
        .with(log)
        .with(json)
        .with(otlp)
        .try_init();
    if let Some(problem) = problem {
        tracing::warn!(%problem, "traces are off");
    }
    traces
}
