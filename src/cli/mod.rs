//! The command line: global options, subcommands, and the wiring of the
//! runtime, the demo fleet and the console for each of them.

mod connectors;
mod cve;
mod demo;
mod logging;
mod serve;
mod startup;
pub mod terminal;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::store::cli::{ExportFormat, LogCommand};
use terminal::TerminalSafe;

/// ShieldOps console: a terminal operations console for SRE and security work.
#[derive(Debug, Parser)]
#[command(name = "shieldops", version, about, long_about = None)]
pub struct Cli {
    /// Where the event log and demo state live (default: the XDG data directory).
    #[arg(long, global = true, value_name = "DIR", env = "SHIELDOPS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: the XDG config path, if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the rolling log files go (default: the XDG state directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Colour theme: default, light, solarized-16, mono, or a file name in the config's themes/.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
    /// No colours at all (same as NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Refuse approvals and never execute actions.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Leave this machine out of the fleet (it is watched by default).
    #[arg(
        long,
        global = true,
        env = "SHIELDOPS_NO_LOCAL_HOST",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_local_host: bool,
    /// `run`: Kubernetes context(s) to watch, each as its own fleet (repeat the
    /// flag, or `all`); default: the kubeconfig's current context.
    #[arg(long = "context", global = true, value_name = "NAME")]
    pub contexts: Vec<String>,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Start the console (the default command). With no connectors configured it watches the demo fleet.
    Run(DemoArgs),
    /// Start the console on the simulated demo fleet and play its scenario.
    Demo(DemoArgs),
    /// Run the runtime without a terminal and share it: consoles attach over
    /// WebSocket, Alertmanager posts alerts, Prometheus scrapes /metrics.
    Serve(serve::ServeArgs),
    /// Attach a console to a running `serve` (ws://HOST:PORT/ws).
    Attach(serve::AttachArgs),
    /// Bearer tokens for `serve`.
    #[command(subcommand)]
    Token(TokenArgs),
    /// Read the event log (works while a console holds the data directory).
    #[command(subcommand)]
    Log(LogArgs),
    /// Run and evaluate Rego policies.
    #[command(subcommand)]
    Policy(PolicyArgs),
    /// Check remediation playbooks.
    #[command(subcommand)]
    Playbook(PlaybookArgs),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigArgs),
    /// The offline vulnerability database: import feeds, show freshness.
    #[command(subcommand)]
    Cve(cve::CveArgs),
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenArgs {
    /// Print a new random token and the `[[remote.tokens]]` entry (its hash) that admits it.
    Mint(serve::MintArgs),
}

/// `playbook` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlaybookArgs {
    /// Validate every playbook in DIR (default: playbooks/); errors name the file and line.
    Validate { dir: Option<PathBuf> },
}

/// Options of `demo` (and `run`).
#[derive(Debug, Clone, Args, Default)]
pub struct DemoArgs {
    /// Run without a terminal UI (progress goes to the log file; a summary to stdout).
    #[arg(long)]
    pub headless: bool,
    /// Simulated seconds per real second.
    #[arg(long, value_name = "N")]
    pub speed: Option<f64>,
    /// Seed for the demo fleet's numbers.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Demo only: approve every pending remediation as NAME.
    #[arg(long, value_name = "NAME")]
    pub approve_as: Option<String>,
    /// Exit 0 once the scenario has played out and nothing is in flight.
    #[arg(long)]
    pub until_quiet: bool,
    /// Play this scenario file instead of the embedded one.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Simulated start time (RFC 3339) of a new demo, e.g. to replay a weekday
    /// outside a change freeze; default: now. A resumed demo continues its own time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-06-03T10:00:00Z: {e}"))
}

