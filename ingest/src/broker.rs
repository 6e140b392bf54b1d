//! The ingest's link to RabbitMQ: one publishing connection per HTTP worker
//! thread (see [`crate::amqp`]), each watched by a supervisor task on its
//! thread that replaces it when it breaks.
//!
//! At start-up the topology is declared (or checked) once, with lapin; a
//! queue at fault stops start-up with its name. Requests never wait for a
//! reconnect: while a thread's connection is down, its publishes fail at
//! once (503, and Svix retries) and `/readyz` says not ready and why. A
//! broker unreachable at start-up is waited for the same way (the
//! connections open once the topology is declared); each reconnect tries
//! every node `amqp.url` lists, the one just lost last. A publish left
//! without a confirm past `amqp.confirm_timeout_ms` also ends every
//! connection to that node: a node cut off by a partition sends nothing.
//!
//! While RabbitMQ blocks a connection's publishes (`connection.blocked`:
//! a memory or disk alarm), publishing fails at once too and `/readyz`
//! names the alarm; the connection is kept (a blocked broker is not a lost
//! one) and serves again at `connection.unblocked`.

use crate::amqp::{self, Connection};
use crate::links::{LinkState, Links};
use crate::metrics::Metrics;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::amqp::{self as declare, AmqpError};
use clerk_sync_runtime::settings::AmqpSettings;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often a supervisor looks at its connection when nobody woke it.
const HEALTH_POLL: Duration = Duration::from_millis(250);
const CONNECTION_NAME: &str = "clerk-sync-ingest";

/// State shared by every thread's link and every request.
#[derive(Debug)]
pub(crate) struct Shared {
    settings: AmqpSettings,
    pub(crate) topology: Topology,
    pub(crate) metrics: Arc<Metrics>,
    /// Permits for publishes awaiting a confirm (`amqp.max_unconfirmed`).
    pub(crate) unconfirmed: Arc<Semaphore>,
    pub(crate) links: Links,
    /// True once the topology is declared: connections open after.
    declared: watch::Receiver<bool>,
    /// Wakes every supervisor: a node went silent.
    condemned: Notify,
    stop: CancellationToken,
}

impl Shared {
    pub(crate) fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.confirm_timeout_ms)
    }

    pub(crate) fn max_unconfirmed(&self) -> usize {
        self.settings.max_unconfirmed
    }

    /// No confirm came in time from `node`: replace every connection to it.
    pub(crate) fn report_silent(&self, node: &str) {
        self.links.condemn(node);
        self.condemned.notify_waiters();
    }
}

/// A usable connection and the node it went to (`host:port`).
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) connection: Connection,
    pub(crate) node: String,
    /// Why RabbitMQ blocks this connection's publishes, while it does.
    blocked: watch::Receiver<Option<String>>,
}

impl Link {
    /// Why RabbitMQ blocks this connection's publishes, while it does.
    pub(crate) fn blocked_by(&self) -> Option<String> {
        self.blocked.borrow().clone()
    }

    /// Resolves when RabbitMQ blocks this connection, with why; never
    /// while it does not.
    pub(crate) async fn until_blocked(&self) -> String {
        let mut blocked = self.blocked.clone();
        let reason = blocked
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }
}

/// One HTTP worker thread's link: its connection, if it has one.
#[derive(Debug)]
pub(crate) struct ThreadLink {
    slot: usize,
    current: RefCell<Option<Rc<Link>>>,
    stop: CancellationToken,
}

impl ThreadLink {
    pub(crate) fn current(&self) -> Option<Rc<Link>> {
        self.current.borrow().clone()
    }
}

impl Drop for ThreadLink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Owns what every thread's link shares; [`crate::publisher::Publisher`]s
/// are made from it, one per HTTP worker thread.
#[derive(Debug)]
pub struct Broker {
    shared: Arc<Shared>,
    declaring: JoinHandle<()>,
}

impl Broker {
    /// Declare the topology, or fail with a message naming the queue at
    /// fault. An unreachable broker is not a failure: it is waited for
    /// (503 meanwhile), as reconnection is afterwards.
    pub async fn start(settings: &AmqpSettings, metrics: Arc<Metrics>) -> Result<Self, AmqpError> {
        let (declared_sender, declared) = watch::channel(false);
        let topology = settings.topology();
        let waiting = match declare_once(settings, &topology).await {
            Ok(()) => {
                declared_sender.send_replace(true);
                None
            }
            Err(e @ AmqpError::Unreachable { .. }) => {
                tracing::warn!(error = %e, "RabbitMQ unreachable at start-up: answering 503 and retrying");
                metrics.broker.lost(format!("waiting for RabbitMQ: {e}"));
                Some(declared_sender)
            }
            Err(e) => return Err(e),
        };
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            topology,
            links: Links::new(metrics.clone()),
            metrics,
            unconfirmed: Arc::new(Semaphore::new(
                settings.max_unconfirmed.min(Semaphore::MAX_PERMITS),
            )),
            declared,
            condemned: Notify::new(),
            stop: CancellationToken::new(),
        });
        let declaring = tokio::spawn(declare_until_done(shared.clone(), waiting));
        Ok(Self { shared, declaring })
    }

    /// Wait until each of `threads` HTTP worker threads has opened its
    /// connection (or failed to), so that the ingest serves from its first
    /// request; not at all while the topology waits for RabbitMQ.
    pub async fn opened(&self, threads: usize) {
        if !*self.shared.declared.borrow() {
            return;
        }
        let nodes = self.shared.settings.url.nodes().len() as u32;
        let most = declare::CONNECT_TIMEOUT * nodes.max(1);
        if tokio::time::timeout(most, self.shared.links.tried(threads))
            .await
            .is_err()
        {
            tracing::warn!("the HTTP worker threads' RabbitMQ connections are not all open yet");
        }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Stop reconnecting; each thread's connection closes with its thread.
    pub async fn close(self) {
        self.shared.stop.cancel();
        if let Err(e) = self.declaring.await {
            tracing::error!(error = %e, "RabbitMQ declaring task failed");
        }
    }
}

