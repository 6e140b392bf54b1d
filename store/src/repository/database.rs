//! PostgreSQL: creating the database, running the embedded migrations, and
//! the connection pool. Connections go through diesel-async (no libpq).

use anyhow::Context;
use clerk_sync_runtime::secret_url::SecretUrl;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// `migrations/` at the root of the workspace, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Held while migrating, so several processes can run `migrate` at once.
const MIGRATION_LOCK: i64 = 0x636c_6572_6b5f_7379; // "clerk_sy"

pub async fn connect(url: &SecretUrl) -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(url.expose())
        .await
        .with_context(|| format!("PostgreSQL at {url} is unreachable"))
}

/// Create the database `url` names if it does not exist, connecting to the
/// server's `postgres` database to do it. Safe to race with another process.
pub async fn create_if_missing(url: &SecretUrl) -> anyhow::Result<()> {
    let mut parsed = url
        .parsed()
        .context("setting database.url (DATABASE_URL): not a valid URL")?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    anyhow::ensure!(
        !name.is_empty(),
        "setting database.url (DATABASE_URL): names no database"
    );
    parsed.set_path("/postgres");
    let server = SecretUrl::new(parsed.to_string());
    let mut connection = connect(&server).await?;

    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        found: i64,
    }
    let found: Found =
        diesel::sql_query("SELECT count(*) AS found FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .get_result(&mut connection)
            .await
            .context("cannot list PostgreSQL's databases")?;
    if found.found > 0 {
        return Ok(());
    }
    let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match diesel::sql_query(create).execute(&mut connection).await {
        Ok(_) => {
            tracing::info!(database = %name, "database created");
            Ok(())
        }
        // Another process created it first (duplicate_database, or the
        // unique index of pg_database when both raced the catalog).
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists")
                || info.message().contains("pg_database_datname_index") =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create database {name}")),
    }
}

/// Run pending migrations under an advisory lock. Needs a multi-threaded
/// tokio runtime (diesel's migration harness is synchronous).
pub async fn migrate(url: &SecretUrl) -> anyhow::Result<()> {
    let mut connection = connect(url).await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(&mut connection)
        .await
        .context("cannot take the migration lock")?;
    let mut harness = AsyncMigrationHarness::new(connection);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("running migrations failed: {e}"));
    let mut connection = harness.into_inner();
    // The lock also ends with the session.
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(&mut connection)
        .await;
    let applied = applied?;
    tracing::info!(applied = ?applied, "database migrations up to date");
    Ok(())
}
