//! One-line human summaries of events, for the log tail and the Events pane.

use super::kind::EventKind;

/// A short, human-readable description of what an event says.
pub fn summary(kind: &EventKind) -> String {
    use EventKind::*;
    match kind {
        ResourceDiscovered { resource } => format!(
            "{} {} ({}, {}, {})",
            resource.kind,
            resource.name,
            resource.provider.label(),
            resource.environment.short(),
            resource.team
        ),
        ResourceChanged { resource, changes } => {
            let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
            format!("{resource} changed: {}", keys.join(", "))
        }
        ResourceGone { resource } => format!("{resource} gone"),
        HealthChanged { resource, health } => {
            if health.reason.is_empty() {
                format!("{resource} is {}", health.status.as_str())
            } else {
                format!(
                    "{resource} is {}: {}",
                    health.status.as_str(),
                    health.reason
                )
            }
        }
        AlertReceived { alert, .. } => format!(
            "{} [{}] {} on {}",
            alert.name,
            alert.severity.as_str(),
            match alert.status {
                super::AlertStatus::Firing => "firing",
                super::AlertStatus::Resolved => "resolved",
            },
            alert.resource
        ),
        IncidentOpened {
            title, severity, ..
        } => {
            format!("incident opened [{}]: {title}", severity.as_str())
        }
        IncidentCorrelated {
            incident,
            alert_seq,
        } => {
            format!("alert #{alert_seq} correlated into incident #{incident}")
        }
        IncidentAcknowledged { incident, by } => {
            format!("incident #{incident} acknowledged by {by}")
        }
        IncidentResolved {
            incident,
            resolution,
        } => format!("incident #{incident} resolved: {resolution}"),
        InvestigationStarted {
            incident, alert, ..
        } => format!("investigating incident #{incident} ({alert})"),
        EvidenceCollected {
            investigation,
            evidence,
        } => format!(
            "inv #{investigation} evidence {} [{}]: {}",
            evidence.id, evidence.source, evidence.summary
        ),
        HypothesesRanked {
            investigation,
            hypotheses,
        } => match hypotheses.first() {
            Some(top) => format!(
                "inv #{investigation}: {} hypotheses, top: {} ({:.0}%)",
                hypotheses.len(),
                top.title,
                top.confidence * 100.0
            ),
            None => format!("inv #{investigation}: no hypotheses"),
        },
        InvestigationConcluded {
            investigation,
            conclusion,
            ..
        } => format!("inv #{investigation} concluded: {conclusion}"),
        RemediationProposed { action, .. } => {
            format!("proposed {} on {}", action.name, action.target)
        }
        PolicyDecided {
            remediation,
            decision,
        } => format!(
            "rem #{remediation} policy: {} (risk {}, {} approvals){}",
            if decision.allow { "allow" } else { "deny" },
            decision.risk.as_str(),
            decision.required_approvals,
            if decision.deny.is_empty() {
                String::new()
            } else {
                format!(": {}", decision.deny.join("; "))
            }
        ),
        ApprovalRequested {
            remediation,
            required,
            ..
        } => format!("rem #{remediation} needs {required} approval(s)"),
        ApprovalGranted {
            remediation,
            by,
            auth,
            ..
        } => format!(
            "rem #{remediation} approved by {by}{}",
            if *auth == Some(super::Authentication::Declared) {
                " (declared, not authenticated)"
            } else {
                ""
            }
        ),
        ApprovalDenied {
            remediation,
            by,
            reason,
            ..
        } => format!("rem #{remediation} denied by {by}: {reason}"),
        ApprovalExpired { remediation } => format!("rem #{remediation} approval expired"),
        ApprovalEscalated {
            remediation, to, ..
        } => format!("rem #{remediation} escalated to {to}"),
        SnapshotTaken {
            remediation,
            snapshot,
        } => format!("rem #{remediation} snapshot: {}", snapshot.summary),
        ActionExecuted {
            remediation,
            outcome,
        } => format!(
            "rem #{remediation} executed: {} {}",
            if outcome.success { "ok" } else { "FAILED" },
            outcome.message
        ),
        ValidationFinished {
            remediation,
            passed,
            detail,
        } => format!(
            "rem #{remediation} validation {}: {detail}",
            if *passed { "passed" } else { "failed" }
        ),
        RemediationRestored {
            remediation,
            outcome,
        } => format!(
            "rem #{remediation} restored: {} {}",
            if outcome.success { "ok" } else { "FAILED" },
            outcome.message
        ),
        RemediationFinished {
            remediation,
            status,
            ..
        } => format!("rem #{remediation} finished: {}", status.as_str()),
        RemediationPreviewed {
            remediation,
            preview,
        } => format!("rem #{remediation} would change {}", preview.one_line()),
        SecurityFinding { finding } => format!(
            "[{}] {} on {}",
            finding.severity.as_str(),
            finding.title,
            finding.resource
        ),
        CostSample { service, cents, .. } => format!("{service}: ${:.2}", *cents as f64 / 100.0),
        CostAnomaly {
            service,
            expected_cents,
            actual_cents,
            ..
        } => format!(
            "{service} spend ${:.2} vs expected ${:.2}",
            *actual_cents as f64 / 100.0,
            *expected_cents as f64 / 100.0
        ),
        CostRecommendation {
            title,
            monthly_savings_cents,
            ..
        } => format!(
            "{title} (saves ${:.0}/month)",
            *monthly_savings_cents as f64 / 100.0
        ),
        LearningInsight { topic, insight, .. } => format!("{topic}: {insight}"),
        CostBudgetBurn {
            team,
            budget_cents,
            projected_cents,
            burn_rate,
            alert,
            ..
        } => format!(
            "{team}: budget burn {burn_rate:.2}× (${:.0} projected of ${:.0}){}",
            *projected_cents as f64 / 100.0,
            *budget_cents as f64 / 100.0,
            if *alert {
                " — over the alert level"
            } else {
                ""
            }
        ),
        HypothesisFeedback {
            investigation,
            hypothesis,
            confirmed,
            by,
        } => format!(
            "{by} {} \"{hypothesis}\" (investigation #{investigation})",
            if *confirmed { "confirmed" } else { "refuted" }
        ),
        NotificationSent {
            channel,
            to,
            subject,
            ..
        } => format!("{channel} → {to}: {subject}"),
        NotificationFailed {
            channel,
            to,
            error,
            attempt,
            gave_up,
            ..
        } => {
            let tail = match (*attempt, *gave_up) {
                (0, _) => String::new(),
                (n, true) => format!(" (attempt {n}, gave up)"),
                (n, false) => format!(" (attempt {n}, will retry)"),
            };
            format!("{channel} → {to} failed: {error}{tail}")
        }
        AgentHeartbeat { agent, status, .. } => format!("{agent}: {status}"),
        AgentError { agent, error } => format!("{agent} error: {error}"),
        OperatorCommand {
            by,
            command,
            accepted,
            detail,
        } => format!(
            "{by}: {command} {}{}",
            if *accepted { "accepted" } else { "refused" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ),
        ScenarioFinished { name } => format!("scenario {name} finished"),
        ConnectorStatus {
            connector,
            status,
            message,
        } => format!("connector {connector} {}: {message}", status.as_str()),
        VulnDbStatus { sources, stale, .. } => format!(
            "vulnerability data: {} record(s) from {} source(s){}",
            sources.iter().map(|s| s.records).sum::<u64>(),
            sources.len(),
            if *stale { ", STALE" } else { "" }
        ),
        ControlEvaluated { result } => format!(
            "{} {} {}: {}",
            result.framework,
            result.control,
            result
                .resource
                .as_ref()
                .map(|r| r.as_str())
                .unwrap_or("fleet"),
            result.status.as_str()
        ),
        ResourceInspected {
            resource,
            requested_by,
            evidence,
            error,
        } => match error {
            Some(e) => format!("inspection of {resource} for {requested_by} failed: {e}"),
            None => format!(
                "inspected {resource} for {requested_by}: {}",
                evidence
                    .iter()
                    .map(|e| e.summary.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
        Unknown { kind, .. } => format!("unknown event kind `{kind}` (written by a newer version)"),
    }
}
