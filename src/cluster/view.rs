//! What a console is told about the cluster behind the node it is attached
//! to: this node's role, who leads (from the lease), and every node that
//! published a heartbeat recently. Plain data, carried in the console
//! protocol's `welcome` and `cluster` messages and drawn by `:cluster`.
//!
//! Informational only: nothing here is used for fencing. The lease and the
//! stream's expected-last-sequence check do that.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A node's part in its site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Not clustered: the one machine that records and acts.
    #[default]
    Single,
    /// Holds the lease: runs the agents, appends, executes.
    Leader,
    /// Follows the stream; serves consoles read-only.
    Standby,
}

impl NodeRole {
    /// The word shown for it.
    pub fn label(self) -> &'static str {
        match self {
            NodeRole::Single => "single",
            NodeRole::Leader => "leader",
            NodeRole::Standby => "standby",
        }
    }
}

/// The leadership lease as last read from its bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseView {
    /// The holder's node name.
    pub holder: String,
    /// Where consoles attach to the holder.
    #[serde(default)]
    pub console: Option<String>,
    /// The lease key's revision (moves on each renewal).
    pub revision: u64,
    /// When the bucket ages the lease out unless renewed first (by the
    /// stored revision's time and the lease's TTL).
    pub expires: DateTime<Utc>,
}

/// A node as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSeen {
    pub name: String,
    pub role: NodeRole,
    #[serde(default)]
    pub console: Option<String>,
    /// The last seq in its local copy of the log.
    pub last_seq: u64,
    /// When it said so (its own clock).
    pub at: DateTime<Utc>,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub site: String,
    /// The node the console is attached to.
    pub node: String,
    pub role: NodeRole,
    /// The lease, when someone holds it.
    #[serde(default)]
    pub lease: Option<LeaseView>,
    /// Nodes with a recent heartbeat, this one included, by name.
    #[serde(default)]
    pub nodes: Vec<NodeSeen>,
    /// The stream's last seq when this was gathered.
    pub stream_seq: u64,
    /// When this was gathered (this node's clock).
    pub at: DateTime<Utc>,
}

impl ClusterView {
    /// The leader's node name and console URL, by the lease.
    pub fn leader(&self) -> Option<(&str, Option<&str>)> {
        self.lease
            .as_ref()
            .map(|l| (l.holder.as_str(), l.console.as_deref()))
    }

    /// How far `node` is behind the stream, in records.
    pub fn lag(&self, node: &NodeSeen) -> u64 {
        self.stream_seq.saturating_sub(node.last_seq)
    }
}

/// The next value published on `views` (a node's cluster view); never
/// resolves when there is none (not clustered). An error means the
/// publisher is gone.
pub async fn next_view<T: Clone>(
    views: &mut Option<tokio::sync::watch::Receiver<T>>,
) -> Result<T, tokio::sync::watch::error::RecvError> {
    match views.as_mut() {
        Some(v) => v.changed().await.map(|_| v.borrow_and_update().clone()),
        None => std::future::pending().await,
    }
}
