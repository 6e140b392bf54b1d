//! Missed creates, updates and deletes fixed, pruning, dry runs, paging and
//! retries.

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_against_the_local_fake_clerk_api_fixes_a_missed_create_a_missed_update_and_a_missed_delete()
 {
    let system = System::start(&[]).await;
    seed(
        &system,
        &[("user_a", "Ada"), ("user_b", "Bea"), ("user_c", "Cy")],
    )
    .await;
    // Clerk has user_a changed (and made an instructor), user_b as sent,
    // user_d that never arrived, and no longer user_c.
    let clerk = FakeClerk::start(vec![
        clerk_user("user_d", T0 + 2_000, "Dee", None),
        clerk_user("user_a", T0 + 1_000, "Augusta", Some("instructor")),
        clerk_user("user_b", T0, "Bea", None),
    ])
    .await;

    let output = reconcile(&system, &clerk, &["--prune", "--json"]).await;
    succeeded(&output);
    let report = output.json();
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["listed"], 3);
    let totals = &report["totals"];
    assert_eq!(
        [
            &totals["created"],
            &totals["updated"],
            &totals["deleted"],
            &totals["in_line"],
            &totals["events"]
        ],
        [1, 1, 1, 1, 3]
    );
    let users: Vec<(&str, &str, &str)> = report["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|u| {
            (
                u["user_id"].as_str().unwrap_or_default(),
                u["event_type"].as_str().unwrap_or_default(),
                u["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("user_d", "user.created", "applied"),
            ("user_a", "user.updated", "applied"),
            ("user_c", "user.deleted", "applied"),
        ]
    );
    assert_eq!(report["users"][1]["fields"][0], "first_name");
    assert_eq!(report["users"][1]["role_added"], "instructor");

    assert_eq!(
        firsts(&system.rows("Student").await),
        [("user_a", "Augusta"), ("user_b", "Bea"), ("user_d", "Dee")]
    );
    assert_eq!(
        firsts(&system.rows("Instructor").await),
        [("user_a", "Augusta")]
    );
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.users WHERE clerk_user_id = 'user_c' AND deleted")
            .await,
        Some(1)
    );
    // The fixes are in the log like any event, unsigned, with Clerk's data.
    assert_eq!(logged(&system).await, 6);
    assert_eq!(synthetic(&system, "user.created").await, 1);
    assert_eq!(synthetic(&system, "user.updated").await, 1);
    assert_eq!(synthetic(&system, "user.deleted").await, 1);
    assert_eq!(
        system
            .scalar(
                "SELECT count(*) AS n FROM clerk_sync.events WHERE clerk_user_id = 'user_d' \
                 AND (payload->>'body')::jsonb->'data'->>'first_name' = 'Dee'"
            )
            .await,
        Some(1)
    );

    // The log explains every row: replaying it changes nothing.
    let rows = (
        system.rows("Student").await,
        system.rows("Instructor").await,
    );
    let replay = system.cli(&["replay", "--json"], &[]).await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    assert_eq!(replay.json()["totals"]["users_changed"], 0, "{replay:?}");
    assert_eq!(
        (
            system.rows("Student").await,
            system.rows("Instructor").await
        ),
        rows
    );

    // In line now: a second run finds nothing and records nothing.
    let again = reconcile(&system, &clerk, &["--prune", "--json"]).await;
    succeeded(&again);
    let totals = &again.json()["totals"];
    assert_eq!([&totals["in_line"], &totals["events"]], [3, 0]);
    assert_eq!(again.json()["users"], serde_json::json!([]));
    assert_eq!(logged(&system).await, 6);
    // Every request carried the key as a Bearer token (the fake checks it).
    assert!(
        clerk
            .requests()
            .iter()
            .any(|r| r == "/v1/users?limit=500&offset=0&order_by=-created_at")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prune_users_clerk_no_longer_has_are_reported_and_kept() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada"), ("user_c", "Cy")]).await;
    let clerk = FakeClerk::start(vec![clerk_user("user_a", T0, "Ada", None)]).await;

    let output = reconcile(&system, &clerk, &[]).await;
    succeeded(&output);
    assert!(
        output
            .stdout
            .contains("user_c  not in Clerk  left in place (--prune removes it)"),
        "{output:?}"
    );
    assert!(
        output.stdout.ends_with(
            "created 0, updated 0, deleted 0; 1 in line; 1 not in Clerk, left in place (--prune removes them).\n"
        ),
        "{output:?}"
    );
    assert_eq!(
        firsts(&system.rows("Student").await),
        [("user_a", "Ada"), ("user_c", "Cy")]
    );
    assert_eq!(logged(&system).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_differences_and_writes_nothing() {
    let system = System::start(&[]).await;
    seed(
        &system,
        &[
            ("user_a", "Ada"),
            ("user_b", "Bea"),
            ("user_c", "Cy"),
            ("user_e", "Eve"),
        ],
    )
    .await;
    let status = system
        .send("msg_user_e_deleted", &deleted_event("user_e", T0 + 5))
        .await;
    assert!((200..300).contains(&status), "{status}");
    system.wait_for_log(5, WAIT).await;
    let clerk = FakeClerk::start(vec![
        clerk_user("user_e", T0 + 9, "Eve", None),
        clerk_user("user_d", T0 + 2_000, "Dee", None),
        clerk_user("user_b", T0, "Bea", None),
        clerk_user("user_a", T0 + 1_000, "Augusta", None),
    ])
    .await;
    let before = snapshot(&system).await;

    let output = reconcile(&system, &clerk, &["--dry-run", "--prune"]).await;
    succeeded(&output);
    let expected = format!(
        "Clerk at {}: 4 users listed in 1 page. Dry run: nothing written.\n\
         3 requests to Clerk's API (no budget).\n\
         \x20 user_e  deleted here, still in Clerk     left deleted (deleted stays deleted)\n\
         \x20 user_d  missing here                     would record user.created\n\
         \x20 user_a  differs: first_name, updated_at  would record user.updated\n\
         \x20 user_c  not in Clerk                     would record user.deleted\n\
         would create 1, update 1, delete 1; 1 in line; 1 deleted here but still in Clerk.\n",
        clerk.url
    );
    assert_eq!(output.stdout, expected);
    let json = reconcile(&system, &clerk, &["--dry-run", "--prune", "--json"]).await;
    succeeded(&json);
    let dry = json.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["totals"]["events"], 0);
    assert_eq!(dry["users"][1]["svix_id"], Value::Null);
    assert_eq!(snapshot(&system).await, before);

    // The real run does what the dry run said; deleted stays deleted.
    let real = reconcile(&system, &clerk, &["--prune", "--json"]).await;
    succeeded(&real);
    let done = real.json();
    for total in ["created", "updated", "deleted", "in_line", "deleted_here"] {
        assert_eq!(done["totals"][total], dry["totals"][total], "{total}");
    }
    assert_eq!(done["totals"]["events"], 3);
    assert_eq!(
        firsts(&system.rows("Student").await),
        [("user_a", "Augusta"), ("user_b", "Bea"), ("user_d", "Dee")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_every_page_of_either_shape() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let users: Vec<Value> = (0..7)
        .map(|i| clerk_user(&format!("user_{i}"), T0 + i, &format!("F{i}"), None))
        .collect();
    let clerk = FakeClerk::start(users).await;
    clerk.set_paginated(true);

    let output = reconcile(&system, &clerk, &["--page-size", "3", "--json"]).await;
    succeeded(&output);
    let report = output.json();
    assert_eq!(
        [
            &report["listed"],
            &report["pages"],
            &report["totals"]["created"]
        ],
        [7, 3, 7]
    );
    assert_eq!(system.rows("Student").await.len(), 7);
    assert_eq!(
        clerk.requests(),
        [
            "/v1/users?limit=3&offset=0&order_by=-created_at",
            "/v1/users?limit=3&offset=3&order_by=-created_at",
            "/v1/users?limit=3&offset=6&order_by=-created_at",
        ]
    );

    // A plain array (older API versions), pages of 2: all in line.
    clerk.set_paginated(false);
    let output = reconcile(&system, &clerk, &["--page-size", "2", "--json"]).await;
    succeeded(&output);
    let report = output.json();
    assert_eq!(
        [
            &report["pages"],
            &report["totals"]["in_line"],
            &report["totals"]["events"],
            &report["requests"],
        ],
        [4, 7, 0, 5],
        "4 pages, and the count of users: a plain array does not say it"
    );
    assert_eq!(logged(&system).await, 7);

    let bad = reconcile(&system, &clerk, &["--page-size", "501"]).await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(vec![clerk_user("user_a", T0, "Ada", None)]).await;
    // More 429s than a request's tries (5): they use none of them.
    // Retry-After in seconds, and as an HTTP date (in the past: no wait).
    clerk.push_fault(Fault::Status(429, Some("1")));
    for _ in 0..5 {
        clerk.push_fault(Fault::Status(429, Some("Sun, 06 Nov 1994 08:49:37 GMT")));
    }
    clerk.push_fault(Fault::Status(503, None));

    let output = reconcile(&system, &clerk, &["--json"]).await;
    succeeded(&output);
    assert_eq!(output.json()["totals"]["created"], 1);
    // 7 tries of the page, then the count of users.
    assert_eq!(clerk.requests().len(), 8 + 1);
    assert_eq!(firsts(&system.rows("Student").await), [("user_a", "Ada")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_spares_a_user_the_list_missed_and_refuses_an_empty_list() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada"), ("user_b", "Bea")]).await;
    // user_b exists in Clerk but the list skipped it (it moved while paged).
    let clerk = FakeClerk::start(vec![
        clerk_user("user_a", T0, "Ada", None),
        clerk_user("user_b", T0, "Bea", None),
    ])
    .await;
    clerk.hide_from_list("user_b");
    let output = reconcile(&system, &clerk, &["--prune", "--json"]).await;
    succeeded(&output);
    let report = output.json();
    assert_eq!(
        [
            &report["listed"],
            &report["totals"]["in_line"],
            &report["totals"]["deleted"]
        ],
        [2, 2, 0]
    );
    assert!(clerk.requests().iter().any(|r| r == "/v1/users/user_b"));

    // A list with nobody in it (another instance's key?) prunes nothing.
    let empty = FakeClerk::start(Vec::new()).await;
    let before = snapshot(&system).await;
    let output = reconcile(&system, &empty, &["--prune"]).await;
    failed_with(
        &output,
        "Clerk listed no users at all: refusing to prune all 2 users held here",
    );
    assert_eq!(snapshot(&system).await, before);
}
