//! `clerk-sync-worker reconcile` against a fake Clerk Backend API that the
//! test serves on 127.0.0.1 (the real API is not reachable here): missed
//! creates, updates and deletes are fixed by synthetic events in the log,
//! a dry run writes nothing, and every failure is one line that leaves the
//! database as it was.

use crate::support::system::{CliOutput, System, deleted_event, user_event};
use fake_clerk::{FakeClerk, Fault};
use serde_json::Value;
use std::time::Duration;

const KEY: &str = "sk_test_reconcile_fake_key";
const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

/// A Backend API user object: the `data` of the matching webhook.
fn clerk_user(id: &str, updated_at_ms: i64, first: &str, role: Option<&str>) -> Value {
    let email = format!("{id}@example.com");
    let event = user_event(
        "user.updated",
        id,
        updated_at_ms,
        Some(&email),
        Some(first),
        role,
    );
    serde_json::from_slice::<Value>(&event).unwrap()["data"].clone()
}

/// Send `user.created` webhooks for `users` (id, first name) at T0.
async fn seed(system: &System, users: &[(&str, &str)]) {
    for (id, first) in users {
        let email = format!("{id}@example.com");
        let body = user_event("user.created", id, T0, Some(&email), Some(first), None);
        let status = system.send(&format!("msg_{id}"), &body).await;
        assert!((200..300).contains(&status), "{status}");
    }
    system.wait_for_log(users.len() as i64, WAIT).await;
}

async fn reconcile(system: &System, clerk: &FakeClerk, args: &[&str]) -> CliOutput {
    let mut all = vec!["reconcile"];
    all.extend_from_slice(args);
    system
        .cli(
            &all,
            &[
                ("CLERK_SYNC__CLERK__API_URL", clerk.url.as_str()),
                ("CLERK_SECRET_KEY", KEY),
            ],
        )
        .await
}

fn succeeded(output: &CliOutput) {
    assert_eq!(output.code, Some(0), "{output:?}");
}

/// Failed with exit 1 and one line on stderr containing `message`.
fn failed_with(output: &CliOutput, message: &str) {
    assert_eq!(output.code, Some(1), "{output:?}");
    assert_eq!(output.stderr.trim().lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(message), "{output:?}");
    assert!(
        !output.stderr.contains(KEY),
        "the key was printed: {output:?}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}

async fn logged(system: &System) -> i64 {
    system
        .scalar("SELECT count(*) AS n FROM clerk_sync.events")
        .await
        .unwrap_or(-1)
}

async fn synthetic(system: &System, event_type: &str) -> i64 {
    system
        .scalar(&format!(
            "SELECT count(*) AS n FROM clerk_sync.events WHERE svix_id LIKE 'reconcile\\_%' \
             AND event_type = '{event_type}' AND outcome = 'applied' \
             AND payload->'headers'->>'svix-signature' IS NULL"
        ))
        .await
        .unwrap_or(-1)
}

fn firsts(rows: &[(String, Option<String>, String, String)]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|(id, _, first, _)| (id.as_str(), first.as_str()))
        .collect()
}

/// Everything reconcile could change, to compare before and after.
async fn snapshot(system: &System) -> (i64, i64, String, String) {
    let users = system
        .scalar("SELECT count(*) AS n FROM clerk_sync.users")
        .await
        .unwrap_or(-1);
    (
        logged(system).await,
        users,
        format!("{:?}", system.rows("Student").await),
        format!("{:?}", system.rows("Instructor").await),
    )
}

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
            &report["totals"]["events"]
        ],
        [4, 7, 0]
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
    clerk.push_fault(Fault::Status(429, Some("1")));
    clerk.push_fault(Fault::Status(503, None));

    let output = reconcile(&system, &clerk, &["--json"]).await;
    succeeded(&output);
    assert_eq!(output.json()["totals"]["created"], 1);
    assert_eq!(clerk.requests().len(), 3);
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
async fn a_failure_after_some_pages_keeps_what_was_recorded_and_says_so() {
    let system = System::start(&[]).await;
    system.wait_until_ready().await;
    let clerk = FakeClerk::start(vec![
        clerk_user("user_b", T0 + 1, "Bea", None),
        clerk_user("user_a", T0, "Ada", None),
    ])
    .await;
    clerk.fail_from(1, 401);
    let output = reconcile(&system, &clerk, &["--page-size", "1"]).await;
    failed_with(
        &output,
        "stopped after recording 1 event (they stand; run reconcile again to finish): Clerk refused the secret key",
    );
    assert_eq!(firsts(&system.rows("Student").await), [("user_b", "Bea")]);
    assert_eq!(synthetic(&system, "user.created").await, 1);
}

