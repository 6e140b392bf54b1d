//! What `status` found, the thresholds it checks, and how it prints them.
//! Pure: the figures come from `gather`.

use super::cluster::Cluster;
use super::workers::{self, Worker};
use crate::{age, table};
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_store::settings::StatusSettings;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub shards: Vec<Shard>,
    /// The workers that reported recently.
    pub workers: Vec<Worker>,
    /// RabbitMQ's version, or why it could not be read.
    pub rabbitmq_version: Result<String, String>,
    /// The cluster's nodes and queue replicas, or why they could not be
    /// read; None when `status.management_url` is not set.
    pub cluster: Option<Result<Cluster, String>>,
    pub dead_letters: DeadLetters,
    pub events: EventLog,
    pub tables: Tables,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub queue: String,
    /// Messages waiting (ready) in RabbitMQ.
    pub waiting: u32,
    pub consumers: u32,
    /// What the workers' recent reports say, if any reported.
    pub reports: Option<Reports>,
}

/// The workers' recent reports about one shard queue, combined.
#[derive(Debug, Clone, PartialEq)]
pub struct Reports {
    /// Age of the oldest message any worker holds, if one holds any.
    pub oldest_held_age_secs: Option<f64>,
    /// Messages the workers hold (taken, not yet settled).
    pub held: i64,
    /// Age of the newest report.
    pub newest_report_age_secs: f64,
}

/// The age of a shard queue's oldest message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Oldest {
    /// The queue is empty and no worker holds any of its messages.
    Nothing,
    /// Seconds since the ingest accepted the oldest message a worker holds.
    Age(f64),
    /// Messages wait but no recent report says how old they are: no worker
    /// has taken them yet (or none is running, or none could report).
    Unknown,
}

