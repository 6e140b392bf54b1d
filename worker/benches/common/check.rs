//! Reading the tables and the log back, and comparing them with the model.

use super::model::{Expected, Row};
use anyhow::{Context, Result};
use clerk_sync_runtime::secret_url::SecretUrl;
use clerk_sync_store::repository::database;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use std::collections::{BTreeMap, BTreeSet};

/// What the database holds after a run.
#[derive(Debug, Default)]
pub struct Observed {
    pub students: BTreeMap<String, Row>,
    pub instructors: BTreeMap<String, Row>,
    /// svix-id -> how many log rows have it.
    pub log: BTreeMap<String, usize>,
    /// outcome -> log rows.
    pub outcomes: BTreeMap<String, usize>,
}

pub async fn observe(url: &SecretUrl) -> Result<Observed> {
    #[derive(diesel::QueryableByName)]
    struct TableRow {
        #[diesel(sql_type = Text)]
        clerk: String,
        #[diesel(sql_type = Text)]
        first: String,
        #[diesel(sql_type = Nullable<Text>)]
        email: Option<String>,
    }
    #[derive(diesel::QueryableByName)]
    struct LogRow {
        #[diesel(sql_type = Text)]
        svix_id: String,
        #[diesel(sql_type = Text)]
        outcome: String,
    }
    let mut connection = database::connect(url).await?;
    let mut observed = Observed::default();
    for (table, into) in [
        ("Student", &mut observed.students),
        ("Instructor", &mut observed.instructors),
    ] {
        let sql = format!(
            r#"SELECT "clerkId" AS clerk, "firstName" AS first, "email" AS email FROM "{table}""#
        );
        let rows: Vec<TableRow> = diesel::sql_query(sql)
            .load(&mut connection)
            .await
            .with_context(|| format!("cannot read {table}"))?;
        for row in rows {
            let email = row.email.unwrap_or_default();
            into.insert(
                row.clerk,
                Row {
                    first: row.first,
                    email,
                },
            );
        }
    }
    let log: Vec<LogRow> = diesel::sql_query("SELECT svix_id, outcome FROM clerk_sync.events")
        .load(&mut connection)
        .await
        .context("cannot read the log")?;
    for row in log {
        *observed.log.entry(row.svix_id).or_default() += 1;
        *observed.outcomes.entry(row.outcome).or_default() += 1;
    }
    Ok(observed)
}

/// How the log must look: every `required` svix-id exactly once; others
/// only from `allowed` (sent, but the sender never saw a 2xx for them).
#[derive(Debug)]
pub struct LogSpec<'a> {
    pub required: &'a BTreeSet<String>,
    pub allowed: &'a BTreeSet<String>,
}

/// Every difference between what was expected and what is there; empty
/// means the run passed. Lists a few of each kind, with their count.
pub fn differences(expected: &Expected, log: &LogSpec<'_>, observed: &Observed) -> Vec<String> {
    let mut found = Vec::new();
    let missing: Vec<&String> = log
        .required
        .iter()
        .filter(|id| !observed.log.contains_key(*id))
        .collect();
    report(&mut found, "2xx'd events missing from the log", &missing);
    let twice: Vec<&String> = observed
        .log
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    report(&mut found, "svix-ids logged more than once", &twice);
    let unexpected: Vec<&String> = observed
        .log
        .keys()
        .filter(|id| !log.required.contains(*id) && !log.allowed.contains(*id))
        .collect();
    report(&mut found, "unexpected svix-ids in the log", &unexpected);
    if let Some(failed) = observed.outcomes.get("failed") {
        found.push(format!("{failed} events logged as failed"));
    }
    for (table, want, have) in [
        ("Student", &expected.students, &observed.students),
        ("Instructor", &expected.instructors, &observed.instructors),
    ] {
        let absent: Vec<&String> = want.keys().filter(|k| !have.contains_key(*k)).collect();
        report(&mut found, &format!("{table} rows missing"), &absent);
        let extra: Vec<&String> = have.keys().filter(|k| !want.contains_key(*k)).collect();
        report(
            &mut found,
            &format!("{table} rows that should not exist"),
            &extra,
        );
        let wrong: Vec<&String> = want
            .iter()
            .filter(|(k, row)| have.get(*k).is_some_and(|h| h != *row))
            .map(|(k, _)| k)
            .collect();
        report(
            &mut found,
            &format!("{table} rows with another firstName or email"),
            &wrong,
        );
    }
    found
}

fn report(found: &mut Vec<String>, what: &str, ids: &[&String]) {
    if ids.is_empty() {
        return;
    }
    let shown: Vec<&str> = ids.iter().take(5).map(|s| s.as_str()).collect();
    let more = if ids.len() > shown.len() { ", ..." } else { "" };
    found.push(format!("{} {what}: {}{more}", ids.len(), shown.join(", ")));
}