/// A link for the calling HTTP worker thread, registered with `shared`,
/// its supervisor started on the thread's task set.
pub(crate) fn thread_link(shared: &Arc<Shared>) -> Rc<ThreadLink> {
    let link = Rc::new(ThreadLink {
        slot: shared.links.register(),
        current: RefCell::new(None),
        stop: shared.stop.child_token(),
    });
    tokio::task::spawn_local(supervise(Rc::downgrade(&link), shared.clone()));
    link
}

async fn declare_once(settings: &AmqpSettings, topology: &Topology) -> Result<(), AmqpError> {
    let connection = declare::connect(&settings.url, CONNECTION_NAME).await?;
    let declared = declare::declare_topology(&connection, topology, settings.delivery_limit).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        connection.close(200, "declared".into()),
    )
    .await;
    declared
}

/// Retry declaring the topology until it is done (`waiting` is None when
/// it already is) or the ingest stops.
async fn declare_until_done(shared: Arc<Shared>, waiting: Option<watch::Sender<bool>>) {
    let Some(declared) = waiting else { return };
    let mut backoff = Backoff::SERVICE;
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
        match declare_once(&shared.settings, &shared.topology).await {
            Ok(()) => {
                declared.send_replace(true);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "RabbitMQ still unavailable");
                shared
                    .metrics
                    .broker
                    .lost(format!("waiting for RabbitMQ: {e}"));
            }
        }
    }
}

/// Keep the thread's connection up until the thread's link is dropped or
/// the ingest stops.
async fn supervise(thread: std::rc::Weak<ThreadLink>, shared: Arc<Shared>) {
    let Some((slot, stop)) = thread.upgrade().map(|t| (t.slot, t.stop.clone())) else {
        return;
    };
    let mut declared = shared.declared.clone();
    tokio::select! {
        () = stop.cancelled() => return,
        _ = declared.wait_for(|done| *done) => {}
    }
    let mut backoff = Backoff::SERVICE;
    let mut last_node: Option<String> = None;
    loop {
        let url = &shared.settings.url;
        match amqp::connect(url, CONNECTION_NAME, last_node.as_deref()).await {
            Ok((connection, node)) => {
                let Some(owner) = thread.upgrade() else {
                    return;
                };
                let link = Rc::new(Link {
                    blocked: connection.blocked(),
                    connection,
                    node: node.clone(),
                });
                let up = LinkState::Connected {
                    node: node.clone(),
                    blocked: None,
                };
                shared.links.set(slot, up);
                last_node = Some(node);
                backoff.reset();
                *owner.current.borrow_mut() = Some(link.clone());
                drop(owner);
                watch_connection(&link, &shared, slot, &stop).await;
                if let Some(owner) = thread.upgrade() {
                    owner.current.borrow_mut().take();
                }
                if stop.is_cancelled() {
                    if let Ok(link) = Rc::try_unwrap(link) {
                        link.connection.close().await;
                    }
                    return;
                }
                let why = link
                    .connection
                    .gone()
                    .unwrap_or_else(|| "no confirm in time".to_owned());
                tracing::warn!(reason = %why, "RabbitMQ connection lost: answering 503 until it is back");
                let lost = LinkState::Waiting("RabbitMQ connection lost; reconnecting".to_owned());
                shared.links.set(slot, lost);
            }
            Err(e) => {
                tracing::warn!(error = %e, "RabbitMQ still unavailable");
                let waiting = LinkState::Waiting(format!("waiting for RabbitMQ: {e}"));
                shared.links.set(slot, waiting);
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Until the connection ends, its node goes silent or the ingest stops:
/// follow RabbitMQ's blocks.
async fn watch_connection(link: &Link, shared: &Shared, slot: usize, stop: &CancellationToken) {
    let mut blocked = link.blocked.clone();
    loop {
        if link.connection.gone().is_some() || shared.links.condemned(slot) {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = link.connection.ended() => return,
            () = shared.condemned.notified() => {}
            changed = blocked.changed() => {
                if changed.is_ok() {
                    let reason = blocked.borrow_and_update().clone();
                    shared.links.set(slot, LinkState::Connected { node: link.node.clone(), blocked: reason });
                }
            }
            () = tokio::time::sleep(HEALTH_POLL) => {}
        }
    }
}
