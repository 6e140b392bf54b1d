//! The ingest's own AMQP publisher: one connection per HTTP worker thread,
//! read and written by tasks on that thread.
//!
//! Why not lapin, which the worker and the operators' commands use: lapin
//! runs every connection's I/O on a thread of its own, so each publish
//! crosses threads twice (its frames to lapin's I/O thread, its confirm
//! back to the request's), at about 1.2 context switches per request. A
//! request here never leaves its thread: measured with the ingest's load
//! benchmark, this cut its CPU per request from about 50 to about 40 µs
//! (docs/src/benchmarks.md). Only publishing is done here: the topology is
//! still declared (or checked) with lapin, at start-up.
//!
//! What it speaks: AMQP 0-9-1 over TCP or TLS (`amqps://`, the same CAs
//! as lapin's connections), PLAIN login, one channel in confirm mode,
//! mandatory publishes, `basic.ack`/`basic.nack` (multiple or not),
//! `basic.return`, `connection.blocked`/`unblocked`, heartbeats, and
//! closes from either side.

mod confirms;
mod connection;
mod frames;
mod handshake;
mod publish;
mod tls;

pub use confirms::Outcome;
pub use connection::{Confirm, Connection, Gone};
pub use publish::{Publish, Value};

use clerk_sync_runtime::amqp::{AmqpError, CONNECT_TIMEOUT, none_answered};
use clerk_sync_runtime::amqp_target::{self, is_untrusted_certificate};
use clerk_sync_runtime::broker_link::try_order;
use clerk_sync_runtime::secret_url::SecretUrl;
use handshake::OpenError;

/// Open a publishing connection to the first node of `url` that answers,
/// `failed` (the node just lost, `host:port`) last; return it and its node.
/// Each node fails within [`CONNECT_TIMEOUT`].
pub async fn connect(
    url: &SecretUrl,
    connection_name: &str,
    failed: Option<&str>,
) -> Result<(Connection, String), AmqpError> {
    let listed = url.nodes();
    let addresses: Vec<String> = listed.iter().map(SecretUrl::address).collect();
    let mut reasons = Vec::new();
    for i in try_order(&addresses, failed) {
        let node = &listed[i];
        let target = amqp_target::target(node).map_err(|reason| AmqpError::Url {
            url: node.redacted(),
            reason,
        })?;
        let tls = target.uri.scheme == amq_protocol::uri::AMQPScheme::AMQPS;
        let opened =
            tokio::time::timeout(CONNECT_TIMEOUT, handshake::open(&target, connection_name));
        match opened.await {
            Ok(Ok(opened)) => return Ok((Connection::start(opened), addresses[i].clone())),
            Ok(Err(OpenError::Io(e))) if tls && is_untrusted_certificate(&e.to_string()) => {
                return Err(AmqpError::TlsUntrusted {
                    url: node.redacted(),
                    reason: e.to_string(),
                });
            }
            Ok(Err(e)) => reasons.push(format!("{}: {e}", node.redacted())),
            Err(_) => reasons.push(format!(
                "{}: no answer within {CONNECT_TIMEOUT:?}",
                node.redacted()
            )),
        }
    }
    Err(none_answered(url, &reasons))
}
