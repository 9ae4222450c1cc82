//! Remote consoles: `serve` shares one runtime over WebSocket and HTTP, and
//! `attach` drives the same console from another terminal.
//!
//! - [`protocol`]: the versioned JSON messages (documented in the README).
//! - [`auth`]: bearer tokens (stored hashed) and roles.
//! - [`server`]: the listener, the routes, one task per console session.
//! - [`hub`]: the server's projection, for snapshots and metrics.
//! - [`client`]: a checked, resuming connection for `attach`.
//! - [`limits`]: connection caps, deadlines and per-principal rate limits.
//! - [`alertmanager`], [`metrics`]: the HTTP API's formats.

pub mod alertmanager;
pub mod auth;
pub mod client;
pub mod heads;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod protocol;
pub mod server;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// `[remote]` in the config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// `serve`: who may connect (`[[remote.tokens]]`, hashed; see `shieldops token mint`).
    pub tokens: Vec<auth::TokenEntry>,
    /// `serve`: PEM certificate chain and key for TLS (required off loopback).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `attach`: the token to present (`--token` and `SHIELDOPS_TOKEN` take precedence).
    pub token: Option<Secret>,
    /// `attach`: the CA certificate (PEM) that signed the server's, for `wss://`.
    pub ca: Option<PathBuf>,
    /// `serve`: connection caps, deadlines and rate limits (`[remote.limits]`).
    pub limits: limits::Limits,
}

impl RemoteConfig {
    /// A copy safe to print.
    pub fn masked(&self) -> RemoteConfig {
        let mut c = self.clone();
        c.token = c.token.map(|t| t.masked());
        c
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn token_entries_load_and_errors_name_key_and_line() {
        let ok = format!(
            "[[remote.tokens]]\nprincipal = \"alice\"\nrole = \"approver\"\nsha256 = \"{}\"\n",
            "0a".repeat(32)
        );
        let c = Config::parse(&ok, "c.toml").unwrap();
        assert_eq!(c.remote.tokens[0].principal, "alice");

        let e = Config::parse(
            "[[remote.tokens]]\nprincipal = \"alice\"\nrole = \"approver\"\nsha256 = \"abc\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 4") && e.contains("remote.tokens"), "{e}");
        assert!(e.contains("64 hex digits"), "{e}");

        let e = Config::parse(
            "[[remote.tokens]]\nprincipal = \"a\"\nrole = \"root\"\nsha256 = \"\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("role"), "{e}");

        let e = Config::parse("[remote]\ntokn = \"x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("tokn"), "{e}");
    }

    #[test]
    fn the_attach_token_is_masked() {
        let c = Config::parse("[remote]\ntoken = \"so_secret\"\n", "c.toml").unwrap();
        let shown = toml::to_string(&c.masked()).unwrap();
        assert!(!shown.contains("so_secret"), "{shown}");
        assert!(!format!("{c:?}").contains("so_secret"));
    }
}
