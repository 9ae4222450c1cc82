use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::event::{
    Action, ActionOutcome, ChainHash, Event, Hypothesis, RemediationOutcome, ResourceId, Severity,
};

struct Log {
    events: Vec<Event>,
    t0: DateTime<Utc>,
}

impl Log {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            t0: Utc.with_ymd_and_hms(2026, 6, 3, 10, 0, 0).unwrap(),
        }
    }

    /// Appends at `secs` after the start; returns the seq.
    fn push(&mut self, secs: i64, kind: EventKind) -> u64 {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            at: self.t0 + Duration::seconds(secs),
            actor: "test".into(),
            kind,
            prev_hash: ChainHash::GENESIS,
            hash: ChainHash::GENESIS,
        });
        seq
    }

    fn incident(&mut self, alert: &str, fp: &str, opened: i64, resolved: i64) -> u64 {
        let id = self.push(
            opened,
            EventKind::IncidentOpened {
                title: alert.into(),
                alert: alert.into(),
                labels: Default::default(),
                severity: Severity::High,
                resource: ResourceId::new(fp),
                fingerprint: fp.into(),
                alert_seq: 0,
            },
        );
        self.push(
            resolved,
            EventKind::IncidentResolved {
                incident: id,
                resolution: "fixed".into(),
            },
        );
        id
    }

    fn remediation(
        &mut self,
        playbook: &str,
        at: i64,
        validated_after: Option<(i64, bool)>,
        outcome: RemediationOutcome,
    ) {
        let id = self.push(
            at,
            EventKind::RemediationProposed {
                incident: None,
                investigation: None,
                action: Action::new("set_resources", ResourceId::new("r")),
                environment: crate::event::Environment::Staging,
                team: "t".into(),
                reason: "r".into(),
                requested_by: "agent:remediation".into(),
                playbook: Some(playbook.into()),
            },
        );
        let outcome_of = |success| ActionOutcome {
            success,
            message: String::new(),
            steps: vec![],
        };
        if let Some((after, passed)) = validated_after {
            self.push(
                at + 1,
                EventKind::ActionExecuted {
                    remediation: id,
                    outcome: outcome_of(true),
                },
            );
            self.push(
                at + 1 + after,
                EventKind::ValidationFinished {
                    remediation: id,
                    passed,
                    detail: String::new(),
                },
            );
            if !passed {
                self.push(
                    at + 2 + after,
                    EventKind::RemediationRestored {
                        remediation: id,
                        outcome: outcome_of(true),
                    },
                );
            }
        }
        self.push(
            at + 3 + validated_after.map_or(0, |v| v.0),
            EventKind::RemediationFinished {
                remediation: id,
                status: outcome,
                detail: String::new(),
            },
        );
    }

    fn ranked(&mut self, at: i64, investigation: u64, ranked: &[(&str, f64)]) {
        self.push(
            at,
            EventKind::HypothesesRanked {
                investigation,
                hypotheses: ranked
                    .iter()
                    .map(|(t, c)| Hypothesis {
                        title: t.to_string(),
                        confidence: *c,
                        cites: vec![],
                        reasoning: String::new(),
                        recommended_action: None,
                    })
                    .collect(),
            },
        );
    }

    fn verdict(&mut self, at: i64, investigation: u64, title: &str, confirmed: bool) {
        self.push(
            at,
            EventKind::HypothesisFeedback {
                investigation,
                hypothesis: title.into(),
                confirmed,
                by: "alice".into(),
            },
        );
    }

    fn insights(&self) -> BTreeMap<String, Insight> {
        let mut t = Tally::default();
        for e in &self.events {
            t.add(e);
        }
        insights(&t)
            .into_iter()
            .map(|i| (i.topic.clone(), i))
            .collect()
    }
}

