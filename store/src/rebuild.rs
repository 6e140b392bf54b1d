//! Replay's decisions, pure: rebuild users' sync states from their logged
//! events with the very planner live processing uses (so the rows and ids
//! are the same), and compare what the tables hold with what they should.

use crate::incoming::Incoming;
use crate::plan::{self, LogRow};
use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::outcome::Outcome;
use clerk_sync_domain::projection::{Profile, ProfileField, UserState};
use clerk_sync_domain::roles::{Role, RolePolicy};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One row of `clerk_sync.events`, as replay reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub svix_id: String,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub svix_timestamp: Option<String>,
    pub received_at_ms: i64,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Rebuilt {
    /// Every user asked for, with the state their events give (empty when
    /// they give none).
    pub states: BTreeMap<String, UserState>,
    /// Events logged `failed` or `ignored` that the parser now judges
    /// otherwise (a parser fix applies to old events), as they should be logged.
    pub rejudged: Vec<LogRow>,
}

/// Fold `events` (in the order they were logged) for `users`.
pub fn rebuild(users: &[String], events: Vec<LoggedEvent>, policy: &RolePolicy) -> Rebuilt {
    let mut events: Vec<LoggedEvent> = events
        .into_iter()
        .filter(|e| !plan::never_applied(e.error.as_deref()))
        .collect();
    // Each body moves into its message (read once, not copied).
    let messages: Vec<Incoming> = events
        .iter_mut()
        .map(|e| {
            let body = std::mem::take(&mut e.body);
            Incoming {
                svix_id: e.svix_id.clone(),
                svix_timestamp: e.svix_timestamp.clone(),
                svix_signature: None,
                received_at_ms: Some(e.received_at_ms),
                event: ParsedEvent::parse(&body),
                body,
                delivery_count: 0,
                recorded_by: None,
            }
        })
        .collect();
    let planned = plan::plan(
        &messages,
        &BTreeMap::new(),
        &HashSet::new(),
        policy,
        None,
        0,
    );
    let logged: HashMap<&str, &LoggedEvent> =
        events.iter().map(|e| (e.svix_id.as_str(), e)).collect();
    let rejudged = planned
        .log
        .into_iter()
        .filter(|row| {
            logged.get(row.svix_id.as_str()).is_some_and(|before| {
                before.outcome.is_unapplied()
                    && (before.outcome != row.outcome || before.error != row.error)
            })
        })
        .collect();
    let states = users
        .iter()
        .map(|user| {
            let state = planned.changed.get(user).cloned().unwrap_or_default();
            (user.clone(), state)
        })
        .collect();
    Rebuilt { states, rejudged }
}

/// A Student or Instructor row as the tables hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRow {
    pub role: Role,
    pub profile: Profile,
    /// Courses (of an instructor) or enrollments (of a student) refer to it.
    pub referenced: bool,
}

/// What replay changes for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserDiff {
    pub created: Vec<Role>,
    /// Rows whose columns differ, with the columns' names.
    pub updated: Vec<(Role, Vec<&'static str>)>,
    /// Rows removed: all of a deleted user's (with what depends on them),
    /// or a row the log does not account for that nothing refers to.
    pub removed: Vec<Role>,
    /// Rows the log does not account for that courses or enrollments refer
    /// to: kept, because replay never removes business rows of a user who
    /// may still exist.
    pub kept: Vec<Role>,
}

impl UserDiff {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.removed.is_empty()
            && self.kept.is_empty()
    }

    /// Whether rows must be written (created or updated).
    pub fn writes(&self) -> bool {
        !self.created.is_empty() || !self.updated.is_empty()
    }
}

/// Compare the rows `state` gives with `existing`.
pub fn diff(state: &UserState, existing: &[ExistingRow]) -> UserDiff {
    let wanted: BTreeMap<Role, &Profile> = state.rows().into_iter().collect();
    let mut diff = UserDiff::default();
    for (role, profile) in &wanted {
        match existing.iter().find(|row| row.role == *role) {
            None => diff.created.push(*role),
            Some(row) => {
                let columns = changed_columns(&row.profile, profile);
                if !columns.is_empty() {
                    diff.updated.push((*role, columns));
                }
            }
        }
    }
    for row in existing
        .iter()
        .filter(|row| !wanted.contains_key(&row.role))
    {
        if state.deleted || !row.referenced {
            diff.removed.push(row.role);
        } else {
            diff.kept.push(row.role);
        }
    }
    diff
}

