//! RabbitMQ's view of a failover run's queues when it failed, from every
//! node that answers: the queues' depths, consumers, leader and members
//! (`list_queues`: metrics each leader publishes now and then), each
//! member's own state (`rabbit_fifo`'s overview, and its consumers'
//! channel processes, alive or not), the consumers, and the Raft state of
//! the queues asked about.

use crate::cluster::{Cluster, NODES};
use clerk_sync_domain::topology::Topology;
use std::collections::BTreeSet;

/// For `rabbitmqctl eval` on a node: per queue (QUEUES: their names,
/// quoted), its member there's overview (messages ready, checked out,
/// consumers, dead letters in flight, ...) and its consumers' channel
/// processes, each with whether it is alive.
const MEMBER_STATES: &str = r#"[begin
  {ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, list_to_binary(N))),
  {RaName, _} = amqqueue:get_pid(Q),
  Id = {RaName, node()},
  Overview = case catch ra:local_query(Id, fun rabbit_fifo:overview/1, 5000) of
    {ok, {_, O}, _} when is_map(O) -> maps:without([config], O);
    E1 -> E1 end,
  Consumers = case catch ra:local_query(Id, fun rabbit_fifo:query_consumers/1, 5000) of
    {ok, {_, M}, _} when is_map(M) ->
      [{P, rpc:call(node(P), erlang, is_process_alive, [P], 5000)}
       || V <- maps:values(M), is_tuple(V), P <- tuple_to_list(V), is_pid(P)];
    E2 -> E2 end,
  {N, Overview, Consumers}
end || N <- [QUEUES]]."#;

/// Every queue of the run with its depths, consumers, leader and members,
/// from each node; the consumers; the Raft state of `queues`.
pub async fn print(cluster: &Cluster, topology: &Topology, queues: &BTreeSet<String>) {
    let names: Vec<String> = topology
        .shard_queues()
        .chain([topology.dead_letter_queue()])
        .collect();
    let ours = |output: &str| -> Vec<String> {
        output
            .lines()
            .filter(|l| {
                names
                    .iter()
                    .any(|n| l.split('\t').next() == Some(n.as_str()))
            })
            .map(str::to_owned)
            .collect()
    };
    println!("    RabbitMQ now (name, messages, ready, unacked, consumers, leader, online):");
    for node in NODES {
        let listed = cluster
            .run(
                "ctl",
                node,
                &[
                    "list_queues",
                    "-q",
                    "--no-table-headers",
                    "--timeout",
                    "20",
                    "name",
                    "messages",
                    "messages_ready",
                    "messages_unacknowledged",
                    "consumers",
                    "leader",
                    "online",
                ],
            )
            .await;
        match listed {
            Ok(output) => {
                for line in ours(&output) {
                    println!("      node {node}: {line}");
                }
            }
            Err(e) => println!("      node {node}: {e:#}"),
        }
    }
    for node in NODES {
        let consumers = cluster
            .run(
                "ctl",
                node,
                &[
                    "list_consumers",
                    "-q",
                    "--no-table-headers",
                    "--timeout",
                    "20",
                    "queue_name",
                    "channel_pid",
                    "ack_required",
                    "prefetch_count",
                    "active",
                ],
            )
            .await;
        if let Ok(output) = consumers {
            let lines = ours(&output);
            println!("    consumers (from node {node}): {}", lines.len());
            for line in lines {
                println!("      {line}");
            }
            break;
        }
    }
    // The members' own states: list_queues' figures come from metrics
    // each leader publishes now and then, and can be stale.
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let expression = MEMBER_STATES.replace("QUEUES", &quoted.join(","));
    for node in NODES {
        match cluster.run("ctl", node, &["eval", &expression]).await {
            Ok(output) => {
                println!("    node {node}'s members (queue, overview, consumers: pid alive?):");
                for line in output.lines() {
                    println!("      {line}");
                }
            }
            Err(e) => println!("    node {node}'s members: {e:#}"),
        }
    }
    for queue in queues {
        for node in NODES {
            let status = cluster
                .run("queues", node, &["quorum_status", queue, "--timeout", "20"])
                .await;
            if let Ok(output) = status {
                println!("    quorum_status {queue} (from node {node}):");
                for line in output.lines() {
                    println!("      {line}");
                }
                break;
            }
        }
    }
}
