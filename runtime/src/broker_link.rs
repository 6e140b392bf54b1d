//! What a binary tells of its RabbitMQ connection, in its metrics and on
//! `/readyz`: whether it is up, which node it uses (`host:port`, never a
//! user or password), why it is waiting when it is not, and how often it
//! was replaced: `broker_connected`, `broker_node`, `broker_reconnects_total`
//! and `broker_failovers_total` (a reconnect to another node than before);
//! and whether RabbitMQ blocks its publishes (`broker_blocked`: a memory
//! or disk alarm; [`BrokerLink::follow_blocks`] follows it for the ingest,
//! whose readiness it ends, and for the worker, whose dead-letter copies
//! wait meanwhile).

use futures::{Stream, StreamExt};
use lapin::Event;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

/// What a new connection is, next to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The process's first connection.
    First,
    /// Back to the node it used before.
    SameNode,
    /// Another node than before: a failover.
    OtherNode,
}

/// Pure: the order in which to try the listed nodes (their `host:port`)
/// after losing the connection to `failed`: the nodes after it in the
/// list, then those before it, then itself; the list's own order when
/// nothing failed (or the node is not listed).
pub fn try_order(addresses: &[String], failed: Option<&str>) -> Vec<usize> {
    let n = addresses.len();
    match failed.and_then(|f| addresses.iter().position(|a| a == f)) {
        Some(at) => (1..=n).map(|k| (at + k) % n).collect(),
        None => (0..n).collect(),
    }
}

/// Pure: what `/readyz` says while RabbitMQ blocks the connection's
/// publishes, from the reason `connection.blocked` gave (RabbitMQ sends
/// "low on memory" or "low on disk").
pub fn blocked_reason(broker_reason: &str) -> String {
    let lower = broker_reason.to_ascii_lowercase();
    let alarm = if lower.contains("memory") {
        "memory alarm".to_owned()
    } else if lower.contains("disk") || lower.contains("disc") {
        "disk alarm".to_owned()
    } else if broker_reason.trim().is_empty() {
        "a resource alarm".to_owned()
    } else {
        broker_reason.trim().to_owned()
    };
    format!("RabbitMQ blocked publishers: {alarm}")
}

/// Pure: what connecting to `node` is after `last`.
pub fn change(last: Option<&str>, node: &str) -> Change {
    match last {
        None => Change::First,
        Some(last) if last == node => Change::SameNode,
        Some(_) => Change::OtherNode,
    }
}

#[derive(Debug, Default)]
struct State {
    /// The node in use now.
    node: Option<String>,
    /// The node used last, connected or not.
    last: Option<String>,
    /// Why there is no connection, while there is none.
    waiting: Option<String>,
    /// Why RabbitMQ blocks the connection's publishes, while it does.
    blocked: Option<String>,
}

#[derive(Debug)]
pub struct BrokerLink {
    connected: Gauge,
    node: Family<NodeLabels, Gauge>,
    reconnects: Counter,
    failovers: Counter,
    blocked: Gauge,
    state: Mutex<State>,
}

impl BrokerLink {
    /// Register the link's metrics in `registry`; not connected yet.
    pub fn new(registry: &mut Registry) -> Self {
        let connected = Gauge::default();
        registry.register(
            "broker_connected",
            "1 while the RabbitMQ connection is usable",
            connected.clone(),
        );
        let node = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "broker_node",
            "1 for the RabbitMQ node (host:port) in use, 0 for one used before",
            node.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "broker_reconnects",
            "RabbitMQ connections opened after the first",
            reconnects.clone(),
        );
        let failovers = Counter::default();
        registry.register(
            "broker_failovers",
            "RabbitMQ connections opened to another node than the one before",
            failovers.clone(),
        );
        let blocked = Gauge::default();
        registry.register(
            "broker_blocked",
            "1 while RabbitMQ blocks the connection's publishes (a memory or disk alarm)",
            blocked.clone(),
        );
        let link = Self {
            connected,
            node,
            reconnects,
            failovers,
            blocked,
            state: Mutex::default(),
        };
        link.lost("connecting to RabbitMQ");
        link
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection to `node` is usable.
    pub fn connected(&self, node: &str) {
        let mut state = self.state();
        match change(state.last.as_deref(), node) {
            Change::First => {}
            Change::SameNode => {
                self.reconnects.inc();
            }
            Change::OtherNode => {
                self.reconnects.inc();
                self.failovers.inc();
                tracing::warn!(rabbitmq.node = %node, "failed over to another RabbitMQ node");
            }
        }
        if let Some(last) = &state.last {
            self.node
                .get_or_create(&NodeLabels { node: last.clone() })
                .set(0);
        }
        self.node
            .get_or_create(&NodeLabels {
                node: node.to_owned(),
            })
            .set(1);
        state.node = Some(node.to_owned());
        state.last = Some(node.to_owned());
        state.waiting = None;
        state.blocked = None;
        self.blocked.set(0);
        self.connected.set(1);
    }

    /// RabbitMQ blocks the connection's publishes, for `reason` (from
    /// [`blocked_reason`]).
    pub fn blocked(&self, reason: impl Into<String>) {
        self.state().blocked = Some(reason.into());
        self.blocked.set(1);
    }

    /// RabbitMQ accepts the connection's publishes again.
    pub fn unblocked(&self) {
        self.state().blocked = None;
        self.blocked.set(0);
    }

