//! The runtime: supervisor, agents as tasks, operator commands, shutdown.

pub mod command;