/// A fake of Clerk's Backend API user endpoints, on 127.0.0.1.
mod fake_clerk {
    use super::KEY;
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use serde_json::{Value, json};
    use std::collections::{HashSet, VecDeque};
    use std::sync::{Arc, Mutex, MutexGuard};

    pub enum Fault {
        /// Answer this status (with this Retry-After).
        Status(u16, Option<&'static str>),
        /// Answer 200 with this body.
        Body(&'static str),
    }

    #[derive(Default)]
    struct State {
        /// Newest first, as `order_by=-created_at` lists them.
        users: Vec<Value>,
        /// In Clerk, but skipped by the list.
        hidden: HashSet<String>,
        /// `{"data": [...], "total_count": N}` rather than an array.
        paginated: bool,
        /// Answered, one each, before anything else.
        faults: VecDeque<Fault>,
        /// From this many requests on, answer this status.
        fail_from: Option<(usize, u16)>,
        /// Path and query of every request.
        requests: Vec<String>,
    }

    pub struct FakeClerk {
        pub url: String,
        state: Arc<Mutex<State>>,
        _server: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl FakeClerk {
        pub async fn start(users: Vec<Value>) -> Self {
            let state = Arc::new(Mutex::new(State {
                users,
                ..State::default()
            }));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let data = web::Data::from(state.clone());
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(answer))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            Self {
                url: format!("http://127.0.0.1:{port}"),
                state,
                _server: tokio::spawn(server),
            }
        }

        fn state(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn set_paginated(&self, paginated: bool) {
            self.state().paginated = paginated;
        }

        pub fn hide_from_list(&self, user: &str) {
            self.state().hidden.insert(user.to_owned());
        }

        pub fn push_fault(&self, fault: Fault) {
            self.state().faults.push_back(fault);
        }

        pub fn fail_from(&self, requests: usize, status: u16) {
            self.state().fail_from = Some((requests, status));
        }

        /// Requests so far; forgets them.
        pub fn requests(&self) -> Vec<String> {
            std::mem::take(&mut self.state().requests)
        }
    }

    fn status(code: u16) -> HttpResponse {
        let status = actix_web::http::StatusCode::from_u16(code).unwrap();
        HttpResponse::build(status).json(json!({"errors": [{"message": "fake", "code": "fake"}]}))
    }

    async fn answer(request: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.requests.push(request.uri().to_string());
        let authorized = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            == Some(format!("Bearer {KEY}").as_str());
        if !authorized {
            return status(401);
        }
        let requests = state.requests.len();
        if let Some((_, code)) = state.fail_from.filter(|(from, _)| requests > *from) {
            return status(code);
        }
        match state.faults.pop_front() {
            Some(Fault::Status(code, retry_after)) => {
                let mut response = status(code);
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from_static(seconds),
                    );
                }
                return response;
            }
            Some(Fault::Body(body)) => {
                return HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body);
            }
            None => {}
        }
        let path = request.path();
        if path == "/v1/users" {
            let query: Vec<(String, String)> =
                url::form_urlencoded::parse(request.query_string().as_bytes())
                    .into_owned()
                    .collect();
            let number = |name: &str, default: usize| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(default)
            };
            let (limit, offset) = (number("limit", 10), number("offset", 0));
            let listed: Vec<&Value> = state
                .users
                .iter()
                .filter(|u| !state.hidden.contains(u["id"].as_str().unwrap_or_default()))
                .collect();
            let page: Vec<&Value> = listed.iter().skip(offset).take(limit).copied().collect();
            return if state.paginated {
                HttpResponse::Ok().json(json!({"data": page, "total_count": listed.len()}))
            } else {
                HttpResponse::Ok().json(page)
            };
        }
        if let Some(id) = path.strip_prefix("/v1/users/") {
            return match state.users.iter().find(|u| u["id"] == id) {
                Some(user) => HttpResponse::Ok().json(user),
                None => status(404),
            };
        }
        status(404)
    }
}
