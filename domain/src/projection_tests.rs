//! `decide` against an independent model: sort a user's distinct events in
//! Clerk's order and apply them once.

use super::*;
use crate::version::Rank;
use proptest::prelude::*;

fn profile(at: i64, name: &str) -> Profile {
    Profile {
        email: Some(format!("{name}@example.com")),
        first_name: name.to_owned(),
        last_name: String::new(),
        image_url: None,
        created_at_ms: 1,
        updated_at_ms: at,
    }
}

fn version(at: i64, rank: Rank, id: &str) -> Version {
    Version {
        at_ms: at,
        rank,
        svix_id: id.to_owned(),
    }
}

fn upsert(at: i64, rank: Rank, id: &str, role: Option<Role>) -> Change {
    Change::Upsert {
        version: version(at, rank, id),
        profile: profile(at, id),
        role,
    }
}

fn fold(changes: &[Change]) -> (UserState, Vec<Outcome>) {
    let mut state = UserState::default();
    let mut outcomes = Vec::new();
    for change in changes {
        let decision = decide(&state, change);
        outcomes.push(decision.outcome);
        state = decision.state;
    }
    (state, outcomes)
}

/// The semantics of docs/src/contract.md, written independently of `decide`:
/// the rows are one per role named by any event, with the profile of the
/// newest upsert, unless any event is a deletion.
fn model_rows(history: &[Change]) -> Vec<(Role, Profile)> {
    if history.iter().any(|c| matches!(c, Change::Delete { .. })) {
        return Vec::new();
    }
    let roles: BTreeSet<Role> = history
        .iter()
        .filter_map(|c| match c {
            Change::Upsert { role, .. } => *role,
            Change::Delete { .. } => None,
        })
        .collect();
    let newest = history
        .iter()
        .filter_map(|c| match c {
            Change::Upsert {
                version, profile, ..
            } => Some((version, profile)),
            Change::Delete { .. } => None,
        })
        .max_by(|a, b| a.0.cmp(b.0));
    match newest {
        Some((_, profile)) => roles.into_iter().map(|r| (r, profile.clone())).collect(),
        None => Vec::new(),
    }
}

fn owned_rows(state: &UserState) -> Vec<(Role, Profile)> {
    state
        .rows()
        .into_iter()
        .map(|(r, p)| (r, p.clone()))
        .collect()
}

#[test]
fn create_then_update_applies_both() {
    let (state, outcomes) = fold(&[
        upsert(1, Rank::Created, "a", Some(Role::Student)),
        upsert(2, Rank::Updated, "b", Some(Role::Student)),
    ]);
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Applied]);
    assert_eq!(owned_rows(&state), [(Role::Student, profile(2, "b"))]);
}

#[test]
fn a_newer_update_before_the_create_makes_the_create_stale() {
    let (state, outcomes) = fold(&[
        upsert(2, Rank::Updated, "b", Some(Role::Student)),
        upsert(1, Rank::Created, "a", Some(Role::Student)),
    ]);
    assert_eq!(outcomes, [Outcome::Applied, Outcome::Stale]);
    assert_eq!(owned_rows(&state), [(Role::Student, profile(2, "b"))]);
}

#[test]
fn a_delete_before_an_older_update_does_not_resurrect() {
    let (state, outcomes) = fold(&[
        upsert(1, Rank::Created, "a", Some(Role::Student)),
        Change::Delete {
            version: version(3, Rank::Deleted, "c"),
        },
        upsert(2, Rank::Updated, "b", Some(Role::Instructor)),
        upsert(9, Rank::Updated, "d", Some(Role::Instructor)),
    ]);
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Stale,
            Outcome::Stale
        ]
    );
    assert!(state.deleted);
    assert!(state.rows().is_empty());
}

#[test]
fn a_role_change_keeps_the_old_row_and_adds_the_new_one() {
    let (state, _) = fold(&[
        upsert(1, Rank::Created, "a", Some(Role::Student)),
        upsert(2, Rank::Updated, "b", Some(Role::Instructor)),
    ]);
    assert_eq!(
        owned_rows(&state),
        [
            (Role::Student, profile(2, "b")),
            (Role::Instructor, profile(2, "b"))
        ]
    );
}

#[test]
fn a_stale_event_can_still_add_its_role_row_without_touching_the_profile() {
    let first = upsert(2, Rank::Updated, "b", Some(Role::Student));
    let late = upsert(1, Rank::Created, "a", Some(Role::Instructor));
    let (state, _) = fold(&[first]);
    let decision = decide(&state, &late);
    assert_eq!(decision.outcome, Outcome::Stale);
    assert_eq!(decision.effect, Effect::WriteRows);
    assert_eq!(decision.state.profile, Some(profile(2, "b")));
    assert_eq!(
        decision.state.roles,
        BTreeSet::from([Role::Student, Role::Instructor])
    );
}

