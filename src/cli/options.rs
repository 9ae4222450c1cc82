//! Options shared by several subcommands, each declared once as a small group
//! and flattened into exactly the subcommands that use it, so `log --help`
//! offers no `--theme`. `shieldops` alone runs the console, so it takes the
//! console's options; given before a subcommand, they apply to it when it
//! takes them. The paths (`--data-dir`, `--config`, `--log-dir`) are tolerated
//! before any subcommand (scripts pass them uniformly); an option that would
//! change what a command does (`--read-only`, `--theme`, …) given to one that
//! ignores it is an error rather than a silent no-op.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};

/// `--data-dir`.
#[derive(Debug, Clone, Default, Args)]
pub struct DataDirArg {
    /// Where the event log and demo state live (default: the XDG data directory).
    #[arg(long, value_name = "DIR", env = "SHIELDOPS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--config`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// Configuration file (default: the XDG config path, if it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--log-dir`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogDirArg {
    /// Where the rolling log files go (default: the XDG state directory).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

/// How the console looks.
#[derive(Debug, Clone, Default, Args)]
pub struct LookArgs {
    /// Colour theme: default, light, solarized-16, mono, or a file name in the config's themes/.
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// No colours at all (same as NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
}

/// What the runtime may do and what it watches.
#[derive(Debug, Clone, Default, Args)]
pub struct FleetArgs {
    /// Refuse approvals and never execute actions.
    #[arg(long)]
    pub read_only: bool,
    /// Leave this machine out of the fleet (it is watched by default).
    #[arg(
        long,
        env = "SHIELDOPS_NO_LOCAL_HOST",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_local_host: bool,
}

/// `--context`.
#[derive(Debug, Clone, Default, Args)]
pub struct ContextArgs {
    /// Kubernetes context(s) to watch, each as its own fleet (repeat the flag,
    /// or `all`); default: the kubeconfig's current context.
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,
}

/// Where a runtime keeps its log, reads its config and writes its log files.
#[derive(Debug, Clone, Default, Args)]
pub struct RuntimePaths {
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub log: LogDirArg,
}

/// Every option of the console: what `shieldops` alone and `run` take.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub paths: RuntimePaths,
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub context: ContextArgs,
}

/// The options in force for one command: its own, else those given before it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub theme: Option<String>,
    pub no_color: bool,
    pub read_only: bool,
    pub no_local_host: bool,
    pub contexts: Vec<String>,
    /// `demo`: always the demo fleet, even when real connectors are configured.
    pub demo_only: bool,
}

impl Options {
    /// The options given before the subcommand (or to `shieldops` alone).
    pub fn top(top: &ConsoleArgs) -> Options {
        let mut o = Options::default();
        o.console(top);
        o
    }

    /// Adds every option of the console.
    pub fn console(&mut self, a: &ConsoleArgs) -> &mut Self {
        self.paths(&a.paths)
            .look(&a.look)
            .fleet(&a.fleet)
            .context(&a.context)
    }

    /// Adds a runtime's paths.
    pub fn paths(&mut self, a: &RuntimePaths) -> &mut Self {
        self.data(&a.data).config(&a.config).log(&a.log)
    }

    /// The subcommand's own `--data-dir`, if given, wins.
    pub fn data(&mut self, a: &DataDirArg) -> &mut Self {
        self.data_dir = a.data_dir.clone().or(self.data_dir.take());
        self
    }

    /// The subcommand's own `--config`, if given, wins.
    pub fn config(&mut self, a: &ConfigArg) -> &mut Self {
        self.config = a.config.clone().or(self.config.take());
        self
    }

    /// The subcommand's own `--log-dir`, if given, wins.
    pub fn log(&mut self, a: &LogDirArg) -> &mut Self {
        self.log_dir = a.log_dir.clone().or(self.log_dir.take());
        self
    }

    /// Adds the subcommand's look options.
    pub fn look(&mut self, a: &LookArgs) -> &mut Self {
        self.theme = a.theme.clone().or(self.theme.take());
        self.no_color |= a.no_color;
        self
    }

    /// Adds the subcommand's fleet options (flags only add restrictions).
    pub fn fleet(&mut self, a: &FleetArgs) -> &mut Self {
        self.read_only |= a.read_only;
        self.no_local_host |= a.no_local_host;
        self
    }

    /// The subcommand's own `--context`s, if any, win.
    pub fn context(&mut self, a: &ContextArgs) -> &mut Self {
        if !a.contexts.is_empty() {
            self.contexts = a.contexts.clone();
        }
        self
    }
}

/// Ids of the options that change what a command does (not where it reads
/// and writes): given before a subcommand that does not take them, they are refused.
const BEHAVIOUR: &[&str] = &[
    "theme",
    "no_color",
    "read_only",
    "no_local_host",
    "contexts",
];

/// Refuses an option given before a subcommand that does not take it, e.g.
/// `shieldops --read-only log export`, instead of ignoring it silently.
/// Values from the environment are not the operator's choice for this command
/// and are never refused.
pub fn refuse_misplaced(root: &Command, matches: &ArgMatches) -> Result<(), clap::Error> {
    let Some((name, sub_matches)) = matches.subcommand() else {
        return Ok(());
    };
    let mut taken: Vec<String> = Vec::new();
    let mut path = vec![name.to_string()];
    let mut cmd = root.find_subcommand(name);
    let mut m = sub_matches;
    while let Some(c) = cmd {
        taken.extend(c.get_arguments().map(|a| a.get_id().to_string()));
        match m.subcommand() {
            Some((next, next_m)) => {
                path.push(next.to_string());
                cmd = c.find_subcommand(next);
                m = next_m;
            }
            None => break,
        }
    }
    for id in BEHAVIOUR {
        if matches.value_source(id) == Some(ValueSource::CommandLine)
            && !taken.iter().any(|t| t == id)
        {
            let flag = root
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_long())
                .unwrap_or(id);
            return Err(root.clone().error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--{flag} does not apply to `shieldops {}`; see `shieldops {} --help`",
                    path.join(" "),
                    path.join(" ")
                ),
            ));
        }
    }
    Ok(())
}
