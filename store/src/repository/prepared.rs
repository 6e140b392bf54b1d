//! Statements prepared once per connection and reused by their text.
//!
//! Diesel never caches a statement made with `sql_query`: each execution
//! costs a round trip to prepare it, then one to run it. The statements of
//! a batch are the same every time, so they are wrapped in [`prepared`],
//! which lets diesel-async keep them per connection, keyed by their SQL and
//! bind types. [`connect`](super::database::connect) sets
//! `plan_cache_mode = force_custom_plan`, so PostgreSQL plans each
//! execution with its values: left to choose, it switches to a generic
//! plan after five executions, which its statistics may make a whole-table
//! scan where a few keys were wanted.
//!
//! A batch's transaction is planned key by key ([`plan_by_key`]): then the
//! plan no longer depends on the values, and its statements use their
//! generic plans, planned once per connection.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The setting every connection gets; see the module's documentation.
pub const PLAN_CACHE_MODE: &str = "SET plan_cache_mode = force_custom_plan";

/// For the rest of the transaction, plan every statement to find its rows
/// key by key through an index (no sequential scans, hash or merge joins
/// while another way exists). A batch touches a few hundred keys of tables
/// that may hold millions of rows, and every batch statement joins its
/// arrays to a table on an indexed key. Left to its statistics, PostgreSQL
/// scanned whole tables instead, once per batch (e.g. the claims to 500
/// addresses among 100,000 users: a sequential scan and a hash join), on
/// any table not analyzed since it grew: a new install, a sign-up burst,
/// a bulk import.
///
/// Such a plan is the same whatever the keys, so it is made once per
/// connection and statement (`force_generic_plan`) instead of for every
/// batch: planning was about a fifth of PostgreSQL's CPU at 1,000 events/s,
/// where a batch holds a few events (docs/src/benchmarks.md). Sent first in
/// a transaction's first round trip; PostgreSQL runs the statements after
/// it with these settings.
pub async fn plan_by_key(mut connection: &AsyncPgConnection) -> Result<(), Error> {
    prepared(diesel::sql_query(
        "SELECT set_config('enable_seqscan', 'off', true), \
                set_config('enable_hashjoin', 'off', true), \
                set_config('enable_mergejoin', 'off', true), \
                set_config('plan_cache_mode', 'force_generic_plan', true)",
    ))
    .execute(&mut connection)
    .await
    .map(drop)
}

/// `query`, prepared once per connection.
pub fn prepared<Q>(query: Q) -> Prepared<Q> {
    Prepared(query)
}

#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    /// The text never embeds a value (they are all binds), so it names the
    /// statement.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the statement is cached by its text.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
