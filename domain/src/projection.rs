//! The projection decision: given a user's sync state and one change, what
//! the state becomes and what to write. Pure: no I/O, no clock.
//!
//! The state is a merge of everything seen, independent of arrival order:
//! the newest profile wins (by [`Version`]), roles are the union of every
//! event's role, and a deletion is final. The rows a user should have are a
//! function of the state alone ([`UserState::rows`]).

use crate::clerk_event::ClerkUser;
use crate::outcome::Outcome;
use crate::roles::Role;
use crate::version::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The profile fields written to every row of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub image_url: Option<String>,
    /// Clerk's `created_at`, milliseconds.
    pub created_at_ms: i64,
    /// The `updated_at` of the newest event applied, milliseconds.
    pub updated_at_ms: i64,
}

impl Profile {
    /// The profile an event carries; `version_ms` stands in for missing times.
    pub fn of(user: &ClerkUser, version_ms: i64) -> Self {
        Self {
            email: user.primary_email().map(str::to_owned),
            first_name: user.first_name.clone().unwrap_or_default(),
            last_name: user.last_name.clone().unwrap_or_default(),
            image_url: user.image_url.clone(),
            created_at_ms: user.created_at_ms.unwrap_or(version_ms),
            updated_at_ms: user.updated_at_ms.unwrap_or(version_ms),
        }
    }
}

/// One field of [`Profile`], named as Clerk's user object and as the
/// projection's column name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    Email,
    FirstName,
    LastName,
    ImageUrl,
    CreatedAt,
    UpdatedAt,
}

impl ProfileField {
    pub fn clerk_name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "first_name",
            Self::LastName => "last_name",
            Self::ImageUrl => "image_url",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }

    pub fn column(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::ImageUrl => "imageUrl",
            Self::CreatedAt => "createdAt",
            Self::UpdatedAt => "updatedAt",
        }
    }
}

impl Profile {
    /// The fields whose values differ between `self` and `other`.
    pub fn differing(&self, other: &Profile) -> Vec<ProfileField> {
        [
            (ProfileField::Email, self.email != other.email),
            (ProfileField::FirstName, self.first_name != other.first_name),
            (ProfileField::LastName, self.last_name != other.last_name),
            (ProfileField::ImageUrl, self.image_url != other.image_url),
            (
                ProfileField::CreatedAt,
                self.created_at_ms != other.created_at_ms,
            ),
            (
                ProfileField::UpdatedAt,
                self.updated_at_ms != other.updated_at_ms,
            ),
        ]
        .into_iter()
        .filter_map(|(field, differs)| differs.then_some(field))
        .collect()
    }
}

/// What clerk-sync knows of one user (`clerk_sync.users`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserState {
    /// The version of the newest event applied.
    pub newest: Option<Version>,
    /// The tombstone: once set, nothing brings the user back.
    pub deleted: bool,
    pub roles: BTreeSet<Role>,
    pub profile: Option<Profile>,
}

impl UserState {
    /// The rows the tables should hold for this user: one per role, each
    /// with the newest profile.
    pub fn rows(&self) -> Vec<(Role, &Profile)> {
        match (&self.profile, self.deleted) {
            (Some(profile), false) => self.roles.iter().map(|role| (*role, profile)).collect(),
            _ => Vec::new(),
        }
    }
}

/// One user event, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert {
        version: Version,
        profile: Profile,
        role: Option<Role>,
    },
    Delete {
        version: Version,
    },
}

/// What to write to the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Make the user's rows equal `state.rows()`: write the profile to every
    /// role's row, creating the rows that are missing.
    WriteRows,
    /// Remove every row of the user and what depends on them.
    RemoveRows,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub effect: Effect,
    pub state: UserState,
}

pub fn decide(state: &UserState, change: &Change) -> Decision {
    if state.deleted {
        return Decision {
            outcome: Outcome::Stale,
            effect: Effect::Nothing,
            state: state.clone(),
        };
    }
    match change {
        Change::Delete { version } => Decision {
            outcome: Outcome::Applied,
            effect: Effect::RemoveRows,
            state: UserState {
                newest: Some(version.clone()),
                deleted: true,
                roles: BTreeSet::new(),
                profile: None,
            },
        },
        Change::Upsert {
            version,
            profile,
            role,
        } => {
            let newer = state.newest.as_ref().is_none_or(|newest| version > newest);
            let mut next = state.clone();
            next.roles.extend(*role);
            if newer {
                next.newest = Some(version.clone());
                next.profile = Some(profile.clone());
            }
            let effect = if newer || next.roles != state.roles {
                Effect::WriteRows
            } else {
                Effect::Nothing
            };
            Decision {
                outcome: if newer {
                    Outcome::Applied
                } else {
                    Outcome::Stale
                },
                effect,
                state: next,
            }
        }
    }
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