fn changed_columns(have: &Profile, want: &Profile) -> Vec<&'static str> {
    have.differing(want)
        .into_iter()
        .map(ProfileField::column)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DISCARDED, SIGNATURE_REFUSED};

    fn logged(id: &str, outcome: &str, body: &str) -> LoggedEvent {
        LoggedEvent {
            svix_id: id.to_owned(),
            outcome: Outcome::parse(outcome).unwrap(),
            error: None,
            svix_timestamp: Some("1700000000".to_owned()),
            received_at_ms: 1,
            body: body.as_bytes().to_vec(),
        }
    }

    fn upsert(kind: &str, user: &str, at: i64, role: &str) -> String {
        format!(
            r#"{{"type":"user.{kind}","data":{{"id":"{user}","updated_at":{at},"first_name":"F{at}","public_metadata":{{"role":"{role}"}}}}}}"#
        )
    }

    fn users(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_state_is_the_live_one_whatever_the_log_order() {
        let events = [
            logged(
                "m2",
                "applied",
                &upsert("updated", "u1", 2_000, "instructor"),
            ),
            logged("m1", "stale", &upsert("created", "u1", 1_000, "student")),
        ];
        let mut reversed = events.clone();
        reversed.reverse();
        let policy = RolePolicy::default();
        let a = rebuild(&users(&["u1", "u2"]), events.to_vec(), &policy);
        let b = rebuild(&users(&["u1", "u2"]), reversed.to_vec(), &policy);
        assert_eq!(a.states, b.states);
        let u1 = &a.states["u1"];
        assert_eq!(u1.roles, [Role::Student, Role::Instructor].into());
        assert_eq!(
            u1.profile.as_ref().map(|p| p.first_name.as_str()),
            Some("F2000")
        );
        assert_eq!(a.states["u2"], UserState::default(), "no events, no state");
        assert!(
            a.rejudged.is_empty(),
            "applied and stale are never rejudged"
        );
    }

    #[test]
    fn discarded_events_are_never_applied_and_failed_ones_are_rejudged() {
        let mut discarded = logged("m1", "failed", &upsert("created", "u1", 1_000, "student"));
        discarded.error = Some(DISCARDED.to_owned());
        let mut fixed = logged("m2", "failed", &upsert("updated", "u1", 2_000, "student"));
        fixed.error = Some("an error an older parser had".to_owned());
        let broken = logged("m3", "failed", "not json");
        let rebuilt = rebuild(
            &users(&["u1"]),
            vec![discarded, fixed, broken],
            &RolePolicy::default(),
        );
        let profile = rebuilt.states["u1"].profile.clone();
        assert_eq!(profile.map(|p| p.first_name), Some("F2000".to_owned()));
        let rejudged: Vec<_> = rebuilt
            .rejudged
            .iter()
            .map(|r| (r.svix_id.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(rejudged, [("m2", "applied"), ("m3", "failed")]);
    }

    #[test]
    fn events_whose_signature_the_worker_refused_are_never_applied() {
        let mut forged = logged(
            "m1",
            "failed",
            &upsert("created", "u1", 1_000, "instructor"),
        );
        forged.error = Some(format!(
            "{SIGNATURE_REFUSED}: signature does not match any configured secret"
        ));
        let rebuilt = rebuild(&users(&["u1"]), vec![forged], &RolePolicy::default());
        assert_eq!(rebuilt.states["u1"], UserState::default());
        assert!(rebuilt.rejudged.is_empty(), "not rejudged either");
    }

    fn profile(first: &str) -> Profile {
        Profile {
            email: Some("a@example.com".to_owned()),
            first_name: first.to_owned(),
            last_name: String::new(),
            image_url: None,
            created_at_ms: 1,
            updated_at_ms: 2,
        }
    }

    fn state(roles: &[Role], first: &str) -> UserState {
        UserState {
            newest: None,
            deleted: false,
            roles: roles.iter().copied().collect(),
            profile: Some(profile(first)),
        }
    }

    fn row(role: Role, first: &str, referenced: bool) -> ExistingRow {
        ExistingRow {
            role,
            profile: profile(first),
            referenced,
        }
    }

    #[test]
    fn rows_already_right_are_left_alone() {
        let diff = diff(
            &state(&[Role::Student], "Ada"),
            &[row(Role::Student, "Ada", true)],
        );
        assert!(diff.is_empty());
    }

    #[test]
    fn missing_rows_are_created_and_changed_columns_named() {
        let diff = diff(
            &state(&[Role::Student, Role::Instructor], "Ada"),
            &[row(Role::Student, "Grace", false)],
        );
        assert_eq!(diff.created, [Role::Instructor]);
        assert_eq!(diff.updated, [(Role::Student, vec!["firstName"])]);
    }

    #[test]
    fn stray_rows_go_unless_business_rows_refer_to_them() {
        let existing = [
            row(Role::Student, "Ada", false),
            row(Role::Instructor, "Ada", true),
        ];
        let unknown = diff(&UserState::default(), &existing);
        assert_eq!(unknown.removed, [Role::Student]);
        assert_eq!(unknown.kept, [Role::Instructor]);
        let deleted = UserState {
            deleted: true,
            ..UserState::default()
        };
        let gone = diff(&deleted, &existing);
        assert_eq!(gone.removed, [Role::Student, Role::Instructor]);
        assert!(gone.kept.is_empty());
    }
}