#[test]
fn mttr_and_its_trend_per_incident_type() {
    let mut log = Log::new();
    // Four OOM incidents resolved in 10, 8, 4 and 2 minutes; one disk incident in 3.
    for (i, mins) in [10, 8, 4, 2].iter().enumerate() {
        let start = i as i64 * 3600;
        log.incident(
            "KubeContainerOOMKilled",
            &format!("oom-{i}"),
            start,
            start + mins * 60,
        );
    }
    log.incident("NodeDiskPressure", "disk", 100, 280);
    let found = log.insights();
    let oom = &found["mttr:KubeContainerOOMKilled"];
    assert_eq!(oom.metrics["mttr_minutes"], 6.0);
    assert_eq!(oom.metrics["incidents"], 4.0);
    // Later half (4, 2) → 3; earlier half (10, 8) → 9; trend −6.
    assert_eq!(oom.metrics["trend_minutes"], -6.0);
    assert!(
        oom.insight.contains("improving by 6.0 min"),
        "{}",
        oom.insight
    );
    let disk = &found["mttr:NodeDiskPressure"];
    assert_eq!(disk.metrics["mttr_minutes"], 3.0);
    assert!(!disk.metrics.contains_key("trend_minutes"));
}

#[test]
fn playbook_success_restores_and_time_to_validation() {
    let mut log = Log::new();
    log.remediation(
        "oom-kill",
        0,
        Some((20, true)),
        RemediationOutcome::Succeeded,
    );
    log.remediation(
        "oom-kill",
        100,
        Some((40, true)),
        RemediationOutcome::Succeeded,
    );
    log.remediation(
        "oom-kill",
        200,
        Some((60, false)),
        RemediationOutcome::RolledBack,
    );
    log.remediation("oom-kill", 300, None, RemediationOutcome::Denied);
    let p = &log.insights()["playbook:oom-kill"];
    assert_eq!(p.metrics["runs"], 3.0);
    assert_eq!(p.metrics["succeeded"], 2.0);
    assert_eq!(p.metrics["success_rate"], 0.67);
    assert_eq!(p.metrics["restores"], 1.0);
    assert_eq!(p.metrics["not_run"], 1.0);
    assert_eq!(p.metrics["validation_secs"], 40.0);
    assert_eq!(
        p.insight,
        "playbook oom-kill: 2 of 3 succeeded (67%), 1 restored, validated in 40 s on average"
    );
}

#[test]
fn hypothesis_accuracy_from_verdicts_and_a_threshold_never_above_100() {
    let mut log = Log::new();
    // Investigations 1..=6: the top hypothesis is right when its confidence is ≥ 0.8.
    let cases = [
        (1, 0.95, true),
        (2, 0.9, true),
        (3, 0.85, true),
        (4, 0.8, true),
        (5, 0.6, false),
        (6, 0.5, false),
    ];
    for (inv, conf, right) in cases {
        log.ranked(inv as i64, inv, &[("cause A", conf), ("cause B", 0.2)]);
        log.verdict(100 + inv as i64, inv, "cause A", right);
    }
    // A verdict changed later counts once, as the later verdict.
    log.verdict(200, 6, "cause B", true);
    log.verdict(201, 6, "cause B", false);
    // A verdict on a hypothesis that was never ranked is ignored.
    log.verdict(202, 99, "ghost", true);
    let found = log.insights();
    let h = &found["hypotheses:accuracy"];
    assert_eq!(h.metrics["verdicts"], 7.0);
    assert_eq!(h.metrics["confirmed"], 4.0);
    assert_eq!(h.metrics["top_verdicts"], 6.0);
    assert_eq!(h.metrics["top_accuracy"], 0.67);
    let t = &found["threshold:auto_propose_confidence"];
    // Sorted confidences 0.2(✗) 0.5(✗) 0.6(✗) 0.8 0.85 0.9 0.95 (all ✓): from 0.8 precision is 4/4.
    assert_eq!(t.metrics["recommended_pct"], 80.0);
    assert_eq!(t.metrics["judged"], 4.0);
    assert!(t.metrics["recommended_pct"] <= 100.0);
    assert!(
        t.insight.contains("4 were confirmed (100%)"),
        "{}",
        t.insight
    );
}

