//! `clerk_sync.events`, the event log: one row per svix-id, written once
//! (its judgement may be corrected by replay, its personal fields erased).

use super::prepared::prepared;
use crate::payload;
use crate::plan::LogRow;
use chrono::{DateTime, Utc};
use clerk_sync_domain::privacy;
use diesel::OptionalExtension;
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::HashSet;

/// Which of `svix_ids` the log already holds.
pub async fn logged(
    mut connection: &AsyncPgConnection,
    svix_ids: &[String],
) -> Result<HashSet<String>, Error> {
    use crate::schema::clerk_sync::events;
    use diesel::{ExpressionMethods, QueryDsl};
    let found: Vec<String> = events::table
        .select(events::svix_id)
        .filter(events::svix_id.eq_any(svix_ids))
        .load(&mut connection)
        .await?;
    Ok(found.into_iter().collect())
}

/// Log `rows`, each with its payload (`payloads[i]` is `rows[i]`'s); a
/// svix-id already logged is left as it is.
pub async fn insert_log(
    mut connection: &AsyncPgConnection,
    rows: &[LogRow],
    payloads: &[String],
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&LogRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    prepared(diesel::sql_query(
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
    .bind::<Array<Text>, _>(payloads)
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(&|r| r.error.clone())))
    .execute(&mut connection)
    .await
    .map(drop)
}

/// Erase the personal fields of every logged event of `users` not erased
/// yet (see `clerk_sync_domain::privacy`), marking each with `erased_at`.
/// Returns how many events it erased.
pub async fn erase_events(
    mut connection: &AsyncPgConnection,
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
    .load(&mut connection)
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
    .execute(&mut connection)
    .await
}

/// The outcome `svix_id` was logged with, locking its row; none if it is
/// not logged.
pub async fn outcome_locked(
    connection: &mut AsyncPgConnection,
    svix_id: &str,
) -> Result<Option<String>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Logged {
        #[diesel(sql_type = Text)]
        outcome: String,
    }
    let found: Option<Logged> =
        diesel::sql_query("SELECT outcome FROM clerk_sync.events WHERE svix_id = $1 FOR UPDATE")
            .bind::<Text, _>(svix_id)
            .get_result(connection)
            .await
            .optional()?;
    Ok(found.map(|row| row.outcome))
}

/// How many logged events of `user` are erased.
pub async fn erased_of(connection: &mut AsyncPgConnection, user: &str) -> Result<i64, Error> {
    let found: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM clerk_sync.events WHERE clerk_user_id = $1 AND payload ? 'erased_at'",
    )
    .bind::<Text, _>(user)
    .get_result(connection)
    .await?;
    Ok(found.n)
}

/// How many events were logged, by outcome (as stored).
pub async fn count_by_outcome(
    connection: &mut AsyncPgConnection,
) -> Result<Vec<(String, i64)>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = Text)]
        outcome: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let rows: Vec<Outcome> =
        diesel::sql_query("SELECT outcome, count(*) AS n FROM clerk_sync.events GROUP BY outcome")
            .load(connection)
            .await?;
    Ok(rows.into_iter().map(|row| (row.outcome, row.n)).collect())
}

/// Seconds since the newest event was logged; none when the log is empty.
/// (`recorded_at` is indexed: this reads one index entry.)
pub async fn newest_age_secs(connection: &mut AsyncPgConnection) -> Result<Option<f64>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Age {
        #[diesel(sql_type = Nullable<Double>)]
        age: Option<f64>,
    }
    let newest: Age = diesel::sql_query(
        "SELECT extract(epoch FROM now() - max(recorded_at))::float8 AS age FROM clerk_sync.events",
    )
    .get_result(connection)
    .await?;
    Ok(newest.age)
}

/// A logged event with the Svix headers it was received with.
#[derive(Debug, diesel::QueryableByName)]
pub struct SignedEvent {
    #[diesel(sql_type = Text)]
    pub svix_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub svix_timestamp: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub svix_signature: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body_base64: Option<String>,
    #[diesel(sql_type = Bool)]
    pub erased: bool,
    /// The command that recorded it, for an event clerk-sync made itself.
    #[diesel(sql_type = Nullable<Text>)]
    pub recorded_by: Option<String>,
    /// RFC 3339, UTC.
    #[diesel(sql_type = Text)]
    pub received_at: String,
}

/// The next 1,000 events after `after` (by svix-id) received at or after
/// `since`, with their Svix headers.
pub async fn signed_page(
    connection: &mut AsyncPgConnection,
    after: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<SignedEvent>, Error> {
    diesel::sql_query(format!(
        "SELECT svix_id, payload->'headers'->>'svix-timestamp' AS svix_timestamp, \
                payload->'headers'->>'svix-signature' AS svix_signature, \
                {}, payload ? 'erased_at' AS erased, payload->>'{}' AS recorded_by, \
                to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS received_at \
         FROM clerk_sync.events WHERE svix_id > $1 AND ($2::timestamptz IS NULL OR received_at >= $2) \
         ORDER BY svix_id LIMIT 1000",
        payload::BODY_COLUMNS,
        payload::RECORDED_BY
    ))
    .bind::<Text, _>(after)
    .bind::<Nullable<Timestamptz>, _>(since)
    .load(connection)
    .await
}

/// How many events were received at or after `since`.
pub async fn count_since(
    connection: &mut AsyncPgConnection,
    since: Option<DateTime<Utc>>,
) -> Result<i64, Error> {
    let found: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM clerk_sync.events WHERE ($1::timestamptz IS NULL OR received_at >= $1)",
    )
    .bind::<Nullable<Timestamptz>, _>(since)
    .get_result(connection)
    .await?;
    Ok(found.n)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
