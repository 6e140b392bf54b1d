//! A PostgreSQL database of the test's own on the local server, dropped
//! when the test ends (even on panic).

use crate::cleanup::{blocking, unique};
use clerk_sync_runtime::secret_url::SecretUrl;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Duration;

const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: SecretUrl,
}

impl TestDatabase {
    /// A name only: the code under test creates the database.
    pub fn named_only() -> Self {
        let name = unique("db");
        let url = SecretUrl::new(format!("postgres://postgres@127.0.0.1:5432/{name}"));
        Self { name, url }
    }

    /// Created, empty.
    pub async fn created() -> Self {
        let database = Self::named_only();
        let mut server = AsyncPgConnection::establish(SERVER_URL)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {SERVER_URL}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{}\"", database.name))
            .execute(&mut server)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE: {e}"));
        database
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(self.url.expose())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    /// Drop the database, also when a process the test killed had sent
    /// `CREATE DATABASE` for it: PostgreSQL completes that statement after
    /// its client is gone, so such a statement is stopped first, and the
    /// drop repeated until neither the database nor the statement is left.
    fn drop(&mut self) {
        let name = self.name.clone();
        blocking(async move {
            let Ok(mut server) = AsyncPgConnection::establish(SERVER_URL).await else {
                return;
            };
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            for _ in 0..50 {
                let _ = diesel::sql_query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE pid <> pg_backend_pid() AND position($1 in query) > 0",
                )
                .bind::<Text, _>(&name)
                .execute(&mut server)
                .await;
                let _ = diesel::sql_query(&drop).execute(&mut server).await;
                let left: Result<Left, _> = diesel::sql_query(
                    "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) \
                          + (SELECT count(*) FROM pg_stat_activity \
                             WHERE pid <> pg_backend_pid() AND position($1 in query) > 0) AS n",
                )
                .bind::<Text, _>(&name)
                .get_result(&mut server)
                .await;
                if left.is_ok_and(|left| left.n == 0) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

#[derive(diesel::QueryableByName)]
struct Left {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
