//! How batches form: a lone event is applied at once, whatever
//! `worker.linger_ms` says (a batch waits to fill only while another batch
//! is being applied), and events sent together all land. And how they are
//! sent: prepared statements, planned with their values.

use crate::support::TestDatabase;
use crate::support::system::{System, user_event};
use clerk_sync_store::repository::database;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_event_does_not_wait_for_the_linger() {
    // A linger far longer than the test allows: an event that waited for it
    // would not be logged in time.
    let system = System::start(&[("CLERK_SYNC__WORKER__LINGER_MS", "30000")]).await;
    system.wait_until_ready().await;
    for (i, user) in ["user_lone_1", "user_lone_2"].into_iter().enumerate() {
        let body = user_event("user.created", user, T0, None, Some("Lone"), None);
        assert_eq!(system.send(&format!("msg_lone_{i}"), &body).await, 202);
        system
            .wait_for_log(i as i64 + 1, Duration::from_secs(10))
            .await;
    }

    // A burst while batches are being applied: every event lands, well
    // before the linger would have let a waiting batch go.
    for i in 0..50 {
        let body = user_event(
            "user.created",
            &format!("user_burst_{i}"),
            T0,
            None,
            Some("B"),
            None,
        );
        assert_eq!(system.send(&format!("msg_burst_{i}"), &body).await, 202);
    }
    system.wait_for_log(52, Duration::from_secs(20)).await;
}

/// The batch statements are prepared once per connection; every connection
/// clerk-sync opens has PostgreSQL plan each execution with its values,
/// never with the generic plan it would otherwise switch to.
#[tokio::test]
async fn connections_plan_every_execution_with_its_values() {
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        plan_cache_mode: String,
    }
    let db = TestDatabase::created().await;
    let mut connection = database::connect(&db.url).await.unwrap();
    let mode: Mode = diesel::sql_query("SHOW plan_cache_mode")
        .get_result(&mut connection)
        .await
        .unwrap();
    assert_eq!(mode.plan_cache_mode, "force_custom_plan");
}
