//! The users clerk-sync holds (for `--prune`), read without locking or
//! writing anything. Writes go through `apply::apply_batch` only.

use diesel::result::Error;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Every user clerk-sync holds and has not deleted: a sync state with a
/// version, or a Student or Instructor row (an adopted database), sorted.
pub async fn held_users(connection: &mut AsyncPgConnection) -> Result<Vec<String>, Error> {
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
