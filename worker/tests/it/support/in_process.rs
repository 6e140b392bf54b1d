//! The worker's transaction without processes or RabbitMQ: a migrated
//! database of the test's own and `apply_batch` called directly, for tests
//! of what one batch writes.

use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_store::apply::{Rules, apply_batch};
use clerk_sync_store::incoming::Incoming;
use clerk_sync_store::plan::Plan;
use clerk_sync_store::repository::database;
use clerk_sync_testkit::database::TestDatabase;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub struct Harness {
    pub connection: AsyncPgConnection,
    pub rules: Rules,
    database: TestDatabase,
}

impl Harness {
    /// A migrated database and the default rules (erasure on). Migrating
    /// needs a multi-threaded runtime: `#[tokio::test(flavor = "multi_thread")]`.
    pub async fn new() -> Self {
        let database = TestDatabase::created().await;
        database::migrate(&database.url).await.unwrap();
        Self {
            connection: database.connect().await,
            rules: Rules {
                erase_on_delete: true,
                ..Rules::default()
            },
            database,
        }
    }

    /// Another connection to the test's database.
    pub async fn connect(&self) -> AsyncPgConnection {
        self.database.connect().await
    }

    /// Apply `messages` as one batch, as the worker does.
    pub async fn apply(&mut self, messages: &[Incoming]) -> Plan {
        apply_batch(
            &mut self.connection,
            messages,
            &self.rules,
            1_800_000_000_000,
        )
        .await
        .unwrap()
    }

    /// One column of a query's rows, as text.
    pub async fn texts(&mut self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            v: String,
        }
        diesel::sql_query(sql)
            .load::<Row>(&mut self.connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|row| row.v)
            .collect()
    }
}

/// A message as the worker takes it from a shard queue.
pub fn message(svix_id: &str, body: Vec<u8>) -> Incoming {
    Incoming {
        svix_id: svix_id.to_owned(),
        svix_timestamp: Some("1700000000".to_owned()),
        svix_signature: Some(format!("v1,sig-of-{svix_id}")),
        received_at_ms: Some(1_700_000_000_000),
        event: ParsedEvent::parse(&body),
        body,
        delivery_count: 0,
        recorded_by: None,
    }
}

/// The outcomes a plan logged, by svix-id.
pub fn outcomes(plan: &Plan) -> Vec<(String, Outcome)> {
    plan.log
        .iter()
        .map(|row| (row.svix_id.clone(), row.outcome))
        .collect()
}
