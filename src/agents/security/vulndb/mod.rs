//! The offline vulnerability database: NVD API 2.0 pages and the Debian
//! Security Tracker dump, imported with `shieldops cve import` on an
//! air-gapped site and matched by the security agent against installed
//! packages. It lives in its own sled directory beside the event log (see
//! [`store`] for why and how it is shared with a running console).

pub mod cpe;
pub mod debian;
mod index;
pub mod nvd;
mod store;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;

pub use index::{CpeEntry, DebianEntry, Index};
pub use store::{ImportReport, SourceMeta, VulnDb};

use crate::event::VulnSource;

/// The database's directory inside a data directory.
pub fn db_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("vulndb")
}

/// A problem with a feed file or the database, naming the file and where.
#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    /// Not well-formed JSON, or a field of the wrong type.
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed, but a value makes no sense (`at` is the record's path).
    #[error("{file}: at {at}: {message}")]
    Invalid {
        file: String,
        at: String,
        message: String,
    },
    #[error(
        "vulnerability database {dir} is in use by another process (an import, or a console's scan); try again"
    )]
    Locked { dir: PathBuf },
    #[error("no vulnerability database at {dir}: run `shieldops cve import FILE…`")]
    Missing { dir: PathBuf },
    #[error("vulnerability database {dir}: {message}")]
    Storage { dir: PathBuf, message: String },
}

/// The kind of a feed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// An NVD API 2.0 CVE page.
    Nvd,
    /// The Debian Security Tracker JSON dump.
    Debian,
}

/// A parsed feed file.
#[derive(Debug)]
pub enum Feed {
    Nvd(nvd::NvdImport),
    Debian(debian::DebianImport),
}

/// A feed file read and parsed, ready to import.
#[derive(Debug)]
pub struct LoadedFeed {
    /// The path as given, for messages and `cve status`.
    pub file: String,
    /// The file's modification time (how current a dump without its own timestamp is).
    pub modified: Option<DateTime<Utc>>,
    pub feed: Feed,
}

/// Reads and parses `path`; `format` None guesses it from the first key.
pub fn read_feed(path: &Path, format: Option<FeedFormat>) -> Result<LoadedFeed, VulnDbError> {
    let file = path.display().to_string();
    let read_err = |error| VulnDbError::Read {
        file: file.clone(),
        error,
    };
    let bytes = std::fs::read(path).map_err(read_err)?;
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    let format = match format {
        Some(f) => f,
        None => guess_format(&bytes, &file)?,
    };
    let feed = match format {
        FeedFormat::Nvd => Feed::Nvd(nvd::parse(&bytes, &file)?),
        FeedFormat::Debian => Feed::Debian(debian::parse(&bytes, &file)?),
    };
    Ok(LoadedFeed {
        file,
        modified,
        feed,
    })
}

/// NVD pages start with one of their envelope keys (`resultsPerPage`, …);
/// the Debian dump's keys are source package names.
fn guess_format(bytes: &[u8], file: &str) -> Result<FeedFormat, VulnDbError> {
    const NVD_KEYS: &[&str] = &[
        "resultsPerPage",
        "startIndex",
        "totalResults",
        "format",
        "version",
        "timestamp",
        "vulnerabilities",
    ];
    let text = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(text);
    let rest = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let Some(rest) = rest.strip_prefix('{') else {
        return Err(VulnDbError::Invalid {
            file: file.to_string(),
            at: "the start".into(),
            message: "expected a JSON object (an NVD API 2.0 page or the Debian tracker dump)"
                .into(),
        });
    };
    let rest = rest.trim_start();
    if rest.starts_with('}') {
        return Ok(FeedFormat::Debian);
    }
    let key = rest
        .strip_prefix('"')
        .and_then(|r| r.split_once('"'))
        .map(|(k, _)| k)
        .unwrap_or("");
    Ok(if NVD_KEYS.contains(&key) {
        FeedFormat::Nvd
    } else {
        FeedFormat::Debian
    })
}

/// Deserialises JSON; on failure re-reads with path tracking so the error
/// names the line, the column and the field (`zlib.CVE-….releases`).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, VulnDbError> {
    let fast = match serde_json::from_slice::<T>(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (error, path) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => (de.end().err().unwrap_or(fast), String::new()),
        Err(e) => {
            let path = e.path().to_string();
            (e.into_inner(), path)
        }
    };
    let text = error.to_string();
    let mut message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if error.is_eof() {
        message = format!("the file ends early: it is truncated or incomplete ({message})");
    }
    if !path.is_empty() && path != "." {
        message = format!("{message} (at `{path}`)");
    }
    Err(VulnDbError::Syntax {
        file: file.to_string(),
        line: error.line(),
        column: error.column(),
        message,
    })
}

/// The sources as the event log reports them (age judged from `as_of`),
/// and whether the data is stale: none loaded, or any source older than
/// `max_age_days`.
pub fn freshness(
    sources: &[SourceMeta],
    max_age_days: u32,
    now: DateTime<Utc>,
) -> (Vec<VulnSource>, bool) {
    let limit = Duration::days(i64::from(max_age_days));
    let stale = sources.is_empty() || sources.iter().any(|s| now - s.as_of > limit);
    let view = sources
        .iter()
        .map(|s| VulnSource {
            name: s.name.clone(),
            records: s.records,
            // The event's time is how current the data is, so the pane's
            // age and the stale flag agree.
            imported_at: s.as_of,
        })
        .collect();
    (view, stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_guessed_from_the_first_key() {
        assert_eq!(
            guess_format(br#"  {"resultsPerPage": 2000, "x": 1}"#, "f").unwrap(),
            FeedFormat::Nvd
        );
        assert_eq!(
            guess_format(br#"{"openssl": {}}"#, "f").unwrap(),
            FeedFormat::Debian
        );
        assert!(guess_format(b"[1,2]", "f").is_err());
    }

    #[test]
    fn syntax_errors_name_line_column_and_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: Vec<u32>,
        }
        let e = parse_json::<T>(b"{\"a\": [1,\n 2, \"x\"]}", "f.json").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("f.json: line 2, column"), "{s}");
        assert!(s.contains("a[2]"), "{s}");
        let e = parse_json::<T>(b"{\"a\": [1,\n 2,", "f.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") && e.contains("line 2"), "{e}");
        let e = parse_json::<T>(b"{\"a\": []} x", "f.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn staleness_follows_the_oldest_source() {
        let now = Utc::now();
        let source = |days| SourceMeta {
            name: "nvd".into(),
            records: 1,
            imported_at: now,
            as_of: now - Duration::days(days),
            files: vec![],
        };
        assert!(freshness(&[], 7, now).1, "nothing loaded is stale");
        assert!(!freshness(&[source(6)], 7, now).1);
        assert!(freshness(&[source(6), source(8)], 7, now).1);
    }
}
