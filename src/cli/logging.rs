//! Logs go to a daily rolling file, never to the terminal the console draws on.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging; keep the guard alive until exit so buffered lines are written.
pub fn init(dir: Option<&Path>) -> anyhow::Result<WorkerGuard> {
    let dir: PathBuf = match dir {
        // The operator's explicit choice is created if absent and used as is.
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| anyhow::anyhow!("cannot create log directory {}: {e}", d.display()))?;
            d.to_path_buf()
        }
        None => default_dir()?,
    };
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("shieldops")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&dir)
        .map_err(|e| anyhow::anyhow!("cannot open log file in {}: {e}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("SHIELDOPS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}

/// The XDG state directory (`$XDG_STATE_HOME/shieldops`, else
/// `~/.local/state/shieldops`); with no home directory at all, a
/// `shieldops-UID` directory in the temporary directory. Either is private.
fn default_dir() -> anyhow::Result<PathBuf> {
    let dir = directories::ProjectDirs::from("", "", "shieldops")
        .and_then(|d| d.state_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("shieldops-{}", rustix::process::getuid().as_raw()))
        });
    private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` (mode 0700) if absent; an existing one must be a real
/// directory (not a symlink) owned by this user, and is made 0700 if it is
/// open to others. In a shared place such as /tmp, another local user could
/// otherwise pre-create it, or point it elsewhere, and read or plant logs.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => anyhow::bail!("cannot create log directory {}: {e}", dir.display()),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| anyhow::anyhow!("cannot inspect log directory {}: {e}", dir.display()))?;
    let me = rustix::process::getuid().as_raw();
    if meta.file_type().is_symlink() || !meta.is_dir() {
        anyhow::bail!(
            "refusing log directory {}: it is a symlink or not a directory (remove it, or pass --log-dir)",
            dir.display()
        );
    }
    if meta.uid() != me {
        anyhow::bail!(
            "refusing log directory {}: it belongs to uid {}, not to this user (uid {me}); remove it, or pass --log-dir",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            anyhow::anyhow!("cannot make log directory {} private: {e}", dir.display())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::private_dir;

    #[test]
    fn a_private_dir_is_created_0700_and_an_open_one_is_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/shieldops");
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_symlink_or_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = tmp.path().join("shieldops");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symlink") && e.contains("--log-dir"), "{e}");
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(private_dir(&file).is_err());
    }
}
