//! What a notification says: one [`Message`] built from an event and the
//! state around it (the incident's title, the resource's environment and team).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::{Environment, Event, EventKind, RemediationOutcome, ResourceId, Severity};
use crate::state::State;

/// Where a notification stands in its incident's life (PagerDuty's event action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Trigger,
    Acknowledge,
    Resolve,
}

/// One notification, channel-neutral.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// seq of the event it is about.
    pub event_seq: u64,
    /// The event's kind, e.g. `incident_opened`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub title: String,
    pub body: String,
    pub severity: Severity,
    pub environment: Option<Environment>,
    pub team: Option<String>,
    pub resource: Option<ResourceId>,
    pub incident: Option<u64>,
    pub lifecycle: Lifecycle,
    /// Same for every notification about one incident or remediation, so a
    /// receiver (PagerDuty) can group trigger, acknowledge and resolve.
    pub dedup_key: String,
    /// For an escalation, the contact escalated to (routed to the channels
    /// `[notify.escalation]` maps it to, whatever the rules say).
    pub escalated_to: Option<String>,
}

impl Message {
    /// The notification for `event`, if its kind is one that is notified.
    /// `state` has already folded `event`.
    pub fn from_event(event: &Event, state: &State) -> Option<Message> {
        // Most events are not notified: leave before formatting anything.
        if !super::NOTIFIABLE_KINDS.contains(&event.kind.name()) {
            return None;
        }
        let placed = |resource: &ResourceId| {
            state
                .fleet
                .get(resource)
                .map(|v| (v.resource.environment, v.resource.team.clone()))
        };
        let incident_key = |id: u64| format!("shieldops-incident-{id}");
        let mut m = Message {
            event_seq: event.seq,
            kind: event.kind.name().to_string(),
            at: event.at,
            title: String::new(),
            body: crate::event::summary(&event.kind),
            severity: Severity::Info,
            environment: None,
            team: None,
            resource: None,
            incident: None,
            lifecycle: Lifecycle::Trigger,
            dedup_key: format!("shieldops-event-{}", event.seq),
            escalated_to: None,
        };
        match &event.kind {
            EventKind::IncidentOpened {
                title,
                severity,
                resource,
                alert,
                ..
            } => {
                m.title = format!("Incident #{}: {title}", event.seq);
                m.body = format!("{alert} on {resource}");
                m.severity = *severity;
                m.resource = Some(resource.clone());
                m.incident = Some(event.seq);
                m.dedup_key = incident_key(event.seq);
            }
            EventKind::IncidentAcknowledged { incident, by } => {
                let inc = state.incidents.get(incident)?;
                m.title = format!("Incident #{incident} acknowledged: {}", inc.title);
                m.body = format!("acknowledged by {by}");
                m.severity = inc.severity;
                m.resource = Some(inc.resource.clone());
                m.incident = Some(*incident);
                m.lifecycle = Lifecycle::Acknowledge;
                m.dedup_key = incident_key(*incident);
            }
            EventKind::IncidentResolved {
                incident,
                resolution,
            } => {
                let inc = state.incidents.get(incident)?;
                m.title = format!("Incident #{incident} resolved: {}", inc.title);
                m.body = resolution.clone();
                m.severity = inc.severity;
                m.resource = Some(inc.resource.clone());
                m.incident = Some(*incident);
                m.lifecycle = Lifecycle::Resolve;
                m.dedup_key = incident_key(*incident);
            }
            EventKind::ApprovalRequested { remediation, .. }
            | EventKind::ApprovalEscalated { remediation, .. } => {
                let rem = state.remediations.get(remediation)?;
                let escalated = matches!(event.kind, EventKind::ApprovalEscalated { .. });
                m.title = format!(
                    "Remediation #{remediation} {}: {} on {}",
                    if escalated {
                        "escalated, waiting for approval"
                    } else {
                        "waiting for approval"
                    },
                    rem.action.name,
                    rem.action.target
                );
                m.body = format!(
                    "requested by {}: {} (needs {} approval(s))",
                    rem.requested_by, rem.reason, rem.required_approvals
                );
                if let EventKind::ApprovalEscalated { to, level, .. } = &event.kind {
                    m.body = format!("escalated to {to} (level {level}); {}", m.body);
                    m.escalated_to = Some(to.clone());
                }
                m.severity = rem
                    .incident
                    .and_then(|i| state.incidents.get(&i))
                    .map_or(Severity::High, |i| i.severity);
                m.environment = Some(rem.environment);
                m.team = Some(rem.team.clone());
                m.resource = Some(rem.action.target.clone());
                m.incident = rem.incident;
                m.dedup_key = format!("shieldops-remediation-{remediation}");
            }
            EventKind::RemediationFinished {
                remediation,
                status,
                detail,
            } => {
                let rem = state.remediations.get(remediation)?;
                m.title = format!(
                    "Remediation #{remediation} {}: {} on {}",
                    status.as_str(),
                    rem.action.name,
                    rem.action.target
                );
                m.body = detail.clone();
                m.severity = match status {
                    RemediationOutcome::Failed => Severity::Critical,
                    RemediationOutcome::RolledBack | RemediationOutcome::Aborted => Severity::High,
                    RemediationOutcome::Expired | RemediationOutcome::Denied => Severity::Medium,
                    RemediationOutcome::Succeeded => Severity::Info,
                };
                // A failed remediation needs a human; any other end closes the approval page.
                if *status != RemediationOutcome::Failed {
                    m.lifecycle = Lifecycle::Resolve;
                }
                m.environment = Some(rem.environment);
                m.team = Some(rem.team.clone());
                m.resource = Some(rem.action.target.clone());
                m.incident = rem.incident;
                m.dedup_key = format!("shieldops-remediation-{remediation}");
            }
            EventKind::SecurityFinding { finding } => {
                if !finding.open {
                    return None;
                }
                m.title = format!("Security finding: {}", finding.title);
                m.body = format!("{} on {}: {}", finding.id, finding.resource, finding.detail);
                m.severity = finding.severity;
                m.resource = Some(finding.resource.clone());
                m.dedup_key = format!("shieldops-finding-{}", finding.id);
            }
            EventKind::CostAnomaly {
                resource, service, ..
            } => {
                m.title = format!("Cost anomaly: {service}");
                m.severity = Severity::Medium;
                m.resource = Some(resource.clone());
            }
            EventKind::AgentError { agent, .. } => {
                m.title = format!("Agent {agent} reported an error");
                m.severity = Severity::High;
            }
            _ => return None,
        }
        if m.environment.is_none()
            && let Some((env, team)) = m.resource.as_ref().and_then(placed)
        {
            m.environment = Some(env);
            m.team = Some(team);
        }
        Some(m)
    }

