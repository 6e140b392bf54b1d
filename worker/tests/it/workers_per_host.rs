//! Any number of workers on one host with no extra setting: each serves its
//! metrics, health and readiness on a port of its own, logs where, and
//! `status` lists them all; an address set explicitly that is taken stays
//! a start-up error naming the setting.

use crate::support::system::{System, user_event};
use crate::support::{TestDatabase, TestTopology};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const T0: i64 = 1_700_000_000_000;

/// `status --json`'s workers: `metrics_url` of each.
async fn listed(system: &System) -> Vec<String> {
    let status = system.cli(&["status", "--json"], &[]).await;
    status.json()["workers"]
        .as_array()
        .map(|workers| {
            workers
                .iter()
                .filter_map(|w| w["metrics_url"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The `metrics` field of the worker's "running" log line.
fn logged_url(system: &System, index: usize) -> Option<String> {
    let log = std::fs::read_to_string(system.worker_log(index)).ok()?;
    log.lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        entry["fields"]["metrics"].as_str().map(str::to_owned)
    })
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_with_default_settings_all_run_and_are_found() {
    let mut system = System::start(&[]).await;
    system.wait_until_ready().await;
    for _ in 0..3 {
        system.start_worker_without(&["CLERK_SYNC__WORKER__LISTEN"]);
    }
    // Each logs where it serves; the first (set explicitly) is not asked.
    let started = Instant::now();
    let mut urls = BTreeSet::new();
    for index in 1..=3 {
        loop {
            if let Some(url) = logged_url(&system, index) {
                urls.insert(url);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "worker {index} logged no metrics URL"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(urls.len(), 3, "three workers, three addresses: {urls:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    for url in &urls {
        assert!(
            url.starts_with(&format!("http://{host}:")),
            "a wildcard address is shown by the host's name: {url}"
        );
        let (status, metrics) = get(url).await;
        assert_eq!(status, 200, "{url}");
        assert!(
            metrics.contains("clerk_sync_worker_broker_connected"),
            "{url}"
        );
        let (status, _) = get(&url.replace("/metrics", "/healthz")).await;
        assert_eq!(status, 200, "{url}");
    }
    // `status` lists the four, with the URLs they logged.
    loop {
        let found: BTreeSet<String> = listed(&system).await.into_iter().collect();
        if found.len() == 4 && urls.is_subset(&found) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "status lists {found:?}, not the four workers"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = system.cli(&["status"], &[]).await;
    for url in &urls {
        assert!(text.stdout.contains(url.as_str()), "{}", text.stdout);
    }
    // They all consume.
    for n in 0..20 {
        let body = user_event(
            "user.created",
            &format!("user_{n}"),
            T0,
            None,
            Some("A"),
            None,
        );
        assert_eq!(system.send(&format!("m{n}"), &body).await, 202);
    }
    system.wait_for_log(20, Duration::from_secs(30)).await;
    assert_eq!(system.stop_workers(), vec![Some(0); 4]);
    assert!(
        listed(&system).await.is_empty(),
        "a worker that stops removes its row"
    );
}

#[test]
fn an_explicit_address_that_is_taken_is_a_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let output = crate::support::worker_command(&database, &broker)
        .arg("run")
        .env("CLERK_SYNC__WORKER__LISTEN", address.to_string())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "clerk-sync-worker: setting worker.listen: cannot listen on {address}: Address already in use"
        )),
        "{stderr}"
    );
    drop(taken);
}

/// The version the tests' broker reports of itself.
fn broker_version() -> String {
    let output = clerk_sync_testkit::broker::rabbitmqctl()
        .args(["-q", "version"])
        .output()
        .unwrap_or_else(|e| panic!("rabbitmqctl: {e}"));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_version_is_logged_and_shown_by_status() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let version = broker_version();
    assert!(version.starts_with(['3', '4']), "{version}");
    let log = std::fs::read_to_string(system.worker_log(0)).unwrap_or_default();
    let logged = log.lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        entry["fields"]["rabbitmq.version"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(logged.as_deref(), Some(version.as_str()), "{log}");
    let status = system.cli(&["status", "--json"], &[]).await;
    assert_eq!(status.json()["rabbitmq_version"], version.as_str());
    let text = system.cli(&["status"], &[]).await;
    assert!(
        text.stdout.contains(&format!("rabbitmq:     {version}")),
        "{}",
        text.stdout
    );
}
