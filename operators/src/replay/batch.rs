//! One batch of users rebuilt in one transaction: lock their states,
//! re-read their events, decide, and (unless a dry run) correct the
//! states, the rows, the e-mail addresses and the log.

use super::report::Batch;
use clerk_sync_domain::email_claims;
use clerk_sync_domain::projection::UserState;
use clerk_sync_domain::roles::Role;
use clerk_sync_store::apply::Rules;
use clerk_sync_store::rebuild::{self, UserDiff};
use clerk_sync_store::repository::{self, emails, replay as log};
use diesel::result::Error;
use diesel_async::AsyncPgConnection;
use std::collections::{BTreeMap, BTreeSet};

pub(super) async fn rebuild_batch(
    connection: &mut AsyncPgConnection,
    users: &[String],
    rules: &Rules,
    dry_run: bool,
) -> Result<Batch, Error> {
    let stored = if dry_run {
        repository::users::user_states(connection, users, false).await?
    } else {
        // A replay's commits need not wait for the disk: one lost in a
        // crash is redone by running replay again, and WAL order keeps any
        // worker's later (synchronous) commit from surviving without it.
        log::commit_without_waiting(connection).await?;
        repository::users::lock_users(connection, users).await?
    };
    let events = log::logged_events(connection, users).await?;
    let existing = log::existing_rows(connection, users).await?;
    let event_count = events.len();
    let rebuilt = rebuild::rebuild(users, events, &rules.roles);
    let corrected: BTreeMap<String, UserState> = rebuilt
        .states
        .iter()
        .filter(|(user, state)| stored.get(*user).cloned().unwrap_or_default() != **state)
        .map(|(user, state)| (user.clone(), state.clone()))
        .collect();
    let diff_all = |states: &BTreeMap<String, UserState>| -> Vec<(String, UserDiff)> {
        states
            .iter()
            .map(|(user, state)| {
                let rows = existing.get(user).map_or(&[][..], Vec::as_slice);
                (user.clone(), rebuild::diff(state, rows))
            })
            .filter(|(_, diff)| !diff.is_empty())
            .collect()
    };
    // Every address these users held, claim or show, and who holds each,
    // decided under the locks the workers take when anything is written:
    // when no state is corrected, a look without locks first, since nothing
    // is written when every row is right too (the usual replay).
    let mut emails = email_claims::addresses(stored.values().chain(rebuilt.states.values()));
    emails.extend(
        existing
            .values()
            .flatten()
            .filter_map(|row| row.profile.email.clone()),
    );
    let locked = !dry_run && !corrected.is_empty();
    let mut holders = emails::decide(connection, &emails, &rebuilt.states, locked).await?;
    let mut diffs = diff_all(&email_claims::shown(&rebuilt.states, &holders));
    if !dry_run && !locked && !diffs.is_empty() {
        holders = emails::decide(connection, &emails, &rebuilt.states, true).await?;
        diffs = diff_all(&email_claims::shown(&rebuilt.states, &holders));
    }
    let writes_any = !corrected.is_empty() || !diffs.is_empty();
    let shown = email_claims::shown(&rebuilt.states, &holders);
    if !dry_run {
        let deleted_user = |user: &String| rebuilt.states.get(user).is_some_and(|s| s.deleted);
        repository::users::save_users(connection, &corrected, &stored).await?;
        let deleted: Vec<String> = rebuilt
            .states
            .iter()
            .filter(|(_, state)| state.deleted)
            .map(|(user, _)| user.clone())
            .collect();
        let gone: Vec<String> = diffs
            .iter()
            .filter(|(user, diff)| deleted_user(user) && !diff.removed.is_empty())
            .map(|(user, _)| user.clone())
            .collect();
        repository::rows::remove_rows(connection, &gone).await?;
        for role in [Role::Student, Role::Instructor] {
            let stray: Vec<String> = diffs
                .iter()
                .filter(|(user, diff)| !deleted_user(user) && diff.removed.contains(&role))
                .map(|(user, _)| user.clone())
                .collect();
            log::remove_unreferenced(connection, role, &stray).await?;
        }
        let mut touched = BTreeSet::new();
        if writes_any {
            touched.extend(emails::release(connection, &holders).await?);
        }
        let writes: BTreeMap<String, UserState> = diffs
            .iter()
            .filter(|(_, diff)| diff.writes())
            .filter_map(|(user, _)| Some((user.clone(), shown.get(user)?.clone())))
            .collect();
        repository::rows::write_rows(connection, &writes).await?;
        if writes_any {
            let ungranted = email_claims::ungranted(&holders, &writes);
            touched.extend(emails::grant(connection, &ungranted).await?);
        }
        log::rejudge(connection, &rebuilt.rejudged).await?;
        if rules.erase_on_delete {
            repository::events::erase_events(connection, &deleted).await?;
        }
        touched.extend(
            diffs
                .iter()
                .filter(|(_, diff)| diff.writes() || !diff.removed.is_empty())
                .map(|(user, _)| user.clone()),
        );
        repository::users::notify(connection, &touched.into_iter().collect::<Vec<_>>()).await?;
    }
    Ok(Batch {
        events: event_count,
        diffs,
        states_corrected: corrected.len(),
        rejudged: rebuilt.rejudged.len(),
    })
}
