//! The ingest as a least-privilege RabbitMQ user, which may only write to
//! the events exchange (configure "", write "^<prefix>\.events$", read ""),
//! in a vhost of the test's own: it checks the topology someone else
//! declared, publishes, and is refused everything else.

use crate::helpers::*;
use crate::other_broker::drain_at;
use clerk_sync_runtime::amqp;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_testkit::vhost::TestVhost;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
use std::collections::BTreeMap;

/// Settings for the ingest as a user that may only publish to the
/// events exchange of the test's prefix; and the user's password.
fn restricted(vhost: &mut TestVhost) -> (clerk_sync_ingest::settings::Settings, String) {
    let mut settings = test_settings();
    let write = format!("^{}\\.events$", settings.amqp.prefix.replace('.', "\\."));
    let (user, password) = vhost.add_user("", &write, "");
    settings.amqp.url = SecretUrl::new(vhost.url(&user, &password));
    (settings, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_that_may_only_publish_uses_the_declared_topology() {
    let mut vhost = TestVhost::new();
    let (settings, _) = restricted(&mut vhost);
    let topology = settings.amqp.topology();
    let admin = amqp::connect(&SecretUrl::new(vhost.admin_url()), "test-admin")
        .await
        .unwrap();
    amqp::declare_topology(&admin, &topology, settings.amqp.delivery_limit)
        .await
        .unwrap();

    let app = spawn_app_with(settings.clone()).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status().as_u16(), 200);
    let mut posted = BTreeMap::new();
    for user in ["user_a", "user_b", "user_c"] {
        let (id, response) = app
            .post_signed(user_event("user.updated", user, now() * 1000))
            .await;
        assert_eq!(response.status().as_u16(), 202);
        posted.insert(id, 1);
    }

    // The same user cannot read, purge, or publish anywhere else.
    let connection = amqp::connect(&settings.amqp.url, "test-restricted")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let shard = topology.shard_queues().next().unwrap();
    let purge = channel
        .queue_purge(shard.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(purge.contains("ACCESS_REFUSED"), "{purge}");
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let dead_letter = async {
        channel
            .basic_publish(
                topology.dead_letter_exchange().as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default().with_message_id("msg_forged".into()),
            )
            .await?
            .await
    }
    .await
    .unwrap_err()
    .to_string();
    assert!(dead_letter.contains("ACCESS_REFUSED"), "{dead_letter}");
    let _ = connection.close(200, "done".into()).await;

    // The three events, in their shard queues, and nothing in the dead letters.
    assert_eq!(drain_at(&vhost.admin_url(), &topology).await, posted);
    let _ = admin.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_that_may_not_declare_names_the_missing_topology() {
    let mut vhost = TestVhost::new();
    let (settings, password) = restricted(&mut vhost);
    let error = build_error(&settings).await;
    assert!(error.contains("ACCESS_REFUSED"), "{error}");
    assert!(
        error.contains("refused to let this user declare the topology"),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "exchange '{}.events' does not exist",
            settings.amqp.prefix
        )),
        "{error}"
    );
    assert!(error.contains("configure permission"), "{error}");
    assert!(error.contains("clerk-sync-worker migrate"), "{error}");
    assert!(!error.contains(&password), "{error}");

    // Nothing was declared: the exchange is still missing for the admin too.
    let admin = amqp::connect(&SecretUrl::new(vhost.admin_url()), "test-admin")
        .await
        .unwrap();
    let missing = clerk_sync_runtime::topology_check::missing(&admin, &settings.amqp.topology())
        .await
        .unwrap();
    assert_eq!(
        missing,
        Some(format!("exchange '{}.events'", settings.amqp.prefix))
    );
    let _ = admin.close(200, "done".into()).await;
}
