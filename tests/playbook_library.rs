//! Playbooks: the embedded library loads and matches alerts, decision trees
//! are evaluated both ways, invalid playbooks are rejected with file:line, and
//! validation polls until a timeout.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use shieldops::event::{Alert, AlertStatus, Health, HealthStatus, ResourceId, Severity};
use shieldops::playbook::{Facts, Library, PlaybookError, Verdict, playbook_validate};

fn alert(name: &str, severity: Severity, labels: &[(&str, &str)]) -> Alert {
    Alert {
        name: name.into(),
        severity,
        resource: ResourceId::new("k8s/prod/payments/pod/api-1"),
        fingerprint: "fp".into(),
        summary: String::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        status: AlertStatus::Firing,
        source: "test".into(),
    }
}

fn target() -> ResourceId {
    ResourceId::new("k8s/prod/payments/pod/api-1")
}

#[test]
fn the_embedded_library_has_one_playbook_per_situation() {
    let library = Library::load(None).expect("embedded playbooks are valid");
    assert_eq!(library.len(), 19);
    for (alert_name, playbook) in [
        ("KubePodCrashLooping", "pod-crash-loop"),
        ("KubeContainerOOMKilled", "oom-kill"),
        ("KubeDeploymentRolloutStuck", "deployment-rollout-failed"),
        ("NodeDiskPressure", "node-disk-pressure"),
        ("KubePodNotScheduled", "pods-pending"),
        ("CPUThrottlingHigh", "cpu-throttling"),
        ("HighLatency", "high-latency"),
        ("ServiceDown", "service-down"),
        ("CertificateExpiring", "certificate-expiring"),
        ("DatabaseConnectionsExhausted", "db-connections-exhausted"),
        ("CPURequestsFarAboveUsage", "cost-rightsizing"),
        ("InstanceIdle", "cost-idle-instance"),
        ("HostDiskNearlyFull", "host-disk-full"),
        ("HostServiceFailed", "systemd-unit-failed"),
        ("SystemdUnitFailed", "systemd-unit-failed"),
        ("EC2StatusCheckFailed", "ec2-status-check-failed"),
        ("EC2CPUSaturated", "ec2-cpu-saturated"),
        ("ECSServiceUnhealthy", "ecs-service-unhealthy"),
        ("ECSServiceSaturated", "ecs-service-saturated"),
    ] {
        let severity = if playbook.starts_with("cost-") {
            Severity::Low
        } else {
            Severity::High
        };
        let found = library.matching(&alert(alert_name, severity, &[]));
        assert_eq!(
            found.map(|p| p.name.as_str()),
            Some(playbook),
            "{alert_name}"
        );
    }
}

#[test]
fn matching_respects_severity_labels_and_status() {
    let library = Library::load(None).unwrap();
    assert!(
        library
            .matching(&alert("KubeContainerOOMKilled", Severity::Low, &[]))
            .is_none()
    );
    assert!(
        library
            .matching(&alert(
                "KubeContainerOOMKilled",
                Severity::High,
                &[("namespace", "kube-system")]
            ))
            .is_none()
    );
    assert!(
        library
            .matching(&alert(
                "KubeContainerOOMKilled",
                Severity::High,
                &[("namespace", "payments")]
            ))
            .is_some()
    );
    let mut resolved = alert("KubeContainerOOMKilled", Severity::High, &[]);
    resolved.status = AlertStatus::Resolved;
    assert!(library.matching(&resolved).is_none());
    assert!(
        library
            .matching(&alert("SomethingElse", Severity::Critical, &[]))
            .is_none()
    );
}

