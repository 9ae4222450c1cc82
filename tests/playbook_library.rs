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
    assert_eq!(library.len(), 16);
    for (alert_name, playbook) in [
        ("KubePodCrashLooping", "pod-crash-loop"),
        ("KubeContainerOOMKilled", "oom-kill"),
        ("KubeDeploymentRolloutStuck", "deployment-rollout-failed"),
        ("KubePodNotScheduled", "pods-pending"),
        ("ServiceDown", "service-down"),
        ("HostDiskNearlyFull", "host-disk-full"),
        ("HostServiceFailed", "systemd-unit-failed"),
        ("SystemdUnitFailed", "systemd-unit-failed"),
        ("EC2StatusCheckFailed", "ec2-status-check-failed"),
        ("EC2CPUSaturated", "ec2-cpu-saturated"),
        ("ECSServiceUnhealthy", "ecs-service-unhealthy"),
        ("ECSServiceSaturated", "ecs-service-saturated"),
        ("CPUThrottlingHigh", "cpu-throttling"),
        ("HighLatency", "high-latency"),
    ] {
        let found = library.matching(&alert(alert_name, Severity::High, &[]));
        assert_eq!(
            found.map(|p| p.name.as_str()),
            Some(playbook),
            "{alert_name}"
        );
    }
    // Plan-only playbooks hold the validation of Cost-pane changes; no alert
    // matches them, and the situations still without a metrics source have
    // no playbook.
    for (name, plan) in [
        ("InstanceIdle", "cost-idle-instance"),
        ("CPURequestsFarAboveUsage", "cost-rightsizing"),
    ] {
        assert!(library.matching(&alert(name, Severity::Low, &[])).is_none());
        let p = library.get(plan).unwrap();
        assert!(p.trigger.alerts.is_empty() && p.action_names().is_empty());
    }
    for name in [
        "DatabaseConnectionsExhausted",
        "CertificateExpiring",
        "NodeDiskPressure",
    ] {
        assert!(
            library
                .matching(&alert(name, Severity::High, &[]))
                .is_none(),
            "{name}"
        );
    }
}