    /// One line with severity, environment, team and the event's seq.
    pub fn context_line(&self) -> String {
        let mut parts = vec![format!("severity {}", self.severity.as_str())];
        if let Some(env) = self.environment {
            parts.push(format!("env {}", env.as_str()));
        }
        if let Some(team) = &self.team {
            parts.push(format!("team {team}"));
        }
        if let Some(r) = &self.resource {
            parts.push(format!("resource {r}"));
        }
        parts.push(format!("event #{}", self.event_seq));
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Action, ChainHash, ConnectorId, Health, NewEvent, Provider, RemediationOutcome, Resource,
    };

    const POD: &str = "k8s/prod/payments/pod/checkout-1";

    /// Folds `kinds` into a state; returns it and the sealed events.
    fn fold(kinds: Vec<EventKind>) -> (State, Vec<Event>) {
        let mut state = State::new();
        let mut events = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let (e, _) = Event::seal(
                i as u64 + 1,
                ChainHash::GENESIS,
                NewEvent::new(Utc::now(), "test", kind),
            );
            state.apply(&e);
            events.push(e);
        }
        (state, events)
    }

    fn story(finish: RemediationOutcome) -> Vec<EventKind> {
        vec![
            EventKind::ResourceDiscovered {
                resource: Resource {
                    id: ResourceId::new(POD),
                    name: "checkout-1".into(),
                    kind: "pod".into(),
                    provider: Provider::Kubernetes,
                    connector: ConnectorId::new("k8s:prod"),
                    environment: Environment::Production,
                    team: "payments".into(),
                    labels: Default::default(),
                    attributes: Default::default(),
                    health: Health::healthy(),
                    created_at: Utc::now(),
                },
            },
            EventKind::IncidentOpened {
                title: "checkout OOM".into(),
                alert: "KubePodCrashLooping".into(),
                labels: Default::default(),
                severity: Severity::High,
                resource: ResourceId::new(POD),
                fingerprint: "fp".into(),
                alert_seq: 0,
            },
            EventKind::RemediationProposed {
                incident: Some(2),
                investigation: None,
                action: Action::new("restart_pod", ResourceId::new(POD)),
                environment: Environment::Production,
                team: "payments".into(),
                reason: "OOMKilled".into(),
                requested_by: "agent:investigation".into(),
                playbook: None,
            },
            EventKind::ApprovalRequested {
                remediation: 3,
                required: 2,
                expires_at: Utc::now(),
            },
            EventKind::RemediationFinished {
                remediation: 3,
                status: finish,
                detail: "done".into(),
            },
            EventKind::AgentHeartbeat {
                agent: "cost".into(),
                status: "ok".into(),
                next_run: None,
            },
        ]
    }

    #[test]
    fn incidents_and_remediations_carry_placement_lifecycle_and_dedup_key() {
        let (state, events) = fold(story(RemediationOutcome::Failed));
        let opened = Message::from_event(&events[1], &state).unwrap();
        assert_eq!(opened.title, "Incident #2: checkout OOM");
        assert_eq!(opened.environment, Some(Environment::Production));
        assert_eq!(opened.team.as_deref(), Some("payments"));
        assert_eq!(opened.dedup_key, "shieldops-incident-2");
        assert_eq!(opened.lifecycle, Lifecycle::Trigger);

        let asked = Message::from_event(&events[3], &state).unwrap();
        assert_eq!(asked.kind, "approval_requested");
        assert_eq!(asked.severity, Severity::High, "the incident's severity");
        assert_eq!(asked.dedup_key, "shieldops-remediation-3");
        assert!(asked.body.contains("needs 2 approval(s)"), "{}", asked.body);

        let failed = Message::from_event(&events[4], &state).unwrap();
        assert_eq!(failed.severity, Severity::Critical);
        assert_eq!(failed.lifecycle, Lifecycle::Trigger);

        let (state, events) = fold(story(RemediationOutcome::Succeeded));
        let ok = Message::from_event(&events[4], &state).unwrap();
        assert_eq!(ok.lifecycle, Lifecycle::Resolve, "closes the approval page");
        assert_eq!(ok.severity, Severity::Info);

        assert!(Message::from_event(&events[0], &state).is_none());
        assert!(Message::from_event(&events[5], &state).is_none());
    }
}
