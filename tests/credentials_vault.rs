//! The Vault credential store against a real OpenBao dev server: KV v2
//! secrets and PKI leases listed as `credential` resources, rotation by a new
//! generated version and restore of the previous value (read back from the
//! server), and the same rotation driven end to end through the runtime —
//! alert → playbook → policy → approval → snapshot → rotate → validate, and
//! a failed validation that restores the previous value.

mod credentials_support;
mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use credentials_support::{Bao, TOKEN};
use serde_json::json;
use shieldops::clock::{ManualClock, SharedClock};
use shieldops::config::Secret;
use shieldops::connectors::credentials::{
    CredentialConnector, CredentialsConfig, VaultConfig, VaultStore, vault_id,
};
use shieldops::connectors::{InfraConnector, Registry, Scope};
use shieldops::event::{
    Action, Alert, AlertStatus, HealthStatus, RemediationOutcome, ResourceId, Severity,
};
use shieldops::runtime::command::Command;
use shieldops::runtime::{Intake, RuntimeOptions};
use shieldops::state::Stage;

use runtime_support::{Driven, shipped_policy, start_time};

const DB: &str = "vault/secret/secret/app/db";

fn config(bao: &Bao) -> CredentialsConfig {
    CredentialsConfig {
        team: "payments".into(),
        vault: Some(VaultConfig {
            address: bao.url(),
            token: Some(Secret(TOKEN.into())),
            lease_prefixes: vec!["pki/issue/".into()],
            ..VaultConfig::default()
        }),
        ..CredentialsConfig::default()
    }
}

