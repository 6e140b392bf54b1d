//! Planning a batch: given the locked states of its users and the svix-ids
//! already logged, decide every message in delivery order. Pure.

use crate::incoming::Incoming;
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_domain::projection::{Change, UserState, decide};
use clerk_sync_domain::roles::{Resolution, RolePolicy};
use clerk_sync_domain::storable;
use clerk_sync_runtime::signatures::Signatures;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The `error` of an event an operator discarded from the dead letters:
/// logged `failed`, and never applied, not even by replay.
pub const DISCARDED: &str = "discarded by operator";

/// The start of the `error` of a message whose Svix signature the worker
/// did not accept (`worker.verify_signatures`): logged `failed`, and never
/// applied, not even by replay.
pub const SIGNATURE_REFUSED: &str = "signature refused";

/// Whether a logged event's `error` keeps it from ever being applied: an
/// operator discarded it, or its signature was refused.
pub fn never_applied(error: Option<&str>) -> bool {
    error.is_some_and(|error| error == DISCARDED || error.starts_with(SIGNATURE_REFUSED))
}

/// One row of `clerk_sync.events`, but its `payload` (the message as
/// received, which deciding does not need: see `payload::of_rows`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub svix_id: String,
    pub event_type: Option<String>,
    pub clerk_user_id: Option<String>,
    pub occurred_at_ms: Option<i64>,
    pub received_at_ms: i64,
    pub outcome: Outcome,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub log: Vec<LogRow>,
    /// Users whose state changed, with the new state.
    pub changed: BTreeMap<String, UserState>,
    /// Events whose role string was neither role: `(svix_id, user_id)`, for
    /// a warning. The string itself is metadata a user may write, so it is
    /// never logged.
    pub unknown_roles: Vec<(String, String)>,
    /// Users this batch has events of who are deleted after it: their
    /// logged events are due for erasure.
    pub tombstoned: BTreeSet<String>,
}

impl Plan {
    /// The users whose events this batch logs who may be deleted: those it
    /// deletes, and those of every event it did not apply (an event after a
    /// deletion is never applied). Which of them to erase is the database's
    /// to say (`repository::users::to_erase`); a batch of applied creates and
    /// updates has none, so costs no query.
    pub fn erasure_candidates(&self) -> Vec<String> {
        let mut users: BTreeSet<&str> = self.tombstoned.iter().map(String::as_str).collect();
        users.extend(
            self.log
                .iter()
                .filter(|row| row.outcome != Outcome::Applied)
                .filter_map(|row| row.clerk_user_id.as_deref()),
        );
        users.into_iter().map(str::to_owned).collect()
    }
}

/// The user a message is about, when its body can be read that far.
pub fn user_of(message: &Incoming) -> Option<String> {
    message.event.as_ref().ok()?.user_id().map(str::to_owned)
}

/// Decide `messages`. With `signatures`, a message must carry a Svix
/// signature of one of them (the timestamp is not checked: messages wait in
/// queues) or it is logged `failed` ([`SIGNATURE_REFUSED`]).
pub fn plan(
    messages: &[Incoming],
    states: &BTreeMap<String, UserState>,
    already_logged: &HashSet<String>,
    policy: &RolePolicy,
    signatures: Option<&Signatures>,
    now_ms: i64,
) -> Plan {
    let mut plan = Plan::default();
    let mut current = states.clone();
    let mut seen: HashSet<&str> = HashSet::new();
    for message in messages {
        if already_logged.contains(&message.svix_id) || !seen.insert(&message.svix_id) {
            continue; // A retry or redelivery: no further effect.
        }
        // A header that is not a storable time (not from the ingest) is ignored.
        let received_at_ms = message
            .received_at_ms
            .filter(|ms| storable::time_problem(*ms).is_none())
            .unwrap_or(now_ms);
        let mut row = LogRow {
            svix_id: message.svix_id.clone(),
            event_type: None,
            clerk_user_id: None,
            occurred_at_ms: None,
            received_at_ms,
            outcome: Outcome::Failed,
            error: None,
        };
        if let Some(problem) =
            signatures.and_then(|signatures| message.signature_problem(signatures))
        {
            if let Ok(event) = &message.event {
                row.event_type = Some(event.event_type.clone());
                row.clerk_user_id = event.subject_user_id().map(str::to_owned);
            }
            row.error = Some(format!("{SIGNATURE_REFUSED}: {problem}"));
            plan.log.push(row);
            continue;
        }
        let event = match &message.event {
            Ok(event) => event,
            Err(e) => {
                row.event_type = e.event_type().map(str::to_owned);
                row.clerk_user_id = e.user_id().map(str::to_owned);
                row.error = Some(e.to_string());
                plan.log.push(row);
                continue;
            }
        };
        row.event_type = Some(event.event_type.clone());
        row.occurred_at_ms = event.timestamp_ms;
        row.clerk_user_id = event.subject_user_id().map(str::to_owned);
        let svix_secs = message
            .svix_timestamp_secs()
            .unwrap_or(received_at_ms / 1000);
        let (Some(user_id), Some((change, resolution))) = (
            event.user_id(),
            event.change(&message.svix_id, svix_secs, policy),
        ) else {
            row.outcome = Outcome::Ignored;
            plan.log.push(row);
            continue;
        };
        if let Resolution::Unknown(_) = resolution {
            plan.unknown_roles
                .push((message.svix_id.clone(), user_id.to_owned()));
        }
        let (Change::Upsert { version, .. } | Change::Delete { version }) = &change;
        // The body has no time of its own and the svix-timestamp header is
        // not one either (the message did not come from the ingest).
        if let Some(problem) = storable::time_problem(version.at_ms) {
            row.error = Some(format!(
                "{}: its time (the svix-timestamp header) {problem}",
                event.event_type
            ));
            row.occurred_at_ms = None;
            plan.log.push(row);
            continue;
        }
        row.occurred_at_ms = Some(version.at_ms);
        let state = current.entry(user_id.to_owned()).or_default();
        let decision = decide(state, &change);
        row.outcome = decision.outcome;
        if decision.state != *state {
            plan.changed
                .insert(user_id.to_owned(), decision.state.clone());
        }
        *state = decision.state;
        if state.deleted {
            plan.tombstoned.insert(user_id.to_owned());
        }
        plan.log.push(row);
    }
    plan
}

