//! The quarantine clean_disk moves files into, and the restore that puts back
//! exactly what it took.
//!
//! The adversary is an unprivileged user on the managed host: they choose file
//! names (any bytes, newlines included), own directories under `/tmp`, can
//! plant directories in every world-writable place, can learn a batch's name
//! and can fill the disk so that a restore runs. They must never get a file
//! placed, as root, where they choose. So:
//!
//! - There is one quarantine directory per host, from the configuration. It
//!   is checked before every use: owned by the user the commands run as
//!   (root), mode 0700, and every directory from `/` down to it is a real
//!   directory (no symbolic link) owned by root or that user and writable by
//!   no one else. Anything else is refused with the reason.
//! - Files on another filesystem than the quarantine are skipped and
//!   reported, never copied: a rename keeps the inode, so the restore can
//!   prove it puts back the very file it took; a copy could not.
//! - A host snapshot creates the batch (`<quarantine>/<batch>/{files,manifest}`),
//!   so a batch that is missing at restore is always an error. The manifest
//!   holds one line per file (original directory and name, device, inode,
//!   size, mtime, and the directory's device and inode), written before the
//!   file moves, so after a crash on either side the host still says what
//!   may have moved; the action's outcome in the event log lists the same.
//! - Restore moves back only what the manifest names, each only when the
//!   quarantined copy is still that file, its directory is still the one it
//!   came from (entered with `cd -P`, then compared by device and inode, so a
//!   directory swapped for a symbolic link is caught) and its path is free.
//! - Names never pass through word splitting or `read`: `find` hands them to
//!   `sh` as arguments, they come back hex-encoded, and go out again as octal
//!   `printf` escapes.

use chrono::{DateTime, Utc};

use super::actions::{quote, run_checked};
use super::guardrails::CleanRequest;
use super::transport::Transport;
use crate::connectors::ConnectorError;
use crate::event::ActionOutcome;

/// Files moved per script, at most.
const CHUNK: usize = 64;
/// Bytes per script, at most: each script is one command-line argument,
/// which Linux bounds at 128 KiB.
const SCRIPT_BYTES: usize = 64 * 1024;
/// At most this many files in one clean-up; the rest wait for a later run.
const MAX_FILES: usize = 10_000;

/// Prints `F <glob> <dev> <ino> <size> <mtime> <hex name>` for each path given.
const LIST_FILES: &str = r#"for f do printf 'F %s %s ' "$0" "$(stat -c '%d %i %s %Y' -- "$f")"; printf %s "${f##*/}" | od -An -vtx1 | tr -d ' \n'; echo; done"#;
/// Prints `N <hex name>` for each path given.
const LIST_NAMES: &str =
    r#"for f do printf 'N '; printf %s "${f##*/}" | od -An -vtx1 | tr -d ' \n'; echo; done"#;

/// A quarantine batch name: its creation time, then a random suffix.
pub fn new_batch(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    )
}

fn batch_time(batch: &str) -> Option<DateTime<Utc>> {
    let stamp = batch.split('-').next()?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Whether `batch` is a name [`new_batch`] could have made.
pub fn valid_batch(batch: &str) -> bool {
    batch_time(batch).is_some()
        && batch.len() < 64
        && batch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// One `stat -c '%F|%u|%a|%d|%i'` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    kind: String,
    uid: u32,
    mode: u32,
    dev: u64,
    ino: u64,
}

fn parse_stat(s: &str) -> Option<Stat> {
    let mut p = s.trim().split('|');
    Some(Stat {
        kind: p.next()?.to_string(),
        uid: p.next()?.parse().ok()?,
        mode: u32::from_str_radix(p.next()?, 8).ok()?,
        dev: p.next()?.parse().ok()?,
        ino: p.next()?.parse().ok()?,
    })
}

/// Shell printing `TAG <stat>` (or `TAG missing`) for each path, in order.
fn stat_script(tag: &str, paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| {
            format!(
                "printf '{tag} %s\\n' \"$(stat -c '%F|%u|%a|%d|%i' -- {} 2>/dev/null || echo missing)\"\n",
                quote(p)
            )
        })
        .collect()
}

