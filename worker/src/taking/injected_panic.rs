//! Debug builds only (the tests' builds; never a release binary): a batch
//! holding the message whose svix-id `CLERK_SYNC_DEBUG_PANIC_ON_SVIX_ID`
//! names panics, once per process, so a test can check what a panic in a
//! batch task does.

use clerk_sync_store::incoming::Incoming;
use std::sync::atomic::{AtomicBool, Ordering};

const VARIABLE: &str = "CLERK_SYNC_DEBUG_PANIC_ON_SVIX_ID";
static PANICKED: AtomicBool = AtomicBool::new(false);

pub fn panic_if_asked(messages: &[Incoming]) {
    let Ok(svix_id) = std::env::var(VARIABLE) else {
        return;
    };
    if messages.iter().any(|m| m.svix_id == svix_id) && !PANICKED.swap(true, Ordering::SeqCst) {
        panic!("injected by {VARIABLE} for {svix_id}");
    }
}