/// `log` subcommands.
#[derive(Debug, Subcommand)]
pub enum LogArgs {
    /// Print events as JSON lines.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// First seq to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Walk the hash chain and hold it to its anchor; exit non-zero naming the
    /// first bad or missing seq and how many acknowledged events are unaccounted for.
    /// Never writes to the data directory.
    Verify {
        /// Also hold the log to a head kept elsewhere (from an audit checkpoint): SEQ:HASH.
        #[arg(long, value_parser = crate::store::cli::parse_checkpoint)]
        checkpoint: Option<crate::store::Anchor>,
    },
    /// Copy the verified prefix of a damaged log into a new data directory
    /// (the original is left untouched for forensics).
    Salvage {
        /// The new data directory (must not exist or be empty).
        #[arg(long)]
        to: PathBuf,
    },
    /// Show the last events; `--follow` keeps streaming.
    Tail {
        /// Start at this seq (default: the last 20 events).
        #[arg(long)]
        from: Option<u64>,
        #[arg(long, short)]
        follow: bool,
    },
    /// Counts per kind, first and last time, size on disk.
    Stats,
    /// Test helper: append COUNT events from WRITERS tasks, printing each acknowledged seq.
    #[command(hide = true)]
    Stress {
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[arg(long, default_value_t = 4)]
        writers: usize,
    },
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyArgs {
    /// Run every test_* rule in DIR (default: policies/), like `opa test -v`.
    Test {
        dir: Option<PathBuf>,
        /// Print line coverage per file.
        #[arg(long)]
        coverage: bool,
    },
    /// Print the decision document for an input document.
    Eval {
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// A data document merged over the bundle's.
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// A policy directory that extends the embedded bundle.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigArgs {
    /// Print the effective configuration with secrets masked.
    Show,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote file contents, alert names and server replies.
            eprintln!(
                "shieldops: {}",
                terminal::escape_controls(&format!("{e:#}"))
            );
            1
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let (config, config_path) = Config::load(cli.config.as_deref())?;
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &cli.command {
        None => {
            let _guard = logging::init(cli.log_dir.as_deref())?;
            runtime.block_on(demo::run(&cli, &config, &data_dir, DemoArgs::default()))
        }
        Some(Commands::Run(args)) if args.approve_as.is_some() => {
            anyhow::bail!("--approve-as approves everything unattended: it is for `demo` only")
        }
        Some(Commands::Run(args)) | Some(Commands::Demo(args)) => {
            let _guard = logging::init(cli.log_dir.as_deref())?;
            runtime.block_on(demo::run(&cli, &config, &data_dir, args.clone()))
        }
        Some(Commands::Serve(args)) => {
            let _guard = logging::init(cli.log_dir.as_deref())?;
            runtime.block_on(serve::serve(&cli, &config, &data_dir, args))
        }
        Some(Commands::Attach(args)) => {
            let _guard = logging::init(cli.log_dir.as_deref())?;
            runtime.block_on(serve::attach(&cli, &config, args))
        }
        Some(Commands::Token(TokenArgs::Mint(args))) => serve::mint(args, &mut std::io::stdout()),
        Some(Commands::Log(args)) => {
            let cmd = match args {
                LogArgs::Export { format, from } => LogCommand::Export {
                    format: *format,
                    from: *from,
                },
                LogArgs::Verify { checkpoint } => LogCommand::Verify {
                    checkpoint: *checkpoint,
                },
                LogArgs::Salvage { to } => LogCommand::Salvage { to: to.clone() },
                LogArgs::Tail { from, follow } => LogCommand::Tail {
                    from: *from,
                    follow: *follow,
                },
                LogArgs::Stats => LogCommand::Stats,
                LogArgs::Stress { count, writers } => LogCommand::Stress {
                    count: *count,
                    writers: *writers,
                },
            };
            let dir = log_dir(&data_dir);
            // JSON lines (export) and seq numbers (stress) are for programs;
            // everything else is read by a person at a terminal.
            let mut out: Box<dyn std::io::Write + Send> = match &cmd {
                LogCommand::Export { .. } | LogCommand::Stress { .. } => {
                    Box::new(std::io::stdout())
                }
                _ => Box::new(TerminalSafe::new(std::io::stdout())),
            };
            runtime.block_on(crate::store::cli::run_log_command(&dir, cmd, &mut out))
        }
        Some(Commands::Policy(PolicyArgs::Test { dir, coverage })) => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("policies"));
            crate::policy::cli::policy_test(
                &dir,
                *coverage,
                &mut TerminalSafe::new(std::io::stdout()),
            )
        }
        Some(Commands::Policy(PolicyArgs::Eval { input, data, dir })) => {
            crate::policy::cli::policy_eval(
                input,
                data.as_deref(),
                dir.as_deref().or(config.policy.dir.as_deref()),
                &mut std::io::stdout(),
            )
        }
        Some(Commands::Playbook(PlaybookArgs::Validate { dir })) => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from("playbooks"));
            crate::playbook::playbook_validate(&dir, &mut TerminalSafe::new(std::io::stdout()))
        }
        Some(Commands::Cve(args)) => cve::run(
            args,
            &data_dir,
            config.security.cve_max_age_days,
            &mut TerminalSafe::new(std::io::stdout()),
        ),
        Some(Commands::Config(ConfigArgs::Show)) => {
            use std::io::Write;
            let mut out = TerminalSafe::new(std::io::stdout());
            match &config_path {
                Some(p) => writeln!(out, "# from {}", p.display())?,
                None => writeln!(out, "# no config file; these are the defaults")?,
            }
            write!(out, "{}", toml::to_string_pretty(&config.masked())?)?;
            Ok(0)
        }
    }
}

/// The console's options for this command line and config.
fn console_options(
    cli: &Cli,
    config: &Config,
    clock: crate::clock::SharedClock,
    title: &str,
    read_only: bool,
    identity: crate::runtime::command::Identity,
) -> crate::tui::TuiOptions {
    crate::tui::TuiOptions {
        theme: cli.theme.clone().unwrap_or(config.console.theme.clone()),
        no_color: cli.no_color,
        read_only,
        max_fps: config.console.max_fps,
        identity,
        bell: config.console.bell,
        desktop_notify: config.console.desktop_notifications,
        keys: config.keys.clone(),
        config_dir: Config::default_path().and_then(|p| p.parent().map(Path::to_path_buf)),
        clock,
        title: title.to_string(),
        link: None,
    }
}

/// The event log's directory inside a data directory.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "shieldops")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| anyhow::anyhow!("no home directory: pass --data-dir"))
}
