//! Whose CPU time the benchmark reports per event: the load generator
//! (this process), the ingest, the worker, RabbitMQ, PostgreSQL, and the
//! rest of the machine (the kernel's network and disk work, anything else).

use clerk_sync_testkit::cpu::{cpu_time, cpu_time_by_thread, cpu_time_of_named, system_time};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Parts {
    pub ingest: u32,
    pub worker: u32,
    pub rabbitmq: Option<u32>,
}

/// CPU time so far of: the load generator, the ingest, the worker,
/// RabbitMQ, PostgreSQL (every `postgres` process), the whole machine;
/// the kernel's part of the ingest's, the worker's and RabbitMQ's; and the
/// ingest's by thread name.
#[derive(Debug, Clone)]
pub struct Cpu([Duration; 6], Duration, BTreeMap<String, Duration>);

impl Parts {
    pub fn snapshot(&self) -> Cpu {
        let of = |pid: Option<u32>| pid.and_then(|pid| cpu_time(Some(pid))).unwrap_or_default();
        Cpu(
            [
                of(Some(std::process::id())),
                of(Some(self.ingest)),
                of(Some(self.worker)),
                of(self.rabbitmq),
                cpu_time_of_named("postgres"),
                cpu_time(None).unwrap_or_default(),
            ],
            [Some(self.ingest), Some(self.worker), self.rabbitmq]
                .into_iter()
                .flatten()
                .filter_map(system_time)
                .sum(),
            cpu_time_by_thread(self.ingest),
        )
    }
}

/// What `Cpu::per_event` found, in µs per event.
#[derive(Debug)]
pub struct PerEvent {
    pub generator: f64,
    pub ingest: f64,
    pub worker: f64,
    pub rabbitmq: f64,
    pub postgres: f64,
    pub other: f64,
    /// Share of the machine's cores busy meanwhile, %.
    pub busy: f64,
    /// Share of the ingest's, the worker's and RabbitMQ's CPU spent in the
    /// kernel (system calls: sockets, wake-ups, fsync), %.
    pub kernel: f64,
    /// Share of the ingest's CPU by thread name, %, the largest first.
    pub ingest_threads: Vec<(String, f64)>,
}

impl PerEvent {
    /// The ingest, the worker, RabbitMQ and PostgreSQL together.
    pub fn system(&self) -> f64 {
        self.ingest + self.worker + self.rabbitmq + self.postgres
    }

    pub fn report(&self, rabbitmq_found: bool) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rabbitmq = if rabbitmq_found {
            format!("{:.0}", self.rabbitmq)
        } else {
            "not found (in other)".to_owned()
        };
        format!(
            "CPU µs per event: ingest {:.0} + worker {:.0} + rabbitmq {rabbitmq} + postgres {:.0} = {:.0}; load generator {:.0}, other {:.0} ({:.0}% of {cores} cores busy; {:.0}% of the ingest's, worker's and RabbitMQ's in the kernel)",
            self.ingest,
            self.worker,
            self.postgres,
            self.system(),
            self.generator,
            self.other,
            self.busy,
            self.kernel
        )
    }

    /// Where the ingest's CPU went, by thread: e.g. `actix-server wo` (the
    /// HTTP workers), `lapin-io-loop` (lapin's I/O thread), and the main
    /// thread (its runtime, which serves lapin's socket), named after the
    /// executable.
    pub fn ingest_threads_report(&self) -> String {
        let shares: Vec<String> = self
            .ingest_threads
            .iter()
            .filter(|(_, share)| *share >= 0.5)
            .map(|(name, share)| format!("{name} {share:.0}%"))
            .collect();
        format!("the ingest's CPU by thread: {}", shares.join(", "))
    }
}

impl Cpu {
    /// Per event of `events` over `seconds`, since `before`.
    pub fn per_event(&self, before: &Cpu, events: u64, seconds: f64) -> PerEvent {
        let used: Vec<f64> = self
            .0
            .iter()
            .zip(before.0)
            .map(|(after, before)| after.saturating_sub(before).as_secs_f64() * 1e6)
            .collect();
        let per = |micros: f64| micros / events.max(1) as f64;
        let parts: f64 = used[..5].iter().sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        PerEvent {
            generator: per(used[0]),
            ingest: per(used[1]),
            worker: per(used[2]),
            rabbitmq: per(used[3]),
            postgres: per(used[4]),
            other: per((used[5] - parts).max(0.0)),
            busy: used[5] / 1e6 / (seconds.max(1e-9) * cores) * 100.0,
            kernel: 100.0 * self.1.saturating_sub(before.1).as_secs_f64() * 1e6
                / (used[1] + used[2] + used[3]).max(1.0),
            ingest_threads: shares_since(&self.2, &before.2),
        }
    }
}

/// Each name's share of the time used between `before` and `after`, %,
/// the largest first.
fn shares_since(
    after: &BTreeMap<String, Duration>,
    before: &BTreeMap<String, Duration>,
) -> Vec<(String, f64)> {
    let used: Vec<(String, f64)> = after
        .iter()
        .map(|(name, time)| {
            let earlier = before.get(name).copied().unwrap_or_default();
            (name.clone(), time.saturating_sub(earlier).as_secs_f64())
        })
        .collect();
    let total: f64 = used.iter().map(|(_, time)| time).sum();
    let mut shares: Vec<_> = used
        .into_iter()
        .map(|(name, time)| (name, 100.0 * time / total.max(1e-9)))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    shares
}
