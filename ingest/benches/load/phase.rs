//! One timed phase of the load: items made ahead (`Pool`), the requests
//! driven at a concurrency or a rate (`drive`), and what was measured
//! (`Stats`).

use crate::CONCURRENCY;
use anyhow::Result;
use clerk_sync_testkit::cpu::cpu_time;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A process whose CPU time a phase reports: its name and pid, if found.
pub(crate) type Probe = Option<(&'static str, u32)>;

/// Items made before a timed phase so that the load generator's CPU goes to
/// the load itself; once they run out, made inline (and counted).
#[derive(Debug)]
pub(crate) struct Pool<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next: AtomicU64,
    pub(crate) inline: AtomicU64,
}

impl<T: Clone> Pool<T> {
    pub(crate) fn new(size: u64, make: impl Fn() -> Result<T>) -> Result<Arc<Self>> {
        let items = (0..size).map(|_| make()).collect::<Result<_>>()?;
        let (next, inline) = (AtomicU64::new(0), AtomicU64::new(0));
        Ok(Arc::new(Self {
            items,
            next,
            inline,
        }))
    }

    pub(crate) fn take(&self, make: impl FnOnce() -> Result<T>) -> Result<T> {
        let Some(item) = self.items.get(self.next.fetch_add(1, Relaxed) as usize) else {
            self.inline.fetch_add(1, Relaxed);
            return make();
        };
        Ok(item.clone())
    }

    pub(crate) fn inline(&self) -> u64 {
        self.inline.load(Relaxed)
    }
}

/// Counts, latencies (µs) and CPU use of one phase.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) latency: Histogram<u64>,
    pub(crate) elapsed: Duration,
    pub(crate) max_lag: Duration,
    /// CPU time of each measured process, then of the whole machine.
    pub(crate) cpu: Vec<(&'static str, Duration)>,
}

impl Stats {
    pub(crate) fn new() -> Result<Self> {
        let latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        let (elapsed, max_lag) = (Duration::ZERO, Duration::ZERO);
        let (ok, failed, first_error, cpu) = (0, 0, None, Vec::new());
        Ok(Self {
            ok,
            failed,
            first_error,
            latency,
            elapsed,
            max_lag,
            cpu,
        })
    }

    /// Add `other`'s counts, latencies, time and CPU time to these.
    pub(crate) fn merge(&mut self, other: Self) -> Result<()> {
        (self.ok, self.failed) = (self.ok + other.ok, self.failed + other.failed);
        self.elapsed += other.elapsed;
        for (who, cpu) in other.cpu {
            match self.cpu.iter_mut().find(|(name, _)| *name == who) {
                Some((_, total)) => *total += cpu,
                None => self.cpu.push((who, cpu)),
            }
        }
        self.first_error = self.first_error.take().or(other.first_error);
        self.max_lag = self.max_lag.max(other.max_lag);
        Ok(self.latency.add(&other.latency)?)
    }

    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The CPU time per event of the process `who`, in µs (0 if not probed).
    pub(crate) fn cpu_per_event(&self, who: &str) -> f64 {
        let cpu = self.cpu.iter().find(|(name, _)| *name == who);
        cpu.map_or(0.0, |(_, cpu)| self.micros_per_event(*cpu))
    }

    /// `cpu` spread over the events that succeeded, in µs.
    fn micros_per_event(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    pub(crate) fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1e3
    }

    pub(crate) fn latencies(&self) -> String {
        let (p50, p99, max) = (self.ms(0.5), self.ms(0.99), self.latency.max() as f64 / 1e3);
        format!("p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms")
    }