impl Shard {
    pub fn oldest(&self) -> Oldest {
        match (&self.reports, self.waiting) {
            (
                Some(Reports {
                    oldest_held_age_secs: Some(age),
                    ..
                }),
                _,
            ) => Oldest::Age(*age),
            (_, 0) => Oldest::Nothing,
            _ => Oldest::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetters {
    pub queue: String,
    pub depth: u32,
    /// Age (since the ingest accepted it) of the oldest dead letter.
    pub oldest_age_secs: Option<f64>,
    /// False when there were too many dead letters to read their ages.
    pub read: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventLog {
    pub by_outcome: BTreeMap<String, i64>,
    /// Seconds since the newest row was recorded (`recorded_at`).
    pub newest_age_secs: Option<f64>,
}

impl EventLog {
    pub fn count(&self, outcome: &str) -> i64 {
        self.by_outcome.get(outcome).copied().unwrap_or(0)
    }

    pub fn total(&self) -> i64 {
        self.by_outcome.values().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tables {
    /// Users clerk-sync knows (`clerk_sync.users`), deleted ones included.
    pub users: i64,
    /// Of those, deleted (the tombstones).
    pub tombstones: i64,
    pub students: i64,
    pub instructors: i64,
}

/// A threshold crossed.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossed {
    /// The setting's name in `[status]`.
    pub threshold: &'static str,
    pub limit: u64,
    /// What crossed it (a queue, the event log).
    pub subject: String,
    pub message: String,
}

/// Every threshold `report` crosses. An unset threshold is not checked; a
/// quorum queue without a majority (`quorum_majority`) always is.
pub fn check(report: &Report, limits: &StatusSettings) -> Vec<Crossed> {
    let mut crossed = Vec::new();
    if let Some(Ok(cluster)) = &report.cluster {
        for queue in cluster.without_majority() {
            crossed.push(Crossed {
                threshold: "quorum_majority",
                limit: queue.majority() as u64,
                subject: queue.queue.clone(),
                message: format!(
                    "{}: only {} of {} members online, fewer than a majority: it accepts and delivers nothing",
                    queue.queue,
                    queue.online.len(),
                    queue.members.len()
                ),
            });
        }
    }
    for shard in &report.shards {
        if let Some(max) = limits.max_shard_depth
            && u64::from(shard.waiting) > max
        {
            crossed.push(Crossed {
                threshold: "max_shard_depth",
                limit: max,
                subject: shard.queue.clone(),
                message: format!(
                    "{}: {} messages waiting (max_shard_depth {max})",
                    shard.queue, shard.waiting
                ),
            });
        }
        if let Some(max) = limits.max_oldest_message_age_secs {
            let message = match shard.oldest() {
                Oldest::Age(age) if age > max as f64 => Some(format!(
                    "{}: oldest message {} old (max_oldest_message_age_secs {max})",
                    shard.queue,
                    age::human(age)
                )),
                // Nobody takes them: they can only get older.
                Oldest::Unknown if shard.consumers == 0 => Some(format!(
                    "{}: {} messages waiting with no consumer, age unknown (max_oldest_message_age_secs {max})",
                    shard.queue, shard.waiting
                )),
                _ => None,
            };
            if let Some(message) = message {
                crossed.push(Crossed {
                    threshold: "max_oldest_message_age_secs",
                    limit: max,
                    subject: shard.queue.clone(),
                    message,
                });
            }
        }
    }
    if let Some(max) = limits.max_dead_letters
        && u64::from(report.dead_letters.depth) > max
    {
        crossed.push(Crossed {
            threshold: "max_dead_letters",
            limit: max,
            subject: report.dead_letters.queue.clone(),
            message: format!(
                "{}: {} dead letters (max_dead_letters {max})",
                report.dead_letters.queue, report.dead_letters.depth
            ),
        });
    }
    if let Some(max) = limits.max_newest_event_age_secs
        && let Some(age) = report.events.newest_age_secs
        && age > max as f64
    {
        crossed.push(Crossed {
            threshold: "max_newest_event_age_secs",
            limit: max,
            subject: "clerk_sync.events".to_owned(),
            message: format!(
                "clerk_sync.events: newest event recorded {} ago (max_newest_event_age_secs {max})",
                age::human(age)
            ),
        });
    }
    crossed
}

/// The human summary.
pub fn text(report: &Report, crossed: &[Crossed]) -> String {
    let rows: Vec<Vec<String>> = report
        .shards
        .iter()
        .map(|shard| {
            let oldest = match shard.oldest() {
                Oldest::Nothing => "-".to_owned(),
                Oldest::Age(age) => age::human(age),
                Oldest::Unknown if shard.consumers == 0 => "unknown (no consumer)".to_owned(),
                Oldest::Unknown => "unknown (not reported yet)".to_owned(),
            };
            vec![
                shard.queue.clone(),
                shard.waiting.to_string(),
                shard.consumers.to_string(),
                shard
                    .reports
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |r| r.held.to_string()),
                oldest,
            ]
        })
        .collect();
    let mut lines = vec![table::render(
        &["SHARD QUEUE", "WAITING", "CONSUMERS", "HELD", "OLDEST"],
        &rows,
    )];
    lines.push(String::new());
    lines.push(workers::text(&report.workers));
    lines.push(String::new());
    match &report.cluster {
        Some(Ok(cluster)) => {
            let rows: Vec<Vec<String>> = cluster
                .nodes
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        if n.running { "yes" } else { "NO" }.to_owned(),
                        n.leaders.to_string(),
                        n.members.to_string(),
                    ]
                })
                .collect();
            lines.push(table::render(
                &["RABBITMQ NODE", "RUNNING", "LEADERS", "MEMBERS"],
                &rows,
            ));
            lines.extend(cluster.degraded());
            lines.push(String::new());
        }
        Some(Err(reason)) => lines.push(format!("rabbitmq nodes: unknown ({reason})")),
        None => {}
    }
    lines.push(match &report.rabbitmq_version {
        Ok(version) => format!("rabbitmq:     {version}"),
        Err(reason) => format!("rabbitmq:     version unknown ({reason})"),
    });
    let dead = &report.dead_letters;
    lines.push(match dead.oldest_age_secs {
        Some(age) => format!(
            "dead letters: {} in {} (oldest received {} ago)",
            dead.depth,
            dead.queue,
            age::human(age)
        ),
        None if !dead.read => format!(
            "dead letters: {} in {} (too many to read their ages)",
            dead.depth, dead.queue
        ),
        None => format!("dead letters: {} in {}", dead.depth, dead.queue),
    });
    let events = &report.events;
    // Every outcome, always.
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .map(|o| format!("{o} {}", events.count(o.as_str())))
        .collect();
    lines.push(format!(
        "event log:    {} events ({}), {}",
        events.total(),
        counts.join(", "),
        match events.newest_age_secs {
            Some(age) => format!("newest recorded {} ago", age::human(age)),
            None => "none recorded yet".to_owned(),
        }
    ));
    let t = report.tables;
    lines.push(format!(
        "tables:       users {} (tombstones {}), Student {}, Instructor {}",
        t.users, t.tombstones, t.students, t.instructors
    ));
    lines.push(String::new());
    if crossed.is_empty() {
        lines.push("thresholds: none crossed".to_owned());
    } else {
        for c in crossed {
            lines.push(format!("THRESHOLD CROSSED: {}", c.message));
        }
    }
    lines.join("\n")
}

/// The `--json` document.
pub fn json(report: &Report, crossed: &[Crossed], limits: &StatusSettings) -> Value {
    let shards: Vec<Value> = report
        .shards
        .iter()
        .map(|shard| {
            let (kind, age) = match shard.oldest() {
                Oldest::Nothing => ("none", None),
                Oldest::Age(age) => ("reported", Some(age)),
                Oldest::Unknown => ("unknown", None),
            };
            json!({
                "queue": shard.queue,
                "waiting": shard.waiting,
                "consumers": shard.consumers,
                "held": shard.reports.as_ref().map(|r| r.held),
                "oldest_message": kind,
                "oldest_message_age_secs": age,
                "newest_report_age_secs": shard.reports.as_ref().map(|r| r.newest_report_age_secs),
            })
        })
        .collect();
    let by_outcome: serde_json::Map<String, Value> = Outcome::ALL
        .iter()
        .map(|o| {
            (
                o.as_str().to_owned(),
                json!(report.events.count(o.as_str())),
            )
        })
        .collect();
    json!({
        "ok": crossed.is_empty(),
        "shards": shards,
        "workers": workers::json(&report.workers),
        "rabbitmq_version": report.rabbitmq_version.as_ref().ok(),
        "cluster": match &report.cluster {
            Some(Ok(cluster)) => cluster.json(),
            Some(Err(reason)) => json!({ "error": reason }),
            None => Value::Null,
        },
        "dead_letters": {
            "queue": report.dead_letters.queue,
            "depth": report.dead_letters.depth,
            "oldest_age_secs": report.dead_letters.oldest_age_secs,
            "ages_read": report.dead_letters.read,
        },
        "events": {
            "total": report.events.total(),
            "by_outcome": by_outcome,
            "newest_recorded_age_secs": report.events.newest_age_secs,
        },
        "tables": {
            "users": report.tables.users,
            "tombstones": report.tables.tombstones,
            "students": report.tables.students,
            "instructors": report.tables.instructors,
        },
        "thresholds": {
            "max_shard_depth": limits.max_shard_depth,
            "max_oldest_message_age_secs": limits.max_oldest_message_age_secs,
            "max_dead_letters": limits.max_dead_letters,
            "max_newest_event_age_secs": limits.max_newest_event_age_secs,
        },
        "crossed": crossed.iter().map(|c| json!({
            "threshold": c.threshold,
            "limit": c.limit,
            "subject": c.subject,
            "message": c.message,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
