//! An independent model of docs/src/contract.md's semantics, written from the
//! rules rather than from the worker's code: per user, the newest event by
//! (time, type rank, svix-id) gives the profile, every upsert adds its role
//! (no role named means `student`, the default policy), and a deletion
//! anywhere in the history is final: no rows.

use std::collections::{BTreeMap, BTreeSet};

/// What one event says about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert {
        first: String,
        email: String,
        /// `public_metadata.role`; None means the default, `student`.
        role: Option<&'static str>,
    },
    Delete,
}

/// One distinct event (a svix-id), as the model sees it.
#[derive(Debug, Clone)]
pub struct Modelled {
    pub svix_id: String,
    pub user: String,
    /// Clerk's order: time (ms), rank (created 0, updated 1, deleted 2), svix-id.
    pub order: (i64, u8, String),
    pub change: Change,
}

/// A Student or Instructor row as the check compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub first: String,
    pub email: String,
}

/// The rows the tables must hold: `clerkId -> row`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub students: BTreeMap<String, Row>,
    pub instructors: BTreeMap<String, Row>,
    pub deleted_users: usize,
}

/// The expected tables after `events` (a svix-id seen twice counts once).
pub fn expected<'a>(events: impl IntoIterator<Item = &'a Modelled>) -> Expected {
    let mut distinct: BTreeMap<&str, &Modelled> = BTreeMap::new();
    for event in events {
        distinct.entry(&event.svix_id).or_insert(event);
    }
    let mut by_user: BTreeMap<&str, Vec<&Modelled>> = BTreeMap::new();
    for event in distinct.into_values() {
        by_user.entry(&event.user).or_default().push(event);
    }
    let mut tables = Expected::default();
    for (user, mut events) in by_user {
        if events.iter().any(|e| e.change == Change::Delete) {
            tables.deleted_users += 1;
            continue;
        }
        events.sort_by(|a, b| a.order.cmp(&b.order));
        let mut roles = BTreeSet::new();
        let mut newest = None;
        for event in events {
            if let Change::Upsert { first, email, role } = &event.change {
                roles.insert(role.unwrap_or("student"));
                newest = Some(Row {
                    first: first.clone(),
                    email: email.clone(),
                });
            }
        }
        let Some(row) = newest else { continue };
        for role in roles {
            let table = match role {
                "student" => &mut tables.students,
                "instructor" => &mut tables.instructors,
                _ => continue,
            };
            table.insert(user.to_owned(), row.clone());
        }
    }
    tables
}
