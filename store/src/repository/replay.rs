//! What replay reads and writes beyond live processing: the log by user,
//! the rows the tables hold, and corrections to the log's judgements.

use crate::payload;
use crate::plan::{DISCARDED, LogRow};
use crate::rebuild::{ExistingRow, LoggedEvent};
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_domain::projection::Profile;
use clerk_sync_domain::roles::Role;
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;

type Since = Option<chrono::DateTime<chrono::Utc>>;

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The next `limit` users after `after` (in id order) that have events in
/// the log, received at or after `since` when given.
pub async fn users_with_events(
    connection: &mut AsyncPgConnection,
    after: &str,
    since: Since,
    limit: i64,
) -> Result<Vec<String>, Error> {
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT clerk_user_id AS name FROM clerk_sync.events \
         WHERE clerk_user_id > $1 AND ($2::timestamptz IS NULL OR received_at >= $2) \
         ORDER BY clerk_user_id LIMIT $3",
    )
    .bind::<Text, _>(after)
    .bind::<Nullable<Timestamptz>, _>(since)
    .bind::<BigInt, _>(limit)
    .load(connection)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The next `limit` users after `after` that have a row in `role`'s table
/// but no event in the log.
pub async fn users_without_events(
    connection: &mut AsyncPgConnection,
    role: Role,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, Error> {
    let sql = format!(
        r#"SELECT r."clerkId" AS name FROM "{}" r WHERE r."clerkId" > $1
             AND NOT EXISTS (SELECT 1 FROM clerk_sync.events e WHERE e.clerk_user_id = r."clerkId")
           ORDER BY r."clerkId" LIMIT $2"#,
        role.table()
    );
    let rows: Vec<Name> = diesel::sql_query(sql)
        .bind::<Text, _>(after)
        .bind::<BigInt, _>(limit)
        .load(connection)
        .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Every logged event of `users`, in the order the log recorded them.
pub async fn logged_events(
    connection: &mut AsyncPgConnection,
    users: &[String],
) -> Result<Vec<LoggedEvent>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        svix_id: String,
        #[diesel(sql_type = Text)]
        outcome: String,
        #[diesel(sql_type = Nullable<Text>)]
        error: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        svix_timestamp: Option<String>,
        #[diesel(sql_type = BigInt)]
        received_at_ms: i64,
        #[diesel(sql_type = Nullable<Text>)]
        body: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        body_base64: Option<String>,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT svix_id, outcome, error, payload->'headers'->>'svix-timestamp' AS svix_timestamp, \
                (extract(epoch FROM received_at) * 1000)::bigint AS received_at_ms, {} \
         FROM clerk_sync.events WHERE clerk_user_id = ANY($1) ORDER BY recorded_at, svix_id",
        payload::BODY_COLUMNS
    ))
    .bind::<Array<Text>, _>(users)
    .load(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LoggedEvent {
            svix_id: r.svix_id,
            // The table's CHECK admits no other text.
            outcome: Outcome::parse(&r.outcome).unwrap_or(Outcome::Failed),
            error: r.error,
            svix_timestamp: r.svix_timestamp,
            received_at_ms: r.received_at_ms,
            body: payload::body(r.body, r.body_base64.as_deref()),
        })
        .collect())
}

/// The Student and Instructor rows of `users`.
pub async fn existing_rows(
    connection: &mut AsyncPgConnection,
    users: &[String],
) -> Result<BTreeMap<String, Vec<ExistingRow>>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        clerk: String,
        #[diesel(sql_type = Nullable<Text>)]
        email: Option<String>,
        #[diesel(sql_type = Text)]
        first: String,
        #[diesel(sql_type = Text)]
        last: String,
        #[diesel(sql_type = Nullable<Text>)]
        image: Option<String>,
        #[diesel(sql_type = BigInt)]
        created: i64,
        #[diesel(sql_type = BigInt)]
        updated: i64,
        #[diesel(sql_type = Bool)]
        referenced: bool,
    }
    let mut found: BTreeMap<String, Vec<ExistingRow>> = BTreeMap::new();
    for (role, referenced) in [
        (
            Role::Student,
            r#"EXISTS (SELECT 1 FROM "Enrollment" x WHERE x."studentId" = r."id")"#,
        ),
        (
            Role::Instructor,
            r#"EXISTS (SELECT 1 FROM "Course" x WHERE x."instructorId" = r."id")"#,
        ),
    ] {
        let sql = format!(
            r#"SELECT r."clerkId" AS clerk, r."email" AS email, r."firstName" AS first, r."lastName" AS last,
                      r."imageUrl" AS image,
                      round(extract(epoch FROM r."createdAt") * 1000)::bigint AS created,
                      round(extract(epoch FROM r."updatedAt") * 1000)::bigint AS updated,
                      {referenced} AS referenced
               FROM "{}" r WHERE r."clerkId" = ANY($1)"#,
            role.table()
        );
        let rows: Vec<Row> = diesel::sql_query(sql)
            .bind::<Array<Text>, _>(users)
            .load(connection)
            .await?;
        for row in rows {
            found.entry(row.clerk).or_default().push(ExistingRow {
                role,
                profile: Profile {
                    email: row.email,
                    first_name: row.first,
                    last_name: row.last,
                    image_url: row.image,
                    created_at_ms: row.created,
                    updated_at_ms: row.updated,
                },
                referenced: row.referenced,
            });
        }
    }
    Ok(found)
}

