//! Read-only access to a data directory: a private copy of its storage files.
//!
//! sled repairs (rewrites) damaged files when it opens them, and even a clean
//! open may touch them, so a reader that opened the original could change the
//! very evidence it was asked to check. Readers instead copy the files while
//! holding a shared lock on sled's `db` file (sled's writer takes it
//! exclusively, so no writer can start or be running meanwhile) and open the
//! copy. The anchor is read from the original under the same lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::anchor::{self, Anchor};
use super::{ANCHOR_FILE, ANCHORED_FORMAT, StoreError, storage};

/// A private copy of a data directory's storage files; removed on drop.
pub(super) struct Copy {
    path: PathBuf,
    /// The anchor of the original as read under the lock.
    anchor: Result<Option<Anchor>, String>,
}

impl Copy {
    /// Copies the storage files of `dir` into a new private temporary directory.
    pub fn take(dir: &Path) -> Result<Copy, StoreError> {
        let io = |what: &str, e: std::io::Error| storage(dir, format!("{what}: {e}"));
        let db = File::open(dir.join("db")).map_err(|e| io("cannot open db", e))?;
        match flock(&db, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(io("cannot lock db", e.into())),
        }
        let anchor = anchor::read(dir).map_err(|e| e.to_string());
        let path = private_temp_dir().map_err(|e| io("cannot create a private copy", e))?;
        let copy = Copy { path, anchor };
        copy_tree(dir, &copy.path, true).map_err(|e| io("cannot copy the storage files", e))?;
        // The shared lock is released when `db` drops, after the copy is complete.
        drop(db);
        Ok(copy)
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The original's anchor, or why it cannot be trusted (for a log of
    /// `version` whose last stored seq is `last_seq`).
    pub fn anchor(&self, version: u64) -> (Option<Anchor>, Option<String>) {
        match &self.anchor {
            Ok(Some(anchor)) => (Some(*anchor), None),
            Ok(None) if version < ANCHORED_FORMAT => (None, None),
            Ok(None) => (
                None,
                Some(format!(
                    "the anchor file {ANCHOR_FILE} is missing, so a cut-off tail cannot be ruled out"
                )),
            ),
            Err(e) => (
                None,
                Some(format!("{e}, so a cut-off tail cannot be ruled out")),
            ),
        }
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A new directory only this user can enter, under the system's temp dir.
fn private_temp_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    for attempt in 0u32..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!(
            "shieldops-read-{}-{nanos:09}-{attempt}",
            std::process::id()
        ));
        // `create` (not recursive) fails if anything, a planted symlink
        // included, already sits at the name.
        match builder.create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no free name for a temporary directory",
    ))
}

/// Copies sled's files (`conf`, `db`, `snap.*`, and the `blobs` directory) from `from` to `to`.
fn copy_tree(from: &Path, to: &Path, top: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let kind = entry.file_type()?;
        let wanted =
            !top || matches!(text.as_ref(), "conf" | "db" | "blobs") || text.starts_with("snap.");
        if !wanted || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(to.join(&name))?;
            copy_tree(&entry.path(), &to.join(&name), false)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}
