//! The app's `Student` and `Instructor` rows: written from users' sync
//! states, removed (with what depends on them) for deleted users.

use super::prepared::prepared;
use clerk_sync_domain::ids::row_id;
use clerk_sync_domain::projection::{Profile, UserState};
use clerk_sync_domain::roles::Role;
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::future::try_join_all;
use std::collections::BTreeMap;

/// Make each user's rows equal `state.rows()`: create missing role rows and
/// write the profile to all of them. Rows already right are not touched, and
/// existing rows (an adopted database) keep their ids. The Instructor's
/// `bio` belongs to the app and is never written. One statement per table,
/// sent together.
pub async fn write_rows(
    mut connection: &AsyncPgConnection,
    users: &BTreeMap<String, UserState>,
) -> Result<(), Error> {
    let mut statements = Vec::new();
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
        let statement = diesel::sql_query(sql)
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
            );
        statements.push(prepared(statement).execute(&mut connection));
    }
    try_join_all(statements).await.map(drop)
}

/// Remove every row of `users` and what depends on them: the students'
/// enrollments, the instructors' courses and those courses' enrollments.
/// The statements are sent together, and run in this order.
pub async fn remove_rows(
    mut connection: &AsyncPgConnection,
    users: &[String],
) -> Result<(), Error> {
    if users.is_empty() {
        return Ok(());
    }
    let statements = [
        r#"DELETE FROM "Enrollment" WHERE "studentId" IN (SELECT "id" FROM "Student" WHERE "clerkId" = ANY($1))
             OR "courseId" IN (SELECT c."id" FROM "Course" c JOIN "Instructor" i ON c."instructorId" = i."id" WHERE i."clerkId" = ANY($1))"#,
        r#"DELETE FROM "Course" WHERE "instructorId" IN (SELECT "id" FROM "Instructor" WHERE "clerkId" = ANY($1))"#,
        r#"DELETE FROM "Student" WHERE "clerkId" = ANY($1)"#,
        r#"DELETE FROM "Instructor" WHERE "clerkId" = ANY($1)"#,
    ]
    .map(|statement| {
        prepared(diesel::sql_query(statement).bind::<Array<Text>, _>(users))
            .execute(&mut connection)
    });
    try_join_all(statements).await.map(drop)
}

/// How many Student and Instructor rows `user` has.
pub async fn count_of(connection: &mut AsyncPgConnection, user: &str) -> Result<i64, Error> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let found: Count = diesel::sql_query(
        r#"SELECT (SELECT count(*) FROM "Student" WHERE "clerkId" = $1)
                + (SELECT count(*) FROM "Instructor" WHERE "clerkId" = $1) AS n"#,
    )
    .bind::<Text, _>(user)
    .get_result(connection)
    .await?;
    Ok(found.n)
}
