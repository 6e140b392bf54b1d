//! What the `send` tests share.

pub(super) use crate::support::system::{CliOutput, System};
pub(super) use diesel::sql_types::Text;
pub(super) use diesel_async::RunQueryDsl;
pub(super) use serde_json::json;
pub(super) use std::time::Duration;

pub(super) const WAIT: Duration = Duration::from_secs(20);
pub(super) const T0: i64 = 1_767_225_600_000;

/// Rows `(a, b)` of a query selecting two text columns named `a` and `b`.
pub(super) async fn pairs(system: &System, sql: &str) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct Pair {
        #[diesel(sql_type = Text)]
        a: String,
        #[diesel(sql_type = Text)]
        b: String,
    }
    let mut connection = system.database.connect().await;
    let rows: Vec<Pair> = diesel::sql_query(sql)
        .load(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(|r| (r.a, r.b)).collect()
}

/// `(svix_id, outcome)` of one user's logged events, by svix-id.
pub(super) async fn logged(system: &System, user: &str) -> Vec<(String, String)> {
    pairs(
        system,
        &format!(
            "SELECT svix_id AS a, outcome AS b FROM clerk_sync.events \
             WHERE clerk_user_id = '{user}' ORDER BY svix_id"
        ),
    )
    .await
}

/// `(clerkId, firstName)` rows of `table` for `user`.
pub(super) async fn names(system: &System, table: &str, user: &str) -> Vec<(String, String)> {
    system
        .rows(table)
        .await
        .into_iter()
        .filter(|(clerk, ..)| clerk == user)
        .map(|(clerk, _, first, _)| (clerk, first))
        .collect()
}

pub(super) fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

pub(super) async fn send(system: &System, args: &[&str]) -> CliOutput {
    let mut argv = vec!["send"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--url", &system.ingest_url]);
    system.cli(&argv, &[]).await
}

pub(super) fn assert_ok(output: &CliOutput) {
    assert_eq!(output.code, Some(0), "{output:?}");
}

/// A failure: `code`, exactly one line on stderr, and it contains `needle`.
pub(super) fn assert_one_line(output: &CliOutput, code: i32, needle: &str) {
    assert_eq!(output.code, Some(code), "{output:?}");
    assert_eq!(output.stderr.lines().count(), 1, "{output:?}");
    assert!(output.stderr.contains(needle), "{needle:?} in {output:?}");
}