/// The log row of a message an operator discards: read as the worker reads
/// any message, judged `failed` with [`DISCARDED`].
pub fn discarded(message: &Incoming, now_ms: i64) -> LogRow {
    let mut planned = plan(
        std::slice::from_ref(message),
        &BTreeMap::new(),
        &HashSet::new(),
        &RolePolicy::default(),
        None,
        now_ms,
    );
    let mut row = planned.log.pop().unwrap_or_else(|| LogRow {
        svix_id: message.svix_id.clone(),
        event_type: None,
        clerk_user_id: None,
        occurred_at_ms: None,
        received_at_ms: message.received_at_ms.unwrap_or(now_ms),
        outcome: Outcome::Failed,
        error: None,
    });
    row.outcome = Outcome::Failed;
    row.error = Some(DISCARDED.to_owned());
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::clerk_event::ParsedEvent;

    fn message(id: &str, body: &str) -> Incoming {
        Incoming {
            svix_id: id.to_owned(),
            svix_timestamp: Some("1700000000".to_owned()),
            svix_signature: None,
            received_at_ms: Some(1),
            body: body.as_bytes().to_vec(),
            event: ParsedEvent::parse(body.as_bytes()),
            delivery_count: 0,
            recorded_by: None,
        }
    }

    fn upsert(kind: &str, user: &str, at: i64) -> String {
        format!(
            r#"{{"type":"user.{kind}","data":{{"id":"{user}","updated_at":{at},"first_name":"F{at}"}}}}"#
        )
    }

    fn run(messages: &[Incoming], logged: &[&str]) -> Plan {
        let logged = logged.iter().map(|s| (*s).to_owned()).collect();
        plan(
            messages,
            &BTreeMap::new(),
            &logged,
            &RolePolicy::default(),
            None,
            0,
        )
    }

    #[test]
    fn outcomes_follow_the_semantics() {
        let plan = run(
            &[
                message("m1", &upsert("updated", "user_1", 2_000_000_000_000)),
                message("m2", &upsert("created", "user_1", 1_000_000_000_000)),
                message("m3", "not json"),
                message(
                    "m4",
                    r#"{"type":"session.created","data":{"user_id":"user_1"}}"#,
                ),
                message("m5", r#"{"type":"user.created","data":{}}"#),
            ],
            &[],
        );
        let outcomes: Vec<_> = plan
            .log
            .iter()
            .map(|r| (r.svix_id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("m1", "applied"),
                ("m2", "stale"),
                ("m3", "failed"),
                ("m4", "ignored"),
                ("m5", "failed")
            ]
        );
        assert_eq!(plan.log[3].clerk_user_id.as_deref(), Some("user_1"));
        assert_eq!(
            plan.log[4].error.as_deref(),
            Some("user.created has no string \"data.id\"")
        );
        assert_eq!(plan.changed.len(), 1);
        assert_eq!(
            plan.changed["user_1"]
                .profile
                .as_ref()
                .map(|p| p.first_name.as_str()),
            Some("F2000000000000")
        );
    }

    #[test]
    fn logged_and_repeated_svix_ids_have_no_effect() {
        let create = message("m1", &upsert("created", "user_1", 1_000_000_000_000));
        assert!(run(std::slice::from_ref(&create), &["m1"]).log.is_empty());
        assert_eq!(
            run(&[create.clone(), create.clone(), create], &[])
                .log
                .len(),
            1
        );
    }

    #[test]
    fn a_discarded_message_is_logged_as_read_and_failed() {
        let row = discarded(
            &message("m1", &upsert("updated", "user_1", 1_000_000_000_000)),
            0,
        );
        assert_eq!(row.outcome, Outcome::Failed);
        assert_eq!(row.error.as_deref(), Some(DISCARDED));
        assert_eq!(row.event_type.as_deref(), Some("user.updated"));
        assert_eq!(row.clerk_user_id.as_deref(), Some("user_1"));
        assert_eq!(row.occurred_at_ms, Some(1_000_000_000_000));
        let unreadable = discarded(&message("m2", "not json"), 0);
        assert_eq!(unreadable.error.as_deref(), Some(DISCARDED));
    }
}
