//! Collecting `status`'s figures from RabbitMQ and PostgreSQL, changing
//! nothing. Shard queues are only declared passively (their depth and
//! consumers): taking a message from one, even to give it back, would count
//! as a delivery towards its delivery limit. Their oldest message's age
//! comes from the workers' reports in `clerk_sync.shard_heads` (see
//! the worker's `serving::shard_heads`). The dead-letter queue has no delivery limit, so
//! its messages are read and given back, all of them (see
//! [`DeadLetterQueue::take_all`]), when there are not too many.

use super::cluster::{self, Cluster};
use super::report::{DeadLetters, EventLog, Reports, Shard, Tables};
use super::workers::Worker;
use crate::dlq::queue::{DeadLetterQueue, figures};
use anyhow::Context;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::clock::now_ms;
use clerk_sync_store::repository::workers::FRESH_FOR;
use clerk_sync_store::repository::{events, users, workers};
use diesel_async::AsyncPgConnection;
use std::collections::BTreeMap;

/// The dead letters are read (for their oldest age) only up to this many:
/// reading means taking every one and giving all back.
pub const DEAD_LETTERS_READ_AT_MOST: u32 = 1_000;

/// The shard queues' figures and the dead letters, from RabbitMQ.
pub async fn broker(
    queue: &DeadLetterQueue,
    topology: &Topology,
) -> anyhow::Result<(Vec<(String, u32, u32)>, DeadLetters)> {
    let channel = queue
        .connection()
        .create_channel()
        .await
        .context("cannot open a RabbitMQ channel")?;
    let mut shards = Vec::new();
    for name in topology.shard_queues() {
        let found = figures(&channel, &name).await?;
        shards.push((name, found.ready, found.consumers));
    }
    let _ = channel.close(200, "done".into()).await;
    let depth = queue.depth().await?;
    let now = now_ms();
    let mut oldest: Option<f64> = None;
    let read = depth <= DEAD_LETTERS_READ_AT_MOST;
    if read {
        queue
            .take_all(|letter| {
                if let Some(age) = letter.age_secs(now) {
                    oldest = Some(oldest.map_or(age, |o| o.max(age)));
                }
                false
            })
            .await?;
    }
    let dead_letters = DeadLetters {
        queue: queue.name(),
        depth,
        oldest_age_secs: oldest,
        read,
    };
    Ok((shards, dead_letters))
}

/// What `status` reads from PostgreSQL.
type FromDatabase = (EventLog, Tables, BTreeMap<String, Reports>, Vec<Worker>);

/// The event log, the tables, the workers' shard reports and the workers
/// themselves, read in one read-only snapshot so the figures agree.
pub async fn database(connection: &mut AsyncPgConnection) -> anyhow::Result<FromDatabase> {
    connection
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |connection| read(connection).await)
        .await
        .context("cannot read clerk-sync's tables (has `clerk-sync-worker migrate` run?)")
}

async fn read(connection: &mut AsyncPgConnection) -> Result<FromDatabase, diesel::result::Error> {
    let events = EventLog {
        by_outcome: events::count_by_outcome(connection)
            .await?
            .into_iter()
            .collect(),
        newest_age_secs: events::newest_age_secs(connection)
            .await?
            .map(|age| age.max(0.0)),
    };
    let counts = users::counts(connection).await?;
    let tables = Tables {
        users: counts.users,
        tombstones: counts.tombstones,
        students: counts.students,
        instructors: counts.instructors,
    };
    let reports = workers::queue_reports(connection, FRESH_FOR)
        .await?
        .into_iter()
        .map(|h| {
            (
                h.queue,
                Reports {
                    oldest_held_age_secs: h.oldest_age.map(|age| age.max(0.0)),
                    held: h.held,
                    newest_report_age_secs: h.report_age.max(0.0),
                },
            )
        })
        .collect();
    let running = workers::running(connection, FRESH_FOR)
        .await?
        .into_iter()
        .map(|r| Worker {
            name: r.worker,
            metrics_url: r.metrics_url,
            up_secs: r.up.max(0.0),
            report_age_secs: r.report_age.max(0.0),
        })
        .collect();
    Ok((events, tables, reports, running))
}

/// The shard rows: RabbitMQ's figures with the workers' reports.
pub fn shards(
    figures: Vec<(String, u32, u32)>,
    mut reports: BTreeMap<String, Reports>,
) -> Vec<Shard> {
    figures
        .into_iter()
        .map(|(queue, waiting, consumers)| Shard {
            reports: reports.remove(&queue),
            queue,
            waiting,
            consumers,
        })
        .collect()
}

/// The cluster's nodes and clerk-sync's quorum queues, from the first
/// management API of `management` that answers; the vhost is `amqp`'s.
pub async fn cluster(
    management: &SecretUrl,
    amqp: &SecretUrl,
    prefix: &str,
) -> Result<Cluster, String> {
    let vhost = amqp
        .nodes()
        .first()
        .and_then(|node| node.parsed().ok())
        .map(|url| url.path().trim_start_matches('/').to_owned())
        .filter(|vhost| !vhost.is_empty())
        .unwrap_or_else(|| "%2f".to_owned());
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut reasons = Vec::new();
    for node in management.nodes() {
        let base = node.expose().trim_end_matches('/').to_owned();
        let get = async |path: String| -> Result<serde_json::Value, String> {
            let response = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if !response.status().is_success() {
                return Err(format!("GET {path} answered {}", response.status()));
            }
            response
                .json()
                .await
                .map_err(|e| e.without_url().to_string())
        };
        let answered = async {
            let nodes = get("/api/nodes?columns=name,running".to_owned()).await?;
            let queues = get(format!(
                "/api/queues/{vhost}?columns=name,type,leader,members,online"
            ))
            .await?;
            Ok::<_, String>(cluster::from_api(&nodes, &queues, prefix))
        };
        match answered.await {
            Ok(found) => return Ok(found),
            Err(reason) => reasons.push(format!("{}: {reason}", node.redacted())),
        }
    }
    Err(format!(
        "the management API did not answer ({})",
        reasons.join("; ")
    ))
}
