//! What the worker's tests share beyond clerk-sync-testkit: the worker's
//! command line, a running system (`system`), and dead letters.

pub use clerk_sync_testkit::fake_clerk;
pub mod in_process;
pub mod system;

pub use clerk_sync_testkit::broker::amqp_url;
pub use clerk_sync_testkit::database::TestDatabase;
pub use clerk_sync_testkit::topology::TestTopology;
use lapin::options::BasicGetOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

/// `clerk-sync-worker` with nothing but the settings that point it at
/// `database` and `broker`; add the arguments (and any setting).
pub fn worker_command(database: &TestDatabase, broker: &TestTopology) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_clerk-sync-worker"));
    command
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database.url.expose())
        .env("AMQP_URL", amqp_url())
        .env("CLERK_SYNC__AMQP__PREFIX", &broker.prefix)
        .env("CLERK_SYNC__AMQP__SHARDS", broker.shards.to_string())
        .env("CLERK_WEBHOOK_SECRET", clerk_sync_testkit::webhook::SECRET);
    command
}

// ---- Dead letters, for the dlq and status tests. ----

/// A message as the ingest published it and the worker then dead-lettered
/// it (same properties and headers, plus the worker's reason and count).
#[derive(Debug, Clone)]
pub struct DeadLetterSpec<'a> {
    pub svix_id: &'a str,
    pub body: &'a [u8],
    pub reason: &'a str,
    pub deliveries: i64,
    pub received_at_ms: u64,
}

/// The test topology's dead letters, read and written as the worker and
/// the operators see them.
pub trait DeadLetters {
    async fn take_dead_letters(&self) -> Vec<(Option<String>, Option<String>)>;
    async fn publish_dead_letter(&self, letter: &DeadLetterSpec<'_>);
}

impl DeadLetters for TestTopology {
    /// Take every dead letter: its svix-id and its `x-clerk-sync-error`.
    async fn take_dead_letters(&self) -> Vec<(Option<String>, Option<String>)> {
        let Ok(connection) =
            Connection::connect(&amqp_url(), ConnectionProperties::default()).await
        else {
            return Vec::new();
        };
        let Ok(channel) = connection.create_channel().await else {
            return Vec::new();
        };
        let queue = format!("{}.dead-letter", self.prefix);
        let mut taken = Vec::new();
        while let Ok(Some(message)) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
        {
            let properties = &message.delivery.properties;
            let error = properties.headers().as_ref().and_then(|h| {
                match h.inner().get("x-clerk-sync-error") {
                    Some(AMQPValue::LongString(text)) => {
                        Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
                    }
                    _ => None,
                }
            });
            taken.push((
                properties.message_id().as_ref().map(|id| id.to_string()),
                error,
            ));
        }
        taken
    }

    /// Publish `letter` to the dead-letter exchange, as the worker does.
    async fn publish_dead_letter(&self, letter: &DeadLetterSpec<'_>) {
        use lapin::BasicProperties;
        use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
        use lapin::types::LongString;
        let text = |s: &str| AMQPValue::LongString(LongString::from(s));
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut headers = FieldTable::default();
        headers
            .insert("svix-id".into(), text(letter.svix_id))
            .insert(
                "svix-timestamp".into(),
                text(&(letter.received_at_ms / 1000).to_string()),
            )
            .insert(
                "svix-signature".into(),
                text(&signature_of(
                    letter.svix_id,
                    letter.received_at_ms,
                    letter.body,
                )),
            )
            .insert(
                "clerk-sync-received-at-ms".into(),
                AMQPValue::Timestamp(letter.received_at_ms),
            )
            .insert("x-clerk-sync-error".into(), text(letter.reason))
            .insert(
                "x-clerk-sync-deliveries".into(),
                AMQPValue::LongLongInt(letter.deliveries),
            );
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(letter.svix_id.into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let confirmation = channel
            .basic_publish(
                format!("{}.dead-letter", self.prefix).as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                letter.body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirmation.is_ack(), "dead letter not confirmed");
        let _ = connection.close(200, "done".into()).await;
    }
}

/// The Svix signature of `body` as the ingest received it at
/// `received_at_ms`, signed with the tests' secret.
pub fn signature_of(svix_id: &str, received_at_ms: u64, body: &[u8]) -> String {
    let timestamp = i64::try_from(received_at_ms / 1000).unwrap();
    let headers = clerk_sync_testkit::webhook::signed_headers(
        clerk_sync_testkit::webhook::SECRET,
        svix_id,
        timestamp,
        body,
    )
    .unwrap();
    headers[2].1.clone()
}
