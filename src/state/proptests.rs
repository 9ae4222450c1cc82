//! The fold is the same however it is cut: all at once, in chunks, or from a snapshot.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::State;
use crate::event::*;

fn base_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn resource(i: u8) -> Resource {
    Resource {
        id: ResourceId::new(format!("sim/r{i}")),
        name: format!("r{i}"),
        kind: "pod".into(),
        provider: Provider::Kubernetes,
        connector: ConnectorId::new("sim:test"),
        environment: Environment::Production,
        team: "payments".into(),
        labels: Default::default(),
        attributes: Default::default(),
        health: Health::healthy(),
        created_at: base_time(),
    }
}

/// A kind that refers to small id ranges, so references often hit something real.
fn kind_strategy() -> impl Strategy<Value = EventKind> {
    let rid = (0u8..6).prop_map(|i| ResourceId::new(format!("sim/r{i}")));
    let id = 1u64..40;
    prop_oneof![
        (0u8..6).prop_map(|i| EventKind::ResourceDiscovered {
            resource: resource(i)
        }),
        (rid.clone(), 0u8..3).prop_map(|(resource, s)| EventKind::HealthChanged {
            resource,
            health: Health::new(
                [
                    HealthStatus::Healthy,
                    HealthStatus::Degraded,
                    HealthStatus::Unhealthy
                ][s as usize],
                "OOMKilled",
                "exit 137"
            ),
        }),
        (rid.clone(), "[a-z]{1,4}").prop_map(|(resource, v)| EventKind::ResourceChanged {
            resource,
            changes: [("image".to_string(), v)].into(),
        }),
        (rid.clone(), 0u64..40).prop_map(|(resource, alert_seq)| EventKind::IncidentOpened {
            labels: Default::default(),
            title: "t".into(),
            alert: "A".into(),
            severity: Severity::High,
            resource,
            fingerprint: format!("fp{}", alert_seq % 4),
            alert_seq,
        }),
        id.clone().prop_map(|incident| EventKind::IncidentResolved {
            incident,
            resolution: "fixed".into()
        }),
        (id.clone(), rid.clone()).prop_map(|(incident, resource)| {
            EventKind::InvestigationStarted {
                incident,
                resource,
                alert: "A".into(),
                severity: Severity::Critical,
            }
        }),
        (id.clone(), 0.0f64..1.0).prop_map(|(investigation, confidence)| {
            EventKind::HypothesesRanked {
                investigation,
                hypotheses: vec![Hypothesis {
                    title: "h".into(),
                    confidence,
                    cites: vec!["e1".into()],
                    reasoning: "r".into(),
                    recommended_action: None,
                }],
            }
        }),
        (rid.clone(), "[a-c]").prop_map(|(target, by)| EventKind::RemediationProposed {
            playbook: None,
            incident: None,
            investigation: None,
            action: Action::new("restart_pod", target),
            environment: Environment::Production,
            team: "payments".into(),
            reason: "r".into(),
            requested_by: by,
        }),
        (id.clone(), 0u32..3, any::<bool>()).prop_map(|(remediation, n, allow)| {
            EventKind::PolicyDecided {
                remediation,
                decision: PolicyDecision {
                    allow,
                    deny: vec![],
                    required_approvals: n,
                    risk: Risk::High,
                    controls: vec![],
                    bundle_hash: String::new(),
                    input_digest: String::new(),
                },
            }
        }),
        (id.clone(), 0u32..3).prop_map(|(remediation, required)| EventKind::ApprovalRequested {
            remediation,
            required,
            expires_at: base_time(),
        }),
        (id.clone(), "[a-d]").prop_map(|(remediation, by)| EventKind::ApprovalGranted {
            remediation,
            by,
            comment: "ok".into(),
            source: None,
            auth: None,
            declared_name: None,
        }),
        id.clone()
            .prop_map(|remediation| EventKind::RemediationFinished {
                remediation,
                status: RemediationOutcome::Succeeded,
                detail: String::new(),
            }),
        (rid.clone(), 0u64..10_000).prop_map(|(resource, cents)| EventKind::CostSample {
            resource,
            service: "svc".into(),
            team: "t".into(),
            environment: Environment::Staging,
            cents,
            window_hours: 1,
        }),
        "[a-z]{3}".prop_map(|agent| EventKind::AgentHeartbeat {
            agent,
            status: "ok".into(),
            next_run: None,
        }),
        Just(EventKind::Unknown {
            kind: "from_the_future".into(),
            fields: Default::default()
        }),
    ]
}

fn events_strategy() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(kind_strategy(), 0..120).prop_map(|kinds| {
        let mut prev = ChainHash::GENESIS;
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let draft = NewEvent::new(base_time() + Duration::seconds(i as i64), "test", kind);
                let (event, _) = Event::seal(i as u64 + 1, prev, draft);
                prev = event.hash;
                event
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn fold_is_independent_of_how_it_is_cut(events in events_strategy(), cuts in prop::collection::vec(1usize..20, 1..10), snap_at in 0usize..120) {
        let mut whole = State::new();
        for e in &events { whole.apply(e); }

        let mut chunked = State::new();
        let mut rest = &events[..];
        let mut cut_iter = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut_iter.next().unwrap()).min(rest.len());
            for e in &rest[..n] { chunked.apply(e); }
            rest = &rest[n..];
        }
        prop_assert_eq!(&whole, &chunked);

        let split = snap_at.min(events.len());
        let mut head = State::new();
        for e in &events[..split] { head.apply(e); }
        // The runtime's and the screen's folds start as clones sharing their
        // resource views: folding into one must never show in the other.
        let mut screen = head.clone();
        let mut runtime = head.clone();
        for e in &events[split..] { runtime.apply(e); }
        prop_assert_eq!(&whole, &runtime);
        prop_assert_eq!(&head, &screen);
        for e in &events[split..] { screen.apply(e); }
        prop_assert_eq!(&whole, &screen);

        let bytes = serde_json::to_vec(&head).unwrap();
        let mut restored: State = serde_json::from_slice(&bytes).unwrap();
        for e in &events[split..] { restored.apply(e); }
        prop_assert_eq!(&whole, &restored);
    }
}
