//! The ingest's link to RabbitMQ: one connection with one confirm-mode
//! channel, watched by a supervisor task that replaces it when it breaks.
//!
//! Requests never wait for a reconnect: while the link is down, publishing
//! fails at once (503, and Svix retries) and `/readyz` says not ready and
//! why. A broker unreachable at start-up is waited for the same way; each
//! reconnect tries every node `amqp.url` lists, the one just lost last. A
//! publish left without a confirm past `amqp.confirm_timeout_ms` also ends
//! the connection: a node cut off by a partition sends nothing at all.
//!
//! While RabbitMQ blocks the connection's publishes (`connection.blocked`:
//! a memory or disk alarm), publishing fails at once too and `/readyz`
//! names the alarm; the connection is kept (a blocked broker is not a lost
//! one) and serves again at `connection.unblocked`.

use crate::metrics::Metrics;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp::{self, AmqpError};
use clerk_sync_runtime::broker_link::blocked_reason;
use clerk_sync_runtime::confirm_channel::ConfirmChannel;
use clerk_sync_runtime::settings::AmqpSettings;
use futures::Stream;
use lapin::options::ConfirmSelectOptions;
use lapin::{Connection, Event};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the supervisor looks at the connection when nobody woke it.
const HEALTH_POLL: Duration = Duration::from_millis(250);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A usable connection and its confirm-mode channel.
#[derive(Clone)]
pub(crate) struct Link {
    connection: Arc<Connection>,
    pub(crate) channel: ConfirmChannel,
    /// The node it went to (`host:port`).
    node: String,
    /// Set when a publish got no confirm in time: a node cut off by a
    /// partition sends nothing, not even a reset, and the connection would
    /// look alive until its heartbeats were missed.
    silent: Arc<AtomicBool>,
    /// Why RabbitMQ blocks this connection's publishes, while it does.
    blocked: watch::Receiver<Option<String>>,
}

impl Link {
    fn usable(&self) -> bool {
        self.connection.status().connected()
            && self.channel.channel().status().connected()
            && !self.silent.load(Ordering::Relaxed)
    }

    /// Why RabbitMQ blocks this connection's publishes, while it does
    /// (lapin holds back everything it would send meanwhile).
    pub(crate) fn blocked_by(&self) -> Option<String> {
        let reason = self.blocked.borrow().clone();
        reason.or_else(|| {
            self.connection
                .status()
                .blocked()
                .then(|| blocked_reason(""))
        })
    }

    /// Resolves when RabbitMQ blocks this connection, with why; never
    /// while it does not.
    pub(crate) async fn until_blocked(&self) -> String {
        let mut blocked = self.blocked.clone();
        // The guard `wait_for` returns must not live across an await.
        let reason = blocked
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }

    /// No confirm came in time: replace this connection (another node may
    /// answer) instead of waiting for its heartbeats to fail.
    pub(crate) fn report_silent(&self) {
        self.silent.store(true, Ordering::Relaxed);
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
    /// Permits for publishes awaiting a confirm (`amqp.max_unconfirmed`).
    pub(crate) unconfirmed: Arc<Semaphore>,
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

    /// A connection is there and RabbitMQ accepts its publishes.
    pub(crate) fn ready(&self) -> bool {
        self.link
            .borrow()
            .as_ref()
            .is_some_and(|link| link.usable() && link.blocked_by().is_none())
    }

    /// A connection is there, blocked or not (else the supervisor replaces it).
    fn usable(&self) -> bool {
        self.link.borrow().as_ref().is_some_and(Link::usable)
    }

    pub(crate) fn report_broken(&self) {
        self.broken.notify_one();
    }

    pub(crate) fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.confirm_timeout_ms)
    }

    pub(crate) fn max_unconfirmed(&self) -> usize {
        self.settings.max_unconfirmed
    }

    fn connect(&self, link: Link) {
        self.metrics.broker.connected(&link.node);
        tracing::info!(rabbitmq.node = %link.node, "publishing through RabbitMQ node {}", link.node);
        self.link.send_replace(Some(link));
    }

    fn disconnect(&self, reason: &str) -> Option<Link> {
        self.metrics.broker.lost(reason);
        self.link.send_replace(None)
    }

    async fn open(&self) -> Result<Link, AmqpError> {
        let amqp::Connected { connection, node } = amqp::connect_node(
            &self.settings.url,
            "clerk-sync-ingest",
            self.metrics.broker.last_node().as_deref(),
        )
        .await?;
        // Listening before anything is published: a block comes as an event.
        let events = connection.events_listener();
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
        let (blocked_sender, blocked) = watch::channel(None);
        tokio::spawn(watch_blocks(events, blocked_sender, self.metrics.clone()));
        Ok(Link {
            connection: Arc::new(connection),
            channel: ConfirmChannel::new(channel),
            node,
            silent: Arc::default(),
            blocked,
        })
    }
}

/// Follow RabbitMQ's `connection.blocked` and `connection.unblocked` for
/// one connection, until it is gone (its events end, or no [`Link`] to it
/// is left).
async fn watch_blocks(
    events: impl Stream<Item = Event> + Send + 'static,
    blocked: watch::Sender<Option<String>>,
    metrics: Arc<Metrics>,
) {
    let follow = metrics.broker.follow_blocks(events, |reason| {
        blocked.send_replace(reason);
    });
    tokio::select! {
        () = follow => {}
        () = blocked.closed() => {}
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
    /// queue at fault. An unreachable broker is not a failure: it is waited
    /// for (503 meanwhile), as reconnection is afterwards.
    pub async fn start(settings: &AmqpSettings, metrics: Arc<Metrics>) -> Result<Self, AmqpError> {
        let (link, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            link,
            broken: Notify::new(),
            settings: settings.clone(),
            topology: settings.topology(),
            metrics,
            unconfirmed: Arc::new(Semaphore::new(
                settings.max_unconfirmed.min(Semaphore::MAX_PERMITS),
            )),
        });
        match shared.open().await {
            Ok(link) => shared.connect(link),
            Err(e @ AmqpError::Unreachable { .. }) => {
                tracing::warn!(error = %e, "RabbitMQ unreachable at start-up: answering 503 and retrying");
                shared.disconnect(&format!("waiting for RabbitMQ: {e}"));
            }
            Err(e) => return Err(e),
        }
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
        if let Some(link) = self.shared.disconnect("stopping") {
            close_quietly(link).await;
        }
    }
}

async fn supervise(shared: Arc<Shared>, stop: CancellationToken) {
    let mut backoff = Backoff::SERVICE;
    loop {
        if shared.usable() {
            backoff.reset();
            tokio::select! {
                () = stop.cancelled() => return,
                () = shared.broken.notified() => {}
                () = tokio::time::sleep(HEALTH_POLL) => {}
            }
            if shared.usable() {
                continue;
            }
            tracing::warn!("RabbitMQ connection lost: answering 503 until it is back");
            if let Some(old) = shared.disconnect("RabbitMQ connection lost; reconnecting") {
                tokio::spawn(close_quietly(old));
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
        match shared.open().await {
            Ok(link) => shared.connect(link),
            Err(e) => {
                tracing::warn!(error = %e, "RabbitMQ still unavailable");
                shared.disconnect(&format!("waiting for RabbitMQ: {e}"));
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
