//! Shell completions and man pages, generated from the command line's
//! definition ([`super::command`]) so they never drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

/// Options of `completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells completions are made for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Options of the hidden `man` command (used by scripts/release.sh).
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The directory to write shieldops.1 and shieldops-SUBCOMMAND.1 into (created if absent).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Generated into memory: the generator panics on a failed write, and a
    // closed stdout must end the command quietly instead.
    let mut script = Vec::new();
    let mut root = super::command();
    root.build();
    let mut visible = without_hidden(&root);
    clap_complete::generate(shell, &mut visible, "shieldops", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(0)
}

/// A copy of a built command tree without its hidden subcommands (`man`,
/// `log stress`): the completion generators offer every subcommand, hidden
/// or not. Taken from the built tree, so the help and version flags and the
/// global options are already in place and are copied as they are.
fn without_hidden(cmd: &clap::Command) -> clap::Command {
    let mut copy = clap::Command::new(cmd.get_name().to_string())
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .args(cmd.get_arguments().cloned())
        .visible_aliases(cmd.get_visible_aliases().map(str::to_string));
    if let Some(about) = cmd.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        copy = copy.version(version.to_string());
    }
    if let Some(bin) = cmd.get_bin_name() {
        copy = copy.bin_name(bin.to_string());
    }
    copy.subcommands(
        cmd.get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(without_hidden),
    )
}

/// Writes the man pages into `args.out` and names each on stdout.
pub fn man_pages(args: &ManArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut root = super::command();
    root.build();
    let mut written = Vec::new();
    write_pages(&root, &args.out, &mut written)?;
    let mut stdout = std::io::stdout();
    for path in written {
        writeln!(stdout, "{}", path.display())?;
    }
    Ok(0)
}

/// The page of `cmd` and of each visible subcommand below it; once built, a
/// subcommand's display name is its page's name (`shieldops-log-export`).
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    std::fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            write_pages(sub, dir, written)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        completions(&CompletionsArgs { shell }, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_name_the_real_subcommands_and_their_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = script(shell);
            for word in [
                "serve", "attach", "export", "verify",
                // fish spells options `-l data-dir`.
                "data-dir", "listen",
            ] {
                assert!(s.contains(word), "{shell:?} completions lack {word}");
            }
            // Hidden commands are for scripts and tests, not for users.
            let words: Vec<&str> = s
                .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .collect();
            for hidden in ["man", "stress"] {
                assert!(
                    !words.contains(&hidden),
                    "{shell:?} completions offer {hidden}"
                );
            }
            for about in ["Write the man pages", "Test helper"] {
                assert!(!s.contains(about), "{shell:?} completions offer {about:?}");
            }
        }
    }

    #[test]
    fn man_pages_cover_each_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        man_pages(&ManArgs {
            out: dir.path().to_path_buf(),
        })
        .unwrap();
        for page in ["shieldops.1", "shieldops-serve.1", "shieldops-log-export.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{page}: {text}"
            );
        }
        assert!(!dir.path().join("shieldops-man.1").exists());
        assert!(!dir.path().join("shieldops-log-stress.1").exists());
        let top = std::fs::read_to_string(dir.path().join("shieldops.1")).unwrap();
        assert!(
            top.contains(env!("SHIELDOPS_BUILD_COMMIT")),
            "no version in the page"
        );
    }
}
