//! `worker.verify_signatures` (on by default): the worker checks each
//! message's stored Svix signature before applying it, so a message put on
//! a queue by anyone but the ingest (a forged event, a compromised
//! publisher) is logged `failed` with the reason, and never applied, not
//! even by replay.

use crate::support::system::{System, user_event};
use crate::support::{TestDatabase, TestTopology, amqp_url, worker_command};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// Publish `body` straight to `user`'s shard queue, as someone holding the
/// queue's write permission could, with these Svix headers.
async fn publish_directly(
    system: &System,
    svix_id: &str,
    user: &str,
    body: &[u8],
    signature: Option<&str>,
) {
    let topology = system.broker.topology();
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    let mut headers = FieldTable::default();
    headers.insert("svix-id".into(), text(svix_id));
    if let Some(signature) = signature {
        headers
            .insert("svix-timestamp".into(), text(&(T0 / 1000).to_string()))
            .insert("svix-signature".into(), text(signature));
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(svix_id.into())
        .with_headers(headers);
    channel
        .basic_publish(
            topology.exchange().as_str().into(),
            topology.queue_for(user).as_str().into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "done".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_signed_with_a_configured_secret_is_logged_failed_and_never_applied() {
    let system = System::start(&[]).await;
    let forged = user_event(
        "user.created",
        "user_forged",
        T0,
        None,
        Some("Mallory"),
        Some("instructor"),
    );
    publish_directly(
        &system,
        "msg_forged",
        "user_forged",
        &forged,
        Some("v1,Zm9yZ2VkIHNpZ25hdHVyZQ=="),
    )
    .await;
    let unsigned = user_event("user.created", "user_unsigned", T0, None, Some("Eve"), None);
    publish_directly(&system, "msg_unsigned", "user_unsigned", &unsigned, None).await;
    let genuine = user_event("user.created", "user_genuine", T0, None, Some("Ada"), None);
    assert_eq!(system.send("msg_genuine", &genuine).await, 202);
    system.wait_for_log(3, WAIT).await;

    let mut outcomes = system.outcomes().await;
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            (
                "msg_forged".to_owned(),
                "failed".to_owned(),
                Some("signature refused: signature does not match any configured secret".to_owned())
            ),
            ("msg_genuine".to_owned(), "applied".to_owned(), None),
            (
                "msg_unsigned".to_owned(),
                "failed".to_owned(),
                Some("signature refused: the message carries no svix-timestamp and svix-signature headers".to_owned())
            ),
        ]
    );
    let students: Vec<String> = system
        .rows("Student")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(students, ["user_genuine"]);
    assert!(system.rows("Instructor").await.is_empty());
    let metrics = system.worker_metrics().await;
    assert!(
        metrics.contains(
            r#"clerk_sync_worker_events_total{event_type="user.created",outcome="failed"} 2"#
        ),
        "{metrics}"
    );

    // verify-log counts both as failures: neither was recorded by clerk-sync.
    let audit = system.cli(&["verify-log", "--json"], &[]).await;
    assert_eq!(audit.code, Some(3), "{audit:?}");
    let report = audit.json();
    assert_eq!(
        [&report["verified"], &report["unsigned"], &report["failed"]],
        [1, 0, 2],
        "{report}"
    );

    // Replay rebuilds from the log: the refused events stay refused.
    let replay = system.cli(&["replay"], &[]).await;
    assert_eq!(replay.code, Some(0), "{replay:?}");
    let students: Vec<String> = system
        .rows("Student")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(students, ["user_genuine"]);
    assert!(system.rows("Instructor").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verification_off_a_message_is_applied_as_it_comes() {
    let system = System::start(&[("CLERK_SYNC__WORKER__VERIFY_SIGNATURES", "false")]).await;
    let unsigned = user_event("user.created", "user_unsigned", T0, None, Some("Eve"), None);
    publish_directly(&system, "msg_unsigned", "user_unsigned", &unsigned, None).await;
    system.wait_for_log(1, WAIT).await;
    assert_eq!(
        system.outcomes().await,
        [("msg_unsigned".to_owned(), "applied".to_owned(), None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_the_webhook_secret_is_refused_naming_both_settings() {
    let database = TestDatabase::named_only();
    let broker = TestTopology::new(2);
    let output = worker_command(&database, &broker)
        .arg("run")
        .env_remove("CLERK_WEBHOOK_SECRET")
        .env("CLERK_SYNC__WORKER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("setting webhook.secrets (CLERK_WEBHOOK_SECRET or CLERK_SYNC__WEBHOOK__SECRETS): missing: worker.verify_signatures (on by default)"),
        "{stderr}"
    );
    assert!(
        !broker.queues_exist().await,
        "refused before touching RabbitMQ"
    );
}
