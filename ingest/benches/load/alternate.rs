//! Phases A and B in alternation: the raw limit and the ingest, closed
//! loop, in [`ROUNDS`] slices each (A, B, A, B, ...), the queues emptied
//! after every slice. A ratio of two phases run one after the other moved
//! with this machine's speed from one quarter minute to the next; slices
//! alternated see the same speed, and their sums are compared.

use crate::phase::{Pool, Probe, Stats, drive, drive_local};
use crate::process::{now, purge};
use crate::{Load, RAW_PER_SECOND, send};
use anyhow::Result;
use clerk_sync_domain::topology::Topology;
use clerk_sync_ingest::{broker::Broker, metrics::Metrics, publisher::Publishers};
use clerk_sync_runtime::settings::AmqpSettings;
use clerk_sync_testkit::http1;
use lapin::Connection;
use std::sync::Arc;

/// Slices of each phase in a full run (a smoke run of 1 s has one).
const ROUNDS: u64 = 5;

/// Where and how phases A and B run.
pub(crate) struct Setup<'a> {
    pub(crate) settings: &'a AmqpSettings,
    pub(crate) admin: &'a Connection,
    pub(crate) topology: &'a Topology,
    pub(crate) load: &'a Arc<Load>,
    /// Connections to the running ingest.
    pub(crate) http: &'a Arc<http1::Client>,
    /// Whose CPU time each phase reports.
    pub(crate) raw_probes: &'a [Probe],
    pub(crate) http_probes: &'a [Probe],
}

/// What A and B measured over all their slices.
pub(crate) struct Compared {
    pub(crate) raw: Stats,
    pub(crate) http: Stats,
    /// Events verified, and requests signed, inside the timed loops.
    pub(crate) inline: (u64, u64),
}

/// A and B for `secs` each, alternated.
pub(crate) async fn raw_and_http(setup: &Setup<'_>, secs: u64) -> Result<Compared> {
    let rounds = ROUNDS.min(secs).max(1);
    let slice = secs / rounds;
    let (mut raw, mut http, mut inline) = (Stats::new()?, Stats::new()?, (0, 0));
    for _ in 0..rounds {
        let (raw_slice, events) = raw_phase(setup, slice).await?;
        purge(setup.admin, setup.topology).await?;
        let load = setup.load;
        let size = (raw_slice.rate() * slice as f64) as u64;
        let requests = Pool::new(size, || load.request(setup.http))?;
        let http_slice = http_phase(setup, slice, None, requests.clone()).await?;
        purge(setup.admin, setup.topology).await?;
        raw.merge(raw_slice)?;
        http.merge(http_slice)?;
        inline = (inline.0 + events, inline.1 + requests.inline());
    }
    Ok(Compared { raw, http, inline })
}

/// One slice of phase A: the library's publisher in this process,
/// confirmed publishes back to back. Its figures, and how many events
/// were verified inline.
async fn raw_phase(setup: &Setup<'_>, secs: u64) -> Result<(Stats, u64)> {
    let load = setup.load;
    let events = Pool::new(secs * RAW_PER_SECOND, || load.event())?;
    let broker = Broker::start(setup.settings, Arc::new(Metrics::new())).await?;
    // The ingest's publisher lives on its thread: driven there.
    let local = tokio::task::LocalSet::new();
    let raw = local
        .run_until(async {
            let publisher = Publishers::new(&broker).on_this_thread();
            broker.opened(1).await;
            let (events, load) = (events.clone(), load.clone());
            drive_local(secs, setup.raw_probes, move || {
                let (event, publisher) = (events.take(|| load.event()), publisher.clone());
                async move {
                    let (verified, summary) = &*event.map_err(|e| format!("{e:#}"))?;
                    let published = publisher.publish(verified, summary, now().as_millis() as u64);
                    published.await.map(drop).map_err(|e| e.to_string())
                }
            })
            .await
        })
        .await;
    broker.close().await;
    Ok((raw?, events.inline()))
}

/// Phases B and C: `requests` POSTed to the ingest, closed loop or paced
/// to `rate`.
pub(crate) async fn http_phase(
    setup: &Setup<'_>,
    secs: u64,
    rate: Option<f64>,
    requests: Arc<Pool<http1::Request>>,
) -> Result<Stats> {
    let (load, http) = (setup.load.clone(), setup.http.clone());
    drive(secs, rate, setup.http_probes, move || {
        let request = requests.take(|| load.request(&http));
        let http = http.clone();
        async move { send(&http, request).await }
    })
    .await
}
