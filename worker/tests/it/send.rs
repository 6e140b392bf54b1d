//! `clerk-sync-worker send` against a running system: the events it builds,
//! the files it sends as they are and the scenarios it posts all end in the
//! tables and the log as stated; every error exits non-zero with one line
//! and posts nothing.

use crate::support::system::{CliOutput, System};
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const T0: i64 = 1_767_225_600_000;

/// Rows `(a, b)` of a query selecting two text columns named `a` and `b`.
async fn pairs(system: &System, sql: &str) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct Pair {
        #[diesel(sql_type = Text)]
        a: String,
        #[diesel(sql_type = Text)]
        b: String,
    }
    let mut connection = system.database.connect().await;
    let rows: Vec<Pair> = diesel::sql_query(sql)
        .load(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(|r| (r.a, r.b)).collect()
}

/// `(svix_id, outcome)` of one user's logged events, by svix-id.
async fn logged(system: &System, user: &str) -> Vec<(String, String)> {
    pairs(
        system,
        &format!(
            "SELECT svix_id AS a, outcome AS b FROM clerk_sync.events \
             WHERE clerk_user_id = '{user}' ORDER BY svix_id"
        ),
    )
    .await
}

/// `(clerkId, firstName)` rows of `table` for `user`.
async fn names(system: &System, table: &str, user: &str) -> Vec<(String, String)> {
    system
        .rows(table)
        .await
        .into_iter()
        .filter(|(clerk, ..)| clerk == user)
        .map(|(clerk, _, first, _)| (clerk, first))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

async fn send(system: &System, args: &[&str]) -> CliOutput {
    let mut argv = vec!["send"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--url", &system.ingest_url]);
    system.cli(&argv, &[]).await
}

fn assert_ok(output: &CliOutput) {
    assert_eq!(output.code, Some(0), "{output:?}");
}

/// A failure: `code`, exactly one line on stderr, and it contains `needle`.
fn assert_one_line(output: &CliOutput, code: i32, needle: &str) {
    assert_eq!(output.code, Some(code), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(needle), "{needle:?} in {output:?}");
}

#[tokio::test]
async fn each_event_type_is_sent_and_applied() {
    let system = System::start(&[]).await;
    let (created, updated) = (T0.to_string(), (T0 + 1_000).to_string());

    let output = send(
        &system,
        &[
            "user.created",
            "--user",
            "user_send_ada",
            "--email",
            "ada@example.com",
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
            "--version",
            &created,
            "--svix-id",
            "msg_send_1",
        ],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.stdout,
        format!(
            "sent to {}\n\
             TYPE          USER           SVIX-ID     STATUS        ANSWER\n\
             user.created  user_send_ada  msg_send_1  202 Accepted  {{\"status\":\"queued\"}}\n",
            system.ingest_url
        )
    );

    let output = send(
        &system,
        &[
            "user.updated",
            "--user",
            "user_send_ada",
            "--email",
            "ada@example.com",
            "--first-name",
            "Augusta",
            "--last-name",
            "Lovelace",
            "--role",
            "instructor",
            "--version",
            &updated,
            "--svix-id",
            "msg_send_2",
            "--json",
        ],
    )
    .await;
    assert_ok(&output);
    assert_eq!(
        output.json(),
        json!({
            "url": system.ingest_url,
            "scenario": null,
            "user": null,
            "events": [{
                "svix_id": "msg_send_2", "type": "user.updated", "user": "user_send_ada",
                "note": null, "status": 202, "answer": {"status": "queued"},
            }],
            "expected": [],
            "error": null,
        })
    );

    for args in [
        &[
            "user.created",
            "--user",
            "user_send_bob",
            "--first-name",
            "Bob",
        ][..],
        &["user.deleted", "--user", "user_send_bob"][..],
    ] {
        let mut args = args.to_vec();
        let svix_id = format!("msg_send_{}", args[0]);
        args.extend_from_slice(&["--svix-id", &svix_id]);
        assert_ok(&send(&system, &args).await);
    }

    system.wait_for_log(4, WAIT).await;
    let outcomes: Vec<_> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, error)| (id, outcome, error.is_some()))
        .collect();
    let applied = |id: &str| (id.to_owned(), "applied".to_owned(), false);
    assert_eq!(
        outcomes,
        [
            applied("msg_send_1"),
            applied("msg_send_2"),
            applied("msg_send_user.created"),
            applied("msg_send_user.deleted"),
        ]
    );
    // The update added the instructor row and renamed both; Bob is gone.
    let ada = (
        "user_send_ada".to_owned(),
        Some("ada@example.com".to_owned()),
        "Augusta".to_owned(),
        "Lovelace".to_owned(),
    );
    assert_eq!(system.rows("Student").await, std::slice::from_ref(&ada));
    assert_eq!(system.rows("Instructor").await, [ada]);
}

