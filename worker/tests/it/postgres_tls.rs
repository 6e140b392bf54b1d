//! TLS to PostgreSQL: DATABASE_URL's `sslmode` and `sslrootcert`, against a
//! PostgreSQL of the test's own with a CA and a server certificate for
//! `localhost` and `127.0.0.1` (`PrivatePostgres`). A host name the
//! certificate does not hold is reached with `hostaddr=127.0.0.1`.

use crate::support::system::{System, user_event};
use crate::support::{TestDatabase, TestTopology, worker_command};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use clerk_sync_testkit::cleanup::unique;
use clerk_sync_testkit::private_postgres::{PrivatePostgres, Tls};
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const T0: i64 = 1_700_000_100_000;

/// Connect as the worker does; whether the session is encrypted, as the
/// server sees it.
async fn ssl_in_use(url: &str) -> Result<bool, String> {
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = Bool)]
        ssl: bool,
    }
    let mut connection = database::connect(&SecretUrl::new(url))
        .await
        .map_err(|e| format!("{e:#}"))?;
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut connection)
        .await
        .unwrap();
    Ok(row.ssl)
}

/// Run the worker binary with `args` and DATABASE_URL `url` until it
/// exits (killed, and the test failed, after 30 s).
fn worker(url: &str, args: &[&str]) -> Output {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let mut command = worker_command(&database, &broker);
    command.args(args).env("DATABASE_URL", url);
    run_to_exit(command)
}

