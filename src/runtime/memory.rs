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

/// Hands wholly free heap pages back to the operating system (glibc only;
/// elsewhere the allocator does this itself).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`give_back`] every [`TRIM_EVERY`] until `cancel`.
pub fn spawn_periodic(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(TRIM_EVERY) => {
                    let _ = tokio::task::spawn_blocking(give_back).await;
                }
            }
        }
    })
}