#[tokio::test]
async fn a_file_is_sent_byte_for_byte() {
    let system = System::start(&[]).await;
    // Clerk's documented example, pretty-printed with a trailing newline.
    let fixture = format!(
        "{}/../fixtures/clerk/user.created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let path = std::env::temp_dir().join(format!("send-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, &bytes).unwrap();
    let file = path.display().to_string();

    let output = send(
        &system,
        &["--file", &file, "--svix-id", "msg_send_file", "--json"],
    )
    .await;
    let _ = std::fs::remove_file(&path);
    assert_ok(&output);
    let document = output.json();
    assert_eq!(document["events"][0]["svix_id"], "msg_send_file");
    assert_eq!(document["events"][0]["type"], "user.created");
    assert_eq!(
        document["events"][0]["user"],
        "user_29w83sxmDNGwOuEthce5gg56FcC"
    );

    system.wait_for_log(1, WAIT).await;
    let body = pairs(
        &system,
        "SELECT svix_id AS a, payload->>'body' AS b FROM clerk_sync.events",
    )
    .await;
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(body, [pair("msg_send_file", &text)]);
    assert_eq!(
        system.rows("Student").await,
        [(
            "user_29w83sxmDNGwOuEthce5gg56FcC".to_owned(),
            Some("example@example.org".to_owned()),
            "Example".to_owned(),
            "Example".to_owned(),
        )]
    );
}

