//! Arbitrary bytes through everything the worker does with a body before the
//! database: the envelope summary, the parser, the version and role rules,
//! and `decide` (twice, as a redelivery would). None of it may panic.
#![no_main]

use clerk_sync_domain::clerk_event::ParsedEvent;
use clerk_sync_domain::envelope::EnvelopeSummary;
use clerk_sync_domain::projection::{UserState, decide};
use clerk_sync_domain::roles::RolePolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = EnvelopeSummary::read(body);
    let Ok(event) = ParsedEvent::parse(body) else { return };
    for svix_timestamp in [0, 1_700_000_000, i64::MAX, i64::MIN] {
        if let Some((change, _)) = event.change("msg_fuzz", svix_timestamp, &RolePolicy::default()) {
            let first = decide(&UserState::default(), &change);
            let again = decide(&first.state, &change);
            assert_eq!(again.state, first.state, "a redelivery changed the state");
            let _ = first.state.rows();
        }
    }
});