fn connector(bao: &Bao, clock: SharedClock) -> Arc<CredentialConnector> {
    let config = config(bao);
    let store = VaultStore::connect(config.vault.as_ref().unwrap(), &config.expiry_key).unwrap();
    Arc::new(CredentialConnector::new(
        vault_id(),
        Arc::new(store),
        config,
        clock,
    ))
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_leases_are_listed_with_their_attributes() {
    let bao = Bao::start().await;
    bao.put(
        "secret",
        "app/db",
        json!({"username": "app", "password": "first-pass"}),
    )
    .await;
    bao.put(
        "secret",
        "app/db",
        json!({"username": "app", "password": "second-pass"}),
    )
    .await;
    bao.put("secret", "web/session", json!({"key": "k"})).await;
    let now = Utc::now();
    let expiry = (now + chrono::Duration::days(3)).to_rfc3339();
    bao.custom_metadata("secret", "app/db", json!({"expires_at": expiry}))
        .await;
    bao.pki_with_leases().await;
    let lease = bao.issue("a", "48h").await;

    let clock: SharedClock = Arc::new(ManualClock::new(now));
    let c = connector(&bao, clock);
    let all = c.list_resources(&Scope::default()).await.unwrap();
    let db = all
        .iter()
        .find(|r| r.id.as_str() == DB)
        .unwrap_or_else(|| panic!("{DB} not listed: {all:#?}"));
    assert_eq!(db.kind, "credential");
    let a = &db.attributes;
    assert_eq!(a["store"], "vault");
    assert_eq!(a["path"], "secret/app/db");
    assert_eq!(a["version"], "2");
    assert_eq!(a["rotation_enabled"], "false");
    assert_eq!(time(&a["expires_at"]), time(&expiry));
    assert!(time(&a["rotated_at"]) >= time(&a["created_at"]), "{a:?}");
    assert_eq!(db.labels["credential_type"], "secret");
    assert_eq!(db.team, "payments");
    assert_eq!(db.health.status, HealthStatus::Degraded);
    assert_eq!(db.health.reason, "CredentialExpiring");
    // No secret value is ever an attribute.
    assert!(!format!("{all:?}").contains("second-pass"));

    let session = all
        .iter()
        .find(|r| r.id.as_str() == "vault/secret/secret/web/session")
        .expect("the second secret");
    assert!(!session.attributes.contains_key("expires_at"));
    assert_eq!(session.health.status, HealthStatus::Healthy);

    let lease_id = format!("vault/lease/{lease}");
    let l = all
        .iter()
        .find(|r| r.id.as_str() == lease_id)
        .unwrap_or_else(|| panic!("{lease_id} not listed: {all:#?}"));
    let ttl: i64 = l.attributes["lease_ttl_secs"].parse().unwrap();
    assert!((170_000..=172_800).contains(&ttl), "{ttl}");
    let left = time(&l.attributes["expires_at"]) - now;
    assert!(left > chrono::Duration::hours(47) && left <= chrono::Duration::hours(48));
    assert_eq!(l.labels["credential_type"], "lease");
    assert_eq!(l.health.reason, "CredentialExpiring");

    // A lease is read only: there is nothing to snapshot or rotate.
    assert!(c.snapshot(&ResourceId::new(lease_id)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_writes_a_new_version_and_restore_brings_the_old_value_back() {
    let bao = Bao::start().await;
    bao.put(
        "secret",
        "app/db",
        json!({"username": "app", "password": "first-pass"}),
    )
    .await;
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let c = connector(&bao, clock);
    let id = ResourceId::new(DB);

    let snapshot = c.snapshot(&id).await.unwrap();
    assert_eq!(snapshot.data["version"], "1");
    assert!(
        !serde_json::to_string(&snapshot)
            .unwrap()
            .contains("first-pass")
    );

    let outcome = c
        .execute(&Action::new("rotate_secret", id.clone()))
        .await
        .unwrap();
    assert!(outcome.success, "{outcome:?}");
    let (data, version) = bao.get("secret", "app/db").await;
    assert_eq!(version, 2);
    assert_eq!(data["username"], "app", "other fields are kept");
    let rotated = data["password"].as_str().unwrap().to_string();
    assert_ne!(rotated, "first-pass");
    assert_eq!(rotated.len(), 32);
    assert!(rotated.chars().all(|ch| ch.is_ascii_alphanumeric()));
    assert!(!format!("{outcome:?}").contains(&rotated), "{outcome:?}");

    let restored = c.restore(&snapshot).await.unwrap();
    assert!(restored.success, "{restored:?}");
    let (data, version) = bao.get("secret", "app/db").await;
    assert_eq!(data["password"], "first-pass", "the previous value is back");
    assert_eq!(version, 3, "restored as a new version, like `kv rollback`");

    // Each version written is a change in the secret's events.
    let window = shieldops::connectors::TimeWindow {
        from: Utc::now() - chrono::Duration::hours(1),
        to: Utc::now() + chrono::Duration::hours(1),
    };
    let events = c.events(&id, window).await.unwrap();
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(events.len(), 3, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("version 2 written")),
        "{messages:?}"
    );

    // Other actions, and snapshots of another connector, are refused.
    assert!(
        c.execute(&Action::new("delete_secret", id.clone()))
            .await
            .is_err()
    );
    let mut foreign = snapshot.clone();
    foreign.connector = shieldops::event::ConnectorId::new("credentials:other");
    assert!(c.restore(&foreign).await.is_err());
}

struct Harness {
    driven: Driven,
}

impl std::ops::Deref for Harness {
    type Target = Driven;
    fn deref(&self) -> &Driven {
        &self.driven
    }
}

impl Harness {
    fn new(bao: &Bao) -> Harness {
        let clock = ManualClock::new(start_time());
        let mut registry = Registry::new();
        registry.add(connector(bao, Arc::new(clock.clone())));
        let driven = Driven::start(
            clock,
            registry,
            shipped_policy(),
            None,
            RuntimeOptions::default(),
        )
        // Every health check is a real HTTP round trip to the server.
        .settling(Duration::from_millis(100));
        Harness { driven }
    }

    async fn alert(&self, name: &str) {
        self.runtime()
            .intake
            .send(Intake::Alert {
                alert: Alert {
                    name: name.into(),
                    severity: Severity::High,
                    fingerprint: format!("{name}@{DB}"),
                    resource: ResourceId::new(DB),
                    summary: "database password expiring".into(),
                    labels: [("store".to_string(), "vault".to_string())].into(),
                    status: AlertStatus::Firing,
                    source: "test".into(),
                },
                recorded: None,
                posted_by: None,
            })
            .await
            .unwrap();
    }

    /// Waits for the approval request, checks nothing ran, approves as alice,
    /// and returns the finished remediation.
    async fn approve_and_finish(&self, bao: &Bao) -> shieldops::state::Remediation {
        let state = self
            .until("approval requested", |s| {
                s.remediations
                    .values()
                    .any(|r| r.stage == Stage::AwaitingApproval)
            })
            .await;
        let rem = state.remediations.values().next().unwrap().clone();
        assert_eq!(rem.action.name, "rotate_secret");
        assert_eq!(rem.playbook.as_deref(), Some("credential-expiring"));
        let decision = rem.decision.as_ref().unwrap();
        assert!(decision.allow, "{decision:?}");
        assert_eq!(decision.risk.as_str(), "high");
        assert_eq!(
            decision.required_approvals, 1,
            "production rotation needs one"
        );
        let (data, _) = bao.get("secret", "app/db").await;
        assert_eq!(
            data["password"], "first-pass",
            "nothing ran before approval"
        );

        let reply = self
            .command(
                "alice",
                Command::Approve {
                    remediation: rem.id,
                    comment: "rotate it".into(),
                },
            )
            .await;
        assert!(reply.is_ok(), "{reply:?}");
        let id = rem.id;
        let state = self
            .until("remediation finished", |s| {
                matches!(s.remediations[&id].stage, Stage::Finished(_))
            })
            .await;
        state.remediations[&id].clone()
    }

    /// No secret value appears anywhere in the event log.
    fn assert_log_holds_no(&self, values: &[&str]) {
        let mut readable = 0;
        for record in self.log.scan_raw(0) {
            let (_, bytes) = record.unwrap();
            let text = String::from_utf8_lossy(&bytes);
            // The records are plain JSON: the search below can see values.
            readable += usize::from(text.contains("rotate_secret"));
            for v in values {
                assert!(!text.contains(v), "a secret value reached the log: {text}");
            }
        }
        assert!(readable > 0, "the log's records could not be read as text");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_rotation_runs_through_the_runtime_and_can_be_restored() {
    let bao = Bao::start().await;
    bao.put(
        "secret",
        "app/db",
        json!({"username": "app", "password": "first-pass"}),
    )
    .await;
    // The store says it expires in three days (inside the warning window):
    // an expiry that holds, not only an alert that claims one.
    let expiry = (start_time() + chrono::Duration::days(3)).to_rfc3339();
    bao.custom_metadata("secret", "app/db", json!({"expires_at": expiry}))
        .await;
    let h = Harness::new(&bao);
    h.until("discovery of the secret", |s| {
        s.fleet.get(&ResourceId::new(DB)).is_some()
    })
    .await;
    h.alert("CredentialExpiring").await;
    h.until("approval requested", |s| {
        s.remediations
            .values()
            .any(|r| r.stage == Stage::AwaitingApproval)
    })
    .await;
    // The issuer records the expiry of the credential that replaces it, so
    // the rotated secret is healthy once written.
    let renewed = (start_time() + chrono::Duration::days(90)).to_rfc3339();
    bao.custom_metadata("secret", "app/db", json!({"expires_at": renewed}))
        .await;
    let rem = h.approve_and_finish(&bao).await;
    assert_eq!(
        rem.stage,
        Stage::Finished(RemediationOutcome::Succeeded),
        "{rem:#?}"
    );
    assert_eq!(rem.approvals.len(), 1);
    let (data, version) = bao.get("secret", "app/db").await;
    let rotated = data["password"].as_str().unwrap().to_string();
    assert_ne!(rotated, "first-pass");
    assert_eq!(version, 2);

    // The snapshot the runtime recorded restores the previous value.
    let snapshot = rem.snapshot.clone().expect("a snapshot was recorded");
    assert_eq!(snapshot.data["version"], "1");
    let registry_connector = connector(&bao, Arc::new(h.clock.clone()));
    let restored = registry_connector.restore(&snapshot).await.unwrap();
    assert!(restored.success);
    let (data, _) = bao.get("secret", "app/db").await;
    assert_eq!(data["password"], "first-pass");
    h.assert_log_holds_no(&["first-pass", &rotated]);
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_does_not_clear_the_expiry_is_restored_by_the_runtime() {
    let bao = Bao::start().await;
    bao.put(
        "secret",
        "app/db",
        json!({"username": "app", "password": "first-pass"}),
    )
    .await;
    // An expiry set by the issuer, already past on the runtime's clock: a new
    // value does not move it, so validation fails and the playbook restores.
    bao.custom_metadata(
        "secret",
        "app/db",
        json!({"expires_at": "2026-06-01T00:00:00Z"}),
    )
    .await;
    let h = Harness::new(&bao);
    let state = h
        .until("discovery of the expired secret", |s| {
            s.fleet
                .get(&ResourceId::new(DB))
                .is_some_and(|r| r.resource.health.reason == "CredentialExpired")
        })
        .await;
    assert_eq!(
        state
            .fleet
            .get(&ResourceId::new(DB))
            .unwrap()
            .resource
            .attributes["expires_at"],
        "2026-06-01T00:00:00+00:00"
    );
    h.alert("CredentialExpired").await;
    let rem = h.approve_and_finish(&bao).await;
    assert_eq!(
        rem.stage,
        Stage::Finished(RemediationOutcome::RolledBack),
        "{rem:#?}"
    );
    let (data, version) = bao.get("secret", "app/db").await;
    assert_eq!(data["password"], "first-pass", "the previous value is back");
    assert_eq!(version, 3, "rotated to 2, restored as 3");
    let state = h
        .until("the expiry finding", |s| {
            s.security
                .findings
                .keys()
                .any(|k| k == &format!("credential-expiry@{DB}"))
        })
        .await;
    assert!(state.security.findings.values().any(|f| f.finding.open));
    h.assert_log_holds_no(&["first-pass"]);
    h.driven.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_stores_become_connectors_and_missing_ones_say_how_to_add_them() {
    use shieldops::connectors::credentials::connect;
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let none = connect(None, clock.clone()).await;
    assert!(none.connectors.is_empty());
    assert!(
        none.absent[0].1.contains("[credentials.vault]"),
        "{:?}",
        none.absent
    );

    let bao = Bao::start().await;
    bao.put("secret", "app/db", json!({"password": "first-pass"}))
        .await;
    let setup = connect(Some(&config(&bao)), clock).await;
    assert!(setup.absent.is_empty(), "{:?}", setup.absent);
    assert_eq!(setup.connectors.len(), 1);
    let c = &setup.connectors[0];
    assert_eq!(c.id(), &vault_id());
    let listed = c.list_resources(&Scope::default()).await.unwrap();
    assert!(listed.iter().any(|r| r.id.as_str() == DB), "{listed:#?}");
}
