//! The state of the ingest's RabbitMQ connections (one per HTTP worker
//! thread) as one: what `/readyz` and the `broker_*` metrics say.
//!
//! A request may land on any thread, so the ingest is ready only while
//! every thread's connection is up and unblocked. The metrics count a
//! process's reconnect (and failover) once, when the last of its
//! connections is back, not once per thread.

use crate::metrics::Metrics;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// One thread's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// None, and why.
    Waiting(String),
    /// Up, to `node` (`host:port`); `blocked` while RabbitMQ blocks it.
    Connected {
        node: String,
        blocked: Option<String>,
    },
}

/// What the process's connections are together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// At least one thread has no connection, for this reason.
    Waiting(String),
    /// Every thread has one; the node connected to last, and why
    /// RabbitMQ blocks one of them, if it does.
    Connected {
        node: String,
        blocked: Option<String>,
    },
}

/// Pure: the connections of every thread as one. `latest` is the node a
/// thread connected to last.
pub fn summarize(states: &[LinkState], latest: Option<&str>) -> Summary {
    let mut blocked = None;
    let mut node = None;
    for state in states {
        match state {
            LinkState::Waiting(reason) => return Summary::Waiting(reason.clone()),
            LinkState::Connected {
                node: this,
                blocked: why,
            } => {
                node.get_or_insert(this);
                if blocked.is_none() {
                    blocked.clone_from(why);
                }
            }
        }
    }
    match node {
        Some(node) => Summary::Connected {
            node: latest.unwrap_or(node).to_owned(),
            blocked,
        },
        None => Summary::Waiting(CONNECTING.to_owned()),
    }
}

const CONNECTING: &str = "connecting to RabbitMQ";

#[derive(Debug)]
struct Slot {
    state: LinkState,
    /// Its node went silent (a confirm timed out on another thread).
    condemned: bool,
}

#[derive(Debug)]
struct Inner {
    slots: Vec<Slot>,
    latest: Option<String>,
    shown: Summary,
}

/// Every thread's connection state, kept in the metrics as one.
#[derive(Debug)]
pub struct Links {
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
    /// Told of every change.
    changed: Notify,
}

impl Links {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            inner: Mutex::new(Inner {
                slots: Vec::new(),
                latest: None,
                shown: Summary::Waiting(CONNECTING.to_owned()),
            }),
            changed: Notify::new(),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new thread's slot, waiting for its connection.
    pub fn register(&self) -> usize {
        let mut inner = self.inner();
        inner.slots.push(Slot {
            state: LinkState::Waiting(CONNECTING.to_owned()),
            condemned: false,
        });
        let slot = inner.slots.len() - 1;
        self.show(&mut inner);
        slot
    }

    /// Thread `slot`'s connection is now `state`.
    pub fn set(&self, slot: usize, state: LinkState) {
        let mut inner = self.inner();
        if let LinkState::Connected { node, .. } = &state
            && !matches!(&inner.slots[slot].state, LinkState::Connected { node: was, .. } if was == node)
        {
            inner.latest = Some(node.clone());
        }
        inner.slots[slot] = Slot {
            state,
            condemned: false,
        };
        self.show(&mut inner);
    }

    /// A confirm did not come in time from `node`: every thread's
    /// connection to it is to be replaced.
    pub fn condemn(&self, node: &str) {
        for slot in &mut self.inner().slots {
            if matches!(&slot.state, LinkState::Connected { node: on, .. } if on == node) {
                slot.condemned = true;
            }
        }
    }

