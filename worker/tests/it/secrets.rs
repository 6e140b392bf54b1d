//! Secrets never reach the output: a password given as a URL query
//! parameter while the worker retries its services, and a settings file
//! with a syntax error on a line that holds a secret.

use crate::support::{TestDatabase, TestTopology, worker_command};
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn passwords_in_query_parameters_are_not_logged_while_waiting_for_the_services() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let mut worker = worker_command(&database, &broker)
        .arg("run")
        .env(
            "DATABASE_URL",
            "postgres://app@127.0.0.1:1/app?password=hunter2-db&sslmode=disable",
        )
        .env(
            "AMQP_URL",
            "amqp://app:hunter2-userinfo@127.0.0.1:1/%2f?heartbeat=5&auth_token=hunter2-token",
        )
        .env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for several tries (back-off from 100 ms).
    std::thread::sleep(Duration::from_secs(3));
    worker.kill().unwrap();
    worker.wait().unwrap();
    let mut log = String::new();
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("PostgreSQL at postgres://app@127.0.0.1:1/postgres?password=***&sslmode=disable is unreachable"),
        "{log}"
    );
    assert!(log.matches("waiting").count() >= 2, "it retried: {log}");
    assert!(!log.contains("hunter2"), "{log}");
}

#[test]
fn a_syntax_error_in_the_settings_file_names_the_line_not_its_text() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let file = std::env::temp_dir().join(format!("clerk-sync-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        "[webhook]\nsecrets = \"whsec_hunter2\n[worker]\nbatch_size = 10\n",
    )
    .unwrap();
    let output = worker_command(&database, &broker)
        .arg("--config")
        .arg(&file)
        .arg("status")
        .output()
        .unwrap();
    std::fs::remove_file(&file).ok();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
