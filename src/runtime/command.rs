//! Operator commands: what a console (local or remote) asks the runtime to do.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::event::ResourceId;

/// Who is asking, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The operator's name (`$SHIELDOPS_USER`, the login name, or a token's principal).
    pub name: String,
    /// Where they connected from (`SSH_CONNECTION`'s source address), if known.
    pub source: Option<String>,
}

impl Identity {
    /// The local operator: `$SHIELDOPS_USER`, else the login name; with the SSH source if any.
    pub fn local() -> Self {
        let name = std::env::var("SHIELDOPS_USER")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
            .or_else(|| std::env::var("LOGNAME").ok().filter(|s| !s.is_empty()))
            .or_else(login_name_from_passwd)
            .unwrap_or_else(|| "unknown".to_string());
        let source = std::env::var("SSH_CONNECTION")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string));
        Self { name, source }
    }
}

/// The login name of this process's real uid, from `/proc` and `/etc/passwd`
/// (for sessions where neither `USER` nor `LOGNAME` is set, e.g. under tmux or cron).
fn login_name_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
    })
}

/// Something an operator asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Approve a pending remediation.
    Approve { remediation: u64, comment: String },
    /// Deny a pending remediation; the reason is required.
    Deny { remediation: u64, reason: String },
    /// Re-propose a remediation that a change freeze denied, as a recorded
    /// freeze override: the policy then asks for its extra approval.
    OverrideFreeze { remediation: u64, reason: String },
    /// Acknowledge an incident.
    Acknowledge { incident: u64 },
    /// Run the security scan now.
    Rescan,
    /// Propose the cost recommendation in force for a resource as a
    /// remediation (it then goes through the policy and approvals).
    ApplyRecommendation { resource: ResourceId },
    /// Record whether a hypothesis of an investigation was right.
    HypothesisFeedback {
        investigation: u64,
        hypothesis: String,
        confirmed: bool,
    },
    /// Run a learning cycle now.
    Learn,
    /// Ask a resource's connector for its recent events and log tail, and
    /// record what it says (reads only; the drill-down shows it).
    Inspect { resource: ResourceId },
    /// Stop the runtime gracefully.
    Shutdown,
}

impl Command {
    /// A short name for the event log.
    pub fn describe(&self) -> String {
        match self {
            Command::Approve { remediation, .. } => format!("approve #{remediation}"),
            Command::Deny { remediation, .. } => format!("deny #{remediation}"),
            Command::OverrideFreeze { remediation, .. } => {
                format!("override the change freeze for #{remediation}")
            }
            Command::Acknowledge { incident } => format!("acknowledge incident #{incident}"),
            Command::Rescan => "rescan".to_string(),
            Command::ApplyRecommendation { resource } => {
                format!("apply the cost recommendation for {resource}")
            }
            Command::HypothesisFeedback {
                investigation,
                hypothesis,
                confirmed,
            } => format!(
                "{} \"{hypothesis}\" on investigation #{investigation}",
                if *confirmed { "confirm" } else { "refute" }
            ),
            Command::Learn => "learn".to_string(),
            Command::Inspect { resource } => format!("inspect {resource}"),
            Command::Shutdown => "shutdown".to_string(),
        }
    }
}

/// The runtime's answer to a command.
pub type CommandReply = Result<String, String>;

/// A command in flight, with who sent it and where to answer.
#[derive(Debug)]
pub struct CommandEnvelope {
    pub command: Command,
    pub by: Identity,
    pub reply: Option<oneshot::Sender<CommandReply>>,
}