#[test]
fn playbooks_match_only_the_resources_they_are_written_for() {
    use shieldops::event::Provider;
    let library = Library::load(None).unwrap();
    let down = alert("ServiceDown", Severity::Critical, &[]);
    let name = |p: Option<&shieldops::playbook::Playbook>| p.map(|p| p.name.clone());
    assert_eq!(
        name(library.matching_resource(&down, Provider::Linux, "service")),
        Some("service-down".into())
    );
    assert_eq!(
        name(library.matching_resource(&down, Provider::Kubernetes, "pod")),
        Some("service-down".into())
    );
    assert_eq!(
        name(library.matching_resource(&down, Provider::Aws, "ec2_instance")),
        None
    );
    let oom = alert("KubeContainerOOMKilled", Severity::High, &[]);
    assert_eq!(
        name(library.matching_resource(&oom, Provider::Linux, "host")),
        None
    );
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
        // What the investigation computes from the limit and the demand.
        .with(
            "metrics.memory_limit_proposed_mib",
            shieldops::sizing::oom_memory_limit_mib(512.0, Some(600.0)) as f64,
        )
        .with("changes.recent_deploy", false)
        .with("changes.minutes_since_deploy", 4000.0)
        .with("changes.previous_revision_available", true);

    let d = oom
        .decide(&base, &target())
        .unwrap()
        .expect("a branch holds");
    assert_eq!(d.branch, "raise-limit");
    assert_eq!(d.action.name, "set_resources");
    assert_eq!(d.action.target, target());
    // The investigation's own figure: 600 MiB demand + 25% in 64 MiB steps.
    assert_eq!(d.action.params["memory_limit_mib"], "768");

    // Another reason: nothing.
    let other = base.clone().with("health.reason", "Error");
    assert!(oom.decide(&other, &target()).unwrap().is_none());
    // A deploy within the hour wins over raising limits.
    let deploy = base
        .clone()
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
fn a_condition_on_an_unknown_fact_stops_the_playbook_and_names_the_fact() {
    let library = Library::load(None).unwrap();
    let oom = library.get("oom-kill").unwrap();
    // No changes were gathered (a StatefulSet's pod, or the API refused):
    // whether a deploy explains the kill is unknown, so the later
    // "raise the limit" branch is not taken in its place.
    let facts = Facts::new()
        .with("health.reason", "CrashLoopBackOff")
        .with("health.last_termination_reason", "OOMKilled")
        .with("metrics.memory_limit_mib", 512.0);
    let e = oom.evaluate(&facts, &target()).unwrap();
    assert!(e.decision.is_none());
    assert_eq!(e.undecided.as_deref(), Some("recent-deploy-regression"));
    assert_eq!(
        e.unknown,
        vec![
            "changes.recent_deploy".to_string(),
            "changes.minutes_since_deploy".to_string(),
            "changes.previous_revision_available".to_string()
        ]
    );
    let why = e.why_not(oom);
    assert!(
        why.contains("oom-kill.yaml:") && why.contains("changes.recent_deploy"),
        "{why}"
    );
    // A definite false on one side decides without the unknown one.
    let other = facts
        .clone()
        .with("health.last_termination_reason", "Error");
    let e = oom.evaluate(&other, &target()).unwrap();
    assert!(e.decision.is_none() && e.undecided.is_none());
}

#[test]
fn nested_branches_and_type_errors() {
    let nested = r#"name: nested
description: nested branches
trigger:
  alerts: [A]
  resources: [kubernetes/pod]
investigate:
  - evidence: changes
  - evidence: logs
decide:
  - id: config-error
    when: 'logs.config_error'
    then:
      - id: config-changed
        when: 'changes.recent_config_change'
        action:
          name: rollback_deployment
  - id: other
    when: 'health.reason == "CrashLoopBackOff"'
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
    let p = shieldops::playbook::Playbook::parse("nested.yaml", nested).unwrap();
    let facts = Facts::new()
        .with("health.reason", "CrashLoopBackOff")
        .with("logs.config_error", true)
        .with("changes.recent_config_change", true);
    let d = p.decide(&facts, &target()).unwrap().unwrap();
    assert_eq!(d.branch, "config-error/config-changed");
    // No child holds: the walk goes on after the parent.
    let facts = facts.with("changes.recent_config_change", false);
    assert_eq!(
        p.decide(&facts, &target()).unwrap().unwrap().branch,
        "other"
    );
    // A child that is unknown stops the walk.
    let unknown = Facts::new()
        .with("health.reason", "CrashLoopBackOff")
        .with("logs.config_error", true);
    let e = p.evaluate(&unknown, &target()).unwrap();
    assert!(e.decision.is_none());
    assert_eq!(e.undecided.as_deref(), Some("config-error/config-changed"));

    let library = Library::load(None).unwrap();
    let crash = library.get("pod-crash-loop").unwrap();
    // A configuration error with no recent revision: a restart does not cure
    // it, so nothing is done.
    let facts = Facts::new()
        .with("health.reason", "CrashLoopBackOff")
        .with("changes.recent_deploy", false)
        .with("logs.config_error", true);
    let e = crash.evaluate(&facts, &target()).unwrap();
    assert!(e.decision.is_none() && e.undecided.is_none(), "{e:?}");
    // No configuration error, but no restart count: unknown, so no restart.
    let facts = facts.with("logs.config_error", false);
    let e = crash.evaluate(&facts, &target()).unwrap();
    assert!(e.decision.is_none());
    assert_eq!(e.undecided.as_deref(), Some("transient"));
    assert_eq!(e.unknown, vec!["events.restarts".to_string()]);
    let d = crash
        .decide(&facts.with("events.restarts", 4.0), &target())
        .unwrap()
        .unwrap();
    assert_eq!(d.branch, "transient");
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
        .with("metrics.memory_request_mib", 512.0)
        .with("metrics.largest_node_allocatable_memory_mib", 15000.0)
        .with("metrics.cpu_request_millicores", 500.0)
        .with("metrics.largest_node_allocatable_cpu_millicores", 3920.0)
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

/// `VALID` written for `resources`, gathering `steps`, deciding on `when`.
fn with_facts(resources: &str, steps: &str, when: &str) -> String {
    VALID
        .replace(
            "  alerts: [CustomAlert]\n",
            &format!("  alerts: [CustomAlert]\n{resources}"),
        )
        .replace(
            "  - evidence: health\n",
            &format!("  - evidence: health\n{steps}"),
        )
        .replace("'health.reason == \"Stuck\"'", &format!("'{when}'"))
}

#[test]
fn conditions_on_facts_nobody_produces_are_rejected_with_file_and_line() {
    let pods = "  resources: [kubernetes/pod]\n";
    let cases = [
        (
            with_facts("", "", "metrics.cpu_throttle_ratio > 0.5"),
            9,
            "unknown fact `metrics.cpu_throttle_ratio`",
        ),
        (
            with_facts(
                "  resources: [linux/host]\n",
                "  - evidence: changes\n",
                "changes.recent_deploy",
            ),
            11,
            "`changes.recent_deploy` is produced by no connector for linux/host",
        ),
        (
            with_facts(pods, "", "events.restarts > 3"),
            10,
            "comes from `events` evidence, which `investigate` does not gather",
        ),
        (
            with_facts(
                pods,
                "  - evidence: metrics\n    metrics: [memory_limit_mib]\n",
                "metrics.restarts > 3",
            ),
            12,
            "not in the metrics step's `metrics` list",
        ),
        (
            with_facts("  resources: [k8s/pod]\n", "", "true"),
            5,
            "provider/kind",
        ),
        (
            with_facts(pods, "  - evidence: events\n    window_mins: 0\n", "true"),
            8,
            "window_mins",
        ),
        (
            with_facts(pods, "  - evidence: events\n    grep: OOM\n", "true"),
            8,
            "`lines` and `grep` to a logs step",
        ),
        (
            VALID.replace(
                "      name: restart_pod",
                "      name: restart_pod\n      params:\n        size: '{{ metrics.db_connections_max }}'",
            ),
            13,
            "unknown fact `metrics.db_connections_max`",
        ),
        (
            VALID.replace("investigate:\n  - evidence: health\n", ""),
            1,
            "come together",
        ),
        (
            with_facts(pods, "  - evidence: events\n", "events.restarts > \"many\""),
            11,
            "`events.restarts` is a number fact, compared with a text",
        ),
        (
            with_facts(pods, "  - evidence: changes\n", "!changes.minutes_since_deploy"),
            11,
            "not a condition",
        ),
        (
            with_facts(pods, "", "health.reason in [\"OOMKilled\", 137]"),
            10,
            "compared with a number",
        ),
    ];
    for (i, (text, line, needle)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("bad{i}.yaml");
        write(dir.path(), &file, text);
        let mut out = Vec::new();
        assert_eq!(
            playbook_validate(dir.path(), &mut out).unwrap(),
            1,
            "case {i}"
        );
        let out = String::from_utf8(out).unwrap();
        let path = dir.path().join(&file).display().to_string();
        assert!(
            out.contains(&format!("error  {path}:{line}:")),
            "case {i}: {out}"
        );
        assert!(out.contains(needle), "case {i}: {out}");
    }
    // The same facts, produced and gathered, load.
    let good = with_facts(
        pods,
        "  - evidence: changes\n    window_mins: 90\n",
        "changes.recent_deploy",
    );
    let p = shieldops::playbook::Playbook::parse("good.yaml", &good).unwrap();
    assert_eq!(
        p.investigate[1].window,
        Some(std::time::Duration::from_secs(5400))
    );
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
    assert_eq!(library.len(), 16);
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
    assert!(out.contains("16 valid, 0 invalid"), "{out}");
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
