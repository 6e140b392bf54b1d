//! The workers running now, as `status` shows them: each one's name and
//! where it serves its metrics, health and readiness (from
//! `clerk_sync.workers`, which every worker updates with its shard reports).
//! Pure: the rows come from `gather`.

use crate::{age, table};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// `host/pid/random`, as in `clerk_sync.shard_heads`.
    pub name: String,
    pub metrics_url: String,
    /// Seconds since it started.
    pub up_secs: f64,
    /// Seconds since its last report.
    pub report_age_secs: f64,
}

/// The table of workers, or a line saying none reports.
pub fn text(workers: &[Worker]) -> String {
    if workers.is_empty() {
        return "workers: none reporting (none runs, or none reaches PostgreSQL)".to_owned();
    }
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.metrics_url.clone(),
                age::human(w.up_secs),
                format!("{} ago", age::human(w.report_age_secs)),
            ]
        })
        .collect();
    table::render(&["WORKER", "METRICS", "UP", "REPORTED"], &rows)
}

pub fn json(workers: &[Worker]) -> Value {
    workers
        .iter()
        .map(|w| {
            json!({
                "worker": w.name,
                "metrics_url": w.metrics_url,
                "up_secs": w.up_secs,
                "report_age_secs": w.report_age_secs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_is_shown_with_its_metrics_url() {
        let workers = [Worker {
            name: "host/42/0a1b2c3d".to_owned(),
            metrics_url: "http://host:9091/metrics".to_owned(),
            up_secs: 65.0,
            report_age_secs: 2.0,
        }];
        let text = text(&workers);
        assert!(text.starts_with("WORKER"), "{text}");
        assert!(
            text.contains("host/42/0a1b2c3d  http://host:9091/metrics  1m 05s  2s ago"),
            "{text}"
        );
        assert_eq!(json(&workers)[0]["metrics_url"], "http://host:9091/metrics");
        assert!(super::text(&[]).starts_with("workers: none reporting"));
    }
}
