//! ShieldOps console: an event-sourced operations runtime with a terminal console.

pub mod connectors;
pub mod event;
pub mod runtime;
pub mod state;
pub mod store;
