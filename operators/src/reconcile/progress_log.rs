//! How far a `reconcile` run is, logged every [`PROGRESS_EVERY`] for
//! those who read its log rather than its bar (a CronJob): users done,
//! users per second, time left.

use std::time::{Duration, Instant};

/// How often progress is logged (the bar, on a terminal, moves with each
/// page).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How far the list is, for the log.
#[derive(Debug)]
pub struct Progress {
    pub started: Instant,
    logged: Instant,
    /// Users checked by this process.
    pub checked: u64,
    /// Where in the list this process started.
    pub from: u64,
    pub total: Option<u64>,
}

impl Progress {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            logged: now,
            checked: 0,
            from: 0,
            total: None,
        }
    }

    /// Log where the run stands, at most every [`PROGRESS_EVERY`].
    pub fn log(&mut self) {
        if self.logged.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.logged = Instant::now();
        let per_second = self.checked as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let at = self.from + self.checked;
        let left_secs = self
            .total
            .filter(|_| per_second > 0.0)
            .map(|total| (total.saturating_sub(at) as f64 / per_second).round() as u64);
        tracing::info!(
            users = at,
            total = self.total,
            users_per_second = per_second.round() as u64,
            left_secs,
            "reconcile: {at} of {} users, {per_second:.0}/s, {} left",
            self.total.map_or("?".to_owned(), |t| t.to_string()),
            left_secs.map_or("an unknown time".to_owned(), |s| format!(
                "about {} min",
                s.div_ceil(60)
            ))
        );
    }
}