#[test]
fn every_playbook_action_is_known_to_the_policy() {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../policies/data.json")).unwrap();
    let cfg = &data["shieldops_config"];
    let known = |name: &str| {
        name == "scale"
            || cfg["risk"]["actions"].get(name).is_some()
            || cfg["action_aliases"].get(name).is_some()
            || cfg["read_only_actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == name)
            || cfg["risk"]["critical_actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == name)
    };
    for playbook in Library::load(None).unwrap().iter() {
        for action in playbook.action_names() {
            assert!(
                known(action),
                "{}: action {action} has no risk entry",
                playbook.name
            );
        }
    }
}

#[test]
fn oom_kill_decision_tree_evaluates_both_ways() {
    let library = Library::load(None).unwrap();
    let oom = library.get("oom-kill").unwrap();
    let base = Facts::new()
        .with("health.reason", "OOMKilled")
        .with("metrics.memory_limit_mib", 512.0)
        .with("metrics.memory_peak_mib", 600.0)
        // What the investigation computes from the limit and the peak.
        .with(
            "metrics.memory_limit_proposed_mib",
            shieldops::agents::sizing::oom_memory_limit_mib(512.0, Some(600.0)) as f64,
        )
        .with("changes.recent_deploy", false);

    let d = oom
        .decide(
            &base.clone().with("metrics.memory_usage_ratio", 0.97),
            &target(),
        )
        .unwrap()
        .expect("a branch holds");
    assert_eq!(d.branch, "limit-too-small");
    assert_eq!(d.action.name, "set_resources");
    assert_eq!(d.action.target, target());
    assert_eq!(
        d.action.params.get("memory_limit_mib").map(String::as_str),
        Some("768")
    );

    // Usage well under the limit: no branch holds, nothing is done.
    assert!(
        oom.decide(
            &base.clone().with("metrics.memory_usage_ratio", 0.4),
            &target()
        )
        .unwrap()
        .is_none()
    );
    // Another reason: nothing either.
    let other = base
        .clone()
        .with("health.reason", "Error")
        .with("metrics.memory_usage_ratio", 0.97);
    assert!(oom.decide(&other, &target()).unwrap().is_none());
    // Missing usage metrics take the cautious branch.
    let d = oom.decide(&base, &target()).unwrap().unwrap();
    assert_eq!(d.branch, "oom-without-metrics");
    assert_eq!(d.action.params["memory_limit_mib"], "768");
    // A deploy within the hour wins over raising limits.
    let deploy = base
        .clone()
        .with("metrics.memory_usage_ratio", 0.97)
        .with("changes.recent_deploy", true)
        .with("changes.minutes_since_deploy", 12.0);
    let d = oom.decide(&deploy, &target()).unwrap().unwrap();
    assert_eq!(d.branch, "recent-deploy-regression");
    assert_eq!(
        d.action.params["reason"],
        "OOMKilled 12 minutes after deploy"
    );
}

#[test]
fn nested_branches_and_type_errors() {
    let library = Library::load(None).unwrap();
    let crash = library.get("pod-crash-loop").unwrap();
    let facts = Facts::new()
        .with("health.reason", "CrashLoopBackOff")
        .with("changes.recent_deploy", false)
        .with("logs.config_error", true)
        .with("changes.recent_config_change", true);
    let d = crash.decide(&facts, &target()).unwrap().unwrap();
    assert_eq!(d.branch, "config-error/config-changed");
    assert_eq!(d.action.name, "rollback_deployment");
    // Config error without a config change: the nested tree has no answer
    // and the later `transient` branch needs a restart count it lacks.
    let facts = facts.with("changes.recent_config_change", false);
    assert!(crash.decide(&facts, &target()).unwrap().is_none());
    // A fact of the wrong type is an error naming the playbook and branch.
    let bad = Facts::new()
        .with("health.reason", 5.0)
        .with("metrics.memory_limit_mib", 1.0);
    let err = crash.decide(&bad, &target()).unwrap_err();
    assert!(matches!(err, PlaybookError::Eval { .. }));
    let text = err.to_string();
    assert!(
        text.contains("pod-crash-loop") && text.contains("oom-crash-loop"),
        "{text}"
    );
}

#[test]
fn a_template_with_a_missing_fact_is_an_error() {
    let library = Library::load(None).unwrap();
    let pending = library.get("pods-pending").unwrap();
    let facts = Facts::new()
        .with("changes.recent_scale_up", true)
        .with("metrics.replicas", 6.0);
    let err = pending.decide(&facts, &target()).unwrap_err().to_string();
    assert!(err.contains("changes.previous_replicas"), "{err}");
}

const VALID: &str = r#"name: custom
description: test playbook
trigger:
  alerts: [CustomAlert]
investigate:
  - evidence: health
decide:
  - id: restart
    when: 'health.reason == "Stuck"'
    action:
      name: restart_pod
validate:
  expect:
    health: healthy
  timeout_secs: 60
  interval_secs: 10
on_failure:
  escalate: [team-oncall]
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn invalid_playbooks_are_rejected_with_file_and_line() {
    let cases = [
        (
            VALID.replace(
                "    when: 'health.reason == \"Stuck\"'",
                "    when: 'health.reason = \"Stuck\"'",
            ),
            9,
            "use `==`",
        ),
        (
            VALID.replace("  - evidence: health", "  - evidence: vibes"),
            6,
            "vibes",
        ),
        (
            VALID.replace("description: test playbook", "descripton: test playbook"),
            2,
            "descripton",
        ),
        (
            VALID.replace(
                "      name: restart_pod",
                "      name: restart_pod\n      params:\n        size: '{{ metrics.x * }}'",
            ),
            13,
            "parameter `size`",
        ),
        (
            VALID.replace("  escalate: [team-oncall]", "  escalate: []"),
            18,
            "escalate",
        ),
        (
            VALID.replace("  interval_secs: 10", "  interval_secs: 600"),
            16,
            "interval_secs",
        ),
        (
            VALID.replace("  - id: restart", "  - id: restart\n    then: []"),
            8,
            "needs exactly one",
        ),
        (
            VALID.replace("  timeout_secs: 60", "  timeout_secs: soon"),
            15,
            "",
        ),
    ];
    for (i, (text, line, needle)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("bad{i}.yaml");
        write(dir.path(), &file, text);
        write(
            dir.path(),
            "good.yaml",
            &VALID.replace("name: custom", "name: good"),
        );
        let err = Library::load(Some(dir.path()))
            .expect_err("an invalid playbook fails the load")
            .to_string();
        let path = dir.path().join(&file).display().to_string();
        assert!(
            err.starts_with(&format!("{path}:{line}:")),
            "case {i}: {err}"
        );
        assert!(err.contains(needle), "case {i}: {err}");

        let mut out = Vec::new();
        assert_eq!(playbook_validate(dir.path(), &mut out).unwrap(), 1);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(&format!("error  {path}:{line}:")),
            "case {i}: {out}"
        );
        assert!(
            out.contains("ok     ") && out.contains("1 valid, 1 invalid"),
            "case {i}: {out}"
        );
    }
}

#[test]
fn a_user_playbook_overrides_by_name_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "mine.yaml",
        &VALID
            .replace("name: custom", "name: oom-kill")
            .replace("CustomAlert", "KubeContainerOOMKilled"),
    );
    let library = Library::load(Some(dir.path())).unwrap();
    assert_eq!(library.len(), 19);
    let oom = library
        .matching(&alert("KubeContainerOOMKilled", Severity::Low, &[]))
        .unwrap();
    assert!(oom.source.ends_with("mine.yaml"));

    write(
        dir.path(),
        "again.yaml",
        &VALID.replace("name: custom", "name: oom-kill"),
    );
    let err = Library::load(Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("oom-kill"), "{err}");
    let mut out = Vec::new();
    assert_eq!(playbook_validate(dir.path(), &mut out).unwrap(), 1);
}

