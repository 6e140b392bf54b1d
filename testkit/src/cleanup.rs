//! Removing what a test made, from `Drop` (which cannot await and may run
//! during a panic): on a runtime of its own, in a thread of its own.

use std::future::Future;

/// Run `work` to completion on a runtime of its own.
pub fn blocking<F: Future<Output = ()> + Send + 'static>(work: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(work);
        }
    })
    .join();
}

/// A name no other test uses: `test_<kind>_<random>`.
pub fn unique(kind: &str) -> String {
    format!(
        "test_{kind}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