fn run_to_exit(mut command: Command) -> Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {WAIT:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The last line of stderr, checked to be the only line of the error.
fn error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("clerk-sync-worker: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_owned()
}

fn database_exists(server: &PrivatePostgres, name: &str) -> bool {
    server.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

#[tokio::test]
async fn verify_full_with_its_ca_migrates_and_applies_events_over_tls() {
    let server = PrivatePostgres::start(Tls::On);
    let name = unique("db");
    let url = server.url(
        "localhost",
        &name,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            server.ca_file().display()
        ),
    );
    let mut system = System::without_worker(&[], &[]).await;
    system.set_worker_env("DATABASE_URL", &url);

    let migrated = system.cli(&["migrate"], &[]).await;
    assert_eq!(migrated.code, Some(0), "{migrated:?}");
    assert!(database_exists(&server, &name));
    system.start_worker();
    let event = user_event(
        "user.created",
        "user_tls",
        T0,
        Some("grace@example.com"),
        Some("Grace"),
        Some("instructor"),
    );
    assert_eq!(system.send("msg_tls_1", &event).await, 202);
    let started = Instant::now();
    while server.psql(
        &name,
        "SELECT count(*) FROM clerk_sync.events WHERE outcome = 'applied'",
    ) != "1"
    {
        assert!(
            started.elapsed() < WAIT,
            "not applied; the worker's log:\n{}",
            system.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.psql(
            &name,
            r#"SELECT count(*) FROM "Instructor" WHERE "clerkId" = 'user_tls'"#
        ),
        "1"
    );
    // Every TCP session of the worker's with the database is encrypted.
    let sessions = server.psql(
        &name,
        &format!(
            "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{name}' AND a.client_addr IS NOT NULL"
        ),
    );
    let (encrypted, clear) = sessions.split_once(' ').unwrap();
    assert!(encrypted.parse::<u32>().unwrap() >= 1, "{sessions}");
    assert_eq!(clear, "0", "{sessions}");
    assert_eq!(ssl_in_use(&url).await, Ok(true));
    assert_eq!(system.stop_workers(), [Some(0)]);
}

#[tokio::test]
async fn verify_full_refuses_another_host_name_or_another_ca_and_run_does_not_wait() {
    let server = PrivatePostgres::start(Tls::On);
    let name = unique("db");
    let ca = server.ca_file();
    let wrong_host = format!(
        "postgres://postgres:hunter2@wrong.example:{}/{name}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        server.port,
        ca.display()
    );
    for args in [&["migrate"][..], &["run"]] {
        let output = worker(&wrong_host, args);
        assert_eq!(output.status.code(), Some(1), "{args:?} {output:?}");
        let line = error_line(&output);
        let shown = format!(
            "clerk-sync-worker: PostgreSQL at postgres://postgres:***@wrong.example:{}/",
            server.port
        );
        assert!(line.starts_with(&shown), "{line}");
        assert!(
            line.contains(
                ": TLS failed (sslmode=verify-full in database.url / DATABASE_URL): invalid peer certificate: "
            ),
            "{line}"
        );
        assert!(line.contains("wrong.example"), "{line}");
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("hunter2"),
            "{output:?}"
        );
    }
    assert!(!database_exists(&server, &name), "nothing created");

    let other_ca = server.url(
        "localhost",
        &name,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            server.unrelated_ca_file().display()
        ),
    );
    let output = worker(&other_ca, &["migrate"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = error_line(&output);
    assert!(line.contains("TLS failed (sslmode=verify-full"), "{line}");
    assert!(line.contains("UnknownIssuer"), "{line}");
    assert!(!database_exists(&server, &name), "nothing created");
}

#[tokio::test]
async fn verify_ca_checks_the_chain_not_the_name_and_require_only_encrypts() {
    let server = PrivatePostgres::start(Tls::On);
    let ca = format!("sslrootcert={}", server.ca_file().display());
    let other_ca = format!("sslrootcert={}", server.unrelated_ca_file().display());
    let at = |host: &str, query: &str| {
        format!(
            "postgres://postgres@{host}:{}/postgres?{query}",
            server.port
        )
    };
    let wrong_name = |query: &str| at("wrong.example", &format!("hostaddr=127.0.0.1&{query}"));

    for url in [
        at("localhost", &format!("sslmode=verify-full&{ca}")),
        at("127.0.0.1", &format!("sslmode=verify-full&{ca}")),
        wrong_name(&format!("sslmode=verify-ca&{ca}")),
        wrong_name("sslmode=require"),
        wrong_name(&format!("sslmode=require&{ca}")),
        at("localhost", "sslmode=prefer"),
        at("localhost", ""),
    ] {
        assert_eq!(ssl_in_use(&url).await, Ok(true), "{url}");
    }
    for (url, mode, reason) in [
        (
            wrong_name(&format!("sslmode=verify-full&{ca}")),
            "verify-full",
            "not valid for name",
        ),
        (
            at("localhost", &format!("sslmode=verify-ca&{other_ca}")),
            "verify-ca",
            "UnknownIssuer",
        ),
        // No sslrootcert: the system's CAs, which never signed the test's.
        (
            at("localhost", "sslmode=verify-full"),
            "verify-full",
            "UnknownIssuer",
        ),
        // libpq: require with a root certificate file checks the chain.
        (
            at("localhost", &format!("sslmode=require&{other_ca}")),
            "require",
            "UnknownIssuer",
        ),
    ] {
        let error = ssl_in_use(&url).await.unwrap_err();
        assert!(
            error.contains(&format!("TLS failed (sslmode={mode} in database.url")),
            "{error}"
        );
        assert!(error.contains(reason), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
}

#[tokio::test]
async fn require_fails_against_a_server_without_tls_and_prefer_runs_in_clear() {
    let server = PrivatePostgres::start(Tls::Off);
    let name = unique("db");
    for mode in ["require", "verify-full"] {
        let query = format!(
            "sslmode={mode}&sslrootcert={}",
            server.unrelated_ca_file().display()
        );
        let output = worker(&server.url("localhost", &name, &query), &["migrate"]);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let line = error_line(&output);
        assert!(
            line.ends_with(&format!(
                ": TLS failed (sslmode={mode} in database.url / DATABASE_URL): server does not support TLS"
            )),
            "{line}"
        );
    }
    assert!(!database_exists(&server, &name), "nothing created");
    for query in ["sslmode=prefer", "", "sslmode=disable"] {
        let url = server.url("localhost", "postgres", query);
        assert_eq!(ssl_in_use(&url).await, Ok(false), "{url}");
    }
}

#[tokio::test]
async fn a_hostssl_only_server_refuses_disable_and_prefer_connects_with_tls() {
    let server = PrivatePostgres::start(Tls::Only);
    let name = unique("db");
    for query in ["sslmode=prefer", ""] {
        let url = server.url("localhost", "postgres", query);
        assert_eq!(ssl_in_use(&url).await, Ok(true), "{url}");
    }
    let output = worker(
        &server.url("localhost", &name, "sslmode=disable"),
        &["migrate"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = error_line(&output);
    assert!(
        line.contains(&format!(
            "PostgreSQL at postgres://postgres@localhost:{}/postgres?sslmode=disable refused the connection: ",
            server.port
        )),
        "{line}"
    );
    assert!(line.contains("no pg_hba.conf entry"), "{line}");
    assert!(line.contains("no encryption"), "{line}");
    assert!(!database_exists(&server, &name), "nothing created");
}

#[test]
fn a_wrong_sslmode_or_an_unreadable_sslrootcert_is_a_setting_error() {
    let settings =
        "clerk-sync-worker: setting database.url (DATABASE_URL or CLERK_SYNC__DATABASE__URL): ";
    for (args, query, problem) in [
        (
            &["migrate"][..],
            "sslmode=verify_full",
            "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
        ),
        (
            &["run"],
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "sslrootcert /nonexistent/ca.pem: cannot read it: ",
        ),
        (
            &["status"],
            "sslmode=require&sslcert=/c.pem",
            "client certificates",
        ),
    ] {
        let url = format!("postgres://postgres:hunter2@127.0.0.1:1/x?{query}");
        let output = worker(&url, args);
        assert_eq!(output.status.code(), Some(2), "{args:?} {output:?}");
        let line = error_line(&output);
        assert!(line.starts_with(settings), "{line}");
        assert!(line.contains(problem), "{line}");
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("hunter2"),
            "{output:?}"
        );
    }
}
