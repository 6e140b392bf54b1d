//! SQL against the projection tables and `clerk_sync`. Every function takes
//! the caller's connection and never opens or commits a transaction: the
//! caller owns the transaction boundary.

pub mod emails;
pub mod replay;

use crate::plan::LogRow;
use clerk_sync_domain::ids::row_id;
use clerk_sync_domain::privacy;
use clerk_sync_domain::projection::{Profile, UserState};
use clerk_sync_domain::roles::Role;
use clerk_sync_domain::version::{Rank, Version};
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::{BTreeMap, HashSet};

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

/// Lock the sync state of `users` (creating empty ones), in sorted order so
/// that concurrent workers never deadlock.
pub async fn lock_users(
    connection: &mut AsyncPgConnection,
    users: &[String],
) -> Result<BTreeMap<String, UserState>, Error> {
    let mut sorted = users.to_vec();
    sorted.sort();
    sorted.dedup();
    diesel::sql_query(
        "INSERT INTO clerk_sync.users (clerk_user_id) \
         SELECT u FROM unnest($1::text[]) AS u ORDER BY u ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&sorted)
    .execute(connection)
    .await?;
    user_states(connection, &sorted, true).await
}

/// The sync state of those of `users` that have one; `lock` takes their row
/// locks (in sorted order).
pub async fn user_states(
    connection: &mut AsyncPgConnection,
    users: &[String],
    lock: bool,
) -> Result<BTreeMap<String, UserState>, Error> {
    let sql = format!(
        "SELECT clerk_user_id, version_ms, version_rank, version_svix_id, deleted, roles, profile::text AS profile \
         FROM clerk_sync.users WHERE clerk_user_id = ANY($1) ORDER BY clerk_user_id{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows: Vec<StateRow> = diesel::sql_query(sql)
        .bind::<Array<Text>, _>(users)
        .load(connection)
        .await?;
    Ok(rows.into_iter().map(StateRow::into_state).collect())
}

/// Which of `svix_ids` the log already holds.
pub async fn logged(
    connection: &mut AsyncPgConnection,
    svix_ids: &[String],
) -> Result<HashSet<String>, Error> {
    use crate::schema::events;
    use diesel::{ExpressionMethods, QueryDsl};
    let found: Vec<String> = events::table
        .select(events::svix_id)
        .filter(events::svix_id.eq_any(svix_ids))
        .load(connection)
        .await?;
    Ok(found.into_iter().collect())
}

pub async fn insert_log(connection: &mut AsyncPgConnection, rows: &[LogRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&LogRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO clerk_sync.events \
           (svix_id, event_type, clerk_user_id, occurred_at, received_at, payload, outcome, error) \
         SELECT id, type, usr, to_timestamp(occurred / 1000.0), to_timestamp(received / 1000.0), payload::jsonb, outcome, error \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[]) \
           AS r(id, type, usr, occurred, received, payload, outcome, error) \
         ON CONFLICT (svix_id) DO NOTHING",
    )
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.svix_id.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.event_type.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.clerk_user_id.clone()))
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.occurred_at_ms).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.received_at_ms).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.payload.to_string()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.error.clone()))
    .execute(connection)
    .await
    .map(drop)
}

