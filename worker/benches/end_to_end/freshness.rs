//! Freshness as the app sees it: from the ingest's 2xx to the commit, which
//! PostgreSQL tells a listener of the worker's `NOTIFY clerk_sync_user,
//! '<user id>'` (sent once per changed user and batch, delivered at commit).

use anyhow::{Context, Result};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::{database, users::NOTIFY_CHANNEL};
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every notification heard, with when, until [`Listener::finish`].
pub struct Listener {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Vec<(String, Instant)>>>,
}

impl Listener {
    pub async fn start(db: &SecretUrl) -> Result<Self> {
        let mut connection = database::connect(db).await?;
        diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}"))
            .execute(&mut connection)
            .await
            .context("LISTEN")?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut heard = Vec::new();
            let mut notifications = std::pin::pin!(connection.notifications_stream());
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(heard),
                    notification = notifications.next() => match notification {
                        Some(notification) => heard.push((notification?.payload, Instant::now())),
                        None => return Ok(heard),
                    },
                }
            }
        });
        Ok(Self { stop, task })
    }

    pub async fn finish(self) -> Result<Vec<(String, Instant)>> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Freshness of each accepted event (µs; 0 when its commit was heard before
/// its 2xx reached the client), matching each user's accepted events in
/// order with the notifications for that user in order: right while a
/// user's events are further apart than the freshness itself.
#[derive(Debug)]
pub struct Freshness {
    pub micros: Histogram<u64>,
    /// Committed before the client had its 2xx.
    pub before_answer: u64,
    /// Accepted events no notification was heard for.
    pub unheard: u64,
}

pub fn measure(accepted: &[(String, Instant)], heard: &[(String, Instant)]) -> Result<Freshness> {
    let mut by_user: BTreeMap<&str, VecDeque<Instant>> = BTreeMap::new();
    for (user, at) in heard {
        by_user.entry(user).or_default().push_back(*at);
    }
    let mut accepted: Vec<_> = accepted.iter().collect();
    accepted.sort_by_key(|(_, at)| *at);
    let mut freshness = Freshness {
        micros: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        before_answer: 0,
        unheard: 0,
    };
    for (user, answered) in accepted {
        match by_user.get_mut(user.as_str()).and_then(VecDeque::pop_front) {
            None => freshness.unheard += 1,
            Some(committed) => {
                if committed < *answered {
                    freshness.before_answer += 1;
                }
                let micros = committed.saturating_duration_since(*answered).as_micros();
                freshness.micros.saturating_record(micros as u64);
            }
        }
    }
    Ok(freshness)
}

impl Freshness {
    pub fn ms(&self, quantile: f64) -> f64 {
        self.micros.value_at_quantile(quantile) as f64 / 1e3
    }

    pub fn report(&self) -> String {
        format!(
            "freshness (2xx -> commit heard): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} events ({} committed before the 2xx arrived, {} not heard)",
            self.ms(0.5),
            self.ms(0.99),
            self.micros.max() as f64 / 1e3,
            self.micros.len(),
            self.before_answer,
            self.unheard
        )
    }
}
