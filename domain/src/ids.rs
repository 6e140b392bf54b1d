//! Row ids derived from the Clerk user id: UUID v5 in a fixed namespace per
//! role, so a replay or a rebuild elsewhere gives every row the same id.

use crate::roles::Role;
use uuid::Uuid;

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
