//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps pages freed inside its heaps for reuse and returns
//! them only from the top of a heap. After a start-up that decodes a large
//! snapshot, or after saving one, most of that memory is free but still
//! resident, and the process looks several times its working size (README,
//! Performance › console memory). `malloc_trim` hands every wholly free page
//! back; it is called after those moments and then at a slow, steady pace.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed pages are handed back while the process runs.
const TRIM_EVERY: Duration = Duration::from_secs(30);
/// The first hand-back after start: the screen's first frames and the agents'
/// first cycles free much of what they build, soon after the runtime starts.
const FIRST_TRIM_AFTER: Duration = Duration::from_secs(5);

/// Hands wholly free heap pages back to the operating system (glibc only;
/// elsewhere the allocator does this itself).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`give_back`] [`FIRST_TRIM_AFTER`] after start, then every [`TRIM_EVERY`], until `cancel`.
pub fn spawn_periodic(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = FIRST_TRIM_AFTER;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {
                    wait = TRIM_EVERY;
                    let _ = tokio::task::spawn_blocking(give_back).await;
                }
            }
        }
    })
}
