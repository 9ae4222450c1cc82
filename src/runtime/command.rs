//! Operator commands: what a console (local or remote) asks the runtime to do.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::event::{Authentication, ResourceId};

/// Who is asking, how the runtime knows it, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The principal: the OS account of the console's real uid, a token's
    /// principal, or (demo only) a declared name. Approvals count this.
    pub name: String,
    /// Where they connected from (`SSH_CONNECTION`'s source address), if known.
    pub source: Option<String>,
    /// How `name` was established.
    #[serde(default = "declared")]
    pub auth: Authentication,
    /// A name the operator declared (`$SHIELDOPS_USER`), shown beside the
    /// principal and recorded, never counted as anyone.
    #[serde(default)]
    pub declared_name: Option<String>,
}

fn declared() -> Authentication {
    Authentication::Declared
}

impl Identity {
    /// The local operator: the OS account of this process's real uid (what
    /// the kernel vouches for), with `$SHIELDOPS_USER` kept only as a declared
    /// name beside it, and the SSH source if any.
    pub fn local() -> Self {
        let declared_name = std::env::var("SHIELDOPS_USER")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let source = std::env::var("SSH_CONNECTION")
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string));
        Self {
            name: os_account(),
            source,
            auth: Authentication::OsAccount,
            declared_name,
        }
    }

    /// A remote operator: the principal of the token the listener checked.
    pub fn token(principal: impl Into<String>, source: Option<String>) -> Self {
        Self {
            name: principal.into(),
            source,
            auth: Authentication::Token,
            declared_name: None,
        }
    }

    /// A name nobody checked (the demo's `--approve-as`, a display label): it
    /// counts as an approver only where the runtime accepts declared names.
    pub fn declared(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source: None,
            auth: Authentication::Declared,
            declared_name: None,
        }
    }
}

/// The OS account of this process's real uid: its name from the password
/// database, else `uid:N`. Environment variables (`USER`, `LOGNAME`) are
/// never read: anyone can set them.
pub fn os_account() -> String {
    match real_uid() {
        Some(uid) => account_name(
            uid,
            &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        )
        .unwrap_or_else(|| format!("uid:{uid}")),
        None => "uid:unknown".to_string(),
    }
}

/// The real uid (the first of `Uid:` in `/proc/self/status`), which a
/// set-uid program cannot change and the environment does not affect.
fn real_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The first account in `passwd` text with `uid`.
fn account_name(uid: u32, passwd: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2].parse() == Ok(uid) && !fields[0].is_empty())
            .then(|| fields[0].to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_name_is_read_by_uid_not_by_name() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nmallory:x:1001:1001::/home/m:/bin/sh\n";
        assert_eq!(account_name(1000, passwd).as_deref(), Some("alice"));
        assert_eq!(account_name(0, passwd).as_deref(), Some("root"));
        assert_eq!(account_name(4242, passwd), None);
        assert_eq!(account_name(1000, "garbage\n::1000\n"), None);
    }

    #[test]
    fn local_identity_ignores_the_declared_name() {
        // Whatever SHIELDOPS_USER or USER say, the principal is the real uid's account.
        let me = Identity::local();
        assert_eq!(me.auth, Authentication::OsAccount);
        assert_eq!(me.name, os_account());
        assert!(!me.name.is_empty());
    }
}