/// `/`, `/var`, `/var/lib`, … down to `dir` itself.
fn prefixes(dir: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut cur = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        out.push(cur.clone());
    }
    out
}

/// The lines of `out` tagged `tag`, without the tag.
fn tagged<'a>(out: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    out.lines()
        .filter_map(move |l| l.strip_prefix(tag).and_then(|rest| rest.strip_prefix(' ')))
}

/// A quarantine directory that passed its checks.
#[derive(Debug, Clone)]
struct Checked {
    dir: String,
    uid: u32,
    dev: u64,
}

/// Judges the quarantine directory from the stat of every prefix of its path.
fn judge_dir(dir: &str, uid: u32, stats: &[Option<Stat>]) -> Result<Checked, String> {
    let paths = prefixes(dir);
    if stats.len() != paths.len() {
        return Err("the host's answer was incomplete".into());
    }
    for (i, (path, stat)) in paths.iter().zip(stats).enumerate() {
        let last = i + 1 == paths.len();
        let Some(s) = stat else {
            return Err(format!("`{path}` does not exist"));
        };
        if s.kind == "symbolic link" {
            return Err(format!("`{path}` is a symbolic link"));
        }
        if s.kind != "directory" {
            return Err(format!("`{path}` is not a directory ({})", s.kind));
        }
        if last {
            if s.uid != uid {
                return Err(format!(
                    "`{path}` is owned by uid {}, not by uid {uid} that runs the clean-up",
                    s.uid
                ));
            }
            if s.mode & 0o7777 != 0o700 {
                return Err(format!("`{path}` has mode {:04o}, not 0700", s.mode));
            }
        } else {
            if s.uid != 0 && s.uid != uid {
                return Err(format!(
                    "`{path}` (a parent) is owned by uid {}, who could replace what is below it",
                    s.uid
                ));
            }
            if s.mode & 0o022 != 0 {
                return Err(format!(
                    "`{path}` (a parent) is writable by others (mode {:04o})",
                    s.mode
                ));
            }
        }
    }
    let last = stats.last().and_then(|s| s.as_ref()).ok_or("no answer")?;
    Ok(Checked {
        dir: dir.to_string(),
        uid,
        dev: last.dev,
    })
}

/// The paths of a batch: its directory, `files/` and `manifest`.
fn batch_paths(q: &str, batch: &str) -> [String; 3] {
    let b = format!("{q}/{batch}");
    [b.clone(), format!("{b}/files"), format!("{b}/manifest")]
}

/// Judges a batch from the stat of its directory, `files/` and `manifest`.
fn judge_batch(q: &Checked, batch: &str, stats: &[Option<Stat>]) -> Result<(), String> {
    let paths = batch_paths(&q.dir, batch);
    if stats.len() != 3 {
        return Err("the host's answer was incomplete".into());
    }
    if stats[0].is_none() {
        return Err(format!(
            "quarantine batch `{}` is missing: it was never made or was removed",
            paths[0]
        ));
    }
    for (i, (path, stat)) in paths.iter().zip(stats).enumerate() {
        let Some(s) = stat else {
            return Err(format!("`{path}` is missing: the batch was altered"));
        };
        if s.kind == "symbolic link" {
            return Err(format!(
                "`{path}` is a symbolic link: the batch was altered"
            ));
        }
        let want_dir = i < 2;
        let kind_ok = if want_dir {
            s.kind == "directory"
        } else {
            s.kind.starts_with("regular")
        };
        if !kind_ok {
            return Err(format!("`{path}` is a {}: the batch was altered", s.kind));
        }
        if s.uid != q.uid {
            return Err(format!(
                "`{path}` is owned by uid {}: the batch was altered",
                s.uid
            ));
        }
        if s.mode & 0o077 != 0 || (want_dir && s.mode & 0o7777 != 0o700) {
            return Err(format!(
                "`{path}` has mode {:04o}: the batch was altered",
                s.mode
            ));
        }
        if s.dev != q.dev {
            return Err(format!(
                "`{path}` is on another filesystem: the batch was altered"
            ));
        }
    }
    Ok(())
}

