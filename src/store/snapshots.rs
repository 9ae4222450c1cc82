//! State snapshots: the bytes live in files under `<log>/state/`, and sled's
//! `snapshots` tree holds only a small reference to each (length and SHA-256).
//!
//! A snapshot of a large fleet is tens of megabytes. Kept as one sled value it
//! was written through a buffer of its whole size, copied into sled's page
//! cache on every save and every start, and copied again into each read-only
//! copy a reader takes; as a file it is streamed out and read once. A snapshot
//! is derived data (the log alone can rebuild it), so one that is missing or
//! fails its digest is skipped for the next older one, and the writer verifies
//! the log from whichever snapshot start-up will really use.
//!
//! Entries written before snapshots became files (the whole snapshot as the
//! sled value) are still read.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{KEEP_SNAPSHOTS, StoreError, sled_error, storage};

/// Directory of snapshot files inside the log directory.
pub(super) const SNAPSHOT_DIR: &str = "state";
/// Marks a sled value that refers to a snapshot file: magic ‖ SHA-256 ‖ length (u64 BE).
const REF_MAGIC: &[u8] = b"shieldops-snapshot-file-v1\n";
const REF_LEN: usize = REF_MAGIC.len() + 32 + 8;

/// What a `snapshots` entry says.
enum Entry {
    /// The snapshot is in a file with this digest and length.
    File { digest: [u8; 32], len: u64 },
    /// An entry from before snapshot files: the value is the snapshot.
    Inline(sled::IVec),
}

fn parse(value: sled::IVec) -> Entry {
    match value.strip_prefix(REF_MAGIC) {
        Some(rest) if value.len() == REF_LEN => {
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&rest[..32]);
            let mut len = [0u8; 8];
            len.copy_from_slice(&rest[32..]);
            Entry::File {
                digest,
                len: u64::from_be_bytes(len),
            }
        }
        _ => Entry::Inline(value),
    }
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(SNAPSHOT_DIR).join(format!("{seq:020}.state"))
}

fn seq_of(dir: &Path, key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("snapshot key of {} bytes", key.len()),
        })
}

