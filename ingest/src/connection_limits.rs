//! The HTTP server's timeouts, chosen for a webhook receiver: one client
//! (Svix, usually through a load balancer) sending small POSTs, each
//! answered within a few seconds. The connection count is a setting
//! (`ingest.max_connections`, per HTTP worker thread): an idle connection
//! holds about 16 KiB of buffers, one whose head or body is arriving at
//! most about 176 KiB (actix's 128 KiB head buffer, 32 KiB of body waiting
//! to be read, 16 KiB of read and write buffers).
//!
//! `max_connection_rate` is not set: actix applies it to TLS handshakes
//! only, and the ingest speaks plain HTTP (TLS ends at the load balancer).

use std::time::Duration;

/// Time for a new connection to send its request head (line and headers);
/// past it actix answers 408 and closes. Svix's heads are under 1 KiB.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Time an answered connection is given to close cleanly before it is
/// dropped.
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an idle connection is kept for the next request: long enough
/// for Svix's bursts to reuse it, short enough that idle connections do
/// not hold `ingest.max_connections`. A load balancer that keeps idle
/// upstream connections longer may now and then send on one just closed;
/// that webhook then fails and Svix retries it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
