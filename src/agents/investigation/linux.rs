//! Analyzers for Linux hosts and their systemd services: a failed unit, a
//! nearly full disk, memory exhaustion with OOM-killer entries, CPU
//! saturation, clock skew. Each cites the evidence it rests on, as the other
//! analyzers do.

use super::analyzers::{Cite, Facts, dedup};
use crate::event::{Action, Hypothesis};

/// Globs a host disk clean-up may touch: rotated and compressed logs.
pub const ROTATED_LOG_GLOBS: &str = "/var/log/*.gz,/var/log/*.[0-9],/var/log/*.old";

/// Every Linux analyzer's hypotheses.
pub fn analyze(f: &Facts, cite: &Cite) -> Vec<Hypothesis> {
    [
        failed_unit(f, cite),
        broken_unit_config(f, cite),
        disk_nearly_full(f, cite),
        memory_exhausted(f, cite),
        cpu_saturated(f, cite),
        clock_skew(f, cite),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn metric(f: &Facts, k: &str) -> Option<f64> {
    f.metrics.get(k).copied()
}

fn is_host(f: &Facts) -> bool {
    f.kind == "host" && f.resource_view.provider == crate::event::Provider::Linux
}

/// Journal lines that say the unit's configuration is broken.
fn config_error_lines(f: &Facts) -> Vec<&str> {
    const SIGNS: &[&str] = &[
        "unknown directive",
        "syntax error",
        "configuration file",
        "invalid config",
        "config test failed",
        "bad configuration",
    ];
    f.events
        .iter()
        .map(|e| e.message.as_str())
        .filter(|m| {
            let m = m.to_lowercase();
            SIGNS.iter().any(|s| m.contains(s))
        })
        .collect()
}

fn failed_unit(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if f.kind != "service" || f.health.reason != "unit_failed" {
        return None;
    }
    let restarts = metric(f, "restarts").unwrap_or(0.0);
    let looping = restarts >= 5.0;
    let mut confidence: f64 = 0.5;
    let mut cites: Vec<String> = cite("health").into_iter().collect();
    let errors = f.events.iter().filter(|e| e.kind == "Warning").count();
    if errors > 0 {
        confidence += 0.1;
        cites.extend(cite("events"));
    }
    if looping {
        confidence -= 0.2;
        cites.extend(cite("metrics"));
    }
    if !config_error_lines(f).is_empty() {
        // A restart will hit the same broken configuration.
        confidence -= 0.25;
    }
    Some(Hypothesis {
        title: "Service process died".into(),
        confidence: confidence.clamp(0.05, 0.9),
        cites: dedup(cites),
        reasoning: format!(
            "systemd reports the unit failed ({}); {errors} error line(s) in its journal; restarted {restarts:.0} time(s){}",
            f.health.message,
            if looping {
                " — it keeps failing, so a restart alone is unlikely to hold"
            } else {
                ""
            }
        ),
        recommended_action: (!looping).then(|| Action::new("restart_service", f.resource.clone())),
    })
}

fn broken_unit_config(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if f.kind != "service" || f.health.status == crate::event::HealthStatus::Healthy {
        return None;
    }
    let lines = config_error_lines(f);
    let first = lines.first()?;
    Some(Hypothesis {
        title: "Broken service configuration".into(),
        confidence: 0.75,
        cites: dedup(cite("events").into_iter().chain(cite("health")).collect()),
        reasoning: format!(
            "the journal says the configuration is invalid: \"{first}\"; fix the configuration (or roll it back) before restarting"
        ),
        recommended_action: None,
    })
}

fn disk_nearly_full(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if !is_host(f) {
        return None;
    }
    let used = metric(f, "disk_usage_ratio")?;
    if used < 0.85 {
        return None;
    }
    let mut confidence: f64 = 0.5;
    let mut cites: Vec<String> = cite("metrics").into_iter().collect();
    if f.health.reason == "disk_nearly_full" {
        confidence += 0.15;
        cites.extend(cite("health"));
    }
    let biggest = f.events.iter().find(|e| e.reason == "DiskNearlyFull");
    if biggest.is_some() {
        confidence += 0.1;
        cites.extend(cite("events"));
    }
    Some(Hypothesis {
        title: "Filesystem nearly full".into(),
        confidence: confidence.min(0.9),
        cites: dedup(cites),
        reasoning: format!(
            "{:.0}% used{}; rotated logs older than a day can move to quarantine (restorable)",
            used * 100.0,
            biggest
                .map(|e| format!(" — {}", e.message))
                .unwrap_or_default()
        ),
        recommended_action: Some(
            Action::new("clean_disk", f.resource.clone())
                .with("globs", ROTATED_LOG_GLOBS)
                .with("older_than_hours", "24"),
        ),
    })
}

fn memory_exhausted(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if !is_host(f) {
        return None;
    }
    let ooms: Vec<&str> = f
        .events
        .iter()
        .filter(|e| e.reason == "OOMKilling")
        .map(|e| e.message.as_str())
        .collect();
    let ratio = metric(f, "memory_usage_ratio").unwrap_or(0.0);
    if ooms.is_empty() && ratio < 0.95 {
        return None;
    }
    let mut confidence: f64 = 0.35;
    let mut cites = Vec::new();
    if !ooms.is_empty() {
        confidence += 0.3;
        cites.extend(cite("events"));
    }
    if ratio >= 0.95 {
        confidence += 0.15;
        cites.extend(cite("metrics"));
    }
    Some(Hypothesis {
        title: "Memory exhausted: the kernel's OOM killer ran".into(),
        confidence: confidence.min(0.9),
        cites: dedup(cites),
        reasoning: format!(
            "{:.0}% of memory in use; {} OOM-killer entr(ies) in the kernel log{}",
            ratio * 100.0,
            ooms.len(),
            ooms.last()
                .map(|m| format!(", last: \"{m}\""))
                .unwrap_or_default()
        ),
        recommended_action: None,
    })
}

fn cpu_saturated(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if !is_host(f) {
        return None;
    }
    let per_cpu = metric(f, "load_per_cpu")?;
    if per_cpu < 2.0 {
        return None;
    }
    let top = f.events.iter().find(|e| e.reason == "HighLoad");
    let mut cites: Vec<String> = cite("metrics").into_iter().collect();
    cites.extend(top.and(cite("events")));
    Some(Hypothesis {
        title: "CPU saturated".into(),
        confidence: if top.is_some() { 0.55 } else { 0.45 },
        cites: dedup(cites),
        reasoning: format!(
            "load is {per_cpu:.1} per CPU{}",
            top.map(|e| format!(" — {}", e.message)).unwrap_or_default()
        ),
        recommended_action: None,
    })
}

fn clock_skew(f: &Facts, cite: &Cite) -> Option<Hypothesis> {
    if !is_host(f) {
        return None;
    }
    let skew = metric(f, "clock_skew_secs")?;
    if skew.abs() < 5.0 {
        return None;
    }
    Some(Hypothesis {
        title: "Clock skew".into(),
        confidence: if skew.abs() >= 60.0 { 0.6 } else { 0.4 },
        cites: dedup(cite("metrics").into_iter().collect()),
        reasoning: format!(
            "the host's clock is {skew:+.1} s off the console's; TLS, Kerberos and log correlation break with skew — check its time synchronisation"
        ),
        recommended_action: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::event::{
        Evidence, Health, HealthStatus, InfraEvent, Provider, ResourceId, StringMap,
    };

    fn facts(kind: &str) -> Facts {
        let id = ResourceId::new(format!(
            "linux/ssh/web-1{}",
            if kind == "service" {
                "/service/nginx.service"
            } else {
                ""
            }
        ));
        Facts {
            resource: id.clone(),
            resource_view: crate::event::Resource {
                id,
                name: "x".into(),
                kind: kind.into(),
                provider: Provider::Linux,
                connector: crate::event::ConnectorId::new("linux:ssh"),
                environment: crate::event::Environment::Production,
                team: "t".into(),
                labels: StringMap::new(),
                attributes: StringMap::new(),
                health: Health::healthy(),
                created_at: chrono::Utc::now(),
            },
            owner_attributes: StringMap::new(),
            kind: kind.into(),
            alert: "x".into(),
            health: Health::healthy(),
            events: vec![],
            changes: vec![],
            metrics: BTreeMap::new(),
            owner: None,
            node: None,
            attributes: StringMap::new(),
        }
    }

    fn event(reason: &str, message: &str) -> InfraEvent {
        InfraEvent {
            at: chrono::Utc::now(),
            resource: ResourceId::new("linux/ssh/web-1"),
            kind: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn evidence() -> Vec<Evidence> {
        ["health", "events", "changes", "metrics"]
            .iter()
            .enumerate()
            .map(|(i, s)| Evidence {
                id: format!("e{}", i + 1),
                source: s.to_string(),
                summary: String::new(),
                detail: vec![],
            })
            .collect()
    }

    #[test]
    fn a_failed_unit_is_restarted_unless_its_config_is_broken() {
        let mut f = facts("service");
        f.health = Health::new(
            HealthStatus::Unhealthy,
            "unit_failed",
            "failed (failed), exit code 1",
        );
        f.metrics.insert("restarts".into(), 1.0);
        f.events.push(event(
            "Journal",
            "nginx.service: Failed with result 'exit-code'.",
        ));
        let h = super::super::analyze(&f, &evidence());
        assert_eq!(h[0].title, "Service process died");
        assert_eq!(
            h[0].recommended_action.as_ref().unwrap().name,
            "restart_service"
        );
        assert_eq!(h[0].cites, vec!["e1", "e2"]);

        f.events.push(event(
            "Journal",
            "nginx: [emerg] unknown directive \"proxy_passs\"",
        ));
        let h = super::super::analyze(&f, &evidence());
        assert_eq!(h[0].title, "Broken service configuration");
        assert!(h[0].recommended_action.is_none());
        assert!(h[1].confidence < 0.5, "a restart ranks below");
    }

    #[test]
    fn a_full_disk_proposes_a_restorable_clean_up_of_rotated_logs() {
        let mut f = facts("host");
        f.metrics.insert("disk_usage_ratio".into(), 0.93);
        f.health = Health::new(HealthStatus::Degraded, "disk_nearly_full", "/ is 93% full");
        f.events.push(event(
            "DiskNearlyFull",
            "/ is 93% full; biggest directories: /var/log 9000 MiB",
        ));
        let h = super::super::analyze(&f, &evidence());
        assert_eq!(h[0].title, "Filesystem nearly full");
        assert!(h[0].reasoning.contains("/var/log 9000 MiB"));
        let a = h[0].recommended_action.as_ref().unwrap();
        assert_eq!(a.name, "clean_disk");
        assert_eq!(a.params["globs"], ROTATED_LOG_GLOBS);
        assert!(
            crate::connectors::linux::guardrails::check(a).is_none(),
            "the proposal passes the guardrails"
        );
    }

    #[test]
    fn oom_killer_entries_on_a_host_are_memory_exhaustion_not_a_pod_limit() {
        let mut f = facts("host");
        f.metrics.insert("memory_usage_ratio".into(), 0.97);
        f.events.push(event(
            "OOMKilling",
            "Out of memory: Killed process 4711 (java)",
        ));
        let h = super::super::analyze(&f, &evidence());
        assert_eq!(h[0].title, "Memory exhausted: the kernel's OOM killer ran");
        assert!(h.iter().all(|h| {
            h.recommended_action
                .as_ref()
                .is_none_or(|a| a.name != "set_resources")
        }));
    }

    #[test]
    fn load_and_skew_are_reported_with_their_numbers() {
        let mut f = facts("host");
        f.metrics.insert("load_per_cpu".into(), 3.5);
        f.metrics.insert("clock_skew_secs".into(), -90.0);
        f.events.push(event(
            "HighLoad",
            "load 7.00 on 2 CPU(s); top processes: stress (pid 9, 99.0% CPU)",
        ));
        let h = super::super::analyze(&f, &evidence());
        let titles: Vec<&str> = h.iter().map(|h| h.title.as_str()).collect();
        assert_eq!(titles, vec!["Clock skew", "CPU saturated"]);
        assert!(h[1].reasoning.contains("stress (pid 9"));
    }

    #[test]
    fn a_quiet_host_has_no_hypotheses() {
        let mut f = facts("host");
        f.metrics.insert("disk_usage_ratio".into(), 0.4);
        f.metrics.insert("load_per_cpu".into(), 0.3);
        f.metrics.insert("clock_skew_secs".into(), 0.2);
        assert!(super::super::analyze(&f, &evidence()).is_empty());
    }
}
