//! `amqps://`: the ingest and a worker-side connection to a private node
//! with a TLS listener whose certificate a CA of the test's own signed
//! (named by the URL's `cacertfile`); a CA that did not sign it, or none,
//! is refused with a message naming the setting.

use crate::helpers::*;
use crate::other_broker::drain_at;
use clerk_sync_runtime::amqp::{self, AmqpError};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_testkit::certificates::Certificates;
use clerk_sync_testkit::private_node::PrivateNode;
use std::collections::BTreeMap;
use std::path::Path;

fn amqps_url(node: &PrivateNode, host: &str, ca_file: &Path) -> String {
    format!("{}?cacertfile={}", node.amqps_url(host), ca_file.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_and_a_worker_connect_over_tls() {
    let certificates = Certificates::make("clerk-sync test CA");
    let listener = certificates.listener.clone();
    let node = tokio::task::spawn_blocking(move || PrivateNode::start_with(Some(&listener)))
        .await
        .unwrap();
    let tls_port = node.tls_port.unwrap();
    let url = amqps_url(&node, "localhost", certificates.ca_file());

    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(&url);
    settings.amqp.validate().unwrap();
    let topology = settings.amqp.topology();
    let app = spawn_app_with(settings).await;
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["rabbitmq_node"], format!("localhost:{tls_port}"));
    let mut posted = BTreeMap::new();
    for user in ["user_tls_a", "user_tls_b"] {
        let (id, response) = app
            .post_signed(user_event("user.updated", user, now() * 1000))
            .await;
        assert_eq!(response.status().as_u16(), 202);
        posted.insert(id, 1);
    }
    // The node's own view: the ingest's connection (and any other, such as
    // a short one that reads the node's version) is a TLS one.
    let connections = node.ctl_ok(&["list_connections", "--no-table-headers", "ssl", "port"]);
    let connections: Vec<&str> = connections
        .lines()
        .filter(|line| line.ends_with(&format!("\t{tls_port}")))
        .collect();
    assert!(!connections.is_empty(), "no connection listed");
    assert!(
        connections.iter().all(|line| line.starts_with("true\t")),
        "{connections:?}"
    );

    // A worker-side connection over TLS, by IP address too (the
    // certificate names 127.0.0.1), reads what the ingest queued.
    let by_ip = amqps_url(&node, "127.0.0.1", certificates.ca_file());
    let connection = amqp::connect(&SecretUrl::new(&by_ip), "test-worker")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(connection.status().connected());
    let _ = connection.close(200, "done".into()).await;
    assert_eq!(drain_at(&by_ip, &topology).await, posted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_ca_file_did_not_sign_is_refused_by_name() {
    let certificates = Certificates::make("clerk-sync test CA");
    let other = Certificates::make("someone else's CA");
    let listener = certificates.listener.clone();
    let node = tokio::task::spawn_blocking(move || PrivateNode::start_with(Some(&listener)))
        .await
        .unwrap();

    for url in [
        amqps_url(&node, "localhost", other.ca_file()),
        // No CA file: the system's CAs do not know the test's.
        node.amqps_url("localhost"),
    ] {
        let mut settings = test_settings();
        settings.amqp.url = SecretUrl::new(&url);
        let error = build_error(&settings).await;
        assert!(error.contains("TLS certificate is not trusted"), "{error}");
        assert!(error.contains("amqp.url (AMQP_URL)"), "{error}");
        assert!(error.contains("?cacertfile="), "{error}");
        assert!(
            !error.contains("guest:guest"),
            "the password is masked: {error}"
        );
        let worker = amqp::connect(&SecretUrl::new(&url), "test-worker")
            .await
            .unwrap_err();
        assert!(matches!(worker, AmqpError::TlsUntrusted { .. }), "{worker}");
    }

    let mut settings = test_settings();
    settings.amqp.url = SecretUrl::new(amqps_url(
        &node,
        "localhost",
        Path::new("/nonexistent/ca.pem"),
    ));
    let error = build_error(&settings).await;
    assert!(
        error.contains("setting amqp.url (AMQP_URL)")
            && error.contains("cannot read the CA file cacertfile=/nonexistent/ca.pem"),
        "{error}"
    );
    // Nothing reached the node: no topology was declared.
    assert_eq!(
        node.ctl_ok(&["list_exchanges", "name"])
            .matches("test_")
            .count(),
        0
    );
}

#[test]
fn the_binary_names_an_unreadable_ca_file_as_a_setting() {
    for (url, problem) in [
        (
            "amqps://guest:hunter2@localhost:1/%2f?cacertfile=/nonexistent/ca.pem",
            "cannot read the CA file cacertfile=/nonexistent/ca.pem",
        ),
        (
            "amqp://guest:hunter2@localhost:1/%2f?cacertfile=/etc/hostname",
            "cacertfile is only for amqps:// URLs",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-ingest"))
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("CLERK_WEBHOOK_SECRET", SECRET)
            .env("AMQP_URL", url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("setting amqp.url"), "{stderr}");
        assert!(stderr.contains(problem), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
