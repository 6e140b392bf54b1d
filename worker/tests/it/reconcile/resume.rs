//! A long `reconcile` within Clerk's rate limits: requests paced by a
//! budget, a run stopped half-way going on where it stopped (`--restart`
//! starts over), and one run at a time.

use super::helpers::*;
use std::time::Duration;

fn users(n: i64) -> Vec<Value> {
    (0..n)
        .map(|i| clerk_user(&format!("user_{i}"), T0 + i, &format!("F{i}"), None))
        .collect()
}

async fn checkpoint(system: &System) -> Option<i64> {
    system
        .scalar("SELECT next_offset AS n FROM clerk_sync.reconcile_checkpoint")
        .await
}

async fn listed(system: &System) -> i64 {
    system
        .scalar("SELECT count(*) AS n FROM clerk_sync.reconcile_listed")
        .await
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_half_way_goes_on_where_it_stopped_and_restart_starts_over() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(users(5)).await;
    clerk.set_paginated(true);

    // Three pages of one user, then Clerk refuses.
    clerk.fail_from(3, 401);
    let stopped = reconcile(&system, &clerk, &["--page-size", "1", "--prune"]).await;
    failed_with(&stopped, "stopped after recording 3 events");
    assert_eq!(checkpoint(&system).await, Some(3));
    assert_eq!(listed(&system).await, 3);

    // The next run takes over at the fourth user; with --prune, the users
    // the first part listed are not taken for gone from Clerk.
    clerk.recover();
    clerk.requests();
    let resumed = reconcile(&system, &clerk, &["--page-size", "1", "--prune", "--json"]).await;
    succeeded(&resumed);
    let report = resumed.json();
    assert_eq!(report["resumed"]["offset"], 3, "{report}");
    assert_eq!(
        [&report["totals"]["created"], &report["totals"]["deleted"]],
        [2, 0]
    );
    let requests = clerk.requests();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("/v1/users?limit=1&offset=3&order_by=-created_at")
    );
    assert!(
        requests.iter().all(|r| r.starts_with("/v1/users?")),
        "no user was checked by id: {requests:?}"
    );
    assert_eq!(system.rows("Student").await.len(), 5);
    assert_eq!(
        checkpoint(&system).await,
        None,
        "a finished run leaves none"
    );
    assert_eq!(listed(&system).await, 0);

    // --restart forgets an unfinished run and starts at the top.
    clerk.fail_from(1, 401);
    let stopped = reconcile(&system, &clerk, &["--page-size", "1"]).await;
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert_eq!(checkpoint(&system).await, Some(1));
    clerk.recover();
    clerk.requests();
    let restarted = reconcile(
        &system,
        &clerk,
        &["--page-size", "1", "--restart", "--json"],
    )
    .await;
    succeeded(&restarted);
    assert_eq!(restarted.json()["resumed"], Value::Null);
    assert_eq!(restarted.json()["totals"]["in_line"], 5);
    assert_eq!(
        clerk.requests().first().map(String::as_str),
        Some("/v1/users?limit=1&offset=0&order_by=-created_at")
    );

    // A dry run neither reads nor writes the checkpoint.
    let dry = reconcile(&system, &clerk, &["--dry-run", "--restart"]).await;
    assert_eq!(
        dry.code,
        Some(2),
        "--restart has nothing to restart on a dry run: {dry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_at_a_time() {
    use diesel_async::RunQueryDsl;
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(users(1)).await;
    // Another run holds the lock.
    let mut other = system.database.connect().await;
    diesel::sql_query("SELECT pg_advisory_lock(1129073490, 1)")
        .execute(&mut other)
        .await
        .unwrap();
    let refused = reconcile(&system, &clerk, &[]).await;
    failed_with(
        &refused,
        "another reconcile is running against this database",
    );
    assert!(clerk.requests().is_empty(), "Clerk was not asked");
    assert_eq!(logged(&system).await, 0);
    drop(other);
    succeeded(&reconcile(&system, &clerk, &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_paced_evenly_within_the_budget() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(users(6)).await;
    clerk.set_paginated(true);
    // 50 per 10 s: one request every 200 ms. The setting, then the flag.
    let env = [
        ("CLERK_SYNC__CLERK__API_URL", clerk.url.as_str()),
        ("CLERK_SECRET_KEY", KEY),
        ("CLERK_SYNC__CLERK__REQUEST_BUDGET", "50"),
    ];
    for args in [
        &["reconcile", "--page-size", "1", "--json"][..],
        &["reconcile", "--page-size", "1", "--json", "--budget", "50"][..],
    ] {
        let output = system.cli(&[args, &["--restart"]].concat(), &env).await;
        succeeded(&output);
        let report = output.json();
        // Six pages of one user, and an empty one.
        assert_eq!([&report["requests"], &report["request_budget"]], [7, 50]);
        let arrivals = clerk.arrivals();
        assert_eq!(arrivals.len(), 7);
        // The client never sends two requests closer than 200 ms (the pure
        // `pacing` tests prove it); what arrives here is later by each
        // request's own latency, which a busy machine makes vary by tens
        // of milliseconds. Unpaced, the requests would arrive milliseconds
        // apart: half the interval between any two, and about the whole
        // interval on average, tell pacing from none.
        for pair in arrivals.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(100),
                "{gap:?} between requests"
            );
        }
        let span = arrivals[6] - arrivals[0];
        assert!(
            span >= Duration::from_millis(6 * 180),
            "{span:?} for 7 requests"
        );
    }
}