    /// Counts, rate, latencies, and CPU time per event of each process and
    /// of the rest of the machine (the kernel, and any other load).
    pub(crate) fn report(&self) -> String {
        let ((_, machine), processes) = self
            .cpu
            .split_last()
            .unwrap_or((&("", Duration::ZERO), &[]));
        let ours: Duration = processes.iter().map(|(_, cpu)| *cpu).sum();
        let other = self.micros_per_event(machine.saturating_sub(ours));
        let cpu: Vec<_> = processes
            .iter()
            .map(|(who, cpu)| format!("{who} {:.0}", self.micros_per_event(*cpu)))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = 100.0 * machine.as_secs_f64() / self.elapsed.as_secs_f64() / cores as f64;
        let (ok, failed, rate, cpu) = (self.ok, self.failed, self.rate(), cpu.join(", "));
        format!(
            "{ok} ok, {failed} failed, {rate:.0}/s, {}\n    CPU µs per event: {cpu}, \
             other {other:.0} ({busy:.0}% of {cores} cores busy)",
            self.latencies()
        )
    }
}

/// Run `op` from [`CONCURRENCY`] tasks for `secs`, back to back, or paced to
/// `rate` per second overall: each call takes the next slot of a shared
/// schedule, sleeps until it and is timed from it. Also measures the CPU
/// time of the `probes` processes and of the whole machine meanwhile.
pub(crate) async fn drive<F, Fut>(
    secs: u64,
    rate: Option<f64>,
    probes: &[Probe],
    op: F,
) -> Result<Stats>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    measured(secs, probes, |start, deadline, slots| {
        tokio::spawn(one_worker(start, deadline, slots, rate, op.clone()))
    })
    .await
}

/// [`drive`], closed loop, on this thread's task set: for an `op` that
/// stays on its thread (the ingest's publisher).
pub(crate) async fn drive_local<F, Fut>(secs: u64, probes: &[Probe], op: F) -> Result<Stats>
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    measured(secs, probes, |start, deadline, slots| {
        tokio::task::spawn_local(one_worker(start, deadline, slots, None, op.clone()))
    })
    .await
}

/// Run [`CONCURRENCY`] workers made by `spawn`; their stats, with the
/// CPU time the probes used meanwhile.
async fn measured(
    secs: u64,
    probes: &[Probe],
    spawn: impl Fn(Instant, Instant, Arc<AtomicU64>) -> tokio::task::JoinHandle<Result<Stats>>,
) -> Result<Stats> {
    let probes: Vec<_> = probes
        .iter()
        .flatten()
        .map(|&(who, pid)| (who, Some(pid)))
        .collect();
    let probes: Vec<_> = probes.into_iter().chain([("machine", None)]).collect();
    let cpu_before: Vec<_> = probes.iter().map(|&(_, pid)| cpu_time(pid)).collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let slots = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| spawn(start, deadline, slots.clone()))
        .collect();
    let mut total = Stats::new()?;
    for worker in workers {
        total.merge(worker.await??)?;
    }
    total.elapsed = start.elapsed();
    for ((who, pid), before) in probes.into_iter().zip(cpu_before) {
        let used = cpu_time(pid)
            .zip(before)
            .map(|(after, before)| after.saturating_sub(before));
        total.cpu.push((who, used.unwrap_or_default()));
    }
    Ok(total)
}

/// One load worker: `op` until the deadline, back to back or at `rate`.
async fn one_worker<F, Fut>(
    start: Instant,
    deadline: Instant,
    slots: Arc<AtomicU64>,
    rate: Option<f64>,
    op: F,
) -> Result<Stats>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut stats = Stats::new()?;
    loop {
        let began = match rate {
            Some(rate) => {
                let slot = slots.fetch_add(1, Relaxed) as f64 / rate;
                let at = start + Duration::from_secs_f64(slot);
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                stats.max_lag = stats.max_lag.max(at.elapsed());
                at
            }
            None if Instant::now() >= deadline => break,
            None => Instant::now(),
        };
        match op().await {
            Ok(()) => stats.ok += 1,
            Err(error) => {
                stats.failed += 1;
                stats.first_error.get_or_insert(error);
                continue;
            }
        }
        stats
            .latency
            .saturating_record(began.elapsed().as_micros() as u64);
    }
    Ok(stats)
}
