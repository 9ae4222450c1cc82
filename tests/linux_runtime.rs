//! A failed systemd unit on an SSH host remediated through the real runtime:
//! alert → investigation (playbook systemd-unit-failed) → policy (Rego bundle)
//! → approval → snapshot → restart over SSH → validation against real health.
//! And a proposal carrying a destructive command is refused by the guardrails
//! before the policy gate, with nothing run on the host.

mod linux_support;

use std::sync::Arc;
use std::time::Duration;

use linux_support::Sshd;
use shieldops::clock::ManualClock;
use shieldops::connectors::Registry;
use shieldops::connectors::linux::transport::SshOptions;
use shieldops::connectors::linux::{LinuxConfig, LinuxConnector};
use shieldops::event::RemediationOutcome;
use shieldops::event::{Alert, AlertStatus, ConnectorId, Environment, ResourceId, Severity};
use shieldops::runtime::command::{Command, CommandEnvelope, Identity};
use shieldops::runtime::{Intake, RuntimeOptions};
use shieldops::state::Stage;

const NGINX: &str = "linux/ssh/web-1/service/nginx.service";

mod runtime_support;

use runtime_support::{Driven, shipped_policy, start_time};

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
    fn new(sshd: &Sshd, playbooks: Option<&std::path::Path>) -> Harness {
        let clock = ManualClock::new(start_time());
        let options = SshOptions {
            config_file: Some(sshd.ssh_config(&["web-1".to_string()], &[])),
            timeout: Duration::from_secs(30),
            accept_new_host_keys: false,
            control_dir: Some(sshd.control_dir()),
        };
        let connector = LinuxConnector::ssh_fleet(
            ConnectorId::new("linux:ssh"),
            &[("web-1".into(), Environment::Production, "web".into())],
            options,
            4,
            Arc::new(clock.clone()),
            &LinuxConfig::default(),
        );
        let mut registry = Registry::new();
        registry.add(Arc::new(connector));
        let driven = Driven::start(
            clock,
            registry,
            shipped_policy(),
            playbooks,
            RuntimeOptions::default(),
        )
        // Health checks here are real SSH round trips: leave them time, or
        // simulated time would outrun the validation window.
        .settling(Duration::from_millis(150));
        Harness { driven }
    }

    async fn alert(&self, name: &str, resource: &str) {
        self.runtime()
            .intake
            .send(Intake::Alert {
                alert: Alert {
                    name: name.into(),
                    severity: Severity::High,
                    fingerprint: format!("{name}@{resource}"),
                    resource: ResourceId::new(resource),
                    summary: "unit failed".into(),
                    labels: Default::default(),
                    status: AlertStatus::Firing,
                    source: "test".into(),
                },
                recorded: None,
                posted_by: None,
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_unit_is_restarted_after_policy_and_approval_and_validated() {
    let sshd = Sshd::start();
    sshd.unit(
        "nginx.service",
        &[
            ("active", "failed"),
            ("result", "exit-code"),
            ("status", "1"),
            ("restarts", "1"),
        ],
    );
    let h = Harness::new(&sshd, None);
    h.until("discovery of nginx", |s| {
        s.fleet.get(&ResourceId::new(NGINX)).is_some()
    })
    .await;
    h.alert("SystemdUnitFailed", NGINX).await;
    let state = h
        .until("approval requested", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let rem = state.remediations.values().next().unwrap();
    assert_eq!(rem.action.name, "restart_service");
    assert_eq!(rem.action.target, ResourceId::new(NGINX));
    assert_eq!(rem.playbook.as_deref(), Some("systemd-unit-failed"));
    let decision = rem.decision.as_ref().unwrap();
    assert!(decision.allow);
    assert_eq!(decision.required_approvals, 1, "high risk in production");
    assert_eq!(
        sshd.unit_state("nginx.service")["active"],
        "failed",
        "nothing ran before approval"
    );

    let (tx, rx) = tokio::sync::oneshot::channel();
    h.runtime()
        .commands
        .send(CommandEnvelope {
            command: Command::Approve {
                remediation: rem.id,
                comment: "restart it".into(),
            },
            by: Identity::token("alice", None),
            reply: Some(tx),
        })
        .await
        .unwrap();
    let _ = rx.await.unwrap();
    let id = rem.id;
    let state = h
        .until("remediation finished", |s| {
            matches!(s.remediations[&id].stage, Stage::Finished(_))
        })
        .await;
    let rem = &state.remediations[&id];
    assert_eq!(
        rem.stage,
        Stage::Finished(RemediationOutcome::Succeeded),
        "{rem:#?}"
    );
    let snapshot = rem.snapshot.as_ref().unwrap();
    assert_eq!(
        snapshot.data["units"]["nginx.service"][0], "failed",
        "the snapshot holds the unit state"
    );
    assert!(rem.validation.as_ref().unwrap().0);
    assert_eq!(sshd.unit_state("nginx.service")["active"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_command_is_refused_before_the_policy_gate() {
    let sshd = Sshd::start();
    sshd.unit(
        "nginx.service",
        &[
            ("active", "failed"),
            ("result", "exit-code"),
            ("status", "1"),
        ],
    );
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        playbooks.path().join("bad-idea.yaml"),
        "name: bad-idea\ndescription: a playbook someone got wrong\ntrigger:\n  alerts: [BadIdea]\n\
         investigate:\n  - evidence: health\ndecide:\n  - id: wipe\n    when: 'health.reason == \"unit_failed\"'\n\
         \x20   description: wipe it\n    action:\n      name: restart_service\n      params:\n\
         \x20       pre_command: \"rm -rf / --no-preserve-root\"\n\
         validate:\n  expect:\n    health: healthy\n  timeout_secs: 30\n  interval_secs: 5\n\
         on_failure:\n  restore: true\n  escalate: [team-oncall]\n  message: no\n",
    )
    .unwrap();
    let h = Harness::new(&sshd, Some(playbooks.path()));
    h.until("discovery of nginx", |s| {
        s.fleet.get(&ResourceId::new(NGINX)).is_some()
    })
    .await;
    h.alert("BadIdea", NGINX).await;
    let state = h
        .until("the proposal is decided", |s| {
            s.remediations
                .values()
                .any(|r| matches!(r.stage, Stage::Finished(_)))
        })
        .await;
    let rem = state.remediations.values().next().unwrap();
    assert_eq!(rem.stage, Stage::Finished(RemediationOutcome::Denied));
    let decision = rem.decision.as_ref().unwrap();
    assert!(!decision.allow);
    assert!(decision.deny[0].starts_with("guardrail:"), "{decision:?}");
    assert!(
        decision.bundle_hash.is_empty(),
        "the policy gate was never asked"
    );
    assert!(rem.snapshot.is_none() && rem.execution.is_none());
    assert_eq!(sshd.unit_state("nginx.service")["active"], "failed");
}

/// Tricky clean-up globs written into playbooks walk the whole path (alert →
/// investigation → proposal → guardrails) and are refused with a reason
/// before the policy gate, each recorded; nothing runs on the host. (Canonical
/// directories outside the clean-up roots, and symbolic links on the host,
/// are refused by the connector itself: tests/linux_local.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_clean_up_globs_from_playbooks_are_refused_with_a_reason() {
    let sshd = Sshd::start();
    let corpus = [
        ("//etc/shadow*.gz", "`//`"),
        ("/etc/", "not `/`"),
        ("/./etc/x.gz", "`.` segment"),
        ("/var/log/../../etc/x.gz", "`..` segment"),
        ("/var//log/../../etc/x.gz", "`//`"),
        ("/var/l\u{043e}g/x.gz", "printable ASCII"),
        ("/var/log/x.gz,/", "root directory"),
    ];
    let playbooks = tempfile::tempdir().unwrap();
    for (i, (glob, _)) in corpus.iter().enumerate() {
        std::fs::write(
            playbooks.path().join(format!("glob-{i}.yaml")),
            format!(
                "name: glob-{i}\ndescription: a clean-up spelled badly\ntrigger:\n  alerts: [Glob{i}]\n\
                 investigate:\n  - evidence: health\ndecide:\n  - id: clean\n    when: 'resource.kind == \"host\"'\n\
                 \x20   description: clean\n    action:\n      name: clean_disk\n      params:\n\
                 \x20       globs: {}\n        older_than_hours: \"24\"\n\
                 validate:\n  expect:\n    health: healthy\n  timeout_secs: 30\n  interval_secs: 5\n\
                 on_failure:\n  restore: true\n  escalate: [team-oncall]\n  message: no\n",
                serde_json::to_string(glob).unwrap()
            ),
        )
        .unwrap();
    }
    let h = Harness::new(&sshd, Some(playbooks.path()));
    h.until("discovery of the host", |s| {
        s.fleet.get(&ResourceId::new("linux/ssh/web-1")).is_some()
    })
    .await;
    let mut state = h.state();
    for i in 0..corpus.len() {
        h.alert(&format!("Glob{i}"), "linux/ssh/web-1").await;
        state = h
            .until("the proposal is decided", |s| {
                s.remediations.len() == i + 1
                    && s.remediations
                        .values()
                        .all(|r| matches!(r.stage, Stage::Finished(_)))
            })
            .await;
        // Past the correlation window: the next alert opens its own incident.
        h.clock.advance(Duration::from_secs(11 * 60));
    }
    for rem in state.remediations.values() {
        let glob = &rem.action.params["globs"];
        let (_, why) = corpus.iter().find(|(g, _)| g == glob).unwrap();
        assert_eq!(
            rem.stage,
            Stage::Finished(RemediationOutcome::Denied),
            "{glob}"
        );
        let decision = rem.decision.as_ref().unwrap();
        assert!(
            decision.deny[0].starts_with("guardrail: clean_disk") && decision.deny[0].contains(why),
            "{glob}: {decision:?}"
        );
        assert!(rem.snapshot.is_none() && rem.execution.is_none());
    }
}
