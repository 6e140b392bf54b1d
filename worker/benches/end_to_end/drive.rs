//! Sending a fixed number of requests from a number of tasks, back to back
//! or paced to a rate, and when each was answered.

use anyhow::Result;
use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Sent {
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Each answer's latency (µs), timed from its slot when paced.
    pub latency: Histogram<u64>,
    /// When each item (by its index) was answered with success.
    pub answered: Vec<(usize, Instant)>,
    /// How far behind its slot a paced request started, at worst.
    pub max_lag: Duration,
}

impl Sent {
    fn new() -> Result<Self> {
        Ok(Self {
            ok: 0,
            failed: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            answered: Vec::new(),
            max_lag: Duration::ZERO,
        })
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        (self.ok, self.failed) = (self.ok + other.ok, self.failed + other.failed);
        self.first_error = self.first_error.take().or(other.first_error);
        self.answered.extend(other.answered);
        self.max_lag = self.max_lag.max(other.max_lag);
        Ok(self.latency.add(&other.latency)?)
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn latencies(&self) -> String {
        let ms = |quantile: f64| self.latency.value_at_quantile(quantile) as f64 / 1e3;
        let max = self.latency.max() as f64 / 1e3;
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {max:.2} ms",
            ms(0.5),
            ms(0.99)
        )
    }

    /// An error naming the first failure, if any request failed.
    pub fn check(&self, what: &str) -> Result<()> {
        match &self.first_error {
            None => Ok(()),
            Some(error) => anyhow::bail!("{what}: {} failed, first: {error}", self.failed),
        }
    }
}

/// Call `op` for items `0..items` from `tasks` tasks: back to back, or with
/// item `i` due at `i / rate` seconds from the start.
pub async fn drive<F, Fut>(items: usize, tasks: usize, rate: Option<f64>, op: F) -> Result<Sent>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|_| tokio::spawn(one_task(start, next.clone(), items, rate, op.clone())))
        .collect();
    total(start, handles).await
}

/// [`drive`] on this thread's task set, for an `op` that stays on its
/// thread (the ingest's publisher).
pub async fn drive_local<F, Fut>(items: usize, tasks: usize, op: F) -> Result<Sent>
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|_| tokio::task::spawn_local(one_task(start, next.clone(), items, None, op.clone())))
        .collect();
    total(start, handles).await
}

async fn total(
    start: Instant,
    handles: Vec<tokio::task::JoinHandle<Result<Sent>>>,
) -> Result<Sent> {
    let mut total = Sent::new()?;
    for handle in handles {
        total.merge(handle.await??)?;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// One of the driving tasks: items taken in turn until none is left.
async fn one_task<F, Fut>(
    start: Instant,
    next: Arc<AtomicUsize>,
    items: usize,
    rate: Option<f64>,
    op: F,
) -> Result<Sent>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut sent = Sent::new()?;
    loop {
        let item = next.fetch_add(1, Relaxed);
        if item >= items {
            break;
        }
        let began = match rate {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(item as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                sent.max_lag = sent.max_lag.max(due.elapsed());
                due
            }
            None => Instant::now(),
        };
        match op(item).await {
            Ok(()) => {
                let now = Instant::now();
                sent.ok += 1;
                sent.answered.push((item, now));
                let micros = now.duration_since(began).as_micros();
                sent.latency.saturating_record(micros as u64);
            }
            Err(error) => {
                sent.failed += 1;
                sent.first_error.get_or_insert(error);
            }
        }
    }
    Ok(sent)
}
