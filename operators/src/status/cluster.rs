//! The RabbitMQ cluster as `status` shows it, from the management API
//! (`status.management_url`): each node, whether it runs, and how many of
//! clerk-sync's quorum queues it leads and holds a member of; and each
//! queue's members, those online, and whether it still has a majority
//! (without one a quorum queue accepts and delivers nothing). Pure: the
//! HTTP calls are in `gather`.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub running: bool,
    pub leaders: usize,
    pub members: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicas {
    pub queue: String,
    pub leader: Option<String>,
    pub members: Vec<String>,
    pub online: Vec<String>,
}

impl Replicas {
    /// Members needed for a majority.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    pub fn has_majority(&self) -> bool {
        self.online.len() >= self.majority()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub queues: Vec<Replicas>,
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// From `GET /api/nodes` and `GET /api/queues/{vhost}`: the queues named
/// `{prefix}.*` (quorum queues only: a classic queue has no members).
pub fn from_api(nodes: &Value, queues: &Value, prefix: &str) -> Cluster {
    let own = format!("{prefix}.");
    let queues: Vec<Replicas> = queues
        .as_array()
        .into_iter()
        .flatten()
        .filter(|q| q["type"] == "quorum")
        .filter_map(|q| {
            let name = q["name"].as_str()?;
            name.starts_with(&own).then(|| Replicas {
                queue: name.to_owned(),
                leader: q["leader"].as_str().map(str::to_owned),
                members: names(&q["members"]),
                online: names(&q["online"]),
            })
        })
        .collect();
    let mut nodes: Vec<Node> = nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let name = n["name"].as_str()?.to_owned();
            Some(Node {
                leaders: queues
                    .iter()
                    .filter(|q| q.leader.as_deref() == Some(name.as_str()))
                    .count(),
                members: queues.iter().filter(|q| q.members.contains(&name)).count(),
                running: n["running"].as_bool().unwrap_or(false),
                name,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Cluster { nodes, queues }
}

impl Cluster {
    /// The queues that lost their majority.
    pub fn without_majority(&self) -> impl Iterator<Item = &Replicas> {
        self.queues.iter().filter(|q| !q.has_majority())
    }

    /// One line per queue with a member offline (majority kept or not).
    pub fn degraded(&self) -> Vec<String> {
        self.queues
            .iter()
            .filter(|q| q.online.len() < q.members.len())
            .map(|q| {
                format!(
                    "{}: {} of {} members online{}, leader {}",
                    q.queue,
                    q.online.len(),
                    q.members.len(),
                    if q.has_majority() {
                        ""
                    } else {
                        " (MAJORITY LOST)"
                    },
                    q.leader.as_deref().unwrap_or("none")
                )
            })
            .collect()
    }

    pub fn json(&self) -> Value {
        json!({
            "nodes": self.nodes.iter().map(|n| json!({
                "name": n.name,
                "running": n.running,
                "leaders": n.leaders,
                "members": n.members,
            })).collect::<Vec<_>>(),
            "queues": self.queues.iter().map(|q| json!({
                "queue": q.queue,
                "leader": q.leader,
                "members": q.members,
                "online": q.online,
                "majority": q.has_majority(),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As RabbitMQ 3.10's management API answers, one node down.
    fn api() -> (Value, Value) {
        let nodes = json!([
            { "name": "rabbit@a", "running": true },
            { "name": "rabbit@b", "running": false },
            { "name": "rabbit@c", "running": true },
        ]);
        let all = ["rabbit@a", "rabbit@b", "rabbit@c"];
        let queues = json!([
            { "name": "cs.shard.0", "type": "quorum", "leader": "rabbit@a", "members": all, "online": ["rabbit@a", "rabbit@c"] },
            { "name": "cs.shard.1", "type": "quorum", "leader": "rabbit@c", "members": all, "online": ["rabbit@a", "rabbit@c"] },
            { "name": "cs.dead-letter", "type": "quorum", "leader": "rabbit@a", "members": all, "online": ["rabbit@a"] },
            { "name": "other.shard.0", "type": "quorum", "leader": "rabbit@b", "members": all, "online": all },
            { "name": "cs.classic", "type": "classic", "node": "rabbit@a" },
        ]);
        (nodes, queues)
    }

    #[test]
    fn leaders_and_members_are_counted_per_node_for_the_prefix_only() {
        let (nodes, queues) = api();
        let cluster = from_api(&nodes, &queues, "cs");
        assert_eq!(cluster.queues.len(), 3);
        let counts: Vec<(&str, bool, usize, usize)> = cluster
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.running, n.leaders, n.members))
            .collect();
        assert_eq!(
            counts,
            [
                ("rabbit@a", true, 2, 3),
                ("rabbit@b", false, 0, 3),
                ("rabbit@c", true, 1, 3)
            ]
        );
    }

    #[test]
    fn a_queue_with_fewer_than_a_majority_online_is_flagged() {
        let (nodes, queues) = api();
        let cluster = from_api(&nodes, &queues, "cs");
        let lost: Vec<&str> = cluster
            .without_majority()
            .map(|q| q.queue.as_str())
            .collect();
        assert_eq!(lost, ["cs.dead-letter"]);
        let degraded = cluster.degraded();
        assert_eq!(degraded.len(), 3);
        assert_eq!(
            degraded[2],
            "cs.dead-letter: 1 of 3 members online (MAJORITY LOST), leader rabbit@a"
        );
        assert_eq!(cluster.json()["queues"][2]["majority"], false);
    }

    #[test]
    fn majorities() {
        let replicas = |members: usize, online: usize| Replicas {
            queue: "q".to_owned(),
            leader: None,
            members: (0..members).map(|i| i.to_string()).collect(),
            online: (0..online).map(|i| i.to_string()).collect(),
        };
        assert!(replicas(3, 2).has_majority());
        assert!(!replicas(3, 1).has_majority());
        assert!(replicas(5, 3).has_majority());
        assert!(!replicas(4, 2).has_majority());
        assert!(replicas(1, 1).has_majority());
    }
}
