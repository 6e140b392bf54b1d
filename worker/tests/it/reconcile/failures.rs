//! Every failure is one line that leaves the database as it was (or keeps
//! what was recorded, and says so).

use super::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_fails_in_one_line_and_writes_nothing() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada")]).await;
    let clerk = FakeClerk::start(vec![clerk_user("user_d", T0, "Dee", None)]).await;
    let before = snapshot(&system).await;

    let output = system
        .cli(
            &["reconcile", "--prune"],
            &[
                ("CLERK_SYNC__CLERK__API_URL", clerk.url.as_str()),
                ("CLERK_SECRET_KEY", "sk_test_wrong"),
            ],
        )
        .await;
    failed_with(
        &output,
        &format!(
            "Clerk refused the secret key (401 at {}/v1/users?limit=500&offset=0&order_by=-created_at): check CLERK_SECRET_KEY",
            clerk.url
        ),
    );
    assert!(!output.stderr.contains("sk_test_wrong"), "{output:?}");
    clerk.push_fault(Fault::Status(403, None));
    let output = reconcile(&system, &clerk, &[]).await;
    failed_with(&output, "Clerk refused the secret key (403 at");
    assert_eq!(snapshot(&system).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_a_settings_error() {
    let system = System::start(&[]).await;
    let output = system.cli(&["reconcile"], &[]).await;
    assert_eq!(output.code, Some(2), "{output:?}");
    assert_eq!(output.stderr.trim().lines().count(), 1, "{output:?}");
    assert!(
        output.stderr.contains(
            "setting clerk.secret_key (CLERK_SECRET_KEY or CLERK_SYNC__CLERK__SECRET_KEY): missing"
        ),
        "{output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_does_not_answer_fails_naming_the_url_and_writes_nothing() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada")]).await;
    let before = snapshot(&system).await;

    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let url = format!("http://{closed}");
    let output = system
        .cli(
            &["reconcile"],
            &[
                ("CLERK_SYNC__CLERK__API_URL", url.as_str()),
                ("CLERK_SECRET_KEY", KEY),
            ],
        )
        .await;
    failed_with(
        &output,
        &format!(
            "Clerk's API at {url}/v1/users?limit=500&offset=0&order_by=-created_at failed 5 times, last: no answer"
        ),
    );

    // Server errors that do not stop: the same, after 5 tries.
    let clerk = FakeClerk::start(vec![clerk_user("user_d", T0, "Dee", None)]).await;
    for _ in 0..5 {
        clerk.push_fault(Fault::Status(500, None));
    }
    let output = reconcile(&system, &clerk, &[]).await;
    failed_with(&output, "failed 5 times, last: HTTP 500");
    assert_eq!(clerk.requests().len(), 5);
    assert_eq!(snapshot(&system).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_a_user_list_fails_and_writes_nothing() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada")]).await;
    let clerk = FakeClerk::start(vec![clerk_user("user_d", T0, "Dee", None)]).await;
    let before = snapshot(&system).await;

    clerk.push_fault(Fault::Body("<html>maintenance</html>"));
    let output = reconcile(&system, &clerk, &[]).await;
    failed_with(&output, "is not a user list: not JSON");
    clerk.push_fault(Fault::Body(r#"[{"object":"user"}]"#));
    let output = reconcile(&system, &clerk, &[]).await;
    failed_with(&output, "is not a user list: item 1 has no string \"id\"");
    assert_eq!(snapshot(&system).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_is_not_read_and_writes_nothing() {
    let system = System::start(&[]).await;
    seed(&system, &[("user_a", "Ada")]).await;
    let clerk = FakeClerk::start(vec![clerk_user("user_d", T0, "Dee", None)]).await;
    let before = snapshot(&system).await;

    clerk.push_fault(Fault::HugeBody(33));
    let output = reconcile(&system, &clerk, &[]).await;
    failed_with(&output, "is larger than 32 MiB: not read");
    assert_eq!(clerk.requests().len(), 1, "not retried");
    assert_eq!(snapshot(&system).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_some_pages_keeps_what_was_recorded_and_says_so() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(vec![
        clerk_user("user_b", T0 + 1, "Bea", None),
        clerk_user("user_a", T0, "Ada", None),
    ])
    .await;
    // The first page, then the count of users (the page did not say), then
    // the second page, refused.
    clerk.fail_from(2, 401);
    let output = reconcile(&system, &clerk, &["--page-size", "1"]).await;
    failed_with(
        &output,
        "stopped after recording 1 event (they stand; run reconcile again to go on from where it stopped): Clerk refused the secret key",
    );
    assert_eq!(firsts(&system.rows("Student").await), [("user_b", "Bea")]);
    assert_eq!(synthetic(&system, "user.created").await, 1);
}