#[test]
fn the_repository_playbooks_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let mut out = Vec::new();
    let code = playbook_validate(&dir, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("19 valid, 0 invalid"), "{out}");
}

#[test]
fn validation_polls_until_healthy_or_timeout() {
    let library = Library::load(None).unwrap();
    let spec = &library.get("oom-kill").unwrap().validation;
    assert_eq!(
        (
            spec.timeout.as_secs(),
            spec.interval.as_secs(),
            spec.stable_polls
        ),
        (300, 15, 2)
    );
    let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let oom = Health::new(HealthStatus::Unhealthy, "OOMKilled", "");
    let healthy = Health::healthy();
    // Healthy status with a rejected reason still fails the check.
    assert!(
        spec.check(&Health::new(HealthStatus::Healthy, "OOMKilled", ""))
            .is_err()
    );

    let mut run = spec.start(t0);
    assert_eq!(run.observe(&oom, at(15)), Verdict::Pending);
    assert_eq!(run.observe(&healthy, at(30)), Verdict::Pending);
    assert_eq!(
        run.observe(&oom, at(45)),
        Verdict::Pending,
        "a relapse resets the count"
    );
    assert_eq!(run.observe(&healthy, at(60)), Verdict::Pending);
    assert!(matches!(run.observe(&healthy, at(75)), Verdict::Passed(_)));

    let mut run = spec.start(t0);
    assert_eq!(run.observe(&oom, at(290)), Verdict::Pending);
    match run.observe(&oom, at(300)) {
        Verdict::Failed(why) => assert!(why.contains("OOMKilled"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(run.interval().as_secs(), 15);
    let _ = BTreeMap::<String, String>::new();
}
