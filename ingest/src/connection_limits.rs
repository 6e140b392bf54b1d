//! The HTTP server's connection limits and timeouts, chosen for a webhook
//! receiver: one client (Svix, usually through a load balancer) sending
//! small POSTs, each answered within a few seconds.
//!
//! `max_connection_rate` is not set: actix applies it to TLS handshakes
//! only, and the ingest speaks plain HTTP (TLS ends at the load balancer).

use std::time::Duration;

/// Connections each HTTP worker thread holds at once
/// (`ingest.http_workers` of them); past it the listener stops accepting
/// and new connections wait in the kernel's backlog. Requests in flight
/// are capped separately (`ingest.max_in_flight`, across workers), so this
/// only bounds idle and header-sending connections: each holds about
/// 16 KiB of buffers, at most about 176 KiB while a head of the maximum
/// size or a body arrives.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 256;

/// Time for a new connection to send its request head (line and headers);
/// past it actix answers 408 and closes. Headers are a few hundred bytes.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Time an answered connection is given to close cleanly before it is
/// dropped.
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an idle connection is kept for the next request. Long enough
/// for Svix's bursts to reuse it, short enough that idle connections do
/// not hold the slots above. A load balancer that keeps idle upstream
/// connections longer may now and then send on one just closed; the
/// webhook then fails and Svix retries it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
