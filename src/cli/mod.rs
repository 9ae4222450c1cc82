//! The command line: options, subcommands, and the wiring of the
//! runtime, the demo fleet and the console for each of them.

mod cluster;
mod connectors;
mod cve;
mod demo;
mod generate;
mod logging;
pub mod options;
mod serve;
mod startup;
pub mod terminal;

use std::path::{Path, PathBuf};

use std::io::Write;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;
use crate::store::cli::{ExportFormat, LogCommand};
use options::{
    ConfigArg, ConsoleArgs, ContextArgs, DataDirArg, FleetArgs, LogDirArg, LookArgs, Options,
    RuntimePaths,
};
use terminal::TerminalSafe;

/// `--version`: the version, the commit it was built from and the build date.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SHIELDOPS_BUILD_COMMIT"),
    ", built ",
    env!("SHIELDOPS_BUILD_DATE"),
    ")"
);

/// ShieldOps console: a terminal operations console for SRE and security work.
#[derive(Debug, Parser)]
#[command(name = "shieldops", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// `shieldops` alone runs the console and takes its options; before a
    /// subcommand they apply to it (see [`options`]).
    #[command(flatten)]
    pub top: ConsoleArgs,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Start the console (the default command). With no connectors configured it watches the demo fleet.
    Run(RunCmd),
    /// Start the console on the simulated demo fleet and play its scenario.
    Demo(DemoCmd),
    /// Run the runtime without a terminal and share it: consoles attach over
    /// WebSocket, Alertmanager posts alerts, Prometheus scrapes /metrics.
    Serve(ServeCmd),
    /// Attach a console to a running `serve` (ws://HOST:PORT/ws).
    Attach(AttachCmd),
    /// Bearer tokens for `serve`.
    #[command(subcommand)]
    Token(TokenArgs),
    /// Read the event log (works while a console holds the data directory).
    Log(LogCmd),
    /// Run and evaluate Rego policies.
    #[command(subcommand)]
    Policy(PolicyArgs),
    /// Check remediation playbooks.
    #[command(subcommand)]
    Playbook(PlaybookArgs),
    /// Show the effective configuration.
    Config(ConfigCmd),
    /// The offline vulnerability database: import feeds, show freshness.
    Cve(CveCmd),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(generate::CompletionsArgs),
    /// Write the man pages (shieldops.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man(generate::ManArgs),
}

/// `run`: the console, on real connectors when configured.
#[derive(Debug, Args)]
pub struct RunCmd {
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub demo: DemoArgs,
}

/// `demo`: the console on the demo fleet.
#[derive(Debug, Args)]
pub struct DemoCmd {
    #[command(flatten)]
    pub paths: RuntimePaths,
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub demo: DemoArgs,
}

/// `serve`: the runtime without a terminal.
#[derive(Debug, Args)]
pub struct ServeCmd {
    #[command(flatten)]
    pub paths: RuntimePaths,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub serve: serve::ServeArgs,
}

/// `attach`: a console fed by a server.
#[derive(Debug, Args)]
pub struct AttachCmd {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub log: LogDirArg,
    #[command(flatten)]
    pub look: LookArgs,
    #[command(flatten)]
    pub attach: serve::AttachArgs,
}

/// `log`: its options apply to every `log` subcommand.
#[derive(Debug, Args)]
pub struct LogCmd {
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(subcommand)]
    pub command: LogArgs,
}

/// `config`.
#[derive(Debug, Args)]
pub struct ConfigCmd {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub command: ConfigArgs,
}

/// `cve`.
#[derive(Debug, Args)]
pub struct CveCmd {
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub command: cve::CveArgs,
}

/// The command line's definition: the derived one, with the options of a
/// command that has subcommands (`log`, `config`, `cve`) accepted after any
/// of them too (`shieldops log export --data-dir DIR`).
pub fn command() -> clap::Command {
    let mut root = Cli::command();
    for name in ["log", "config", "cve"] {
        root = root.mut_subcommand(name, |sub| sub.mut_args(|a| a.global(true)));
    }
    root
}

/// Parses the process's arguments (exits with clap's message on a bad command line).
fn parse() -> Cli {
    let root = command();
    let matches = root.clone().get_matches();
    let parsed =
        options::refuse_misplaced(&root, &matches).and_then(|()| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
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
        #[command(flatten)]
        config: ConfigArg,
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
    match run(parse()) {
        Ok(code) => code,
        // `shieldops log export | head`: the reader has all it wanted.
        Err(e) if closed_pipe(&e) => 0,
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

/// The error is (or was caused by) a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().map(|io| io.kind());
        // serde_json's error hides the io::Error it wraps from `source()`.
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(|j| j.io_error_kind());
        io == Some(BrokenPipe) || json == Some(BrokenPipe)
    })
}

