//! Applying a batch of messages in ONE database transaction: lock the users'
//! sync states (sorted, so workers never deadlock), skip svix-ids already
//! logged, decide, lock the e-mail addresses involved and decide who holds
//! each (see `repository::emails`), log every event, save the states
//! (creating those of new users), write the rows, erase what deleted users
//! left in the log, notify, commit.

use crate::incoming::Incoming;
use crate::payload;
use crate::plan::{self, Plan};
use crate::repository::{self, emails};
use crate::settings::Settings;
use clerk_sync_domain::email_claims::{self, Holders};
use clerk_sync_domain::projection::UserState;
use clerk_sync_domain::roles::RolePolicy;
use clerk_sync_runtime::settings::SettingsError;
use clerk_sync_runtime::signatures::Signatures;
use clerk_sync_runtime::traces;
use diesel::result::Error;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::try_join;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::Instrument;

/// The settings that decide what applying an event does.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub roles: RolePolicy,
    /// `privacy.erase_on_delete`.
    pub erase_on_delete: bool,
    /// The secrets each message's stored Svix signature must verify with
    /// (`worker.verify_signatures`, for `run`); None for what the operators'
    /// commands record themselves, which Svix never signed.
    pub signatures: Option<Arc<Signatures>>,
}

impl Rules {
    /// The rules of the operators' commands: no signature is checked.
    pub fn of(settings: &Settings) -> Self {
        Self {
            roles: settings.roles.policy(),
            erase_on_delete: settings.privacy.erase_on_delete,
            signatures: None,
        }
    }

    /// The rules of `run`: with `worker.verify_signatures`, every message
    /// must carry a signature of a configured webhook secret, which must
    /// then be set.
    pub fn of_service(settings: &Settings) -> Result<Self, SettingsError> {
        let signatures = if settings.worker.verify_signatures {
            let secrets = settings.webhook.secrets_for("worker.verify_signatures")?;
            Some(Arc::new(Signatures::new(secrets)?))
        } else {
            None
        };
        Ok(Self {
            signatures,
            ..Self::of(settings)
        })
    }
}

/// Three round trips besides BEGIN and COMMIT, whatever the batch's size
/// (one or two more when a deleted user's events are erased or an address
/// moves to another user): the statements of each step do not need each
/// other's results, so they go to the server together (pipelined) and run
/// in the order written. Traced as the spans `lock`, `decide`, `apply` and
/// `commit`, children of the caller's.
///
/// Run again, from the start, when another transaction created the sync
/// state of one of the batch's new users meanwhile (see
/// `repository::users::save_users`): each time, one more of them is found
/// and locked, so it ends.
pub async fn apply_batch(
    connection: &mut AsyncPgConnection,
    messages: &[Incoming],
    rules: &Rules,
    now_ms: i64,
) -> Result<Plan, Error> {
    loop {
        match apply_once(connection, messages, rules, now_ms).await {
            Err(error) if repository::users::must_rerun(&error) => {
                tracing::info!("{error}; applying the batch again");
            }
            applied => return applied,
        }
    }
}

async fn apply_once(
    connection: &mut AsyncPgConnection,
    messages: &[Incoming],
    rules: &Rules,
    now_ms: i64,
) -> Result<Plan, Error> {
    let (plan, commit) = connection
        .transaction::<_, Error, _>(async |connection| {
            let connection: &AsyncPgConnection = connection;
            let users: Vec<String> = messages.iter().filter_map(plan::user_of).collect();
            let ids: Vec<String> = messages.iter().map(|m| m.svix_id.clone()).collect();
            let (_, states, logged) = async {
                try_join!(
                    repository::prepared::plan_by_key(connection),
                    repository::users::lock_users(connection, &users),
                    repository::events::logged(connection, &ids),
                )
            }
            .instrument(traces::span(|| tracing::info_span!("lock")))
            .await?;
            let decide = traces::span(|| tracing::info_span!("decide"));
            let plan = decide.in_scope(|| {
                plan::plan(
                    messages,
                    &states,
                    &logged,
                    &rules.roles,
                    rules.signatures.as_deref(),
                    now_ms,
                )
            });
            let holders = decide_emails(connection, &states, &plan.changed)
                .instrument(decide)
                .await?;
            let writing = traces::span(|| tracing::info_span!("apply"));
            let payloads = payload::of_rows(&plan.log, messages);
            let (deleted, alive): (BTreeMap<_, _>, BTreeMap<_, _>) =
                plan.changed.iter().partition(|(_, state)| state.deleted);
            let deleted: Vec<String> = deleted.into_keys().cloned().collect();
            let shown = email_claims::shown(alive, &holders);
            let ungranted = email_claims::ungranted(&holders, &shown);
            let changed: Vec<String> = plan.changed.keys().cloned().collect();
            let erasable = plan.erasure_candidates();
            // Rows lose addresses before they are written, and gain them after.
            let (_, _, _, released, _, granted, erase, _) = async {
                try_join!(
                    repository::events::insert_log(connection, &plan.log, &payloads),
                    repository::users::save_users(connection, &plan.changed, &states),
                    repository::rows::remove_rows(connection, &deleted),
                    emails::release(connection, &holders),
                    repository::rows::write_rows(connection, &shown),
                    emails::grant(connection, &ungranted),
                    repository::users::to_erase(connection, &erasable, rules.erase_on_delete),
                    repository::users::notify(connection, &changed),
                )
            }
            .instrument(writing.clone())
            .await?;
            let moved: Vec<String> = released
                .into_iter()
                .chain(granted)
                .filter(|user| !plan.changed.contains_key(user))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            async {
                try_join!(
                    repository::events::erase_events(connection, &erase),
                    repository::users::notify(connection, &moved),
                )
            }
            .instrument(writing)
            .await?;
            // Begins as the closure ends: diesel commits right after.
            Ok((plan, traces::span(|| tracing::info_span!("commit"))))
        })
        .await?;
    drop(commit);
    Ok(plan)
}

/// Lock every address the batch's users held or claim, and decide who
/// holds each, the batch's users by their states after the batch (`before`
/// overlaid with `changed`).
async fn decide_emails(
    connection: &AsyncPgConnection,
    before: &BTreeMap<String, UserState>,
    changed: &BTreeMap<String, UserState>,
) -> Result<Holders, Error> {
    let emails = email_claims::addresses(before.values().chain(changed.values()));
    let mut after = before.clone();
    after.extend(
        changed
            .iter()
            .map(|(user, state)| (user.clone(), state.clone())),
    );
    emails::decide(connection, &emails, &after, true).await
}

/// Whether an error means the database itself is unreachable (wait for it)
/// rather than something about these messages (isolate and retry them).
pub fn database_unavailable(error: &Error) -> bool {
    use diesel::result::DatabaseErrorKind::{ClosedConnection, UnableToSendCommand};
    // diesel-async reports an error without a SQLSTATE (the socket closed,
    // the server went away) as UnableToSendCommand.
    matches!(
        error,
        Error::DatabaseError(ClosedConnection | UnableToSendCommand, _)
            | Error::BrokenTransactionManager
            | Error::AlreadyInTransaction
    )
}