/// Shell checking the quarantine directory (and the batch when given).
fn check_script(qdir: &str, batch: Option<&str>) -> String {
    let mut s = format!(
        "umask 077\necho \"UID $(id -u)\"\n{}",
        stat_script("P", &prefixes(qdir))
    );
    if let Some(b) = batch {
        s.push_str(&stat_script("B", &batch_paths(qdir, b)));
    }
    s
}

/// Reads what [`check_script`] printed and judges it.
fn judge(out: &str, qdir: &str, batch: Option<&str>) -> Result<Checked, String> {
    let uid: u32 = tagged(out, "UID")
        .next()
        .and_then(|u| u.trim().parse().ok())
        .ok_or("the host did not say which user runs the commands")?;
    let stats: Vec<Option<Stat>> = tagged(out, "P").map(parse_stat).collect();
    let q = judge_dir(qdir, uid, &stats)?;
    if let Some(b) = batch {
        let stats: Vec<Option<Stat>> = tagged(out, "B").map(parse_stat).collect();
        judge_batch(&q, b, &stats)?;
    }
    Ok(q)
}

fn refused(host: &str, qdir: &str, why: String) -> ConnectorError {
    ConnectorError::Backend(format!("{host}: quarantine `{qdir}` refused: {why}"))
}

/// Makes quarantine batch `batch` (a host snapshot does, before any action),
/// creating the quarantine directory (mode 0700) when it is absent.
pub async fn prepare(t: &dyn Transport, qdir: &str, batch: &str) -> Result<(), ConnectorError> {
    if !valid_batch(batch) {
        return Err(refused(
            t.host(),
            qdir,
            format!("`{batch}` is not a batch name"),
        ));
    }
    // `mkdir -p` only when nothing is there: an existing entry, symbolic
    // link or not, is judged as it is.
    let create = format!(
        "umask 077\n[ -e {q} ] || [ -L {q} ] || mkdir -p -m 700 -- {q} 2>/dev/null\n{}",
        check_script(qdir, None),
        q = quote(qdir)
    );
    let out = run_checked(t, &create, "check the quarantine").await?;
    judge(&out.stdout, qdir, None).map_err(|why| refused(t.host(), qdir, why))?;
    let [b, files, manifest] = batch_paths(qdir, batch);
    let script = format!(
        "umask 077\nmkdir -m 700 -- {b} && mkdir -m 700 -- {files} && : > {manifest} && chmod 600 -- {manifest}\n{}",
        check_script(qdir, Some(batch)),
        b = quote(&b),
        files = quote(&files),
        manifest = quote(&manifest),
    );
    let out = run_checked(t, &script, "make a quarantine batch").await?;
    judge(&out.stdout, qdir, Some(batch)).map_err(|why| refused(t.host(), qdir, why))?;
    Ok(())
}

/// What is recorded of one quarantined file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its number in the batch: it lies at `files/<index>`.
    pub index: usize,
    /// The directory it was in (canonical, absolute).
    pub dir: Vec<u8>,
    /// Its name there (any bytes but `/` and NUL).
    pub name: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    /// Device and inode of its directory.
    pub dir_dev: u64,
    pub dir_ino: u64,
}

impl Entry {
    /// The original absolute path, escaped for reading (control characters
    /// and bytes that are not UTF-8 shown as escapes).
    pub fn display(&self) -> String {
        let mut path = self.dir.clone();
        path.push(b'/');
        path.extend_from_slice(&self.name);
        String::from_utf8_lossy(&path).escape_debug().to_string()
    }

    /// `dev ino size mtime`, as `stat -c '%d %i %s %Y'` prints it.
    fn identity(&self) -> String {
        format!("{} {} {} {}", self.dev, self.ino, self.size, self.mtime)
    }

