//! Role resolution: which rows (Student, Instructor) an event asks for.
//!
//! An event's role is the string `role` in the first configured metadata
//! source that has one; with none, the configured default (which may be no
//! role at all). A role string that is neither `student` nor `instructor` is
//! reported and gives no row.

use crate::clerk_event::ClerkUser;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Instructor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Student => "student",
            Self::Instructor => "instructor",
        }
    }

    /// The projection table of this role's rows.
    pub fn table(self) -> &'static str {
        match self {
            Self::Student => "Student",
            Self::Instructor => "Instructor",
        }
    }

    /// `student` or `instructor`, ignoring case and surrounding spaces.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "student" => Some(Self::Student),
            "instructor" => Some(Self::Instructor),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role may be read from. `unsafe_metadata` is writable by the user
/// themself, so it is not a source unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataSource {
    PublicMetadata,
    PrivateMetadata,
    UnsafeMetadata,
}

/// The default role of an event that names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultRole {
    Student,
    Instructor,
    /// No row from such an event.
    None,
}

impl DefaultRole {
    fn role(self) -> Option<Role> {
        match self {
            Self::Student => Some(Role::Student),
            Self::Instructor => Some(Role::Instructor),
            Self::None => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    pub sources: Vec<MetadataSource>,
    pub default: DefaultRole,
}

impl Default for RolePolicy {
    fn default() -> Self {
        Self {
            sources: vec![MetadataSource::PublicMetadata],
            default: DefaultRole::Student,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Role(Role),
    /// No role named and the default is `none`.
    NoRole,
    /// A role string that is neither role: reported, no row.
    Unknown(String),
}

impl Resolution {
    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Role(role) => Some(*role),
            Self::NoRole | Self::Unknown(_) => None,
        }
    }
}

impl RolePolicy {
    pub fn resolve(&self, user: &ClerkUser) -> Resolution {
        for source in &self.sources {
            let metadata = match source {
                MetadataSource::PublicMetadata => &user.public_metadata,
                MetadataSource::PrivateMetadata => &user.private_metadata,
                MetadataSource::UnsafeMetadata => &user.unsafe_metadata,
            };
            if let Some(text) = &metadata.role {
                return match Role::parse(text) {
                    Some(role) => Resolution::Role(role),
                    None => Resolution::Unknown(text.clone()),
                };
            }
        }
        match self.default.role() {
            Some(role) => Resolution::Role(role),
            None => Resolution::NoRole,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clerk_event::Metadata;
    use serde_json::json;

    fn user(public: serde_json::Value, unsafe_: serde_json::Value) -> ClerkUser {
        let mut user = ClerkUser::for_tests("user_1");
        let role = |metadata: &serde_json::Value| Metadata {
            role: metadata["role"].as_str().map(str::to_owned),
        };
        user.public_metadata = role(&public);
        user.unsafe_metadata = role(&unsafe_);
        user
    }

    #[test]
    fn public_metadata_names_the_role() {
        let policy = RolePolicy::default();
        assert_eq!(
            policy.resolve(&user(json!({"role": "instructor"}), json!({}))),
            Resolution::Role(Role::Instructor)
        );
        assert_eq!(
            policy.resolve(&user(json!({"role": " Student "}), json!({}))),
            Resolution::Role(Role::Student)
        );
    }

    #[test]
    fn unsafe_metadata_is_ignored_unless_configured() {
        let unsafe_instructor = user(json!({}), json!({"role": "instructor"}));
        assert_eq!(
            RolePolicy::default().resolve(&unsafe_instructor),
            Resolution::Role(Role::Student)
        );
        let policy = RolePolicy {
            sources: vec![
                MetadataSource::PublicMetadata,
                MetadataSource::UnsafeMetadata,
            ],
            default: DefaultRole::Student,
        };
        assert_eq!(
            policy.resolve(&unsafe_instructor),
            Resolution::Role(Role::Instructor)
        );
        // The first source that names a role wins.
        let both = user(json!({"role": "student"}), json!({"role": "instructor"}));
        assert_eq!(policy.resolve(&both), Resolution::Role(Role::Student));
    }

    #[test]
    fn default_none_and_unknown_roles_give_no_row() {
        let policy = RolePolicy {
            sources: vec![MetadataSource::PublicMetadata],
            default: DefaultRole::None,
        };
        assert_eq!(
            policy.resolve(&user(json!({}), json!({}))),
            Resolution::NoRole
        );
        assert_eq!(
            policy.resolve(&user(json!({"role": 7}), json!({}))),
            Resolution::NoRole,
            "not a string: no role named"
        );
        let unknown = RolePolicy::default().resolve(&user(json!({"role": "admin"}), json!({})));
        assert_eq!(unknown, Resolution::Unknown("admin".to_owned()));
        assert_eq!(unknown.role(), None);
    }
}
