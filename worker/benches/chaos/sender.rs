//! Sending as Svix does: signed with the current time on every attempt,
//! and retried until a 2xx (with shorter back-off than Svix's: 250 ms
//! doubling to 4 s), recording what each attempt got.

use super::history::Sent;
use clerk_sync_domain::backoff::Backoff;
use clerk_sync_testkit::webhook;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Requests in flight at once (each keeps its place while it retries).
const IN_FLIGHT: usize = 32;

#[derive(Debug)]
pub struct Outcome {
    pub svix_id: String,
    pub accepted: bool,
    /// The status of every refused attempt (0: no answer at all).
    pub refused: Vec<u16>,
    /// When each refused attempt was answered, from the start of sending
    /// (the failover benchmark reads these; chaos does not).
    #[allow(dead_code)]
    pub refused_at: Vec<Duration>,
    /// When the 2xx came, from the start of sending.
    #[allow(dead_code)]
    pub accepted_at: Option<Duration>,
}

/// Each delivery starts at its slot of the `send_for` period; at most
/// `IN_FLIGHT` are under way. A delivery is given up after `give_up_after`.
pub async fn send_all(
    client: &reqwest::Client,
    url: &str,
    deliveries: &[&Sent],
    send_for: Duration,
    give_up_after: Duration,
) -> Vec<Outcome> {
    let start = tokio::time::Instant::now();
    let spacing = send_for / deliveries.len().max(1) as u32;
    futures::stream::iter(deliveries.iter().enumerate())
        .map(|(i, event)| async move {
            tokio::time::sleep_until(start + spacing * i as u32).await;
            deliver(client, url, event, give_up_after, start.into_std()).await
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

async fn deliver(
    client: &reqwest::Client,
    url: &str,
    event: &Sent,
    give_up_after: Duration,
    sending: Instant,
) -> Outcome {
    let started = Instant::now();
    let svix_id = &event.modelled.svix_id;
    let mut refused = Vec::new();
    let mut refused_at = Vec::new();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
    loop {
        let status = post(client, url, svix_id, &event.body).await;
        if (200..300).contains(&status) {
            return Outcome {
                svix_id: svix_id.clone(),
                accepted: true,
                refused,
                refused_at,
                accepted_at: Some(sending.elapsed()),
            };
        }
        refused.push(status);
        refused_at.push(sending.elapsed());
        if started.elapsed() > give_up_after {
            return Outcome {
                svix_id: svix_id.clone(),
                accepted: false,
                refused,
                refused_at,
                accepted_at: None,
            };
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Sign (with the current time, as each Svix attempt is) and post.
async fn post(client: &reqwest::Client, url: &str, svix_id: &str, body: &[u8]) -> u16 {
    webhook::post(client, url, crate::SECRET, svix_id, body).await
}

/// "1075 deliveries in 6.0 s: 1070 2xx'd at once, 5 after retries (9 retries: 503 x9), 0 given up".
pub fn summary(outcomes: &[Outcome], took: Duration) -> String {
    let at_once = outcomes
        .iter()
        .filter(|o| o.accepted && o.refused.is_empty())
        .count();
    let after_retries = outcomes
        .iter()
        .filter(|o| o.accepted && !o.refused.is_empty())
        .count();
    let given_up = outcomes.iter().filter(|o| !o.accepted).count();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for status in outcomes.iter().flat_map(|o| &o.refused) {
        *by_status.entry(*status).or_default() += 1;
    }
    let refused: Vec<String> = by_status
        .iter()
        .map(|(status, n)| match status {
            0 => format!("no answer x{n}"),
            s => format!("{s} x{n}"),
        })
        .collect();
    format!(
        "{} deliveries in {:.1} s: {at_once} 2xx'd at once, {after_retries} after retries \
         ({} retries{}{}), {given_up} given up",
        outcomes.len(),
        took.as_secs_f64(),
        by_status.values().sum::<usize>(),
        if refused.is_empty() { "" } else { ": " },
        refused.join(", ")
    )
}