    fn manifest_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.index,
            self.dev,
            self.ino,
            self.size,
            self.mtime,
            self.dir_dev,
            self.dir_ino,
            hex(&self.dir),
            hex(&self.name)
        )
    }

    fn parse(line: &str) -> Option<Entry> {
        let f: Vec<&str> = line.split(' ').collect();
        let [index, dev, ino, size, mtime, dir_dev, dir_ino, dir, name] = f[..] else {
            return None;
        };
        let entry = Entry {
            index: index.parse().ok()?,
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            size: size.parse().ok()?,
            mtime: mtime.parse().ok()?,
            dir_dev: dir_dev.parse().ok()?,
            dir_ino: dir_ino.parse().ok()?,
            dir: unhex(dir)?,
            name: unhex(name)?,
        };
        // Only what a clean-up could have written: an absolute directory and a plain name.
        let plain = !entry.name.is_empty()
            && !entry.name.contains(&b'/')
            && !entry.name.contains(&0)
            && entry.name != b"."
            && entry.name != b"..";
        (entry.dir.starts_with(b"/") && !entry.dir.contains(&0) && plain).then_some(entry)
    }

    /// One line for the action's outcome (kept in the event log).
    fn step(&self, batch: &str) -> String {
        format!(
            "quarantined {} ({} bytes, mtime {}, inode {} on device {}) as {batch}/files/{}",
            self.display(),
            self.size,
            self.mtime,
            self.ino,
            self.dev,
            self.index
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

/// Shell that sets `n` to exactly `bytes` (trailing newlines kept).
fn set_name(bytes: &[u8]) -> String {
    let octal: String = bytes.iter().map(|b| format!("\\{b:03o}")).collect();
    format!("n=$(printf '{octal}'; echo .); n=${{n%.}}")
}

/// Moves the files `request` matches into quarantine batch `batch` (made by
/// the snapshot before). Files on another filesystem are skipped and reported.
pub async fn clean(
    t: &dyn Transport,
    qdir: &str,
    batch: &str,
    request: &CleanRequest,
) -> Result<ActionOutcome, ConnectorError> {
    let host = t.host().to_string();
    if !valid_batch(batch) {
        return Err(refused(
            &host,
            qdir,
            format!("`{batch}` is not a batch name"),
        ));
    }
    let [_, files, manifest] = batch_paths(qdir, batch);
    let mut script = check_script(qdir, Some(batch));
    script.push_str(&format!(
        "echo \"MSIZE $(stat -c %s -- {} 2>/dev/null)\"\n",
        quote(&manifest)
    ));
    for (i, g) in request.globs.iter().enumerate() {
        // `find -P` never follows a symbolic link; `-type f` skips them.
        script.push_str(&format!(
            "d={dir}\nr=$(realpath -e -- \"$d\" 2>/dev/null)\nprintf 'G {i} %s|%s\\n' \"$(printf %s \"$r\" | od -An -vtx1 | tr -d ' \\n')\" \"$(stat -c '%F|%d|%i' -- \"$d\" 2>/dev/null)\"\n\
             if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then find -P \"$d\" -mindepth 1 -maxdepth 1 -type f -name {pat} -mmin +{mins} -exec sh -c {list} {i} {{}} +; fi\n",
            dir = quote(&g.dir),
            pat = quote(&g.pattern),
            mins = request.older_than_mins,
            list = quote(LIST_FILES),
        ));
    }
    let out = run_checked(t, &script, "list files to quarantine").await?;
    let q = judge(&out.stdout, qdir, Some(batch)).map_err(|why| refused(&host, qdir, why))?;
    if tagged(&out.stdout, "MSIZE").next().map(str::trim) != Some("0") {
        return Err(refused(
            &host,
            qdir,
            format!("batch `{batch}` was already used: one clean-up per snapshot"),
        ));
    }
    let mut steps = Vec::new();
    let mut dirs: Vec<Option<(u64, u64)>> = vec![None; request.globs.len()];
    for line in tagged(&out.stdout, "G") {
        let Some((i, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some(g) = i
            .parse::<usize>()
            .ok()
            .and_then(|i| request.globs.get(i).map(|g| (i, g)))
        else {
            continue;
        };
        let (real, stat) = rest.split_once('|').unwrap_or((rest, ""));
        let mut st = stat.split('|');
        let (kind, dev, ino) = (st.next(), st.next(), st.next());
        if kind.is_none_or(str::is_empty) {
            steps.push(format!("{}: no such directory; nothing to do", g.1.dir));
            continue;
        }
        let real = unhex(real).unwrap_or_default();
        if real != g.1.dir.as_bytes() || kind != Some("directory") {
            return Err(ConnectorError::BadParam {
                action: "clean_disk".into(),
                param: "globs".into(),
                reason: format!(
                    "guardrail: `{}` on {host} is not a plain directory: it resolves to `{}` (a symbolic link along the path); nothing moved",
                    g.1.dir,
                    String::from_utf8_lossy(&real).escape_debug()
                ),
            });
        }
        if let (Some(Ok(d)), Some(Ok(n))) = (dev.map(str::parse), ino.map(str::parse)) {
            dirs[g.0] = Some((d, n));
        }
    }
    let mut plan: Vec<Entry> = Vec::new();
    let mut skipped = 0usize;
    let mut left = 0usize;
    for line in tagged(&out.stdout, "F") {
        let f: Vec<&str> = line.split(' ').collect();
        let [g, dev, ino, size, mtime, name] = f[..] else {
            continue;
        };
        let (Some(g), Some(name)) = (g.parse::<usize>().ok(), unhex(name)) else {
            continue;
        };
        let (Some(glob), Some(Some((dir_dev, dir_ino)))) = (request.globs.get(g), dirs.get(g))
        else {
            continue;
        };
        let (Ok(dev), Ok(ino), Ok(size), Ok(mtime)) =
            (dev.parse(), ino.parse(), size.parse(), mtime.parse())
        else {
            continue;
        };
        if plan.iter().any(|e| e.dev == dev && e.ino == ino) {
            continue;
        }
        let entry = Entry {
            index: plan.len(),
            dir: glob.dir.as_bytes().to_vec(),
            name,
            dev,
            ino,
            size,
            mtime,
            dir_dev: *dir_dev,
            dir_ino: *dir_ino,
        };
        if dev != q.dev {
            skipped += 1;
            steps.push(format!(
                "skipped {}: on another filesystem than the quarantine (device {dev}, quarantine on {}); not moved",
                entry.display(),
                q.dev
            ));
            continue;
        }
        if plan.len() >= MAX_FILES {
            left += 1;
            continue;
        }
        plan.push(entry);
    }
    if left > 0 {
        steps.push(format!(
            "{left} more matching file(s) left for a later run (at most {MAX_FILES} at once)"
        ));
    }
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    let parts: Vec<String> = plan
        .iter()
        .map(|e| {
            let dst = quote(&format!("{files}/{}", e.index));
            let id = e.identity();
            format!(
                "( if cd -P -- {dir} 2>/dev/null && [ \"$(stat -c '%d %i' .)\" = '{dd} {di}' ]; then {set}\n\
                   if [ -f \"./$n\" ] && [ ! -L \"./$n\" ] && [ \"$(stat -c '%d %i %s %Y' -- \"./$n\" 2>/dev/null)\" = '{id}' ]; then\n\
                     if printf '%s\\n' '{line}' >> {manifest} && mv -n -- \"./$n\" {dst} && [ \"$(stat -c '%d %i %s %Y' -- {dst} 2>/dev/null)\" = '{id}' ]; then echo 'MOVED {k}'; \
                     else echo 'FAILED {k} the move did not complete'; fi\n\
                   else echo 'FAILED {k} the file changed after it was listed'; fi\n\
                 else echo 'FAILED {k} its directory changed after it was listed'; fi )\n",
                dir = quote(&String::from_utf8_lossy(&e.dir)),
                dd = e.dir_dev,
                di = e.dir_ino,
                set = set_name(&e.name),
                line = e.manifest_line(),
                manifest = quote(&manifest),
                k = e.index,
            )
        })
        .collect();
    for (range, script) in group(&parts, "umask 077\n") {
        let chunk = &plan[range];
        let out = run_checked(t, &script, "move files into quarantine").await?;
        for e in chunk {
            let tag = format!("MOVED {}", e.index);
            if out.stdout.lines().any(|l| l == tag) {
                steps.push(e.step(batch));
                moved.push(e);
            } else {
                let why = out
                    .stdout
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix(&format!("FAILED {} ", e.index))
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "no answer from the host".into());
                steps.push(format!("could not quarantine {}: {why}", e.display()));
                failed.push(e);
            }
        }
    }
    let freed: u64 = moved.iter().map(|e| e.size).sum();
    let mut message = format!(
        "moved {} file(s), {} MiB, into quarantine batch {batch} on {host}",
        moved.len(),
        freed >> 20
    );
    if skipped > 0 {
        message.push_str(&format!(
            "; {skipped} skipped (on another filesystem than the quarantine)"
        ));
    }
    if !failed.is_empty() {
        message.push_str(&format!("; {} could not be moved", failed.len()));
    }
    Ok(ActionOutcome {
        success: failed.is_empty(),
        message,
        steps,
    })
}

/// Joins per-file scripts, after `prefix`, into scripts of at most
/// [`CHUNK`] files and about [`SCRIPT_BYTES`]; each with the range of files it covers.
fn group(parts: &[String], prefix: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut script = String::from(prefix);
    for (i, part) in parts.iter().enumerate() {
        if i > start && (script.len() + part.len() > SCRIPT_BYTES || i - start >= CHUNK) {
            out.push((start..i, std::mem::replace(&mut script, prefix.to_string())));
            start = i;
        }
        script.push_str(part);
    }
    if start < parts.len() {
        out.push((start..parts.len(), script));
    }
    out
}

/// What a restore of one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Files moved back (escaped paths).
    pub restored: Vec<String>,
    /// Files the manifest names that were never moved and are still in place.
    pub in_place: Vec<String>,
    /// Files not moved back, each with the reason.
    pub refused: Vec<String>,
    /// Why nothing at all could be moved back (missing or altered batch).
    pub fatal: Option<String>,
}

/// Moves back exactly the files batch `batch`'s manifest names, each checked.
pub async fn restore(
    t: &dyn Transport,
    qdir: &str,
    batch: &str,
) -> Result<Restored, ConnectorError> {
    let fatal = |why: String| {
        Ok(Restored {
            fatal: Some(why),
            ..Default::default()
        })
    };
    if !valid_batch(batch) {
        return fatal(format!("`{batch}` is not a quarantine batch name"));
    }
    let [_, files, manifest] = batch_paths(qdir, batch);
    let script = format!(
        "{}echo @@manifest\ncat -- {m} 2>/dev/null\necho @@files\n[ -d {f} ] && [ ! -L {f} ] && find -P {f} -mindepth 1 -maxdepth 1 -exec sh -c {list} sh {{}} +\ntrue\n",
        check_script(qdir, Some(batch)),
        m = quote(&manifest),
        f = quote(&files),
        list = quote(LIST_NAMES),
    );
    let out = run_checked(t, &script, "read the quarantine batch").await?;
    if let Err(why) = judge(&out.stdout, qdir, Some(batch)) {
        return fatal(format!(
            "quarantine `{qdir}` refused: {why}; nothing moved back"
        ));
    }
    let Some((_, rest)) = out.stdout.split_once("@@manifest\n") else {
        return fatal("the host's answer was incomplete".into());
    };
    let (text, listing) = rest.split_once("@@files\n").unwrap_or((rest, ""));
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match Entry::parse(line) {
            Some(e) if !entries.iter().any(|x| x.index == e.index) => entries.push(e),
            _ => {
                return fatal(format!(
                    "line {} of `{manifest}` is not a record this console wrote: the batch was altered; nothing moved back",
                    i + 1
                ));
            }
        }
    }
    let mut report = Restored::default();
    for line in tagged(listing, "N") {
        let name = unhex(line.trim()).unwrap_or_default();
        let known = std::str::from_utf8(&name)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .is_some_and(|k| {
                entries
                    .iter()
                    .any(|e| e.index == k && k.to_string().as_bytes() == name)
            });
        if !known {
            report.refused.push(format!(
                "{files}/{}: not in the manifest (the batch was altered); left alone",
                String::from_utf8_lossy(&name).escape_debug()
            ));
        }
    }
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "( q={q}; want='{id}'; k={k}\n\
                   cd -P -- {dir} 2>/dev/null || {{ echo \"R $k parent\"; exit; }}\n\
                   [ \"$(stat -c '%d %i' .)\" = '{dd} {di}' ] || {{ echo \"R $k parent_changed\"; exit; }}\n\
                   {set}\n\
                   if [ ! -e \"$q\" ] && [ ! -L \"$q\" ]; then\n\
                     if [ \"$(stat -c '%d %i %s %Y' -- \"./$n\" 2>/dev/null)\" = \"$want\" ]; then echo \"R $k in_place\"; else echo \"R $k missing\"; fi; exit\n\
                   fi\n\
                   if [ -L \"$q\" ] || [ ! -f \"$q\" ] || [ \"$(stat -c '%d %i %s %Y' -- \"$q\" 2>/dev/null)\" != \"$want\" ]; then echo \"R $k altered\"; exit; fi\n\
                   if [ -e \"./$n\" ] || [ -L \"./$n\" ]; then echo \"R $k taken\"; exit; fi\n\
                   if mv -n -- \"$q\" \"./$n\" && [ \"$(stat -c '%d %i %s %Y' -- \"./$n\" 2>/dev/null)\" = \"$want\" ]; then echo \"R $k ok\"; else echo \"R $k failed\"; fi )\n",
                q = quote(&format!("{files}/{}", e.index)),
                id = e.identity(),
                k = e.index,
                dir = quote(&String::from_utf8_lossy(&e.dir)),
                dd = e.dir_dev,
                di = e.dir_ino,
                set = set_name(&e.name),
            )
        })
        .collect();
    for (range, script) in group(&parts, "") {
        let chunk = &entries[range];
        let out = run_checked(t, &script, "restore from quarantine").await?;
        for e in chunk {
            let answer = tagged(&out.stdout, "R")
                .find_map(|l| l.strip_prefix(&format!("{} ", e.index)))
                .unwrap_or("no_answer");
            let path = e.display();
            match answer {
                "ok" => report.restored.push(path),
                "in_place" => report.in_place.push(path),
                other => report.refused.push(format!("{path}: {}", refusal(other))),
            }
        }
    }
    Ok(report)
}

