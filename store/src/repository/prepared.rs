//! Statements prepared once per connection and reused by their text.
//!
//! Diesel never caches a statement made with `sql_query`: each execution
//! costs a round trip to prepare it, then one to run it. The statements of
//! a batch are the same every time, so they are wrapped in [`prepared`],
//! which lets diesel-async keep them per connection, keyed by their SQL and
//! bind types. [`connect`](super::database::connect) sets
//! `plan_cache_mode = force_custom_plan`, so PostgreSQL still plans each
//! execution with its values: the generic plans it would otherwise switch
//! to after five executions are poor for these array statements (see
//! `emails::claims`).

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// The setting every connection gets; see the module's documentation.
pub const PLAN_CACHE_MODE: &str = "SET plan_cache_mode = force_custom_plan";

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
