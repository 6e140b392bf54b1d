//! How one Clerk user compares with clerk-sync's state of it, and which
//! event would have brought the state in line. Pure.

use clerk_sync_domain::clerk_event::ClerkUser;
use clerk_sync_domain::projection::{Profile, ProfileField, UserState};
use clerk_sync_domain::roles::{Role, RolePolicy};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The state matches what Clerk has (or is newer than Clerk's list).
    InLine,
    /// clerk-sync has no profile for the user: a missed `user.created`.
    Missing,
    /// Profile fields differ, or Clerk names a role the user has no row
    /// for: a missed `user.updated`.
    Differs {
        fields: Vec<&'static str>,
        role_added: Option<Role>,
    },
    /// Deleted here, still in Clerk. Deleted stays deleted: only reported.
    DeletedHere,
}

impl Difference {
    /// The event type that brings the state in line, if any.
    pub fn event_type(&self) -> Option<&'static str> {
        match self {
            Self::Missing => Some("user.created"),
            Self::Differs { .. } => Some("user.updated"),
            Self::InLine | Self::DeletedHere => None,
        }
    }
}

/// Compare Clerk's `user` with the state clerk-sync holds (`None`: never
/// seen). `now_ms` stands in for a missing `updated_at`, as it would when
/// the event is applied.
pub fn compare(
    user: &ClerkUser,
    state: Option<&UserState>,
    policy: &RolePolicy,
    now_ms: i64,
) -> Difference {
    let Some(state) = state else {
        return Difference::Missing;
    };
    if state.deleted {
        return Difference::DeletedHere;
    }
    let Some(have) = &state.profile else {
        return Difference::Missing;
    };
    let clerk = Profile::of(user, now_ms);
    // A profile newer than Clerk's list came from an event that arrived
    // while reconcile was paging: it is not a difference.
    let fields = if have.updated_at_ms > clerk.updated_at_ms {
        Vec::new()
    } else {
        fields_that_differ(have, &clerk)
    };
    let role_added = policy
        .resolve(user)
        .role()
        .filter(|role| !state.roles.contains(role));
    if fields.is_empty() && role_added.is_none() {
        Difference::InLine
    } else {
        Difference::Differs { fields, role_added }
    }
}

/// The names (Clerk's) of the profile fields that differ.
fn fields_that_differ(have: &Profile, clerk: &Profile) -> Vec<&'static str> {
    have.differing(clerk)
        .into_iter()
        .map(ProfileField::clerk_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clerk_sync_domain::clerk_event::{EmailAddress, ParsedEvent};
    use std::collections::BTreeSet;

    const T: i64 = 1_700_000_000_000;

    fn clerk_user(first: &str, updated_at_ms: i64, role: Option<&str>) -> ClerkUser {
        let mut user = ClerkUser {
            id: "user_1".to_owned(),
            first_name: Some(first.to_owned()),
            last_name: Some("Lovelace".to_owned()),
            primary_email_address_id: Some("idn_1".to_owned()),
            email_addresses: vec![EmailAddress {
                id: "idn_1".to_owned(),
                email_address: "ada@example.com".to_owned(),
            }],
            created_at_ms: Some(T),
            updated_at_ms: Some(updated_at_ms),
            ..ClerkUser::default()
        };
        if let Some(role) = role {
            user.public_metadata.role = Some(role.to_owned());
        }
        user
    }

    fn state_of(user: &ClerkUser, roles: &[Role]) -> UserState {
        UserState {
            newest: None,
            deleted: false,
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            profile: Some(Profile::of(user, 0)),
        }
    }

    fn policy() -> RolePolicy {
        RolePolicy::default()
    }

    #[test]
    fn a_user_never_seen_or_without_profile_is_missing() {
        let user = clerk_user("Ada", T, None);
        assert_eq!(compare(&user, None, &policy(), T), Difference::Missing);
        let empty = UserState::default();
        assert_eq!(
            compare(&user, Some(&empty), &policy(), T),
            Difference::Missing
        );
        assert_eq!(Difference::Missing.event_type(), Some("user.created"));
    }

    #[test]
    fn the_same_profile_and_roles_are_in_line() {
        let user = clerk_user("Ada", T, None);
        let state = state_of(&user, &[Role::Student]);
        assert_eq!(
            compare(&user, Some(&state), &policy(), T),
            Difference::InLine
        );
        assert_eq!(Difference::InLine.event_type(), None);
    }

    #[test]
    fn an_older_profile_differs_field_by_field() {
        let old = clerk_user("Ada", T, None);
        let state = state_of(&old, &[Role::Student]);
        let new = clerk_user("Augusta", T + 5, None);
        let difference = compare(&new, Some(&state), &policy(), T);
        assert_eq!(
            difference,
            Difference::Differs {
                fields: vec!["first_name", "updated_at"],
                role_added: None
            }
        );
        assert_eq!(difference.event_type(), Some("user.updated"));
    }

    #[test]
    fn a_role_without_its_row_differs_but_a_dropped_role_does_not() {
        let user = clerk_user("Ada", T, Some("instructor"));
        let state = state_of(&user, &[Role::Student]);
        assert_eq!(
            compare(&user, Some(&state), &policy(), T),
            Difference::Differs {
                fields: vec![],
                role_added: Some(Role::Instructor)
            }
        );
        // Roles are a union: a role Clerk no longer names keeps its row.
        let state = state_of(&user, &[Role::Student, Role::Instructor]);
        assert_eq!(
            compare(&user, Some(&state), &policy(), T),
            Difference::InLine
        );
    }

    #[test]
    fn a_newer_profile_here_is_not_a_difference() {
        let newer = clerk_user("Augusta", T + 5, None);
        let state = state_of(&newer, &[Role::Student]);
        let listed = clerk_user("Ada", T, None);
        assert_eq!(
            compare(&listed, Some(&state), &policy(), T),
            Difference::InLine
        );
    }

    #[test]
    fn deleted_stays_deleted() {
        let user = clerk_user("Ada", T, None);
        let mut state = state_of(&user, &[]);
        state.deleted = true;
        state.profile = None;
        assert_eq!(
            compare(&user, Some(&state), &policy(), T),
            Difference::DeletedHere
        );
        assert_eq!(Difference::DeletedHere.event_type(), None);
    }

    #[test]
    fn the_profile_compared_is_the_one_the_event_would_apply() {
        // Read through the event parser, as reconcile does.
        let body = serde_json::json!({
            "type": "user.updated",
            "data": {"id": "user_1", "first_name": "Ada", "created_at": 1_700_000_000, "updated_at": T},
        });
        let parsed = ParsedEvent::parse(body.to_string().as_bytes()).unwrap();
        let clerk_sync_domain::clerk_event::EventKind::UserUpsert { user, .. } = parsed.kind else {
            panic!("not an upsert");
        };
        let state = state_of(&user, &[Role::Student]);
        assert_eq!(
            compare(&user, Some(&state), &policy(), T + 1),
            Difference::InLine
        );
    }
}
