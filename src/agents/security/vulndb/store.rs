//! The database on disk: its own sled directory (`<data dir>/vulndb/`), apart
//! from the event log, so `cve import` works while a console runs. A console
//! opens it only for the moment of a scan; whoever finds it held waits a
//! little and retries. One tree holds everything under key prefixes, so an
//! import is one atomic batch: readers see all of it or none of it.
//!
//! Keys: `g` generation (u64, bumped by every import) · `m/<source>` a
//! source's [`SourceMeta`] · `n/<CVE>` an [`NvdRecord`] ·
//! `d/<source package>/<CVE>` a [`DebianRecord`]. Values are JSON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::debian::DebianRecord;
use super::index::Index;
use super::nvd::NvdRecord;
use super::{Feed, LoadedFeed, VulnDbError};

const TREE: &str = "vulndb";
const GENERATION: &[u8] = b"g";
const NVD: &str = "nvd";
const DEBIAN: &str = "debian";

/// One source's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// `nvd` or `debian`.
    pub name: String,
    pub records: u64,
    /// When the last import ran.
    pub imported_at: DateTime<Utc>,
    /// How current the data is: the feed's own timestamp (NVD) or the file's
    /// modification time (Debian), never later than the import. Age and
    /// staleness are judged from this.
    pub as_of: DateTime<Utc>,
    /// The files of the last import.
    pub files: Vec<String>,
}

/// What an import changed in one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub source: String,
    /// Records read from the files (after de-duplication).
    pub read: u64,
    pub added: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// Records the source holds now.
    pub total: u64,
}

/// An open vulnerability database (holds the directory's lock until dropped).
pub struct VulnDb {
    dir: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
}