/// Counts and hashes what passes through to the file.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the snapshot taken at `seq` with `write`, durably, then records it
/// and drops all but the newest [`KEEP_SNAPSHOTS`].
pub(super) fn save(
    dir: &Path,
    db: &sled::Db,
    tree: &sled::Tree,
    seq: u64,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let io =
        |what: &str, e: std::io::Error| storage(dir, format!("snapshot at seq {seq}: {what}: {e}"));
    let state_dir = dir.join(SNAPSHOT_DIR);
    create_private_dir(&state_dir).map_err(|e| io("cannot create the snapshot directory", e))?;
    let path = file_path(dir, seq);
    let partial = state_dir.join(format!(".{seq:020}.partial"));
    let file = File::create(&partial).map_err(|e| io("cannot create the file", e))?;
    let mut out = Hashing {
        inner: BufWriter::with_capacity(1 << 16, file),
        hasher: Sha256::new(),
        len: 0,
    };
    let written = write(&mut out).and_then(|()| out.flush());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(io("cannot write", e));
    }
    let Hashing {
        inner, hasher, len, ..
    } = out;
    let file = inner
        .into_inner()
        .map_err(|e| io("cannot write", e.into_error()))?;
    file.sync_all().map_err(|e| io("cannot sync", e))?;
    drop(file);
    std::fs::rename(&partial, &path).map_err(|e| io("cannot rename into place", e))?;
    File::open(&state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync the snapshot directory", e))?;

    let mut value = Vec::with_capacity(REF_LEN);
    value.extend_from_slice(REF_MAGIC);
    value.extend_from_slice(&hasher.finalize());
    value.extend_from_slice(&len.to_be_bytes());
    tree.insert(seq.to_be_bytes(), value)
        .map_err(|e| sled_error(dir, e))?;
    let keys: Vec<sled::IVec> = tree
        .iter()
        .keys()
        .collect::<Result<_, _>>()
        .map_err(|e| sled_error(dir, e))?;
    let excess = keys.len().saturating_sub(KEEP_SNAPSHOTS);
    for key in &keys[..excess] {
        tree.remove(key).map_err(|e| sled_error(dir, e))?;
    }
    db.flush().map_err(|e| sled_error(dir, e))?;
    // Files go only after sled no longer refers to them: those of dropped
    // snapshots, and any left by a save a crash cut short (written, or
    // renamed into place but never recorded).
    let kept: std::collections::BTreeSet<PathBuf> = keys[excess..]
        .iter()
        .filter_map(|key| seq_of(dir, key).ok())
        .map(|seq| file_path(dir, seq))
        .collect();
    if let Ok(entries) = std::fs::read_dir(&state_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !kept.contains(&path) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

/// The newest snapshot whose bytes are present and intact: (seq, bytes).
/// A damaged or missing one is skipped (with a warning) for the next older.
pub(super) fn latest(dir: &Path, tree: &sled::Tree) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    for item in tree.iter().rev() {
        let (key, value) = item.map_err(|e| sled_error(dir, e))?;
        let seq = seq_of(dir, &key)?;
        match parse(value) {
            Entry::Inline(bytes) => return Ok(Some((seq, bytes.to_vec()))),
            Entry::File { digest, len } => match read_checked(dir, seq, &digest, len) {
                Ok(bytes) => return Ok(Some((seq, bytes))),
                Err(why) => tracing::warn!("state snapshot at seq {seq} skipped: {why}"),
            },
        }
    }
    Ok(None)
}

/// seq of the snapshot [`latest`] would return, judged without reading it
/// whole: its file is present with the recorded length (the digest is
/// checked when it is read; a mismatch then falls back to a full replay that
/// is verified first, see `runtime::snapshots::load_state`).
pub(super) fn latest_seq(dir: &Path, tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
    for item in tree.iter().rev() {
        let (key, value) = item.map_err(|e| sled_error(dir, e))?;
        let seq = seq_of(dir, &key)?;
        match parse(value) {
            Entry::Inline(_) => return Ok(Some(seq)),
            Entry::File { len, .. } => {
                let present = std::fs::metadata(file_path(dir, seq)).map(|m| m.len());
                if present.as_ref().ok() == Some(&len) {
                    return Ok(Some(seq));
                }
            }
        }
    }
    Ok(None)
}

fn read_checked(dir: &Path, seq: u64, digest: &[u8; 32], len: u64) -> Result<Vec<u8>, String> {
    let path = file_path(dir, seq);
    let mut file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::with_capacity(len.min(1 << 32) as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 != len {
        return Err(format!(
            "{} has {} bytes, {len} were written",
            path.display(),
            bytes.len()
        ));
    }
    if Sha256::digest(&bytes).as_slice() != digest {
        return Err(format!("{} does not match its digest", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, sled::Db, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .temporary(false)
            .open()
            .unwrap();
        let tree = db.open_tree("snapshots").unwrap();
        (dir, db, tree)
    }

    fn save_bytes(dir: &Path, db: &sled::Db, tree: &sled::Tree, seq: u64, bytes: &[u8]) {
        save(dir, db, tree, seq, &mut |w| w.write_all(bytes)).unwrap();
    }

    #[test]
    fn saved_snapshots_read_back_and_only_the_newest_are_kept() {
        let (dir, db, tree) = open();
        for seq in 1..=5u64 {
            save_bytes(
                dir.path(),
                &db,
                &tree,
                seq * 10,
                format!("state@{seq}").as_bytes(),
            );
        }
        assert_eq!(
            latest(dir.path(), &tree).unwrap(),
            Some((50, b"state@5".to_vec()))
        );
        assert_eq!(tree.len(), KEEP_SNAPSHOTS);
        let mut files: Vec<String> = std::fs::read_dir(dir.path().join(SNAPSHOT_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "00000000000000000030.state",
                "00000000000000000040.state",
                "00000000000000000050.state"
            ]
        );
    }

    #[test]
    fn a_damaged_or_missing_file_falls_back_to_the_older_snapshot() {
        let (dir, db, tree) = open();
        save_bytes(dir.path(), &db, &tree, 10, b"older");
        save_bytes(dir.path(), &db, &tree, 20, b"newer");
        // Same length, one byte changed: only the digest can tell.
        std::fs::write(file_path(dir.path(), 20), b"nEwer").unwrap();
        assert_eq!(
            latest(dir.path(), &tree).unwrap(),
            Some((10, b"older".to_vec()))
        );
        // latest_seq does not read whole files; the length still matches.
        assert_eq!(latest_seq(dir.path(), &tree).unwrap(), Some(20));
        std::fs::remove_file(file_path(dir.path(), 20)).unwrap();
        assert_eq!(latest_seq(dir.path(), &tree).unwrap(), Some(10));
        std::fs::write(file_path(dir.path(), 10), b"old").unwrap();
        assert_eq!(latest(dir.path(), &tree).unwrap(), None);
        assert_eq!(latest_seq(dir.path(), &tree).unwrap(), None);
    }

    #[test]
    fn entries_from_before_snapshot_files_are_still_read() {
        let (dir, db, tree) = open();
        tree.insert(7u64.to_be_bytes(), b"shieldops-state-v1\n{}".as_slice())
            .unwrap();
        assert_eq!(
            latest(dir.path(), &tree).unwrap(),
            Some((7, b"shieldops-state-v1\n{}".to_vec()))
        );
        save_bytes(dir.path(), &db, &tree, 9, b"file");
        assert_eq!(
            latest(dir.path(), &tree).unwrap(),
            Some((9, b"file".to_vec()))
        );
    }

    #[test]
    fn files_a_crashed_save_left_behind_go_with_the_next_save() {
        let (dir, db, tree) = open();
        let state_dir = dir.path().join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&state_dir).unwrap();
        // Renamed into place but never recorded, and cut short mid-write.
        std::fs::write(file_path(dir.path(), 8), b"unrecorded").unwrap();
        std::fs::write(state_dir.join(".00000000000000000009.partial"), b"half").unwrap();
        save_bytes(dir.path(), &db, &tree, 10, b"state@10");
        let files: Vec<String> = std::fs::read_dir(&state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["00000000000000000010.state"]);
        assert_eq!(
            latest(dir.path(), &tree).unwrap(),
            Some((10, b"state@10".to_vec()))
        );
    }

    #[test]
    fn a_failed_write_leaves_no_snapshot_behind() {
        let (dir, db, tree) = open();
        let err = save(dir.path(), &db, &tree, 5, &mut |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("encoder failed"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("encoder failed"), "{err}");
        assert!(tree.is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path().join(SNAPSHOT_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}
