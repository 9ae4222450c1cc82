//! The head of the chain — (seq, hash) of the last acknowledged record — kept
//! in a small file beside sled, outside its database.
//!
//! A hash chain proves order only to someone who holds a later head. sled's
//! recovery silently drops everything from a damaged segment on, and what is
//! left still chains; the anchor is what says the log once reached further.
//! The writer updates it after every group commit's flush and before any
//! caller is acknowledged, so every acknowledged event is at or below it.
//!
//! The file holds two 64-byte slots written alternately, each with its own
//! checksum and a write counter: a write torn by a crash leaves the other,
//! previous, slot intact, and readers take the valid slot with the highest
//! counter. Layout of a slot: `SOAN` ‖ version (1) ‖ 3 zero bytes ‖ counter
//! (u64 BE) ‖ seq (u64 BE) ‖ hash (32 bytes) ‖ first 8 bytes of SHA-256 over
//! the preceding 56 bytes.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::event::ChainHash;

/// Name of the anchor file inside the data directory.
pub const ANCHOR_FILE: &str = "head.anchor";

const SLOT: usize = 64;
const MAGIC: &[u8; 4] = b"SOAN";
const VERSION: u8 = 1;

/// The last acknowledged head of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// seq of the last acknowledged record (0 = nothing acknowledged yet).
    pub seq: u64,
    /// That record's hash ([`ChainHash::GENESIS`] for seq 0).
    pub hash: ChainHash,
}

/// Why an anchor file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Neither slot holds a valid anchor.
    #[error("{path} is damaged: neither of its slots holds a valid anchor")]
    Damaged { path: PathBuf },
}

/// Path of the anchor file for a data directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(ANCHOR_FILE)
}

/// Reads the anchor of `dir`; `Ok(None)` when there is no anchor file. Never writes.
pub fn read(dir: &Path) -> Result<Option<Anchor>, AnchorError> {
    let path = path(dir);
    let io = |source| AnchorError::Io {
        path: path.clone(),
        source,
    };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::with_capacity(2 * SLOT);
    file.by_ref()
        .take(2 * SLOT as u64)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    newest(&bytes)
        .map(|(_, anchor)| Some(anchor))
        .ok_or(AnchorError::Damaged { path })
}

/// The valid slot with the highest counter: (counter, anchor).
fn newest(bytes: &[u8]) -> Option<(u64, Anchor)> {
    bytes
        .chunks_exact(SLOT)
        .filter_map(decode_slot)
        .max_by_key(|(counter, _)| *counter)
}

fn encode_slot(counter: u64, anchor: &Anchor) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..4].copy_from_slice(MAGIC);
    slot[4] = VERSION;
    slot[8..16].copy_from_slice(&counter.to_be_bytes());
    slot[16..24].copy_from_slice(&anchor.seq.to_be_bytes());
    slot[24..56].copy_from_slice(&anchor.hash.0);
    let sum = Sha256::digest(&slot[..56]);
    slot[56..].copy_from_slice(&sum[..8]);
    slot
}

fn decode_slot(slot: &[u8]) -> Option<(u64, Anchor)> {
    if slot.len() != SLOT || &slot[..4] != MAGIC || slot[4] != VERSION {
        return None;
    }
    if Sha256::digest(&slot[..56])[..8] != slot[56..] {
        return None;
    }
    let counter = u64::from_be_bytes(slot[8..16].try_into().ok()?);
    let seq = u64::from_be_bytes(slot[16..24].try_into().ok()?);
    let hash = ChainHash(slot[24..56].try_into().ok()?);
    Some((counter, Anchor { seq, hash }))
}

/// The writer's handle on the anchor file.
pub struct AnchorWriter {
    file: File,
    counter: u64,
}

impl AnchorWriter {
    /// Opens the anchor file of `dir` for writing, creating it (mode 0600)
    /// with `initial` when there is none, and making the creation durable.
    pub fn open(dir: &Path, initial: Anchor) -> std::io::Result<AnchorWriter> {
        let path = path(dir);
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        let mut bytes = Vec::with_capacity(2 * SLOT);
        (&file).take(2 * SLOT as u64).read_to_end(&mut bytes)?;
        let counter = newest(&bytes).map_or(0, |(counter, _)| counter);
        let mut writer = AnchorWriter { file, counter };
        if counter == 0 {
            writer.write(&initial)?;
            // The new directory entry must survive a crash too.
            File::open(dir)?.sync_all()?;
        }
        Ok(writer)
    }

    /// Makes `anchor` the durable head: written into the older slot, then synced.
    pub fn write(&mut self, anchor: &Anchor) -> std::io::Result<()> {
        let counter = self.counter + 1;
        let offset = (counter % 2) * SLOT as u64;
        self.file
            .write_all_at(&encode_slot(counter, anchor), offset)?;
        self.file.sync_data()?;
        self.counter = counter;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(seq: u64) -> Anchor {
        Anchor {
            seq,
            hash: ChainHash([seq as u8; 32]),
        }
    }

    #[test]
    fn no_file_is_no_anchor() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }

    #[test]
    fn the_newest_write_wins_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = AnchorWriter::open(dir.path(), anchor(0)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(anchor(0)));
        for seq in 1..=5 {
            w.write(&anchor(seq)).unwrap();
            assert_eq!(read(dir.path()).unwrap(), Some(anchor(seq)));
        }
        drop(w);
        // Reopening keeps the head and continues the counter.
        let mut w = AnchorWriter::open(dir.path(), anchor(0)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(anchor(5)));
        w.write(&anchor(6)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(anchor(6)));
    }

    #[test]
    fn a_torn_write_leaves_the_previous_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = AnchorWriter::open(dir.path(), anchor(0)).unwrap();
        w.write(&anchor(7)).unwrap();
        w.write(&anchor(8)).unwrap();
        // Damage the slot holding seq 8 (the newest) as a torn write would.
        let mut bytes = std::fs::read(path(dir.path())).unwrap();
        let (newest_slot, _) = bytes
            .chunks_exact(SLOT)
            .enumerate()
            .filter_map(|(i, s)| decode_slot(s).map(|(c, _)| (i, c)))
            .max_by_key(|(_, c)| *c)
            .unwrap();
        bytes[newest_slot * SLOT + 20] ^= 0xff;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(anchor(7)));
    }

    #[test]
    fn a_file_with_no_valid_slot_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), [0x5a; 128]).unwrap();
        assert!(matches!(read(dir.path()), Err(AnchorError::Damaged { .. })));
    }
}
