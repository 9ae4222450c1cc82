//! ShieldOps console: an event-sourced operations runtime with a terminal console.

pub mod agents;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connectors;
pub mod event;
pub mod notify;
pub mod playbook;
pub mod policy;
pub mod redact;
pub mod remote;
pub mod runtime;
pub mod sizing;
pub mod state;
pub mod store;
pub mod tui;