#[tokio::test]
async fn each_scenario_reaches_its_stated_end_state() {
    let system = System::start(&[]).await;

    // Human output first: the steps and the stated end state.
    let output = send(
        &system,
        &["--scenario", "out-of-order", "--user", "user_order"],
    )
    .await;
    assert_ok(&output);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", output.stdout);
    assert_eq!(
        lines[0],
        format!(
            "scenario out-of-order for user_order, sent to {}",
            system.ingest_url
        )
    );
    assert!(lines[1].starts_with("TYPE  "), "{}", lines[1]);
    for (line, (note, event_type)) in lines[2..5].iter().zip([
        ("v1 ", "user.created"),
        ("v3 ", "user.updated"),
        ("v2, late: older than v3", "user.updated"),
    ]) {
        assert!(line.starts_with(&format!("{event_type}  {note}")), "{line}");
        assert!(line.contains("202 Accepted"), "{line}");
    }
    assert_eq!(lines[5], "expected once the worker has applied them:");
    assert_eq!(
        lines[6],
        "  user_order has first name 'v3' (one Student row)"
    );

    // The others as JSON, which names the svix-ids.
    let mut svix_ids = Vec::new();
    for (scenario, user) in [
        ("duplicates", "user_dup"),
        ("delete-then-update", "user_del"),
    ] {
        let output = send(&system, &["--scenario", scenario, "--user", user, "--json"]).await;
        assert_ok(&output);
        let document = output.json();
        assert_eq!(document["scenario"], scenario);
        assert_eq!(document["user"], user);
        assert!(
            document["expected"]
                .as_array()
                .is_some_and(|e| e.len() == 2)
        );
        let events = document["events"].as_array().cloned().unwrap_or_default();
        assert_eq!(events.len(), 3, "{document}");
        assert!(
            events
                .iter()
                .all(|e| e["status"] == 202 && e["user"] == user)
        );
        svix_ids.push(
            events
                .iter()
                .filter_map(|e| e["svix_id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        );
    }

    // 3 + 1 (three deliveries of one event) + 3.
    system.wait_for_log(7, WAIT).await;
    // Let any duplicate still in flight arrive: it must change nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // out-of-order: the late v2 is stale, v3's name stays.
    let order = logged(&system, "user_order").await;
    let outcomes: Vec<_> = order.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(outcomes, ["applied", "applied", "stale"], "{order:?}");
    assert_eq!(
        names(&system, "Student", "user_order").await,
        [pair("user_order", "v3")]
    );

    // duplicates: one svix-id, three posts, logged once.
    let duplicates = &svix_ids[0];
    assert!(duplicates.iter().all(|id| id == &duplicates[0]));
    assert_eq!(
        logged(&system, "user_dup").await,
        [pair(&duplicates[0], "applied")]
    );
    assert_eq!(
        names(&system, "Student", "user_dup").await,
        [pair("user_dup", "v1")]
    );

    // delete-then-update: deleted stays deleted, the later update is stale.
    let deleted = &svix_ids[1];
    assert_eq!(
        logged(&system, "user_del").await,
        [
            pair(&deleted[0], "applied"),
            pair(&deleted[1], "applied"),
            pair(&deleted[2], "stale"),
        ]
    );
    assert_eq!(names(&system, "Student", "user_del").await, []);
    assert_eq!(names(&system, "Instructor", "user_del").await, []);
    assert_eq!(
        system
            .scalar("SELECT count(*) AS n FROM clerk_sync.events")
            .await,
        Some(7)
    );
}

#[tokio::test]
async fn every_error_exits_non_zero_with_one_line_and_posts_nothing() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let dead = format!("http://127.0.0.1:{port}/api/webhooks/clerk");
    let output = system
        .cli(&["send", "user.created", "--url", &dead], &[])
        .await;
    assert_one_line(&output, 1, &format!("could not reach the ingest at {dead}"));
    assert_eq!(output.stdout, "");
    let output = system
        .cli(&["send", "user.created", "--url", &dead, "--json"], &[])
        .await;
    assert_one_line(&output, 1, &dead);
    let document = output.json();
    assert_eq!(document["events"], json!([]));
    assert!(
        document["error"]
            .as_str()
            .is_some_and(|e| e.contains(&dead))
    );

    // Signed with another secret: the ingest refuses it.
    let other = [(
        "CLERK_WEBHOOK_SECRET",
        "whsec_dGhpcyBpcyBub3QgdGhlIGluZ2VzdCdzIHNlY3JldA==",
    )];
    let url = system.ingest_url.clone();
    let output = system
        .cli(
            &[
                "send",
                "user.created",
                "--svix-id",
                "msg_bad_sig",
                "--url",
                &url,
            ],
            &other,
        )
        .await;
    assert_one_line(&output, 1, "answered 401 Unauthorized to msg_bad_sig");
    assert!(output.stderr.contains("signature"), "{output:?}");
    assert!(
        output.stdout.contains("msg_bad_sig  401 Unauthorized"),
        "{output:?}"
    );

    // A scenario stops at the first refusal.
    let output = system
        .cli(
            &[
                "send",
                "--scenario",
                "out-of-order",
                "--url",
                &url,
                "--json",
            ],
            &other,
        )
        .await;
    assert_one_line(&output, 1, "401 Unauthorized");
    assert_eq!(output.json()["events"].as_array().map(Vec::len), Some(1));

    // No secret, or one that is not a secret: a settings fault.
    for (secret, needle) in [("", "webhook.secrets"), ("whsec_***", "not base64")] {
        let output = system
            .cli(
                &["send", "user.created", "--url", &url],
                &[("CLERK_WEBHOOK_SECRET", secret)],
            )
            .await;
        assert_one_line(&output, 2, needle);
        assert!(!output.stderr.contains(secret) || secret.is_empty());
    }

    // A file that is missing, a directory, or not text.
    let missing = "/nonexistent/clerk-sync/payload.json";
    let directory = std::env::temp_dir().display().to_string();
    let binary = std::env::temp_dir().join(format!("send-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&binary, [0xff, 0xfe]).unwrap();
    let binary_name = binary.display().to_string();
    for file in [missing, &directory, &binary_name] {
        let output = system
            .cli(&["send", "--file", file, "--url", &url], &[])
            .await;
        assert_one_line(&output, 2, file);
    }
    let _ = std::fs::remove_file(&binary);

    // Bad combinations: clap's usage error, exit 2.
    for argv in [
        &["send"][..],
        &["send", "user.created", "--scenario", "duplicates"],
        &["send", "user.created", "--file", missing],
        &[
            "send",
            "--scenario",
            "duplicates",
            "--email",
            "a@example.com",
        ],
        &["send", "user.signed_in"],
    ] {
        let mut argv = argv.to_vec();
        argv.extend_from_slice(&["--url", &url]);
        let output = system.cli(&argv, &[]).await;
        assert_eq!(output.code, Some(2), "{argv:?}: {output:?}");
        assert!(output.stderr.starts_with("error:"), "{output:?}");
    }
    let output = system
        .cli(
            &[
                "send",
                "user.deleted",
                "--email",
                "a@example.com",
                "--url",
                &url,
            ],
            &[],
        )
        .await;
    assert_one_line(&output, 2, "do not apply to user.deleted");

    // Only the one good event that follows ends in the log.
    let output = send(&system, &["user.created", "--svix-id", "msg_good"]).await;
    assert_ok(&output);
    system.wait_for_log(1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes: Vec<_> = system
        .outcomes()
        .await
        .into_iter()
        .map(|(id, outcome, _)| (id, outcome))
        .collect();
    assert_eq!(outcomes, [pair("msg_good", "applied")]);
}