fn refusal(code: &str) -> &'static str {
    match code {
        "parent" => "its directory is gone; left in quarantine",
        "parent_changed" => {
            "its directory is not the one it was taken from (replaced or a symbolic link); left in quarantine"
        }
        "missing" => "the quarantined copy is missing and the file is not back in place",
        "altered" => {
            "the quarantined copy is not the file recorded (inode, size or mtime differ); refused"
        }
        "taken" => "its path exists again; left in quarantine",
        "failed" => "moving it back failed; left in quarantine",
        _ => "no answer from the host",
    }
}

/// Deletes quarantine batches created before `now - retention`; returns their paths.
pub async fn purge(
    t: &dyn Transport,
    qdir: &str,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Result<Vec<String>, ConnectorError> {
    let script = format!(
        "{}[ -d {q} ] && [ ! -L {q} ] && find -P {q} -mindepth 1 -maxdepth 1 -type d -exec sh -c {list} sh {{}} +\ntrue\n",
        check_script(qdir, None),
        q = quote(qdir),
        list = quote(LIST_NAMES),
    );
    let out = run_checked(t, &script, "list quarantine").await?;
    if tagged(&out.stdout, "P").last() == Some("missing") {
        return Ok(Vec::new());
    }
    judge(&out.stdout, qdir, None).map_err(|why| refused(t.host(), qdir, why))?;
    let expired: Vec<String> = tagged(&out.stdout, "N")
        .filter_map(|h| String::from_utf8(unhex(h.trim())?).ok())
        .filter(|b| valid_batch(b) && batch_time(b).is_some_and(|at| at + retention < now))
        .map(|b| format!("{qdir}/{b}"))
        .collect();
    if !expired.is_empty() {
        let quoted: Vec<String> = expired.iter().map(|p| quote(p)).collect();
        run_checked(
            t,
            &format!("rm -rf -- {}", quoted.join(" ")),
            "purge quarantine",
        )
        .await?;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kind: &str, uid: u32, mode: u32) -> Option<Stat> {
        Some(Stat {
            kind: kind.into(),
            uid,
            mode,
            dev: 2049,
            ino: 7,
        })
    }

    #[test]
    fn stat_answers_parse_as_gnu_stat_prints_them() {
        assert_eq!(
            parse_stat("directory|0|1777|2049|131073"),
            Some(Stat {
                kind: "directory".into(),
                uid: 0,
                mode: 0o1777,
                dev: 2049,
                ino: 131073
            })
        );
        assert_eq!(parse_stat("missing"), None);
        assert_eq!(
            parse_stat("symbolic link|1000|777|2049|5").unwrap().kind,
            "symbolic link"
        );
    }

    #[test]
    fn the_quarantine_path_is_judged_from_the_root_down() {
        let q = "/var/lib/shieldops/quarantine";
        assert_eq!(prefixes(q).len(), 5);
        let good = vec![
            st("directory", 0, 0o755),
            st("directory", 0, 0o755),
            st("directory", 0, 0o755),
            st("directory", 0, 0o700),
            st("directory", 0, 0o700),
        ];
        assert!(judge_dir(q, 0, &good).is_ok());
        let with = |i: usize, s: Option<Stat>| {
            let mut v = good.clone();
            v[i] = s;
            judge_dir(q, 0, &v).unwrap_err()
        };
        assert!(with(4, st("directory", 0, 0o777)).contains("mode 0777"));
        assert!(with(4, st("directory", 1000, 0o700)).contains("uid 1000"));
        assert!(with(4, st("symbolic link", 0, 0o777)).contains("symbolic link"));
        assert!(with(4, None).contains("does not exist"));
        assert!(with(1, st("directory", 0, 0o1777)).contains("writable by others"));
        assert!(with(2, st("directory", 0, 0o775)).contains("writable by others"));
        assert!(with(3, st("directory", 1000, 0o755)).contains("uid 1000"));
        assert!(with(2, st("symbolic link", 0, 0o777)).contains("symbolic link"));
        assert!(judge_dir(q, 0, &good[..4]).is_err(), "an incomplete answer");
    }

    #[test]
    fn manifest_lines_round_trip_any_name_and_refuse_anything_else() {
        let e = Entry {
            index: 3,
            dir: b"/var/log".to_vec(),
            name: b"a\n.ssh\nb \xff'.gz".to_vec(),
            dev: 2049,
            ino: 42,
            size: 10,
            mtime: 1_700_000_000,
            dir_dev: 2049,
            dir_ino: 9,
        };
        assert_eq!(Entry::parse(&e.manifest_line()), Some(e.clone()));
        assert_eq!(e.display(), "/var/log/a\\n.ssh\\nb \u{fffd}\\'.gz");
        for bad in [
            "",
            "3 1 2 3 4 5 6 2f 61",
            "x 1 2 3 4 5 6 2f76 61",
            "3 1 2 3 4 5 6 7661 61",
            "3 1 2 3 4 5 6 2f76 2f6574",
            "3 1 2 3 4 5 6 2f76 2e2e",
            "3 1 2 3 4 5 6 2f76 6",
        ] {
            if bad == "3 1 2 3 4 5 6 2f 61" {
                assert!(Entry::parse(bad).is_some(), "`/` then `a` is fine");
                continue;
            }
            assert_eq!(Entry::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_go_out_as_exact_octal_escapes() {
        assert_eq!(
            set_name(b"a\n"),
            "n=$(printf '\\141\\012'; echo .); n=${n%.}"
        );
    }

    #[test]
    fn scripts_are_grouped_under_the_argument_bound() {
        let parts: Vec<String> = (0..200).map(|i| format!("{i:>1000}\n")).collect();
        let groups = group(&parts, "umask 077\n");
        assert!(
            groups
                .iter()
                .all(|(_, s)| s.len() <= SCRIPT_BYTES && s.starts_with("umask"))
        );
        let covered: Vec<usize> = groups.iter().flat_map(|(r, _)| r.clone()).collect();
        assert_eq!(covered, (0..200).collect::<Vec<_>>());
        let big: Vec<String> = (0..3).map(|_| "x".repeat(40 * 1024)).collect();
        assert_eq!(group(&big, "").len(), 3, "one oversized part per script");
        assert!(group(&[], "p").is_empty());
    }

    #[test]
    fn batch_names_are_checked() {
        let b = new_batch(Utc::now());
        assert!(valid_batch(&b));
        assert!(!valid_batch("../../etc"));
        assert!(!valid_batch("20260101T000000Z-x/y"));
    }
}
