//! Where an unfinished `reconcile` run stands:
//! `clerk_sync.reconcile_checkpoint` (one row while a run is unfinished:
//! when it started, the offset in Clerk's list of its next page) and
//! `clerk_sync.reconcile_listed` (the users it has listed so far). One run
//! at a time, by a session advisory lock.

use chrono::{DateTime, Utc};
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// The advisory lock's keys: clerk-sync's class ("CLKR"), and 1 for
/// reconcile.
const LOCK: (i32, i32) = (0x434c_4b52, 1);

#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct Checkpoint {
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    /// The offset in Clerk's user list of the next page to read.
    #[diesel(sql_type = BigInt)]
    pub next_offset: i64,
}

/// Take the lock that lets one `reconcile` run at a time, for as long as
/// this connection lasts; false when another session holds it.
pub async fn try_lock(connection: &mut AsyncPgConnection) -> Result<bool, Error> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS locked")
        .bind::<Integer, _>(LOCK.0)
        .bind::<Integer, _>(LOCK.1)
        .get_result(connection)
        .await?;
    Ok(row.locked)
}

/// The unfinished run's checkpoint, if there is one.
pub async fn checkpoint(connection: &mut AsyncPgConnection) -> Result<Option<Checkpoint>, Error> {
    let rows: Vec<Checkpoint> =
        diesel::sql_query("SELECT started_at, next_offset FROM clerk_sync.reconcile_checkpoint")
            .load(connection)
            .await?;
    Ok(rows.into_iter().next())
}

/// Start a run from the top of the list, forgetting any unfinished one.
pub async fn start(connection: &mut AsyncPgConnection) -> Result<Checkpoint, Error> {
    connection
        .transaction(async |connection| {
            forget(connection).await?;
            diesel::sql_query(
                "INSERT INTO clerk_sync.reconcile_checkpoint DEFAULT VALUES \
                 RETURNING started_at, next_offset",
            )
            .get_result(connection)
            .await
        })
        .await
}

/// A page was checked (and its fixes recorded): its users were listed, and
/// the next page starts at `next_offset`.
pub async fn advance(
    connection: &mut AsyncPgConnection,
    next_offset: i64,
    listed: &[String],
) -> Result<(), Error> {
    connection
        .transaction(async |connection| {
            diesel::sql_query(
                "INSERT INTO clerk_sync.reconcile_listed (clerk_user_id) \
                 SELECT u FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING",
            )
            .bind::<Array<Text>, _>(listed)
            .execute(connection)
            .await?;
            diesel::sql_query(
                "UPDATE clerk_sync.reconcile_checkpoint SET next_offset = $1, updated_at = now()",
            )
            .bind::<BigInt, _>(next_offset)
            .execute(connection)
            .await
            .map(drop)
        })
        .await
}

/// Every user the unfinished run has listed.
pub async fn listed(connection: &mut AsyncPgConnection) -> Result<Vec<String>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Listed {
        #[diesel(sql_type = Text)]
        clerk_user_id: String,
    }
    let rows: Vec<Listed> =
        diesel::sql_query("SELECT clerk_user_id FROM clerk_sync.reconcile_listed")
            .load(connection)
            .await?;
    Ok(rows.into_iter().map(|row| row.clerk_user_id).collect())
}

/// The run is over (or started over): no checkpoint, nothing listed.
pub async fn forget(connection: &mut AsyncPgConnection) -> Result<(), Error> {
    connection
        .batch_execute(
            "DELETE FROM clerk_sync.reconcile_checkpoint; DELETE FROM clerk_sync.reconcile_listed",
        )
        .await
}
