//! `clerk_sync.users`: each user's sync state (the newest version applied,
//! roles, profile, deleted), locked in sorted order by every transaction
//! that writes a user's rows; and the `NOTIFY` sent for a changed user.

use super::prepared::prepared;
use clerk_sync_domain::projection::{Profile, UserState};
use clerk_sync_domain::roles::Role;
use clerk_sync_domain::version::{Rank, Version};
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;

/// The channel the worker notifies with a Clerk user id after each commit
/// that changed that user's rows.
pub const NOTIFY_CHANNEL: &str = "clerk_sync_user";

#[derive(diesel::QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    clerk_user_id: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    version_ms: Option<i64>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    version_rank: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    version_svix_id: Option<String>,
    #[diesel(sql_type = Bool)]
    deleted: bool,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    profile: Option<String>,
}

impl StateRow {
    fn into_state(self) -> (String, UserState) {
        let newest = match (
            self.version_ms,
            self.version_rank.and_then(Rank::from_i16),
            self.version_svix_id,
        ) {
            (Some(at_ms), Some(rank), Some(svix_id)) => Some(Version {
                at_ms,
                rank,
                svix_id,
            }),
            _ => None,
        };
        let state = UserState {
            newest,
            deleted: self.deleted,
            roles: self.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            profile: self
                .profile
                .and_then(|p| serde_json::from_str::<Profile>(&p).ok()),
        };
        (self.clerk_user_id, state)
    }
}

/// Lock the sync states of those of `users` that have one, in sorted order
/// so that concurrent transactions never deadlock. A user without one is
/// new: its state is created by [`save_users`], with its first values.
pub async fn lock_users(
    connection: &AsyncPgConnection,
    users: &[String],
) -> Result<BTreeMap<String, UserState>, Error> {
    let mut sorted = users.to_vec();
    sorted.sort();
    sorted.dedup();
    user_states(connection, &sorted, true).await
}

/// The sync state of those of `users` that have one; `lock` takes their row
/// locks (in sorted order).
pub async fn user_states(
    mut connection: &AsyncPgConnection,
    users: &[String],
    lock: bool,
) -> Result<BTreeMap<String, UserState>, Error> {
    let sql = format!(
        "SELECT clerk_user_id, version_ms, version_rank, version_svix_id, deleted, roles, profile::text AS profile \
         FROM clerk_sync.users WHERE clerk_user_id = ANY($1) ORDER BY clerk_user_id{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<StateRow> = prepared(diesel::sql_query(sql).bind::<Array<Text>, _>(users))
        .load(&mut connection)
        .await?;
    Ok(rows.into_iter().map(StateRow::into_state).collect())
}

/// Write `users`' new states: update those `locked` holds (the states
/// [`lock_users`] returned), and create the others, in sorted order. One
/// round trip.
///
/// A state is created with its first values rather than created empty to
/// be locked and then updated: for a new user (a sign-up) that is one row
/// version and one entry in each index instead of two, and no lock record.
/// Fails when another transaction created one of them after they were
/// locked ([`must_rerun`]): roll back and run the transaction again; it
/// then finds that state and locks it.
///
/// Lock order, for every transaction that writes states: the existing
/// states (sorted, [`lock_users`]), the e-mail addresses (sorted), the new
/// states (sorted, here), then rows. So a transaction creating a state
/// waits only for one that created it first and holds nothing it needs.
pub async fn save_users(
    connection: &AsyncPgConnection,
    users: &BTreeMap<String, UserState>,
    locked: &BTreeMap<String, UserState>,
) -> Result<(), Error> {
    let (existing, new): (BTreeMap<_, _>, BTreeMap<_, _>) = users
        .iter()
        .partition(|(user, _)| locked.contains_key(*user));
    let (_, created) = futures::try_join!(update(connection, &existing), create(connection, &new))?;
    if created < new.len() {
        return Err(created_meanwhile());
    }
    Ok(())
}

/// The error of [`save_users`] when another transaction created a state
/// this one found missing: the transaction must run again.
fn created_meanwhile() -> Error {
    Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(String::from(
            "a user's sync state was created by another transaction meanwhile",
        )),
    )
}

