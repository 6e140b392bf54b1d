//! When a failover run ends with 2xx'd events missing from the log: what
//! each part saw of each of them, printed under the verdict, so that one
//! failed run says where the event was lost. Per missing svix-id: every
//! attempt the sender made and what it got, the node the ingest named
//! then, every line of every process's log that names it (the ingest's
//! "event queued" with its queue; a worker's per-event DEBUG line, written
//! only after its batch committed), the log rows of its user, and the
//! lines around it that are not per event (connections lost, batches
//! failed; RabbitMQ's about its queue and partitions). Then RabbitMQ's view
//! of the queues (`broker_view.rs`).

use crate::broker_view;
use crate::cluster::Cluster;
use crate::common::check::Observed;
use crate::history::Sent;
use crate::sender::Outcome;
use clerk_sync_domain::topology::Topology;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Missing svix-ids looked into, at most.
const MOST_IDS: usize = 10;
/// Lines printed per log file and svix-id, at most.
const MOST_LINES: usize = 40;
/// The context printed: from this long before the first answer the sender
/// got (its client waits up to 10 s for one) ...
const BEFORE: Duration = Duration::from_secs(12);
/// ... to this long after the 2xx.
const AFTER: Duration = Duration::from_secs(20);

/// What a run knows that explains a missing event.
pub struct Run<'a> {
    pub cluster: &'a Cluster,
    pub logs: &'a Path,
    pub db: &'a SecretUrl,
    pub topology: &'a Topology,
    pub events: &'a [Sent],
    pub outcomes: &'a [Outcome],
    pub ingest_node: &'a [(Duration, Option<usize>)],
    /// When sending started (the sender's times count from it), in ms
    /// since the Unix epoch.
    pub sending_unix_ms: i64,
}

/// The 2xx'd svix-ids the log does not hold, and those that
/// `FAILOVER_EXPLAIN` names (comma-separated: to see what is printed, or
/// to look into an event that is there).
pub fn missing(accepted: &BTreeSet<String>, observed: &Observed) -> Vec<String> {
    let asked = std::env::var("FAILOVER_EXPLAIN").unwrap_or_default();
    accepted
        .iter()
        .filter(|id| !observed.log.contains_key(*id))
        .cloned()
        .chain(
            asked
                .split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        )
        .collect()
}

/// Print what every part saw of the `missing` svix-ids.
pub async fn explain(run: &Run<'_>, missing: &[String]) {
    if missing.is_empty() {
        return;
    }
    run.cluster.save_logs(run.logs);
    println!(
        "  what was seen of {} missing (or asked for) svix-id(s) (times from the start of sending; logs in {}):",
        missing.len(),
        run.logs.display()
    );
    let files = log_files(run.logs);
    let mut queues = BTreeSet::new();
    for id in missing.iter().take(MOST_IDS) {
        let user = run
            .events
            .iter()
            .find(|e| e.modelled.svix_id == *id)
            .map(|e| e.modelled.user.clone())
            .unwrap_or_default();
        let queue = run.topology.queue_for(&user);
        println!("  {id} (user {user}, queue {queue}):");
        let (first, last) = sender(run, id);
        for file in &files {
            print_lines(file, |line| line.contains(id.as_str()), "names it");
        }
        user_log(run.db, &user).await;
        if let (Some(first), Some(last)) = (first, last) {
            let from = utc(run.sending_unix_ms + millis(first.saturating_sub(BEFORE)));
            let to = utc(run.sending_unix_ms + millis(last + AFTER));
            println!("    around it ({from} to {to}):");
            for file in &files {
                let rabbit = name_of(file).starts_with("rabbitmq-");
                let within = |line: &str| stamp(line).is_some_and(|s| s >= from && s <= to);
                print_lines(
                    file,
                    |line| {
                        within(line)
                            && if rabbit {
                                line.contains(&queue)
                                    || line.contains("partition")
                                    || line.contains("pause")
                            } else {
                                !line.contains("\"level\":\"DEBUG\"")
                            }
                    },
                    "around it",
                );
            }
        }
        queues.insert(queue);
    }
    broker_view::print(run.cluster, run.topology, &queues).await;
}