impl VulnDb {
    /// Opens (`create`: or creates) the database in `dir`, waiting up to
    /// `wait` while another process holds it.
    pub fn open(dir: &Path, create: bool, wait: Duration) -> Result<VulnDb, VulnDbError> {
        if !create && !dir.join("conf").exists() {
            return Err(VulnDbError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        let started = Instant::now();
        let db = loop {
            match open_sled(dir) {
                Err(VulnDbError::Locked { .. }) if started.elapsed() < wait => {
                    // Bounded polling of another process's file lock: there is
                    // nothing to await across processes.
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let tree = db.open_tree(TREE).map_err(|e| storage(dir, e))?;
        Ok(VulnDb {
            dir: dir.to_path_buf(),
            db,
            tree,
        })
    }

    /// Bumped by every import: an unchanged generation means an unchanged database.
    pub fn generation(&self) -> Result<u64, VulnDbError> {
        Ok(self
            .tree
            .get(GENERATION)
            .map_err(|e| storage(&self.dir, e))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// The sources held, by name.
    pub fn sources(&self) -> Result<Vec<SourceMeta>, VulnDbError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"m/") {
            let (key, value) = item.map_err(|e| storage(&self.dir, e))?;
            out.push(self.decode(&key, &value)?);
        }
        Ok(out)
    }

    /// The NVD record of `cve`, if held.
    pub fn nvd(&self, cve: &str) -> Result<Option<NvdRecord>, VulnDbError> {
        self.get(format!("n/{cve}").as_bytes())
    }

    /// The Debian record of `cve` in source `package`, if held.
    pub fn debian(&self, package: &str, cve: &str) -> Result<Option<DebianRecord>, VulnDbError> {
        self.get(format!("d/{package}/{cve}").as_bytes())
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, VulnDbError> {
        match self.tree.get(key).map_err(|e| storage(&self.dir, e))? {
            Some(v) => Ok(Some(self.decode(key, &v)?)),
            None => Ok(None),
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<T, VulnDbError> {
        serde_json::from_slice(value).map_err(|e| VulnDbError::Storage {
            dir: self.dir.clone(),
            message: format!(
                "record {} cannot be read: {e}",
                String::from_utf8_lossy(key)
            ),
        })
    }

    /// The in-memory matching index of everything held.
    pub fn load_index(&self) -> Result<Index, VulnDbError> {
        let mut index = Index::new(self.generation()?);
        for item in self.tree.scan_prefix(b"d/") {
            let (key, value) = item.map_err(|e| storage(&self.dir, e))?;
            let record: DebianRecord = self.decode(&key, &value)?;
            index.add_debian(&record);
        }
        for item in self.tree.scan_prefix(b"n/") {
            let (key, value) = item.map_err(|e| storage(&self.dir, e))?;
            let record: NvdRecord = self.decode(&key, &value)?;
            index.add_nvd(&record);
        }
        index.finish();
        Ok(index)
    }

    /// Imports parsed feeds as one atomic batch. NVD pages add and update
    /// records (NVD is fetched in pages; rejected CVEs are removed); a Debian
    /// tracker dump is complete, so it replaces the source (records no longer
    /// in it are removed). Unchanged records are not rewritten.
    pub fn import(
        &self,
        feeds: Vec<LoadedFeed>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ImportReport>, VulnDbError> {
        let se = |e| storage(&self.dir, e);
        let mut nvd: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut rejected: HashSet<String> = HashSet::new();
        let mut debian: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let (mut nvd_files, mut debian_files) = (Vec::new(), Vec::new());
        let (mut nvd_as_of, mut debian_as_of): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            (None, None);
        for loaded in feeds {
            match loaded.feed {
                Feed::Nvd(page) => {
                    let as_of = page.as_of.or(loaded.modified).unwrap_or(now).min(now);
                    nvd_as_of = Some(nvd_as_of.map_or(as_of, |t| t.min(as_of)));
                    for id in page.rejected {
                        nvd.remove(&format!("n/{id}"));
                        rejected.insert(id);
                    }
                    for r in page.records {
                        rejected.remove(&r.id);
                        nvd.insert(format!("n/{}", r.id), encode(&self.dir, &r)?);
                    }
                    nvd_files.push(loaded.file);
                }
                Feed::Debian(dump) => {
                    let as_of = loaded.modified.unwrap_or(now).min(now);
                    debian_as_of = Some(debian_as_of.map_or(as_of, |t| t.min(as_of)));
                    for r in dump.records {
                        debian.insert(
                            format!("d/{}/{}", r.package, r.cve).into_bytes(),
                            encode(&self.dir, &r)?,
                        );
                    }
                    debian_files.push(loaded.file);
                }
            }
        }

        let mut batch = sled::Batch::default();
        let mut reports = Vec::new();
        let previous: HashMap<String, SourceMeta> = self
            .sources()?
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let mut write =
            |key: &[u8], value: Vec<u8>, report: &mut ImportReport| -> Result<(), VulnDbError> {
                match self.tree.get(key).map_err(se)? {
                    Some(old) if old.as_ref() == value.as_slice() => report.unchanged += 1,
                    Some(_) => {
                        report.changed += 1;
                        batch.insert(key, value);
                    }
                    None => {
                        report.added += 1;
                        batch.insert(key, value);
                    }
                }
                Ok(())
            };
        let mut metas = Vec::new();
        if let Some(as_of) = nvd_as_of {
            let mut report = new_report(NVD, nvd.len());
            for (key, value) in nvd {
                write(key.as_bytes(), value, &mut report)?;
            }
            let mut removals = Vec::new();
            for id in rejected {
                let key = format!("n/{id}");
                if self.tree.contains_key(&key).map_err(se)? {
                    report.removed += 1;
                    removals.push(key);
                }
            }
            let before = previous.get(NVD).map_or(0, |m| m.records);
            report.total = before + report.added - report.removed;
            metas.push((meta(NVD, &report, now, as_of, nvd_files), removals));
            reports.push(report);
        }
        if let Some(as_of) = debian_as_of {
            let mut report = new_report(DEBIAN, debian.len());
            let mut removals = Vec::new();
            for item in self.tree.scan_prefix(b"d/").keys() {
                let key = item.map_err(se)?;
                if !debian.contains_key(key.as_ref()) {
                    report.removed += 1;
                    removals.push(String::from_utf8_lossy(&key).into_owned());
                }
            }
            for (key, value) in debian {
                write(&key, value, &mut report)?;
            }
            report.total = report.read;
            metas.push((meta(DEBIAN, &report, now, as_of, debian_files), removals));
            reports.push(report);
        }
        for (meta, removals) in metas {
            for key in removals {
                batch.remove(key.as_bytes());
            }
            batch.insert(
                format!("m/{}", meta.name).as_bytes(),
                encode(&self.dir, &meta)?,
            );
        }
        batch.insert(GENERATION, &(self.generation()? + 1).to_be_bytes());
        self.tree.apply_batch(batch).map_err(se)?;
        self.db.flush().map_err(se)?;
        Ok(reports)
    }
}

fn new_report(source: &str, read: usize) -> ImportReport {
    ImportReport {
        source: source.to_string(),
        read: read as u64,
        added: 0,
        changed: 0,
        unchanged: 0,
        removed: 0,
        total: 0,
    }
}

fn meta(
    name: &str,
    report: &ImportReport,
    now: DateTime<Utc>,
    as_of: DateTime<Utc>,
    files: Vec<String>,
) -> SourceMeta {
    SourceMeta {
        name: name.to_string(),
        records: report.total,
        imported_at: now,
        as_of,
        files,
    }
}

/// Stored values are JSON.
fn encode<T: Serialize>(dir: &Path, value: &T) -> Result<Vec<u8>, VulnDbError> {
    serde_json::to_vec(value).map_err(|e| VulnDbError::Storage {
        dir: dir.to_path_buf(),
        message: format!("cannot encode a record: {e}"),
    })
}

fn storage(dir: &Path, e: sled::Error) -> VulnDbError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            VulnDbError::Locked {
                dir: dir.to_path_buf(),
            }
        }
        other => VulnDbError::Storage {
            dir: dir.to_path_buf(),
            message: other.to_string(),
        },
    }
}

fn open_sled(dir: &Path) -> Result<sled::Db, VulnDbError> {
    let config = sled::Config::new()
        .path(dir)
        // Imports flush once at the end; a background flusher would only
        // keep the directory's lock busy.
        .flush_every_ms(None);
    // sled may panic on some damaged files; a damaged database must be an error.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(storage(dir, e)),
        Err(_) => Err(VulnDbError::Storage {
            dir: dir.to_path_buf(),
            message: "the storage engine failed while opening it (damaged files?)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_database_is_reported_locked_after_the_wait_and_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vulndb");
        assert!(matches!(
            VulnDb::open(&path, false, Duration::ZERO),
            Err(VulnDbError::Missing { .. })
        ));
        let held = VulnDb::open(&path, true, Duration::ZERO).unwrap();
        let started = Instant::now();
        let e = VulnDb::open(&path, false, Duration::from_millis(200))
            .err()
            .unwrap();
        assert!(matches!(e, VulnDbError::Locked { .. }), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(held);
        let db = VulnDb::open(&path, false, Duration::ZERO).unwrap();
        assert_eq!(db.generation().unwrap(), 0);
        assert!(db.sources().unwrap().is_empty());
    }
}
