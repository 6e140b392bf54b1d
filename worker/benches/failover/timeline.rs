//! What a fault did to the flow: whether the ingest moved to another node
//! and how long until a 2xx came through it, the refusals (503s) it caused
//! and until when, and events per second accepted (2xx'd by the ingest) and
//! applied (committed by a worker) before, during and after. Times are from
//! the start of sending.

use std::time::Duration;

/// How long "before" and "after" a fault are.
const WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Fault {
    pub what: String,
    /// The node it hit (1-3).
    pub node: usize,
    pub at: Duration,
    /// When the node was back (or the fault otherwise over).
    pub back: Duration,
}

/// When things happened during a run.
#[derive(Debug, Default)]
pub struct Flow {
    pub accepted: Vec<Duration>,
    pub refused: Vec<Duration>,
    pub applied: Vec<Duration>,
    /// The node the ingest's `/readyz` named, polled (None: not ready).
    pub ingest_node: Vec<(Duration, Option<usize>)>,
}

fn rate(times: &[Duration], from: Duration, to: Duration) -> f64 {
    let seconds = to.saturating_sub(from).as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    let n = times.iter().filter(|&&t| t >= from && t < to).count();
    n as f64 / seconds
}

impl Flow {
    /// How the ingest fared: the node it used when the fault began, and
    /// when it first named another (and the first 2xx after that).
    fn ingest(&self, fault: &Fault, until: Duration) -> String {
        let before = self
            .ingest_node
            .iter()
            .rev()
            .find(|(t, node)| *t < fault.at && node.is_some())
            .and_then(|(_, node)| *node);
        let moved = self
            .ingest_node
            .iter()
            .find(|(t, node)| *t >= fault.at && *t < until && node.is_some() && *node != before);
        let name = |node: Option<usize>| node.map_or("?".to_owned(), |n| n.to_string());
        match moved {
            None => format!("the ingest stayed on node {}", name(before)),
            Some((t, after)) => {
                let first = self.accepted.iter().filter(|&&a| a >= *t).min();
                format!(
                    "the ingest moved from node {} to node {} at +{:.2} s, first 2xx through it +{}",
                    name(before),
                    name(*after),
                    (*t - fault.at).as_secs_f64(),
                    first.map_or("none".to_owned(), |a| format!(
                        "{:.2} s",
                        (*a - fault.at).as_secs_f64()
                    ))
                )
            }
        }
    }

    /// One line about `fault`.
    pub fn line(&self, fault: &Fault, next: Option<&Fault>) -> String {
        // Refusals the fault caused: from it until the next fault.
        let until = next.map_or(Duration::MAX, |n| n.at);
        let refused: Vec<Duration> = self
            .refused
            .iter()
            .copied()
            .filter(|&t| t >= fault.at && t < until)
            .collect();
        let last_refusal = refused.iter().max().map_or(String::new(), |t| {
            format!(", the last +{:.2} s", (*t - fault.at).as_secs_f64())
        });
        let before = (fault.at.saturating_sub(WINDOW), fault.at);
        let during = (fault.at, fault.back);
        let after = (fault.back, (fault.back + WINDOW).min(until));
        let rates = |times: &[Duration]| {
            [before, during, after].map(|(from, to)| rate(times, from, to).round() as u64)
        };
        let [ab, ad, aa] = rates(&self.accepted);
        let [pb, pd, pa] = rates(&self.applied);
        format!(
            "{} at {:.1} s, over at {:.1} s: {}; {} answers refused{last_refusal}; \
             events/s accepted {ab} before, {ad} during, {aa} after; applied {pb} / {pd} / {pa}",
            fault.what,
            fault.at.as_secs_f64(),
            fault.back.as_secs_f64(),
            self.ingest(fault, until),
            refused.len(),
        )
    }
}