#[test]
fn a_duplicate_changes_nothing() {
    let change = upsert(1, Rank::Created, "a", Some(Role::Student));
    let (state, _) = fold(std::slice::from_ref(&change));
    let decision = decide(&state, &change);
    assert_eq!(
        (decision.outcome, decision.effect),
        (Outcome::Stale, Effect::Nothing)
    );
    assert_eq!(decision.state, state);
}

#[test]
fn an_event_without_a_role_gives_no_row_until_one_names_a_role() {
    let (state, _) = fold(&[upsert(1, Rank::Created, "a", None)]);
    assert!(state.rows().is_empty());
    assert_eq!(state.profile, Some(profile(1, "a")));
    let (state, _) = fold(&[
        upsert(1, Rank::Created, "a", None),
        upsert(0, Rank::Created, "z", Some(Role::Student)),
    ]);
    assert_eq!(owned_rows(&state), [(Role::Student, profile(1, "a"))]);
}

fn arbitrary_change() -> impl Strategy<Value = Change> {
    let role = prop::option::of(prop::sample::select(vec![Role::Student, Role::Instructor]));
    let rank = prop::sample::select(vec![Rank::Created, Rank::Updated]);
    prop_oneof![
        8 => (0i64..20, rank, "[a-e]", role).prop_map(|(at, rank, id, role)| upsert(at, rank, &format!("msg_{id}{at}"), role)),
        1 => (0i64..20, "[a-e]").prop_map(|(at, id)| Change::Delete { version: version(at, Rank::Deleted, &format!("msg_{id}{at}")) }),
    ]
}

/// A history of distinct events (svix-ids unique, as Svix guarantees).
fn history() -> impl Strategy<Value = Vec<Change>> {
    prop::collection::vec(arbitrary_change(), 1..12).prop_map(|changes| {
        let mut seen = BTreeSet::new();
        changes
            .into_iter()
            .filter(|c| {
                let (Change::Upsert { version, .. } | Change::Delete { version }) = c;
                seen.insert(version.svix_id.clone())
            })
            .collect()
    })
}

proptest! {
    /// Any arrival order, with any duplicates, gives the rows of applying
    /// each event once in Clerk's order.
    #[test]
    fn any_permutation_with_duplicates_converges_to_the_model(
        history in history(),
        seed in any::<u64>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut arrivals = history.clone();
        for index in &duplicates {
            arrivals.push(history[index.index(history.len())].clone());
        }
        // A seeded Fisher-Yates shuffle.
        let mut rng = seed;
        for i in (1..arrivals.len()).rev() {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            arrivals.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut in_clerk_order = history.clone();
        in_clerk_order.sort_by(|a, b| {
            let (Change::Upsert { version: va, .. } | Change::Delete { version: va }) = a;
            let (Change::Upsert { version: vb, .. } | Change::Delete { version: vb }) = b;
            va.cmp(vb)
        });
        let (shuffled, _) = fold(&arrivals);
        let (ordered, _) = fold(&in_clerk_order);
        prop_assert_eq!(owned_rows(&shuffled), model_rows(&history));
        prop_assert_eq!(owned_rows(&ordered), model_rows(&history));
        prop_assert_eq!(shuffled.deleted, ordered.deleted);
    }

    /// No event after `user.deleted` brings the user back.
    #[test]
    fn nothing_after_a_delete_brings_the_user_back(before in history(), after in history(), at in 0i64..20) {
        let mut changes = before;
        changes.push(Change::Delete { version: version(at, Rank::Deleted, "msg_delete") });
        let (deleted, _) = fold(&changes);
        prop_assert!(deleted.rows().is_empty());
        let mut state = deleted;
        for change in &after {
            let decision = decide(&state, change);
            prop_assert_eq!(decision.outcome, Outcome::Stale);
            prop_assert_eq!(decision.effect, Effect::Nothing);
            state = decision.state;
        }
        prop_assert!(state.rows().is_empty());
    }

    /// A role, once held, is never dropped by a later event (short of a delete).
    #[test]
    fn roles_only_grow(history in history()) {
        let mut state = UserState::default();
        for change in &history {
            let next = decide(&state, change).state;
            if !next.deleted {
                prop_assert!(next.roles.is_superset(&state.roles));
            }
            state = next;
        }
    }
}
