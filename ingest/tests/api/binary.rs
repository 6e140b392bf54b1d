//! The real `clerk-sync-ingest` binary: start-up errors, logs, and graceful
//! shutdown on SIGTERM.

use crate::helpers::*;
use clerk_sync_domain::paths;
use clerk_sync_testkit::proxy::Proxy;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The binary with a clean environment and an empty working directory (so
/// no developer's variables or clerk-sync.toml leak in).
fn ingest(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clerk-sync-ingest"));
    command.env_clear().current_dir(std::env::temp_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn run(env: &[(&str, &str)]) -> Output {
    ingest(env).output().unwrap()
}

#[test]
fn without_a_secret_it_refuses_to_start_with_one_line_naming_the_setting() {
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("clerk-sync-ingest: setting webhook.secrets (CLERK_WEBHOOK_SECRET or CLERK_SYNC__WEBHOOK__SECRETS): missing"),
        "{stderr}"
    );
}

#[test]
fn a_bad_setting_or_secret_stops_start_up_without_echoing_secrets() {
    let cases = [
        (
            vec![
                ("CLERK_WEBHOOK_SECRET", SECRET),
                ("CLERK_SYNC__AMQP__SHARDS", "0"),
            ],
            2,
            "setting amqp.shards",
        ),
        (
            vec![
                ("CLERK_WEBHOOK_SECRET", SECRET),
                ("INGEST_LISTEN", "nowhere"),
            ],
            2,
            "ingest.listen",
        ),
        (
            vec![("CLERK_WEBHOOK_SECRET", "whsec_!!notbase64!!")],
            2,
            "secret 1 of 1 is not a valid whsec_ secret",
        ),
    ];
    for (env, code, expected) in cases {
        let output = run(&env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.lines().any(|l| l.contains(expected)),
            "{expected}: {stderr}"
        );
        assert!(!stderr.contains("notbase64"), "{stderr}");
    }
}

/// Started while no broker node answers, the binary keeps running (an
/// orchestrator restarting it would only add delay): it logs why, with
/// every password masked, answers 503 on `/readyz`, and a SIGTERM still
/// ends it with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_waited_for_and_named_with_passwords_masked() {
    let url = format!(
        "amqp://guest:firstpass@127.0.0.1:{}/%2f,amqp://guest:secondpass@127.0.0.1:{}/%2f",
        free_port(),
        free_port()
    );
    let ingest = Running::spawn(&url, &[]);
    let waiting = ingest.readiness(503).await;
    assert!(
        waiting["rabbitmq"]
            .as_str()
            .is_some_and(|why| why.contains("no node answered")),
        "{waiting}"
    );
    ingest.terminate();
    let (output, _) = tokio::task::spawn_blocking(move || ingest.wait())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("RabbitMQ unreachable at start-up: answering 503 and retrying"),
        "{stderr}"
    );
    assert!(stderr.contains("amqp://guest:***@127.0.0.1:"), "{stderr}");
    let shown = format!("{stderr}{waiting}");
    assert!(!shown.contains("firstpass"), "{shown}");
    assert!(!shown.contains("secondpass"), "{shown}");
}

struct Running {
    child: Child,
    address: String,
    topology: TestTopology,
}

impl Running {
    /// Start the binary and wait until `/readyz` answers 200.
    async fn start(amqp_url: &str, extra: &[(&str, &str)]) -> Self {
        let running = Self::spawn(amqp_url, extra);
        running.readiness(200).await;
        running
    }

    /// Start the binary without waiting for anything.
    fn spawn(amqp_url: &str, extra: &[(&str, &str)]) -> Self {
        let settings = test_settings();
        let topology = TestTopology::of(&settings);
        let port = free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let mut env = vec![
            ("CLERK_WEBHOOK_SECRET", SECRET),
            ("INGEST_LISTEN", listen.as_str()),
            ("AMQP_URL", amqp_url),
            ("CLERK_SYNC__AMQP__PREFIX", settings.amqp.prefix.as_str()),
            ("CLERK_SYNC__AMQP__SHARDS", "4"),
            ("CLERK_SYNC__LOG__FORMAT", "json"),
        ];
        env.extend_from_slice(extra);
        let child = ingest(&env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            child,
            address: format!("http://{listen}"),
            topology,
        }
    }

