//! PostgreSQL: creating the database, running the embedded migrations, and
//! connecting. Every connection of the worker binary (service and
//! commands) is made by [`connect`]: tokio-postgres under diesel-async (no
//! libpq), with TLS as `DATABASE_URL`'s `sslmode` asks (see `sslmode`,
//! `tls`).

use super::sslmode::TlsRequest;
use super::tls::{self, HandshakeError, MakeRustls};
use anyhow::Context;
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_runtime::settings::SettingsError;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};

/// `migrations/` at the root of the workspace, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Held while migrating, so several processes can run `migrate` at once.
const MIGRATION_LOCK: i64 = 0x636c_6572_6b5f_7379; // "clerk_sy"

/// A TLS handshake that failed for a reason waiting will not cure: the
/// server's certificate, or a server without TLS where TLS is required.
/// Not a `diesel::ConnectionError`, so `run` stops instead of waiting.
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL at {url}: TLS failed (sslmode={mode} in database.url / DATABASE_URL): {reason}"
)]
pub struct TlsRefused {
    url: String,
    mode: &'static str,
    reason: String,
}

/// Connect as `url` says, TLS included. A bad `sslmode`/`sslrootcert` is a
/// [`SettingsError`]; a server that does not answer, or answers no (its
/// `pg_hba.conf`, a wrong password), a `diesel::ConnectionError` ("is
/// unreachable", "refused the connection"; `run` waits for either); a
/// failed TLS check a [`TlsRefused`]. Each one line, with the
/// password masked.
pub async fn connect(url: &SecretUrl) -> anyhow::Result<AsyncPgConnection> {
    let request = TlsRequest::of(url)?;
    let config: tokio_postgres::Config =
        request
            .client_url
            .expose()
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                SettingsError::invalid("database.url", format!("not a PostgreSQL URL: {e}"))
            })?;
    let tls = tls::client_config(&request.check)
        .map_err(|e| SettingsError::invalid("database.url", e.to_string()))?;
    let connected = match tls {
        None => establish(&config, NoTls).await,
        Some(tls) => establish(&config, MakeRustls(tls)).await,
    };
    match connected {
        Ok(connection) => Ok(connection),
        Err(Failure::Tls(reason)) => Err(TlsRefused {
            url: url.redacted(),
            mode: request.mode.name(),
            reason,
        }
        .into()),
        Err(Failure::Unreachable(e)) => {
            Err(e).with_context(|| format!("PostgreSQL at {url} is unreachable"))
        }
        Err(Failure::Refused(e)) => {
            Err(e).with_context(|| format!("PostgreSQL at {url} refused the connection"))
        }
    }
}

enum Failure {
    Tls(String),
    /// No answer: down, or not listening there.
    Unreachable(diesel::ConnectionError),
    /// The server answered no (`pg_hba.conf`, the password, starting up).
    Refused(diesel::ConnectionError),
}

async fn establish<T>(config: &tokio_postgres::Config, tls: T) -> Result<AsyncPgConnection, Failure>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await.map_err(failure)?;
    let mut connection = AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(Failure::Unreachable)?;
    connection
        .batch_execute(super::prepared::PLAN_CACHE_MODE)
        .await
        .map_err(|e| Failure::Refused(diesel::ConnectionError::CouldntSetupConfiguration(e)))?;
    Ok(connection)
}

/// Which of the three a connection error is, with its text on one line.
fn failure(error: tokio_postgres::Error) -> Failure {
    // tokio-postgres shows only the kind ("db error", "error performing
    // TLS handshake"): add what the server said, or the causes.
    let line = match error.as_db_error() {
        Some(said) => format!("{}: {}", said.severity(), said.message()),
        None => {
            let mut line = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                line = format!("{line}: {inner}");
                cause = inner.source();
            }
            line
        }
    }
    .replace('\n', "; ");
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        match inner.downcast_ref::<HandshakeError>() {
            Some(HandshakeError::Refused(refused)) => return Failure::Tls(refused.to_string()),
            Some(HandshakeError::Io(_)) => {
                return Failure::Unreachable(diesel::ConnectionError::BadConnection(line));
            }
            None => cause = inner.source(),
        }
    }
    // tokio-postgres's own TLS errors ("server does not support TLS", a
    // host name TLS cannot check) have no type of their own.
    match line.strip_prefix("error performing TLS handshake: ") {
        Some(reason) => Failure::Tls(reason.to_owned()),
        None if error.as_db_error().is_some() => {
            Failure::Refused(diesel::ConnectionError::BadConnection(line))
        }
        None => Failure::Unreachable(diesel::ConnectionError::BadConnection(line)),
    }
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

/// The embedded migrations not applied to the database yet: why a worker
/// that does not migrate (`worker.migrate_on_start = false`) waits.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database is not migrated yet ({pending} of {total} migrations pending; clerk-sync-worker migrate applies them)"
)]
pub struct NotMigrated {
    pub pending: usize,
    pub total: usize,
}

/// Check, without changing anything (so a role without DDL rights can),
/// that every embedded migration was applied; [`NotMigrated`] if not.
pub async fn ensure_migrated(url: &SecretUrl) -> anyhow::Result<()> {
    use diesel::migration::MigrationSource;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let embedded: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("reading the embedded migrations failed: {e}"))?
        .iter()
        .map(|migration| migration.name().version().to_string())
        .collect();
    let mut connection = connect(url).await?;
    let applied: Vec<String> =
        match diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Applied>(&mut connection)
            .await
        {
            Ok(rows) => rows.into_iter().map(|row| row.version).collect(),
            // undefined_table: no migration ever ran.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("does not exist") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e).context("cannot read which migrations were applied"),
        };
    let pending = embedded.iter().filter(|v| !applied.contains(v)).count();
    if pending > 0 {
        return Err(NotMigrated {
            pending,
            total: embedded.len(),
        }
        .into());
    }
    Ok(())
}