/// Print each delivery of `id` the sender made: its answers and when, and
/// the node the ingest named at its 2xx. When the first answer and the 2xx came.
fn sender(run: &Run<'_>, id: &str) -> (Option<Duration>, Option<Duration>) {
    let (mut first, mut last) = (None::<Duration>, None::<Duration>);
    for (i, outcome) in run.outcomes.iter().filter(|o| o.svix_id == id).enumerate() {
        let mut answers: Vec<String> = outcome
            .refused
            .iter()
            .zip(&outcome.refused_at)
            .map(|(status, at)| format!("{} at {}", answer(*status), when(run, *at)))
            .collect();
        if let Some(at) = outcome.accepted_at {
            let node = run
                .ingest_node
                .iter()
                .rev()
                .find(|(seen, _)| *seen <= at)
                .and_then(|(_, node)| *node)
                .map_or_else(|| "none".to_owned(), |n| n.to_string());
            answers.push(format!(
                "2xx at {} (the ingest's /readyz named node {node})",
                when(run, at)
            ));
        }
        let times = outcome.refused_at.iter().chain(&outcome.accepted_at);
        for at in times {
            first = Some(first.map_or(*at, |f| f.min(*at)));
            last = Some(last.map_or(*at, |l| l.max(*at)));
        }
        println!("    sender, delivery {}: {}", i + 1, answers.join(", "));
    }
    (first, last)
}

fn answer(status: u16) -> String {
    match status {
        0 => "no answer".to_owned(),
        s => s.to_string(),
    }
}

fn when(run: &Run<'_>, at: Duration) -> String {
    format!(
        "{:.2} s ({})",
        at.as_secs_f64(),
        utc(run.sending_unix_ms + millis(at))
    )
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The run's log files: the ingest's, the workers', RabbitMQ's nodes'.
fn log_files(logs: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn name_of(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Print the lines of `file` that `keep`, at most [`MOST_LINES`].
fn print_lines(file: &Path, keep: impl Fn(&str) -> bool, what: &str) {
    let Ok(bytes) = std::fs::read(file) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    if kept.is_empty() {
        return;
    }
    let name = name_of(file);
    if kept.len() > MOST_LINES {
        println!(
            "      {name}: {} lines {what}, the first {MOST_LINES}:",
            kept.len()
        );
    }
    for line in kept.iter().take(MOST_LINES) {
        println!("      {name}: {line}");
    }
}

/// A log line's time, UTC, as `YYYY-MM-DDTHH:MM:SS.mmm`: a JSON line's
/// `timestamp`, or the start of a RabbitMQ line.
fn stamp(line: &str) -> Option<String> {
    let raw = match line.split_once("\"timestamp\":\"") {
        Some((_, rest)) => rest.get(..23)?.to_owned(),
        None => line.get(..23)?.replacen(' ', "T", 1),
    };
    let digits = |range: std::ops::Range<usize>| {
        raw.get(range)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    (digits(0..4) && raw.get(10..11) == Some("T") && digits(11..13)).then_some(raw)
}

/// `unix_ms` as `YYYY-MM-DDTHH:MM:SS.mmm`, UTC (the civil calendar from days).
fn utc(unix_ms: i64) -> String {
    let (days, ms) = (
        unix_ms.div_euclid(86_400_000),
        unix_ms.rem_euclid(86_400_000),
    );
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The log rows of `user`, in the order they were recorded, and its sync
/// state's version.
async fn user_log(db: &SecretUrl, user: &str) {
    #[derive(diesel::QueryableByName)]
    struct Logged {
        #[diesel(sql_type = Text)]
        svix_id: String,
        #[diesel(sql_type = Text)]
        outcome: String,
        #[diesel(sql_type = Text)]
        at: String,
    }
    let rows: Result<Vec<Logged>, String> = async {
        let mut connection = database::connect(db).await.map_err(|e| format!("{e:#}"))?;
        diesel::sql_query(
            "SELECT svix_id, outcome, to_char(recorded_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') AS at \
             FROM clerk_sync.events WHERE clerk_user_id = $1 \
             UNION ALL SELECT 'sync state: ' || coalesce(version_svix_id, 'none'), \
               CASE WHEN deleted THEN 'deleted' ELSE 'not deleted' END, \
               to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') \
             FROM clerk_sync.users WHERE clerk_user_id = $1 ORDER BY at",
        )
        .bind::<Text, _>(user)
        .load(&mut connection)
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match rows {
        Ok(rows) => {
            let shown: Vec<String> = rows
                .iter()
                .map(|r| format!("{} {} at {}", r.svix_id, r.outcome, r.at))
                .collect();
            println!("    the log of {user}: {}", shown.join("; "));
        }
        Err(e) => println!("    the log of {user}: cannot be read: {e}"),
    }
}