    /// Follow one connection's `connection.blocked` and
    /// `connection.unblocked` until its events end: the gauge, `/readyz`
    /// and the log say so, and `on_change` hears each change (why, while
    /// blocked). RabbitMQ tells a connection only once it publishes.
    pub async fn follow_blocks(
        &self,
        events: impl Stream<Item = Event>,
        mut on_change: impl FnMut(Option<String>),
    ) {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Event::ConnectionBlocked(broker_reason) => {
                    let reason = blocked_reason(&broker_reason);
                    tracing::warn!(reason = %reason, "RabbitMQ blocked this connection's publishes until it unblocks them");
                    self.blocked(reason.clone());
                    on_change(Some(reason));
                }
                Event::ConnectionUnblocked => {
                    tracing::info!("RabbitMQ unblocked this connection's publishes");
                    self.unblocked();
                    on_change(None);
                }
                _ => {}
            }
        }
    }

    /// Why RabbitMQ blocks the connection's publishes, while it does.
    pub fn blocked_by(&self) -> Option<String> {
        self.state().blocked.clone()
    }

    /// No usable connection, because of `reason` (shown on `/readyz`; it
    /// must hold no secret: RabbitMQ's errors here name redacted URLs).
    pub fn lost(&self, reason: impl Into<String>) {
        let mut state = self.state();
        if let Some(node) = state.node.take() {
            self.node.get_or_create(&NodeLabels { node }).set(0);
        }
        state.waiting = Some(reason.into());
        state.blocked = None;
        self.blocked.set(0);
        self.connected.set(0);
    }

    /// The node used last, connected or not (to try it last on reconnect).
    pub fn last_node(&self) -> Option<String> {
        self.state().last.clone()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.get() == 1
    }

    /// What `/readyz` says of RabbitMQ: the node in use (and why it may not
    /// be used, while RabbitMQ blocks publishes), or why there is none.
    pub fn readiness(&self) -> Value {
        let state = self.state();
        match (&state.node, &state.waiting) {
            (Some(node), _) => match &state.blocked {
                Some(blocked) => json!({ "rabbitmq_node": node, "rabbitmq": blocked }),
                None => json!({ "rabbitmq_node": node }),
            },
            (None, reason) => json!({ "rabbitmq_node": null, "rabbitmq": reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_tries_the_failed_node_last() {
        let nodes: Vec<String> = ["a:1", "b:1", "c:1"].map(String::from).to_vec();
        assert_eq!(try_order(&nodes, None), [0, 1, 2]);
        assert_eq!(try_order(&nodes, Some("a:1")), [1, 2, 0]);
        assert_eq!(try_order(&nodes, Some("b:1")), [2, 0, 1]);
        assert_eq!(try_order(&nodes, Some("c:1")), [0, 1, 2]);
        assert_eq!(try_order(&nodes, Some("elsewhere:1")), [0, 1, 2]);
        assert_eq!(try_order(&nodes[..1], Some("a:1")), [0]);
        assert!(try_order(&[], Some("a:1")).is_empty());
    }

    #[test]
    fn a_connection_is_first_same_or_another_node() {
        assert_eq!(change(None, "a:5672"), Change::First);
        assert_eq!(change(Some("a:5672"), "a:5672"), Change::SameNode);
        assert_eq!(change(Some("a:5672"), "b:5672"), Change::OtherNode);
    }

    #[test]
    fn a_block_is_named_for_its_alarm() {
        assert_eq!(
            blocked_reason("low on memory"),
            "RabbitMQ blocked publishers: memory alarm"
        );
        assert_eq!(
            blocked_reason("low on disk"),
            "RabbitMQ blocked publishers: disk alarm"
        );
        assert_eq!(
            blocked_reason(" "),
            "RabbitMQ blocked publishers: a resource alarm"
        );
        assert_eq!(
            blocked_reason("other"),
            "RabbitMQ blocked publishers: other"
        );
    }

    #[test]
    fn a_blocked_connection_is_shown_until_unblocked_or_replaced() {
        let mut registry = Registry::with_prefix("t");
        let link = BrokerLink::new(&mut registry);
        link.connected("a:5672");
        link.blocked(blocked_reason("low on memory"));
        assert_eq!(
            link.readiness(),
            json!({ "rabbitmq_node": "a:5672", "rabbitmq": "RabbitMQ blocked publishers: memory alarm" })
        );
        assert!(exposition(&registry).contains("t_broker_blocked 1"));
        link.unblocked();
        assert_eq!(link.readiness(), json!({ "rabbitmq_node": "a:5672" }));
        assert_eq!(link.blocked_by(), None);
        link.blocked("x");
        link.lost("gone");
        link.connected("b:5672");
        assert_eq!(link.blocked_by(), None, "a new connection is not blocked");
        assert!(exposition(&registry).contains("t_broker_blocked 0"));
    }

    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn reconnects_and_failovers_are_counted_and_the_node_shown() {
        let mut registry = Registry::with_prefix("t");
        let link = BrokerLink::new(&mut registry);
        assert!(!link.is_connected());
        assert_eq!(link.readiness()["rabbitmq"], "connecting to RabbitMQ");
        link.connected("a:5672");
        link.lost("RabbitMQ connection lost");
        assert_eq!(link.readiness()["rabbitmq"], "RabbitMQ connection lost");
        link.connected("a:5672");
        link.lost("gone");
        link.connected("b:5673");
        assert!(link.is_connected());
        assert_eq!(link.readiness(), json!({ "rabbitmq_node": "b:5673" }));
        let text = exposition(&registry);
        assert!(text.contains("t_broker_reconnects_total 2"), "{text}");
        assert!(text.contains("t_broker_failovers_total 1"), "{text}");
        assert!(text.contains("t_broker_node{node=\"b:5673\"} 1"), "{text}");
        assert!(text.contains("t_broker_node{node=\"a:5672\"} 0"), "{text}");
        assert!(text.contains("t_broker_connected 1"), "{text}");
    }
}
