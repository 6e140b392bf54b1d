//! Deciding who holds an e-mail address (see
//! `clerk_sync_domain::email_claims`) against the database: lock the
//! addresses a transaction decides, read the other users' claims, then take
//! each address from rows that do not hold it before rows are written, and
//! give it to its holder's rows after.
//!
//! Lock order, for every transaction that writes rows: the users' sync
//! states (sorted), then the addresses (sorted), then rows. Only a
//! transaction holding an address's lock moves that address between rows,
//! so two transactions never decide one address at once, and neither waits
//! for the other while holding what the other needs.

use super::prepared::prepared;
use clerk_sync_domain::email_claims::{self, Claim, Holders};
use clerk_sync_domain::projection::UserState;
use clerk_sync_domain::roles::Role;
use clerk_sync_domain::version::{Rank, Version};
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Integer, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::{BTreeMap, BTreeSet};

/// The first key of clerk-sync's advisory locks on addresses ("CLKS"), so
/// that they never meet an application's own advisory locks.
const LOCK_CLASS: i32 = 0x434c_4b53;

/// Take the transaction's advisory locks on `emails`, in key order.
async fn lock(mut connection: &AsyncPgConnection, emails: &BTreeSet<String>) -> Result<(), Error> {
    if emails.is_empty() {
        return Ok(());
    }
    prepared(
        diesel::sql_query(
            "SELECT pg_advisory_xact_lock($1, k) FROM \
             (SELECT DISTINCT hashtext(e) AS k FROM unnest($2::text[]) AS e ORDER BY k) AS keys",
        )
        .bind::<Integer, _>(LOCK_CLASS)
        .bind::<Array<Text>, _>(emails.iter().collect::<Vec<_>>()),
    )
    .execute(&mut connection)
    .await
    .map(drop)
}

/// The committed claims to `emails`: users alive, with rows, whose current
/// profile has the address.
async fn claims(
    mut connection: &AsyncPgConnection,
    emails: &BTreeSet<String>,
) -> Result<Vec<Claim>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        email: String,
        #[diesel(sql_type = Text)]
        clerk_user_id: String,
        #[diesel(sql_type = BigInt)]
        version_ms: i64,
        #[diesel(sql_type = SmallInt)]
        version_rank: i16,
        #[diesel(sql_type = Text)]
        version_svix_id: String,
    }
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    // A join on the addresses: in a batch's transaction, a nested loop
    // probing the index users_email_column_idx once per address (see
    // `prepared::plan_by_key`). `email` is computed from the profile.
    let rows: Vec<Row> = prepared(diesel::sql_query(
        "SELECT e.email, u.clerk_user_id, u.version_ms, u.version_rank, u.version_svix_id \
         FROM unnest($1::text[]) AS e(email) \
         JOIN clerk_sync.users AS u ON u.email = e.email \
         WHERE NOT u.deleted AND u.roles <> '{}' \
           AND u.version_ms IS NOT NULL AND u.version_rank IS NOT NULL AND u.version_svix_id IS NOT NULL",
    )
    .bind::<Array<Text>, _>(emails.iter().collect::<Vec<_>>()))
    .load(&mut connection)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(Claim {
                email: row.email,
                user: row.clerk_user_id,
                version: Version {
                    at_ms: row.version_ms,
                    rank: Rank::from_i16(row.version_rank)?,
                    svix_id: row.version_svix_id,
                },
            })
        })
        .collect())
}

/// Lock `emails` (unless `lock` is false: a read-only look) and decide who
/// holds each: the users of `ours` by those states, every other user by
/// what is committed. The lock and the read are sent together.
pub async fn decide(
    connection: &AsyncPgConnection,
    emails: &BTreeSet<String>,
    ours: &BTreeMap<String, UserState>,
    lock: bool,
) -> Result<Holders, Error> {
    let locked = async {
        match lock {
            true => self::lock(connection, emails).await,
            false => Ok(()),
        }
    };
    let (_, claims) = futures::try_join!(locked, claims(connection, emails))?;
    let others = claims
        .into_iter()
        .filter(|claim| !ours.contains_key(&claim.user));
    let ours = ours
        .iter()
        .filter_map(|(user, state)| email_claims::claim_of(user, state));
    Ok(email_claims::holders(others.chain(ours)))
}

/// Take each address from the Student and Instructor rows of users who do
/// not hold it. Before rows are written. Returns the users whose rows changed.
pub async fn release(
    connection: &AsyncPgConnection,
    holders: &Holders,
) -> Result<Vec<String>, Error> {
    set(
        connection,
        holders,
        r#"UPDATE "{table}" AS r SET "email" = NULL FROM h
           WHERE r."email" = h.email AND r."clerkId" <> h.holder RETURNING r."clerkId" AS clerk"#,
    )
    .await
}

/// Give each address to its holder's rows of the roles it holds (not to a
/// row replay keeps for a role the user never had) that do not show it yet.
/// After rows are written; `holders` need not name those whose rows were
/// just written with their address (see `email_claims::ungranted`).
/// Returns the users whose rows changed.
pub async fn grant(
    connection: &AsyncPgConnection,
    holders: &Holders,
) -> Result<Vec<String>, Error> {
    set(
        connection,
        holders,
        r#"UPDATE "{table}" AS r SET "email" = h.email FROM h
           WHERE r."clerkId" = h.holder AND r."email" IS DISTINCT FROM h.email
             AND EXISTS (SELECT 1 FROM clerk_sync.users u WHERE u.clerk_user_id = h.holder AND '{role}' = ANY(u.roles))
           RETURNING r."clerkId" AS clerk"#,
    )
    .await
}

/// Run `statement` on both tables in one round trip, with `h(email,
/// holder)` the holders; the users whose rows it changed.
async fn set(
    mut connection: &AsyncPgConnection,
    holders: &Holders,
    statement: &str,
) -> Result<Vec<String>, Error> {
    #[derive(diesel::QueryableByName)]
    struct Changed {
        #[diesel(sql_type = Text)]
        clerk: String,
    }
    if holders.is_empty() {
        return Ok(Vec::new());
    }
    let on = |role: Role| {
        statement
            .replace("{table}", role.table())
            .replace("{role}", role.as_str())
    };
    let both = format!(
        "WITH h AS (SELECT * FROM unnest($1::text[], $2::text[]) AS h(email, holder)), \
              s AS ({}), i AS ({}) \
         SELECT clerk FROM s UNION ALL SELECT clerk FROM i",
        on(Role::Student),
        on(Role::Instructor)
    );
    let rows: Vec<Changed> = prepared(
        diesel::sql_query(both)
            .bind::<Array<Text>, _>(holders.keys().collect::<Vec<_>>())
            .bind::<Array<Text>, _>(holders.values().collect::<Vec<_>>()),
    )
    .load(&mut connection)
    .await?;
    Ok(rows.into_iter().map(|row| row.clerk).collect())
}