#[test]
fn too_few_verdicts_recommend_no_threshold() {
    let mut log = Log::new();
    log.ranked(1, 1, &[("cause A", 0.9)]);
    log.verdict(2, 1, "cause A", true);
    let found = log.insights();
    assert!(found.contains_key("hypotheses:accuracy"));
    assert!(!found.contains_key("threshold:auto_propose_confidence"));
}

#[test]
fn validation_timeout_stays_in_range_and_states_its_evidence() {
    let mut log = Log::new();
    for (i, secs) in [10, 12, 9, 14, 11].iter().enumerate() {
        log.remediation(
            "pb",
            i as i64 * 1000,
            Some((*secs, true)),
            RemediationOutcome::Succeeded,
        );
    }
    let t = &log.insights()["threshold:validation_timeout_secs"];
    // p95 of five is the largest, 14 s; × 1.5 = 21 → 30 s (the floor).
    assert_eq!(t.metrics["p95_secs"], 14.0);
    assert_eq!(t.metrics["recommended_secs"], 30.0);
    assert!(t.insight.contains("of 5 passed validations"));
}

#[test]
fn recurring_incidents_are_counted_by_fingerprint() {
    let mut log = Log::new();
    log.incident("ServiceDown", "svc/web", 0, 60);
    log.incident("ServiceDown", "svc/web", 600, 660);
    log.incident("ServiceDown", "svc/db", 900, 960);
    let found = log.insights();
    assert_eq!(found["recurring:svc/web"].metrics["occurrences"], 2.0);
    assert!(!found.contains_key("recurring:svc/db"));
}

#[test]
fn a_cycle_repeats_nothing_already_said() {
    let mut log = Log::new();
    log.incident("ServiceDown", "svc/web", 0, 60);
    let mut agent = LearningAgent {
        tally: Tally::default(),
        said: BTreeMap::new(),
    };
    for e in &log.events {
        agent.tally.add(e);
    }
    let first = agent.changed(insights(&agent.tally));
    assert_eq!(first.len(), 1);
    assert!(agent.changed(insights(&agent.tally)).is_empty());
}

#[tokio::test]
async fn the_state_the_log_and_the_events_give_the_same_tally() {
    let mut log = Log::new();
    let inc = log.incident("KubePodCrashLooping", "pod/a", 0, 300);
    let inv = log.push(
        5,
        EventKind::InvestigationStarted {
            incident: inc,
            resource: ResourceId::new("pod/a"),
            alert: "KubePodCrashLooping".into(),
            severity: Severity::High,
        },
    );
    log.ranked(10, inv, &[("limit too low", 0.8), ("leak", 0.3)]);
    log.verdict(20, inv, "leak", false);
    log.verdict(21, inv, "limit too low", true);
    log.remediation(
        "oom-kill",
        30,
        Some((25, true)),
        RemediationOutcome::Succeeded,
    );
    log.remediation(
        "oom-kill",
        90,
        Some((40, false)),
        RemediationOutcome::RolledBack,
    );
    log.incident("KubePodCrashLooping", "pod/a", 600, 660);

    let mut from_events = Tally::default();
    let mut state = State::new();
    for e in &log.events {
        from_events.add(e);
        state.apply(e);
    }
    assert_eq!(Tally::from_state(&state), from_events);

    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::EventLog::open(&dir.path().join("log")).unwrap();
    store
        .append_many(
            log.events
                .iter()
                .map(|e| crate::event::NewEvent::new(e.at, "test", e.kind.clone()))
                .collect(),
        )
        .await
        .unwrap();
    let mut from_log = Tally::default();
    from_log.fold_log(&store, 1).unwrap();
    assert_eq!(from_log, from_events);
    // Folding again from where it stopped adds nothing.
    let before = from_log.clone();
    from_log.fold_log(&store, from_log.last_seq + 1).unwrap();
    assert_eq!(from_log, before);
    store.close().await.unwrap();
}
