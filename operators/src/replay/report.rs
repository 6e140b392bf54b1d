//! What replay found and corrected: the totals, the changes listed, and
//! how they are printed.

use clerk_sync_domain::roles::Role;
use clerk_sync_store::rebuild::UserDiff;
use indicatif::ProgressBar;
use serde::Serialize;
use std::sync::Mutex;

#[derive(Debug, Default, Serialize)]
pub(super) struct Totals {
    pub(super) users: u64,
    pub(super) events: u64,
    pub(super) users_changed: u64,
    pub(super) rows_created: u64,
    pub(super) rows_updated: u64,
    pub(super) rows_removed: u64,
    /// Rows the log does not account for, kept because courses or
    /// enrollments refer to them.
    pub(super) rows_kept: u64,
    /// Sync states (`clerk_sync.users`) that differed from the log's.
    pub(super) states_corrected: u64,
    /// `failed`/`ignored` events the parser now judges otherwise.
    pub(super) events_rejudged: u64,
    /// Events filed under no user that the parser now files under one.
    pub(super) events_filed: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Change {
    pub(super) user: String,
    #[serde(flatten)]
    pub(super) diff: UserDiff,
}

/// Most changes a `--json` report lists (the totals count them all), so
/// memory stays bounded however many users change.
const MOST_LISTED: usize = 1_000;

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) dry_run: bool,
    /// The first changes, user by user (at most [`MOST_LISTED`]).
    pub(super) changes: Vec<Change>,
    /// Changes beyond those listed.
    pub(super) changes_not_listed: u64,
    pub(super) totals: Totals,
    pub(super) seconds: f64,
}

/// The report, shared by the lanes.
pub(super) struct Tally {
    pub(super) report: Report,
    pub(super) human: bool,
    pub(super) bar: ProgressBar,
}

pub(super) fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A lane that panicked cannot leave the counts half-updated in a way
    // that matters more than losing the run: keep going with what is there.
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What one batch found (and, unless a dry run, corrected).
pub(super) struct Batch {
    pub(super) events: usize,
    pub(super) diffs: Vec<(String, UserDiff)>,
    pub(super) states_corrected: usize,
    pub(super) rejudged: usize,
}

impl Report {
    pub(super) fn empty() -> Self {
        Self {
            dry_run: false,
            changes: Vec::new(),
            changes_not_listed: 0,
            totals: Totals::default(),
            seconds: 0.0,
        }
    }
}

impl Tally {
    pub(super) fn record(&mut self, users: usize, batch: Batch, dry_run: bool) {
        let totals = &mut self.report.totals;
        totals.users += users as u64;
        totals.events += batch.events as u64;
        totals.states_corrected += batch.states_corrected as u64;
        totals.events_rejudged += batch.rejudged as u64;
        self.bar.inc(batch.events as u64);
        for (user, diff) in batch.diffs {
            totals.users_changed += 1;
            totals.rows_created += diff.created.len() as u64;
            totals.rows_updated += diff.updated.len() as u64;
            totals.rows_removed += diff.removed.len() as u64;
            totals.rows_kept += diff.kept.len() as u64;
            if self.human {
                // Printed as found, not kept.
                self.bar
                    .suspend(|| println!("{}", describe(&user, &diff, dry_run)));
            } else if self.report.changes.len() < MOST_LISTED {
                self.report.changes.push(Change { user, diff });
            } else {
                self.report.changes_not_listed += 1;
            }
        }
    }
}

/// One line per user: `user_1: created Student; updated Instructor (firstName, email); removed ...`.
fn describe(user: &str, diff: &UserDiff, dry_run: bool) -> String {
    let tables = |roles: &[Role]| {
        roles
            .iter()
            .map(|r| r.table())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !diff.created.is_empty() {
        parts.push(format!("created {}", tables(&diff.created)));
    }
    for (role, columns) in &diff.updated {
        parts.push(format!("updated {} ({})", role.table(), columns.join(", ")));
    }
    if !diff.removed.is_empty() {
        parts.push(format!("removed {}", tables(&diff.removed)));
    }
    if !diff.kept.is_empty() {
        parts.push(format!(
            "kept {} (not in the log, but courses or enrollments refer to it)",
            tables(&diff.kept)
        ));
    }
    let would = if dry_run { "would be " } else { "" };
    format!("{user}: {would}{}", parts.join("; "))
}

pub(super) fn print_totals(report: &Report) {
    let t = &report.totals;
    let verb = if report.dry_run {
        "would change"
    } else {
        "changed"
    };
    println!(
        "replay{}: {} users, {} events in {:.1} s ({:.0} events/s); {verb} {} users: \
         {} rows created, {} updated, {} removed, {} kept; {} sync states corrected, \
         {} events rejudged, {} events filed under their user",
        if report.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        t.users,
        t.events,
        report.seconds,
        t.events as f64 / report.seconds.max(1e-9),
        t.users_changed,
        t.rows_created,
        t.rows_updated,
        t.rows_removed,
        t.rows_kept,
        t.states_corrected,
        t.events_rejudged,
        t.events_filed,
    );
}
