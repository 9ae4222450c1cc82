//! The last head (seq, hash) each attached console verified, per server URL.
//!
//! A console checks every record it receives against the chain, so the head
//! it last verified is something the server committed to. Kept across runs
//! in the user's state directory, it lets the next `attach` catch a server
//! whose history was cut short or rewritten since: the server must still
//! hold that record, with that hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::ChainHash;

/// File name inside the state directory.
const FILE: &str = "attach-heads.json";

/// One verified head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: ChainHash,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    seq: u64,
    hash: String,
}

/// The heads file in the user's state directory (`None` without a home).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "shieldops")
        .and_then(|d| d.state_dir().map(|s| s.join(FILE)))
}

/// The head last verified for `url`, if any; an unreadable file counts as none.
pub fn load(path: &Path, url: &str) -> Option<Head> {
    let text = std::fs::read_to_string(path).ok()?;
    let all: BTreeMap<String, Stored> = serde_json::from_str(&text).ok()?;
    let stored = all.get(url)?;
    Some(Head {
        seq: stored.seq,
        hash: ChainHash::from_hex(&stored.hash)?,
    })
}

/// Records `head` as verified for `url` (written to a temporary file, then renamed).
pub fn save(path: &Path, url: &str, head: Head) -> std::io::Result<()> {
    let mut all: BTreeMap<String, Stored> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.insert(
        url.to_string(),
        Stored {
            seq: head.seq,
            hash: head.hash.to_hex(),
        },
    );
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&all)?)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_kept_per_url_across_saves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FILE);
        assert_eq!(load(&path, "ws://a/ws"), None);
        let a = Head {
            seq: 7,
            hash: ChainHash([7; 32]),
        };
        let b = Head {
            seq: 9,
            hash: ChainHash([9; 32]),
        };
        save(&path, "ws://a/ws", a).unwrap();
        save(&path, "ws://b/ws", b).unwrap();
        assert_eq!(load(&path, "ws://a/ws"), Some(a));
        assert_eq!(load(&path, "ws://b/ws"), Some(b));
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(load(&path, "ws://a/ws"), None);
    }
}
