//! Who holds an e-mail address. The app's `"email"` columns are unique, but
//! in Clerk an address moves between users: A gives it up, B takes it, and
//! B's event may arrive first (another shard, a backlog, a Svix retry).
//!
//! The newest claim wins: among the users whose current profile has the
//! address and who have rows, the one whose profile is newest (by
//! [`Version`], Clerk's order) holds it; the others' rows show no address
//! until their own newer event. The holder is a function of the users'
//! states alone, so any arrival order, any delay and a replay all give the
//! same rows. Pure: the worker finds the claims and writes the rows.

use crate::projection::UserState;
use crate::version::Version;
use std::collections::{BTreeMap, BTreeSet};

/// Address -> the user whose rows show it.
pub type Holders = BTreeMap<String, String>;

/// One user's claim to an address: its profile's, at its profile's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub email: String,
    pub user: String,
    pub version: Version,
}

/// The claim `state` makes, if any: only a user with rows shows an address.
pub fn claim_of(user: &str, state: &UserState) -> Option<Claim> {
    if state.rows().is_empty() {
        return None;
    }
    Some(Claim {
        email: state.profile.as_ref()?.email.clone()?,
        user: user.to_owned(),
        version: state.newest.clone()?,
    })
}

/// The holder of each address claimed: the newest claim (ties, which one
/// event cannot make, go to the greater user id).
pub fn holders(claims: impl IntoIterator<Item = Claim>) -> Holders {
    let mut newest: BTreeMap<String, (Version, String)> = BTreeMap::new();
    for claim in claims {
        let candidate = (claim.version, claim.user);
        match newest.get_mut(&claim.email) {
            Some(held) if *held >= candidate => {}
            Some(held) => *held = candidate,
            None => {
                newest.insert(claim.email, candidate);
            }
        }
    }
    newest
        .into_iter()
        .map(|(email, (_, user))| (email, user))
        .collect()
}

/// The addresses `states` have.
pub fn addresses<'a>(states: impl IntoIterator<Item = &'a UserState>) -> BTreeSet<String> {
    states
        .into_iter()
        .filter_map(|state| state.profile.as_ref()?.email.clone())
        .collect()
}

/// Each user's state as its rows show it (see [`as_shown`]).
pub fn shown<'a>(
    states: impl IntoIterator<Item = (&'a String, &'a UserState)>,
    holders: &Holders,
) -> BTreeMap<String, UserState> {
    states
        .into_iter()
        .map(|(user, state)| (user.clone(), as_shown(user, state, holders)))
        .collect()
}

/// The holders whose rows `written` (states as shown, just written to the
/// rows) does not already give their address.
pub fn ungranted(holders: &Holders, written: &BTreeMap<String, UserState>) -> Holders {
    holders
        .iter()
        .filter(|(email, holder)| {
            let shown = written
                .get(*holder)
                .and_then(|state| state.profile.as_ref()?.email.as_ref());
            shown != Some(*email)
        })
        .map(|(email, holder)| (email.clone(), holder.clone()))
        .collect()
}

/// `state` as `user`'s rows show it: without its address when another user
/// holds it.
pub fn as_shown(user: &str, state: &UserState, holders: &Holders) -> UserState {
    let mut shown = state.clone();
    if let Some(profile) = shown.profile.as_mut()
        && let Some(email) = &profile.email
        && holders.get(email).is_some_and(|holder| holder != user)
    {
        profile.email = None;
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Profile;
    use crate::roles::Role;
    use crate::version::Rank;
    use proptest::prelude::*;

    fn state(email: Option<&str>, at_ms: i64, svix_id: &str) -> UserState {
        UserState {
            newest: Some(Version {
                at_ms,
                rank: Rank::Updated,
                svix_id: svix_id.to_owned(),
            }),
            deleted: false,
            roles: [Role::Student].into(),
            profile: Some(Profile {
                email: email.map(str::to_owned),
                first_name: String::new(),
                last_name: String::new(),
                image_url: None,
                created_at_ms: 0,
                updated_at_ms: at_ms,
            }),
        }
    }

    #[test]
    fn the_newest_claim_holds_the_address() {
        let a = state(Some("x@example.com"), 1, "m1");
        let b = state(Some("x@example.com"), 2, "m2");
        let claims = [claim_of("user_a", &a), claim_of("user_b", &b)];
        let holders = holders(claims.into_iter().flatten());
        assert_eq!(holders["x@example.com"], "user_b");
        assert_eq!(
            as_shown("user_a", &a, &holders)
                .profile
                .and_then(|p| p.email),
            None
        );
        assert_eq!(as_shown("user_b", &b, &holders), b);
    }

    #[test]
    fn only_holders_not_just_written_with_their_address_are_granted() {
        let a = state(Some("x@example.com"), 1, "m1");
        let holders: Holders = [
            ("x@example.com".to_owned(), "user_a".to_owned()),
            ("y@example.com".to_owned(), "user_b".to_owned()),
        ]
        .into();
        let written = BTreeMap::from([("user_a".to_owned(), a)]);
        assert_eq!(
            ungranted(&holders, &written),
            Holders::from([("y@example.com".to_owned(), "user_b".to_owned())]),
            "user_b's rows were not written here"
        );
    }

    #[test]
    fn users_without_rows_or_address_claim_nothing() {
        let deleted = UserState {
            deleted: true,
            ..state(Some("x@example.com"), 9, "m9")
        };
        let no_roles = UserState {
            roles: Default::default(),
            ..state(Some("x@example.com"), 9, "m9")
        };
        assert_eq!(claim_of("u", &deleted), None);
        assert_eq!(claim_of("u", &no_roles), None);
        assert_eq!(claim_of("u", &state(None, 9, "m9")), None);
        assert_eq!(claim_of("u", &UserState::default()), None);
    }

    proptest! {
        /// Whatever order the claims come in, the same user holds each address.
        #[test]
        fn the_holder_does_not_depend_on_the_order(
            claims in proptest::collection::vec((0..3_u8, 0..4_u8, 0..3_i64, 0..3_u8), 0..12),
            seed in any::<u64>(),
        ) {
            let claims: Vec<Claim> = claims
                .into_iter()
                .map(|(email, user, at_ms, svix)| Claim {
                    email: format!("e{email}@example.com"),
                    user: format!("user_{user}"),
                    version: Version { at_ms, rank: Rank::Updated, svix_id: format!("m{svix}") },
                })
                .collect();
            let mut shuffled = claims.clone();
            let len = shuffled.len();
            for i in (1..len).rev() {
                let j = usize::try_from(seed.rotate_left(u32::try_from(i).unwrap_or(0)) % (i as u64 + 1)).unwrap_or(0);
                shuffled.swap(i, j);
            }
            prop_assert_eq!(holders(claims.clone()), holders(shuffled));
            for (email, holder) in holders(claims.clone()) {
                let best = claims.iter().filter(|c| c.email == email).map(|c| (&c.version, &c.user)).max();
                prop_assert_eq!(best.map(|(_, u)| u.as_str()), Some(holder.as_str()));
            }
        }
    }
}