/// Remove `role`'s rows of `users` that no business row refers to (checked
/// again here, so a course added meanwhile keeps its instructor).
pub async fn remove_unreferenced(
    connection: &mut AsyncPgConnection,
    role: Role,
    users: &[String],
) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    let referenced = match role {
        Role::Student => r#"SELECT 1 FROM "Enrollment" x WHERE x."studentId" = r."id""#,
        Role::Instructor => r#"SELECT 1 FROM "Course" x WHERE x."instructorId" = r."id""#,
    };
    let sql = format!(
        r#"DELETE FROM "{}" r WHERE r."clerkId" = ANY($1) AND NOT EXISTS ({referenced})"#,
        role.table()
    );
    diesel::sql_query(sql)
        .bind::<Array<Text>, _>(users)
        .execute(connection)
        .await
        .map(drop)
}

/// Write the new judgement of events replay re-read.
pub async fn rejudge(connection: &mut AsyncPgConnection, rows: &[LogRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&LogRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "UPDATE clerk_sync.events AS e SET event_type = v.type, clerk_user_id = v.usr, \
           occurred_at = to_timestamp(v.occurred / 1000.0), outcome = v.outcome, error = v.error \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) \
           AS v(id, type, usr, occurred, outcome, error) \
         WHERE e.svix_id = v.id",
    )
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.svix_id.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.event_type.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.clerk_user_id.clone()))
    .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.occurred_at_ms).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.error.clone()))
    .execute(connection)
    .await
    .map(drop)
}

/// The next `limit` events after `after` (by svix-id) filed under no user
/// and judged `failed` or `ignored` (not discarded): `(svix_id, body)`.
pub async fn unfiled_events(
    connection: &mut AsyncPgConnection,
    after: &str,
    since: Since,
    limit: i64,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        svix_id: String,
        #[diesel(sql_type = Nullable<Text>)]
        body: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        body_base64: Option<String>,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT svix_id, {} FROM clerk_sync.events \
         WHERE clerk_user_id IS NULL AND outcome = ANY($5) \
           AND error IS DISTINCT FROM $1 AND svix_id > $2 \
           AND ($3::timestamptz IS NULL OR received_at >= $3) \
         ORDER BY svix_id LIMIT $4",
        payload::BODY_COLUMNS
    ))
    .bind::<Text, _>(DISCARDED)
    .bind::<Text, _>(after)
    .bind::<Nullable<Timestamptz>, _>(since)
    .bind::<BigInt, _>(limit)
    .bind::<Array<Text>, _>(
        Outcome::ALL
            .iter()
            .filter(|o| o.is_unapplied())
            .map(|o| o.as_str())
            .collect::<Vec<_>>(),
    )
    .load(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.svix_id, payload::body(r.body, r.body_base64.as_deref())))
        .collect())
}

/// File events under the user they are about: `(svix_id, user)`.
pub async fn file_under(
    connection: &mut AsyncPgConnection,
    filed: &[(String, String)],
) -> Result<(), Error> {
    if filed.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "UPDATE clerk_sync.events AS e SET clerk_user_id = v.usr \
         FROM unnest($1::text[], $2::text[]) AS v(id, usr) WHERE e.svix_id = v.id",
    )
    .bind::<Array<Text>, _>(filed.iter().map(|(id, _)| id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(filed.iter().map(|(_, user)| user).collect::<Vec<_>>())
    .execute(connection)
    .await
    .map(drop)
}

/// Let this transaction's commit return before its WAL reaches the disk
/// (`synchronous_commit = off` for this transaction only).
pub async fn commit_without_waiting(connection: &mut AsyncPgConnection) -> Result<(), Error> {
    diesel::sql_query("SET LOCAL synchronous_commit = off")
        .execute(connection)
        .await
        .map(drop)
}