/// Whether `error` means the transaction must roll back and run again: a
/// state [`save_users`] was to create was created meanwhile, or
/// PostgreSQL's own serialization failure.
pub fn must_rerun(error: &Error) -> bool {
    matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
    )
}

/// The states' columns, one array each, in the order of the users.
struct Columns<'a> {
    ids: Vec<&'a String>,
    version_ms: Vec<Option<i64>>,
    version_rank: Vec<Option<i64>>,
    version_svix_id: Vec<Option<&'a str>>,
    deleted: Vec<bool>,
    /// Comma-separated.
    roles: Vec<String>,
    /// JSON text.
    profiles: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    fn of(users: &BTreeMap<&'a String, &'a UserState>) -> Self {
        let states = || users.values();
        Self {
            ids: users.keys().copied().collect(),
            version_ms: states()
                .map(|s| s.newest.as_ref().map(|v| v.at_ms))
                .collect(),
            version_rank: states()
                .map(|s| s.newest.as_ref().map(|v| i64::from(v.rank.as_i16())))
                .collect(),
            version_svix_id: states()
                .map(|s| s.newest.as_ref().map(|v| v.svix_id.as_str()))
                .collect(),
            deleted: states().map(|s| s.deleted).collect(),
            roles: states()
                .map(|s| {
                    let roles: Vec<&str> = s.roles.iter().map(|r| r.as_str()).collect();
                    roles.join(",")
                })
                .collect(),
            profiles: states()
                .map(|s| {
                    s.profile
                        .as_ref()
                        .and_then(|p| serde_json::to_string(p).ok())
                })
                .collect(),
        }
    }

    /// Run `statement`, which reads the columns as [`COLUMNS`], with them
    /// bound; the rows it changed.
    async fn execute(
        self,
        mut connection: &AsyncPgConnection,
        statement: String,
    ) -> Result<usize, Error> {
        prepared(
            diesel::sql_query(statement)
                .bind::<Array<Text>, _>(self.ids)
                .bind::<Array<Nullable<BigInt>>, _>(self.version_ms)
                .bind::<Array<Nullable<BigInt>>, _>(self.version_rank)
                .bind::<Array<Nullable<Text>>, _>(self.version_svix_id)
                .bind::<Array<Bool>, _>(self.deleted)
                .bind::<Array<Text>, _>(self.roles)
                .bind::<Array<Nullable<Text>>, _>(self.profiles),
        )
        .execute(&mut connection)
        .await
    }
}

/// The rows of the bound [`Columns`].
const COLUMNS: &str = "unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[], $6::text[], $7::text[]) \
     AS v(id, ms, rank, svix_id, deleted, roles, profile)";

/// The roles column from its comma-separated form.
const ROLES: &str =
    "CASE WHEN v.roles = '' THEN '{}'::text[] ELSE string_to_array(v.roles, ',') END";

async fn update(
    connection: &AsyncPgConnection,
    users: &BTreeMap<&String, &UserState>,
) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    Columns::of(users)
        .execute(
            connection,
            format!(
                "UPDATE clerk_sync.users AS u SET version_ms = v.ms, version_rank = v.rank::smallint, \
                   version_svix_id = v.svix_id, deleted = v.deleted, roles = {ROLES}, \
                   profile = v.profile::jsonb, updated_at = now() \
                 FROM {COLUMNS} WHERE u.clerk_user_id = v.id"
            ),
        )
        .await
        .map(drop)
}