/// The configuration (and the file it came from) for a command that reads it.
fn load(opts: &Options) -> anyhow::Result<(Config, Option<PathBuf>)> {
    Ok(Config::load(opts.config.as_deref())?)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let mut opts = Options::top(&cli.top);
    let Some(command) = cli.command else {
        return console(&opts, DemoArgs::default());
    };
    match command {
        Commands::Run(cmd) => {
            anyhow::ensure!(
                cmd.demo.approve_as.is_none(),
                "--approve-as approves everything unattended: it is for `demo` only"
            );
            opts.console(&cmd.console);
            console(&opts, cmd.demo)
        }
        Commands::Demo(cmd) => {
            opts.paths(&cmd.paths).look(&cmd.look).fleet(&cmd.fleet);
            opts.demo_only = true;
            console(&opts, cmd.demo)
        }
        Commands::Serve(cmd) => {
            opts.paths(&cmd.paths)
                .fleet(&cmd.fleet)
                .context(&cmd.context);
            let (config, _) = load(&opts)?;
            let data_dir = data_dir(&opts)?;
            let _guard = logging::init(opts.log_dir.as_deref())?;
            runtime()?.block_on(serve::serve(&opts, &config, &data_dir, &cmd.serve))
        }
        Commands::Attach(cmd) => {
            opts.config(&cmd.config).log(&cmd.log).look(&cmd.look);
            let (config, _) = load(&opts)?;
            let _guard = logging::init(opts.log_dir.as_deref())?;
            runtime()?.block_on(serve::attach(&opts, &config, &cmd.attach))
        }
        Commands::Token(TokenArgs::Mint(args)) => serve::mint(&args, &mut std::io::stdout()),
        Commands::Log(cmd) => {
            opts.data(&cmd.data);
            log_command(&data_dir(&opts)?, cmd.command)
        }
        Commands::Policy(PolicyArgs::Test { dir, coverage }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("policies"));
            crate::policy::cli::policy_test(
                &dir,
                coverage,
                &mut TerminalSafe::new(std::io::stdout()),
            )
        }
        Commands::Policy(PolicyArgs::Eval {
            config: config_arg,
            input,
            data,
            dir,
        }) => {
            opts.config(&config_arg);
            let (config, _) = load(&opts)?;
            crate::policy::cli::policy_eval(
                &input,
                data.as_deref(),
                dir.as_deref().or(config.policy.dir.as_deref()),
                &mut std::io::stdout(),
            )
        }
        Commands::Playbook(PlaybookArgs::Validate { dir }) => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("playbooks"));
            crate::playbook::playbook_validate(&dir, &mut TerminalSafe::new(std::io::stdout()))
        }
        Commands::Cve(cmd) => {
            opts.data(&cmd.data).config(&cmd.config);
            let (config, _) = load(&opts)?;
            cve::run(
                &cmd.command,
                &data_dir(&opts)?,
                config.security.cve_max_age_days,
                &mut TerminalSafe::new(std::io::stdout()),
            )
        }
        Commands::Config(cmd) => {
            opts.config(&cmd.config);
            let ConfigArgs::Show = cmd.command;
            let (config, config_path) = load(&opts)?;
            let mut out = TerminalSafe::new(std::io::stdout());
            match &config_path {
                Some(p) => writeln!(out, "# from {}", p.display())?,
                None => writeln!(out, "# no config file; these are the defaults")?,
            }
            write!(out, "{}", toml::to_string_pretty(&config.masked())?)?;
            out.flush()?;
            Ok(0)
        }
        Commands::Completions(args) => generate::completions(&args, &mut std::io::stdout()),
        Commands::Man(args) => generate::man_pages(&args),
    }
}

/// `shieldops`, `run` and `demo`: the console (or headless) on the runtime.
fn console(opts: &Options, args: DemoArgs) -> anyhow::Result<i32> {
    let (config, _) = load(opts)?;
    let data_dir = data_dir(opts)?;
    let _guard = logging::init(opts.log_dir.as_deref())?;
    runtime()?.block_on(demo::run(opts, &config, &data_dir, args))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// `log …` on the event log in `data_dir`.
fn log_command(data_dir: &Path, args: LogArgs) -> anyhow::Result<i32> {
    let cmd = match args {
        LogArgs::Export { format, from } => LogCommand::Export { format, from },
        LogArgs::Verify { checkpoint } => LogCommand::Verify { checkpoint },
        LogArgs::Salvage { to } => LogCommand::Salvage { to },
        LogArgs::Tail { from, follow } => LogCommand::Tail { from, follow },
        LogArgs::Stats => LogCommand::Stats,
        LogArgs::Stress { count, writers } => LogCommand::Stress { count, writers },
    };
    // JSON lines (export) and seq numbers (stress) are for programs;
    // everything else is read by a person at a terminal.
    let mut out: Box<dyn std::io::Write + Send> = match &cmd {
        LogCommand::Export { .. } | LogCommand::Stress { .. } => Box::new(std::io::stdout()),
        _ => Box::new(TerminalSafe::new(std::io::stdout())),
    };
    runtime()?.block_on(crate::store::cli::run_log_command(
        &log_dir(data_dir),
        cmd,
        &mut out,
    ))
}

/// The console's options for this command line and config.
fn console_options(
    opts: &Options,
    config: &Config,
    clock: crate::clock::SharedClock,
    title: &str,
    read_only: bool,
    identity: crate::runtime::command::Identity,
) -> crate::tui::TuiOptions {
    crate::tui::TuiOptions {
        theme: opts.theme.clone().unwrap_or(config.console.theme.clone()),
        no_color: opts.no_color,
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
        cluster: None,
    }
}

/// The event log's directory inside a data directory.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

/// `--data-dir`, else the XDG data directory (`$XDG_DATA_HOME/shieldops`,
/// `~/.local/share/shieldops`).
fn data_dir(opts: &Options) -> anyhow::Result<PathBuf> {
    if let Some(d) = &opts.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("", "", "shieldops")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| anyhow::anyhow!("no home directory: pass --data-dir"))
}