    /// Wait until `/readyz` answers `status`; its body.
    async fn readiness(&self, status: u16) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", self.address)).await
                && response.status().as_u16() == status
            {
                return response.json().await.unwrap();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "/readyz did not answer {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn post(&self, client: &reqwest::Client, body: Vec<u8>) -> (String, u16) {
        let id = new_svix_id();
        let mut request = client
            .post(format!("{}{}", self.address, paths::WEBHOOK))
            .body(body.clone());
        for (name, value) in signed_headers(SECRET, &id, now(), &body) {
            request = request.header(name, value);
        }
        let status = request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        (id, status)
    }

    /// Post one signed event (asserting 202), stop with SIGTERM, and return
    /// its svix-id, the process's output and the message ids queued.
    async fn post_one_and_stop(self, body: Vec<u8>) -> (String, Output, Vec<Option<String>>) {
        let (id, status) = self.post(&reqwest::Client::new(), body).await;
        assert_eq!(status, 202);
        self.terminate();
        let (output, topology) = tokio::task::spawn_blocking(move || self.wait())
            .await
            .unwrap();
        let queued = topology
            .drain()
            .await
            .into_iter()
            .map(|q| q.message_id)
            .collect();
        (id, output, queued)
    }

    fn wait(self) -> (Output, TestTopology) {
        let output = self.child.wait_with_output().unwrap();
        (output, self.topology)
    }
}

/// `AMQP_URL` may list several nodes: the first that answers is used (here
/// the first is down), and an event goes through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_several_broker_nodes_the_first_that_answers_is_used() {
    let down = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let nodes = format!("{down},{}", clerk_sync_testkit::broker::amqp_url());
    let ingest = Running::start(&nodes, &[]).await;
    let (id, output, queued) = ingest
        .post_one_and_stop(user_event("user.updated", "user_nodes", 1))
        .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(queued, [Some(id)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RabbitMQ node unreachable; trying the next"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_confirms_included_and_exits_0() {
    // Slow confirms so the requests are surely in flight when SIGTERM lands.
    let proxy = Proxy::start(&clerk_sync_testkit::broker::address()).await;
    let ingest = Running::start(&proxy.amqp_url(), &[]).await;
    proxy.delay_replies(Duration::from_millis(500));
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..20)
        .map(|i| ingest.post(&client, user_event("user.updated", &format!("user_{i}"), i)))
        .collect();
    let (answers, ()) = tokio::join!(futures::future::join_all(requests), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ingest.terminate();
    });
    proxy.delay_replies(Duration::ZERO);

    let (output, topology) = tokio::task::spawn_blocking(move || ingest.wait())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        answers.iter().all(|(_, status)| *status == 202),
        "{answers:?}"
    );
    let mut queued: Vec<String> = topology
        .drain()
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    let mut sent: Vec<String> = answers.into_iter().map(|(id, _)| id).collect();
    queued.sort();
    sent.sort();
    assert_eq!(queued, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_the_svix_id_and_never_the_body_email_or_secret() {
    let ingest = Running::start(&amqp_url(), &[("RUST_LOG", "debug")]).await;
    let (id, output, _) = ingest
        .post_one_and_stop(user_event("user.created", "user_logged", 1))
        .await;
    let logs = String::from_utf8_lossy(&output.stderr);
    let queued_line = logs
        .lines()
        .find(|l| l.contains("event queued"))
        .unwrap_or_else(|| panic!("no 'event queued' line in {logs}"));
    let line: serde_json::Value =
        serde_json::from_str(queued_line).unwrap_or_else(|e| panic!("{e}: {queued_line}"));
    assert_eq!(line["span"]["svix.id"], id.as_str());
    assert_eq!(line["span"]["clerk.user_id"], "user_logged");
    assert_eq!(line["span"]["clerk.event_type"], "user.created");
    let secret_key = SECRET.trim_start_matches("whsec_");
    for forbidden in ["ada@example.com", "Lovelace", secret_key, "guest:guest"] {
        assert!(!logs.contains(forbidden), "{forbidden} in logs:\n{logs}");
    }
}