/// Create the states of `users`, in sorted order; how many were created
/// (fewer when another transaction created one first).
async fn create(
    connection: &AsyncPgConnection,
    users: &BTreeMap<&String, &UserState>,
) -> Result<usize, Error> {
    if users.is_empty() {
        return Ok(0);
    }
    Columns::of(users)
        .execute(
            connection,
            format!(
                "INSERT INTO clerk_sync.users AS u \
                   (clerk_user_id, version_ms, version_rank, version_svix_id, deleted, roles, profile) \
                 SELECT v.id, v.ms, v.rank::smallint, v.svix_id, v.deleted, {ROLES}, v.profile::jsonb \
                 FROM {COLUMNS} ORDER BY v.id ON CONFLICT DO NOTHING"
            ),
        )
        .await
}

/// Queue a `NOTIFY clerk_sync_user, '<user id>'` per user; PostgreSQL sends
/// them when the transaction commits, and drops them if it rolls back.
pub async fn notify(mut connection: &AsyncPgConnection, users: &[String]) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    prepared(
        diesel::sql_query("SELECT pg_notify($1, u) FROM unnest($2::text[]) AS u")
            .bind::<Text, _>(NOTIFY_CHANNEL)
            .bind::<Array<Text>, _>(users),
    )
    .execute(&mut connection)
    .await
    .map(drop)
}

/// Of `users`, those whose logged events must be erased now: deleted, and
/// either `erase_on_delete` is on or they were erased before (an event of
/// theirs is erased: `forget`, or a deletion while erasure was on), so an
/// erased user stays erased whatever the setting says today.
pub async fn to_erase(
    mut connection: &AsyncPgConnection,
    users: &[String],
    erase_on_delete: bool,
) -> Result<Vec<String>, Error> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(diesel::QueryableByName)]
    struct Erasable {
        #[diesel(sql_type = Text)]
        clerk_user_id: String,
    }
    let found: Vec<Erasable> = prepared(
        diesel::sql_query(
            "SELECT u.clerk_user_id FROM clerk_sync.users u \
         WHERE u.clerk_user_id = ANY($1) AND u.deleted AND ($2 OR EXISTS ( \
             SELECT 1 FROM clerk_sync.events e \
             WHERE e.clerk_user_id = u.clerk_user_id AND e.payload ? 'erased_at')) \
         ORDER BY u.clerk_user_id",
        )
        .bind::<Array<Text>, _>(users)
        .bind::<Bool, _>(erase_on_delete),
    )
    .load(&mut connection)
    .await?;
    Ok(found.into_iter().map(|e| e.clerk_user_id).collect())
}

/// Every user clerk-sync holds and has not deleted: a sync state with a
/// version, or a Student or Instructor row (an adopted database), sorted.
pub async fn held(connection: &mut AsyncPgConnection) -> Result<Vec<String>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        id: String,
    }
    let ids: Vec<Id> = diesel::sql_query(
        r#"SELECT clerk_user_id AS id FROM clerk_sync.users WHERE NOT deleted AND version_ms IS NOT NULL
           UNION SELECT "clerkId" FROM "Student"
           UNION SELECT "clerkId" FROM "Instructor"
           EXCEPT SELECT clerk_user_id FROM clerk_sync.users WHERE deleted
           ORDER BY 1"#,
    )
    .load(connection)
    .await?;
    Ok(ids.into_iter().map(|row| row.id).collect())
}

/// How many users, tombstones, Student and Instructor rows there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub struct Counts {
    #[diesel(sql_type = BigInt)]
    pub users: i64,
    #[diesel(sql_type = BigInt)]
    pub tombstones: i64,
    #[diesel(sql_type = BigInt)]
    pub students: i64,
    #[diesel(sql_type = BigInt)]
    pub instructors: i64,
}

pub async fn counts(connection: &mut AsyncPgConnection) -> Result<Counts, Error> {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM clerk_sync.users) AS users, \
                (SELECT count(*) FROM clerk_sync.users WHERE deleted) AS tombstones, \
                (SELECT count(*) FROM \"Student\") AS students, \
                (SELECT count(*) FROM \"Instructor\") AS instructors",
    )
    .get_result(connection)
    .await
}
