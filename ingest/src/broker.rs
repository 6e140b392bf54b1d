//! The ingest's link to RabbitMQ: one connection with one confirm-mode
//! channel, watched by a supervisor task that replaces it when it breaks.
//!
//! Requests never wait for a reconnect: while the link is down, publishing
//! fails at once (503, and Svix retries) and `/readyz` says not ready.

use crate::metrics::Metrics;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp::{self, AmqpError};
use clerk_sync_runtime::settings::AmqpSettings;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the supervisor looks at the connection when nobody woke it.
const HEALTH_POLL: Duration = Duration::from_millis(250);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A usable connection and its confirm-mode channel.
#[derive(Clone)]
pub(crate) struct Link {
    connection: Arc<Connection>,
    pub(crate) channel: Channel,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// State shared by the supervisor and every request.
pub(crate) struct Shared {
    link: watch::Sender<Option<Link>>,
    /// Wakes the supervisor when a request saw the link fail.
    broken: Notify,
    settings: AmqpSettings,
    pub(crate) topology: Topology,
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("topology", &self.topology)
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn current(&self) -> Option<Link> {
        self.link.borrow().clone()
    }

    pub(crate) fn ready(&self) -> bool {
        self.link.borrow().as_ref().is_some_and(Link::usable)
    }

    pub(crate) fn report_broken(&self) {
        self.broken.notify_one();
    }

    pub(crate) fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.confirm_timeout_ms)
    }

    fn replace(&self, link: Option<Link>) -> Option<Link> {
        self.metrics.broker_connected.set(i64::from(link.is_some()));
        self.link.send_replace(link)
    }

    async fn open(&self) -> Result<Link, AmqpError> {
        let connection = amqp::connect(&self.settings.url, "clerk-sync-ingest").await?;
        amqp::declare_topology(&connection, &self.topology, self.settings.delivery_limit).await?;
        let unreachable = |e: lapin::Error| AmqpError::Unreachable {
            url: self.settings.url.redacted(),
            reason: format!("cannot open a confirm-mode channel: {e}"),
        };
        let channel = connection.create_channel().await.map_err(unreachable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unreachable)?;
        Ok(Link {
            connection: Arc::new(connection),
            channel,
        })
    }
}

/// Owns the link and its supervisor; [`crate::publisher::Publisher`]s borrow it.
#[derive(Debug)]
pub struct Broker {
    shared: Arc<Shared>,
    stop: CancellationToken,
    supervisor: JoinHandle<()>,
}

impl Broker {
    /// Connect and declare the topology, or fail with a message naming the
    /// broker or the queue at fault. Reconnection is automatic afterwards.
    pub async fn start(settings: &AmqpSettings, metrics: Arc<Metrics>) -> Result<Self, AmqpError> {
        let (link, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            link,
            broken: Notify::new(),
            settings: settings.clone(),
            topology: settings.topology(),
            metrics,
        });
        shared.replace(Some(shared.open().await?));
        let stop = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(shared.clone(), stop.clone()));
        Ok(Self {
            shared,
            stop,
            supervisor,
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Stop reconnecting and close the connection. Call it after the HTTP
    /// server stopped, so every confirm in flight has arrived.
    pub async fn close(self) {
        self.stop.cancel();
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, "RabbitMQ supervisor task failed");
        }
        if let Some(link) = self.shared.replace(None) {
            close_quietly(link).await;
        }
    }
}

async fn supervise(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        // Wait until the link breaks.
        while shared.ready() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = shared.broken.notified() => {}
                () = tokio::time::sleep(HEALTH_POLL) => {}
            }
        }
        tracing::warn!("RabbitMQ connection lost: answering 503 until it is back");
        if let Some(old) = shared.replace(None) {
            tokio::spawn(close_quietly(old));
        }
        let mut backoff = Backoff::SERVICE;
        let mut delay = backoff.next_delay();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match shared.open().await {
                Ok(link) => {
                    shared.replace(Some(link));
                    tracing::info!("RabbitMQ connection restored");
                    break;
                }
                Err(e) => {
                    delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "RabbitMQ still unavailable");
                }
            }
        }
    }
}

async fn close_quietly(link: Link) {
    let close = link
        .connection
        .close(200, "clerk-sync-ingest closing".into());
    // A broken connection may fail to close or never answer: that is fine.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
}