    /// Resolves once `threads` threads registered and each has tried its
    /// first connection (connected, or said why not).
    pub async fn tried(&self, threads: usize) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.all_tried(threads) {
                return;
            }
            changed.await;
        }
    }

    fn all_tried(&self, threads: usize) -> bool {
        let inner = self.inner();
        inner.slots.len() >= threads
            && inner
                .slots
                .iter()
                .all(|s| s.state != LinkState::Waiting(CONNECTING.to_owned()))
    }

    pub fn condemned(&self, slot: usize) -> bool {
        self.inner().slots[slot].condemned
    }

    /// Every thread's connection is up and unblocked.
    pub fn ready(&self) -> bool {
        matches!(self.inner().shown, Summary::Connected { blocked: None, .. })
    }

    /// Bring the metrics (and `/readyz`, which reads them) up to date.
    fn show(&self, inner: &mut Inner) {
        self.changed.notify_waiters();
        let states: Vec<LinkState> = inner.slots.iter().map(|s| s.state.clone()).collect();
        let now = summarize(&states, inner.latest.as_deref());
        if now == inner.shown {
            return;
        }
        let broker = &self.metrics.broker;
        match (&inner.shown, &now) {
            (Summary::Connected { node: was, .. }, Summary::Connected { node, .. })
                if was == node => {}
            (_, Summary::Connected { node, .. }) => {
                broker.connected(node);
                tracing::info!(rabbitmq.node = %node, "publishing through RabbitMQ node {node}");
            }
            (_, Summary::Waiting(reason)) => broker.lost(reason.clone()),
        }
        if let Summary::Connected { blocked, .. } = &now {
            let was = match &inner.shown {
                Summary::Connected { blocked, .. } => blocked.clone(),
                Summary::Waiting(_) => None,
            };
            match blocked {
                Some(reason) if was.as_ref() != Some(reason) => {
                    tracing::warn!(reason = %reason, "RabbitMQ blocked the ingest's publishes until it unblocks them");
                    broker.blocked(reason.clone());
                }
                None if was.is_some() => {
                    tracing::info!("RabbitMQ unblocked the ingest's publishes");
                    broker.unblocked();
                }
                _ => {}
            }
        }
        inner.shown = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(node: &str, blocked: Option<&str>) -> LinkState {
        LinkState::Connected {
            node: node.to_owned(),
            blocked: blocked.map(str::to_owned),
        }
    }

    #[test]
    fn ready_only_when_every_thread_is_connected_and_none_blocked() {
        let waiting = LinkState::Waiting("waiting for RabbitMQ: refused".to_owned());
        assert_eq!(
            summarize(&[up("a:1", None), waiting.clone()], None),
            Summary::Waiting("waiting for RabbitMQ: refused".to_owned())
        );
        assert_eq!(
            summarize(&[], None),
            Summary::Waiting(CONNECTING.to_owned())
        );
        assert_eq!(
            summarize(
                &[up("a:1", None), up("b:2", Some("memory alarm"))],
                Some("b:2")
            ),
            Summary::Connected {
                node: "b:2".to_owned(),
                blocked: Some("memory alarm".to_owned())
            }
        );
    }

    fn metric(metrics: &Metrics, name: &str) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, metrics.registry()).unwrap();
        text.lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_failover_of_every_thread_counts_once() {
        let metrics = Arc::new(Metrics::new());
        let links = Links::new(metrics.clone());
        let (a, b) = (links.register(), links.register());
        links.set(a, up("n1:1", None));
        assert!(!links.ready(), "one thread still connecting");
        links.set(b, up("n1:1", None));
        assert!(links.ready());
        for slot in [a, b] {
            links.set(slot, LinkState::Waiting("lost".to_owned()));
        }
        assert!(!links.ready());
        links.set(a, up("n2:2", None));
        links.condemn("n1:1");
        assert!(!links.condemned(a) && !links.condemned(b));
        links.set(b, up("n2:2", None));
        assert!(links.ready());
        let text = metric(&metrics, "clerk_sync_ingest_broker_");
        assert!(text.contains("broker_reconnects_total 1"), "{text}");
        assert!(text.contains("broker_failovers_total 1"), "{text}");
        assert!(text.contains("broker_node{node=\"n2:2\"} 1"), "{text}");
        links.set(
            a,
            up("n2:2", Some("RabbitMQ blocked publishers: memory alarm")),
        );
        assert!(!links.ready());
        assert!(metric(&metrics, "clerk_sync_ingest_broker_blocked").ends_with(" 1"));
        links.set(a, up("n2:2", None));
        assert!(links.ready());
        assert!(metric(&metrics, "clerk_sync_ingest_broker_blocked").ends_with(" 0"));
        links.condemn("n2:2");
        assert!(links.condemned(a) && links.condemned(b));
    }
}
