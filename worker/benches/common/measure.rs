//! What a benchmark measures beside its rate: CPU time per event of each
//! party, and peak resident memory.

use clerk_sync_testkit::cpu::{cpu_time, cpu_time_of_named, rabbitmq_pid};
use std::time::Duration;

/// CPU time so far of: the given processes together, PostgreSQL, RabbitMQ,
/// and the whole machine.
pub fn cpu_snapshot(pids: &[u32]) -> [Duration; 4] {
    let ours = pids.iter().filter_map(|pid| cpu_time(Some(*pid))).sum();
    let rabbitmq = rabbitmq_pid(super::AMQP_URL)
        .and_then(|pid| cpu_time(Some(pid)))
        .unwrap_or_default();
    let machine = cpu_time(None).unwrap_or_default();
    [ours, cpu_time_of_named("postgres"), rabbitmq, machine]
}

/// "CPU µs per event: <who> a, postgres b, rabbitmq c (n% of 2 cores busy)".
pub fn cpu_report(
    who: &str,
    before: [Duration; 4],
    after: [Duration; 4],
    events: f64,
    seconds: f64,
) -> String {
    let per_event = |i: usize| after[i].saturating_sub(before[i]).as_secs_f64() * 1e6 / events;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let busy = 100.0 * after[3].saturating_sub(before[3]).as_secs_f64() / (seconds * cores);
    format!(
        "CPU µs per event: {who} {:.0}, postgres {:.0}, rabbitmq {:.0} ({busy:.0}% of {cores} cores busy)",
        per_event(0),
        per_event(1),
        per_event(2)
    )
}

/// Wait until the machine is quiet (under 15% of its cores busy over half
/// a second), for at most 30 s: how long it took.
pub async fn machine_quiet() -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    settle(None, 0.15 * cores, Duration::from_millis(500)).await
}

/// Wait until RabbitMQ is quiet (under 5% of a core over a fifth of a
/// second), for at most 30 s: after a large publish it goes on writing
/// for seconds, which a measure of PostgreSQL's limit must not pay for.
pub async fn rabbitmq_quiet() {
    if let Some(pid) = rabbitmq_pid(super::AMQP_URL) {
        settle(Some(pid), 0.05, Duration::from_millis(200)).await;
    }
}

/// Wait until `who` (a process; the whole machine for `None`) used less
/// than `cores` of CPU over one `window`, for at most 30 s.
async fn settle(who: Option<u32>, cores: f64, window: Duration) -> Duration {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let before = cpu_time(who).unwrap_or_default();
        tokio::time::sleep(window).await;
        let used = cpu_time(who).unwrap_or_default().saturating_sub(before);
        if used.as_secs_f64() < cores * window.as_secs_f64() {
            break;
        }
    }
    started.elapsed()
}

/// VmHWM (peak resident set) of a process, MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
