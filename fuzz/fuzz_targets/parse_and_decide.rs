//! Arbitrary bytes through everything the worker does with a body before the
//! database: the envelope summary, the parser, the version and role rules,
//! and `decide` (twice, as a redelivery would). None of it may panic, and
//! whatever the parser accepts, PostgreSQL can store.
#![no_main]

use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::projection::{Change, UserState, decide};
use clerk_sync_domain::roles::RolePolicy;
use clerk_sync_domain::storable::{self, MAX_ID_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = EnvelopeSummary::read(body);
    let Ok(event) = ParsedEvent::parse(body) else { return };
    assert!(storable::text_problem(&event.event_type).is_none());
    if let Some(user) = event.subject_user_id() {
        assert!(storable::key_problem(user, MAX_ID_BYTES).is_none());
    }
    if let Some(ms) = event.timestamp_ms {
        assert!(storable::time_problem(ms).is_none());
    }
    for svix_timestamp in [0, 1_700_000_000, i64::MAX, i64::MIN] {
        if let Some((change, _)) = event.change("msg_fuzz", svix_timestamp, &RolePolicy::default()) {
            if let Change::Upsert { profile, .. } = &change {
                for text in [&profile.first_name, &profile.last_name]
                    .into_iter()
                    .chain(&profile.email)
                    .chain(&profile.image_url)
                {
                    assert!(storable::text_problem(text).is_none());
                }
            }
            let first = decide(&UserState::default(), &change);
            let again = decide(&first.state, &change);
            assert_eq!(again.state, first.state, "a redelivery changed the state");
            let _ = first.state.rows();
        }
    }
});
