//! Clerk user ids: which texts name a user, and the row ids derived from
//! them (UUID v5 in a fixed namespace per role, so a replay or a rebuild
//! elsewhere gives every row the same id).

use crate::roles::Role;
use crate::storable::{self, MAX_ID_BYTES};
use uuid::Uuid;

/// Whether `text` names a user, wherever a body is read (the ingest's
/// routing, the log's `clerk_user_id`): not empty, and storable as a key
/// (at most 255 bytes, no NUL). A user event whose `data.id` is not
/// storable is logged `failed` with the reason instead.
pub fn is_user_id(text: &str) -> bool {
    !text.is_empty() && storable::key_problem(text, MAX_ID_BYTES).is_none()
}

/// Namespaces fixed forever: changing them would change every row id.
const STUDENT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_4a52_8a0e_4d0b_9a53_2f5e_7c1d_0a01);
const INSTRUCTOR_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_4a52_8a0e_4d0b_9a53_2f5e_7c1d_0a02);

pub fn row_id(role: Role, clerk_user_id: &str) -> String {
    let namespace = match role {
        Role::Student => STUDENT_NAMESPACE,
        Role::Instructor => INSTRUCTOR_NAMESPACE,
    };
    Uuid::new_v5(&namespace, clerk_user_id.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_is_a_storable_key_that_is_not_empty() {
        assert!(is_user_id("user_29w83sxmDNGwOuEthce5gg56FcC"));
        assert!(!is_user_id(""));
        assert!(!is_user_id("user_\0"));
        assert!(!is_user_id(&"u".repeat(256)));
        assert!(is_user_id(&"u".repeat(255)));
    }

    #[test]
    fn ids_are_stable_and_differ_by_role() {
        let student = row_id(Role::Student, "user_29w83sxmDNGwOuEthce5gg56FcC");
        assert_eq!(
            student,
            row_id(Role::Student, "user_29w83sxmDNGwOuEthce5gg56FcC")
        );
        assert_ne!(
            student,
            row_id(Role::Instructor, "user_29w83sxmDNGwOuEthce5gg56FcC")
        );
        assert_eq!(
            Uuid::parse_str(&student).map(|u| u.get_version_num()).ok(),
            Some(5)
        );
    }
}