pub async fn save_users(
    connection: &mut AsyncPgConnection,
    users: &BTreeMap<String, UserState>,
) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<&String> = users.keys().collect();
    let version = |f: &dyn Fn(&Version) -> i64| {
        users
            .values()
            .map(|s| s.newest.as_ref().map(f))
            .collect::<Vec<_>>()
    };
    let roles: Vec<String> = users
        .values()
        .map(|s| {
            s.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let profiles: Vec<Option<String>> = users
        .values()
        .map(|s| {
            s.profile
                .as_ref()
                .and_then(|p| serde_json::to_string(p).ok())
        })
        .collect();
    diesel::sql_query(
        "UPDATE clerk_sync.users AS u SET version_ms = v.ms, version_rank = v.rank::smallint, \
           version_svix_id = v.svix_id, deleted = v.deleted, \
           roles = CASE WHEN v.roles = '' THEN '{}'::text[] ELSE string_to_array(v.roles, ',') END, \
           profile = v.profile::jsonb, updated_at = now() \
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[], $6::text[], $7::text[]) \
           AS v(id, ms, rank, svix_id, deleted, roles, profile) \
         WHERE u.clerk_user_id = v.id",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Nullable<BigInt>>, _>(version(&|v| v.at_ms))
    .bind::<Array<Nullable<BigInt>>, _>(version(&|v| i64::from(v.rank.as_i16())))
    .bind::<Array<Nullable<Text>>, _>(users.values().map(|s| s.newest.as_ref().map(|v| v.svix_id.clone())).collect::<Vec<_>>())
    .bind::<Array<Bool>, _>(users.values().map(|s| s.deleted).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(roles)
    .bind::<Array<Nullable<Text>>, _>(profiles)
    .execute(connection)
    .await
    .map(drop)
}

/// Make each user's rows equal `state.rows()`: create missing role rows and
/// write the profile to all of them. Rows already right are not touched, and
/// existing rows (an adopted database) keep their ids. The Instructor's
/// `bio` belongs to the app and is never written.
pub async fn write_rows(
    connection: &mut AsyncPgConnection,
    users: &BTreeMap<String, UserState>,
) -> Result<(), Error> {
    for role in [Role::Student, Role::Instructor] {
        let table = role.table();
        let rows: Vec<(&String, &Profile)> = users
            .iter()
            .flat_map(|(user, state)| {
                state
                    .rows()
                    .into_iter()
                    .filter(|(r, _)| *r == role)
                    .map(move |(_, p)| (user, p))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO \"{table}\" (\"id\", \"clerkId\", \"email\", \"firstName\", \"lastName\", \"imageUrl\", \"createdAt\", \"updatedAt\") \
             SELECT id, clerk, email, first, last, image, \
                    to_timestamp(created / 1000.0) AT TIME ZONE 'UTC', to_timestamp(updated / 1000.0) AT TIME ZONE 'UTC' \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[]) \
               AS r(id, clerk, email, first, last, image, created, updated) \
             ON CONFLICT (\"clerkId\") DO UPDATE SET \"email\" = EXCLUDED.\"email\", \"firstName\" = EXCLUDED.\"firstName\", \
               \"lastName\" = EXCLUDED.\"lastName\", \"imageUrl\" = EXCLUDED.\"imageUrl\", \
               \"createdAt\" = EXCLUDED.\"createdAt\", \"updatedAt\" = EXCLUDED.\"updatedAt\" \
             WHERE (\"{table}\".\"email\", \"{table}\".\"firstName\", \"{table}\".\"lastName\", \"{table}\".\"imageUrl\", \
                    \"{table}\".\"createdAt\", \"{table}\".\"updatedAt\") \
               IS DISTINCT FROM (EXCLUDED.\"email\", EXCLUDED.\"firstName\", EXCLUDED.\"lastName\", EXCLUDED.\"imageUrl\", \
                    EXCLUDED.\"createdAt\", EXCLUDED.\"updatedAt\")"
        );
        diesel::sql_query(sql)
            .bind::<Array<Text>, _>(
                rows.iter()
                    .map(|(u, _)| row_id(role, u))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(rows.iter().map(|(u, _)| (*u).clone()).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                rows.iter()
                    .map(|(_, p)| p.email.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                rows.iter()
                    .map(|(_, p)| p.first_name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(
                rows.iter()
                    .map(|(_, p)| p.last_name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                rows.iter()
                    .map(|(_, p)| p.image_url.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(
                rows.iter()
                    .map(|(_, p)| p.created_at_ms)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(
                rows.iter()
                    .map(|(_, p)| p.updated_at_ms)
                    .collect::<Vec<_>>(),
            )
            .execute(connection)
            .await?;
    }
    Ok(())
}

/// Remove every row of `users` and what depends on them: the students'
/// enrollments, the instructors' courses and those courses' enrollments.
pub async fn remove_rows(
    connection: &mut AsyncPgConnection,
    users: &[String],
) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    for statement in [
        r#"DELETE FROM "Enrollment" WHERE "studentId" IN (SELECT "id" FROM "Student" WHERE "clerkId" = ANY($1))
             OR "courseId" IN (SELECT c."id" FROM "Course" c JOIN "Instructor" i ON c."instructorId" = i."id" WHERE i."clerkId" = ANY($1))"#,
        r#"DELETE FROM "Course" WHERE "instructorId" IN (SELECT "id" FROM "Instructor" WHERE "clerkId" = ANY($1))"#,
        r#"DELETE FROM "Student" WHERE "clerkId" = ANY($1)"#,
        r#"DELETE FROM "Instructor" WHERE "clerkId" = ANY($1)"#,
    ] {
        diesel::sql_query(statement)
            .bind::<Array<Text>, _>(users)
            .execute(connection)
            .await?;
    }
    Ok(())
}

/// Erase the personal fields of every logged event of `users` not erased
/// yet (see `clerk_sync_domain::privacy`), marking each with `erased_at`.
/// Returns how many events it erased.
pub async fn erase_events(
    connection: &mut AsyncPgConnection,
    users: &[String],
) -> Result<usize, Error> {
    if users.is_empty() {
        return Ok(0);
    }
    #[derive(diesel::QueryableByName)]
    struct Logged {
        #[diesel(sql_type = Text)]
        svix_id: String,
        #[diesel(sql_type = Nullable<Text>)]
        body: Option<String>,
    }
    let logged: Vec<Logged> = diesel::sql_query(
        "SELECT svix_id, payload->>'body' AS body FROM clerk_sync.events \
         WHERE clerk_user_id = ANY($1) AND NOT payload ? 'erased_at'",
    )
    .bind::<Array<Text>, _>(users)
    .load(connection)
    .await?;
    if logged.is_empty() {
        return Ok(0);
    }
    let bodies: Vec<String> = logged
        .iter()
        .map(|row| privacy::erase_body(row.body.as_deref().unwrap_or_default()))
        .collect();
    diesel::sql_query(
        "UPDATE clerk_sync.events AS e \
         SET payload = jsonb_set(e.payload - 'body_base64', '{body}', to_jsonb(v.body)) \
                       || jsonb_build_object('erased_at', now()) \
         FROM unnest($1::text[], $2::text[]) AS v(id, body) WHERE e.svix_id = v.id",
    )
    .bind::<Array<Text>, _>(logged.iter().map(|row| &row.svix_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(&bodies)
    .execute(connection)
    .await
}

/// Queue a `NOTIFY clerk_sync_user, '<user id>'` per user; PostgreSQL sends
/// them when the transaction commits, and drops them if it rolls back.
pub async fn notify(connection: &mut AsyncPgConnection, users: &[String]) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    diesel::sql_query("SELECT pg_notify($1, u) FROM unnest($2::text[]) AS u")
        .bind::<Text, _>(NOTIFY_CHANNEL)
        .bind::<Array<Text>, _>(users)
        .execute(connection)
        .await
        .map(drop)
}
