//! Stamps the binary with its git commit and build date for `--version`.
//!
//! The commit comes from `$SHIELDOPS_BUILD_COMMIT` when set (a build from a
//! source tarball has no `.git`), else from git, else "unknown". The date is
//! `$SOURCE_DATE_EPOCH` when set (reproducible builds), else today (UTC).
//! The script reruns only when those variables, `.git/HEAD` or the ref HEAD
//! points to change, so editing sources does not rerun it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SHIELDOPS_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let from_env = std::env::var("SHIELDOPS_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let commit = match from_env {
        Some(c) => c,
        None if own_checkout(&manifest) => {
            watch_git(&manifest);
            git(&manifest, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
        None => "unknown".into(),
    };
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH is not a number of seconds: {s:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    println!("cargo:rustc-env=SHIELDOPS_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=SHIELDOPS_BUILD_DATE={}", civil_date(epoch));
}

/// The sources are a git checkout of their own (not a tarball unpacked
/// inside some other repository, whose commit would be a lie).
fn own_checkout(manifest: &Path) -> bool {
    let top = git(manifest, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    match (
        top.and_then(|t| t.canonicalize().ok()),
        manifest.canonicalize(),
    ) {
        (Some(top), Ok(manifest)) => top == manifest,
        _ => false,
    }
}

/// Reruns the script when HEAD moves: `HEAD` itself (a checkout) and the file
/// of the branch it points to (a commit), or `packed-refs` when the branch is packed.
fn watch_git(manifest: &Path) {
    let (Some(git_dir), Some(common)) = (
        git(manifest, &["rev-parse", "--git-dir"]),
        git(manifest, &["rev-parse", "--git-common-dir"]),
    ) else {
        return;
    };
    let git_dir = manifest.join(git_dir);
    let common = manifest.join(common);
    watch(&git_dir.join("HEAD"));
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = common.join(&branch);
        if loose.exists() {
            watch(&loose);
        } else {
            watch(&common.join("packed-refs"));
        }
    }
}

/// A missing path would make cargo rerun the script on every build.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `YYYY-MM-DD` (UTC) of a Unix time (days to civil date, proleptic Gregorian).
fn civil_date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
