//! A learning cycle over 1,000,000 events. Goal: ≤ 2 s.
//!
//! - `in memory`: folding 1,000,000 events already decoded, then the insights.
//! - `from the folded state`: the agent's first cycle after start-up, which
//!   takes its tally from the state the runtime already folded.
//! - `from the event log`: a cycle that reads all 1,000,000 events from the
//!   log on disk (decoding only the kinds learning needs), folds them and
//!   computes the insights — what a cycle would cost with no state to start from.
//!
//! The event mix is pessimistic: half the events are ones learning reads
//! (an incident's whole life every 20 events); a live log is mostly
//! discovery, cost samples and heartbeats.
//!
//! Run: `cargo bench --bench learning`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use shieldops::agents::learning::{Tally, insights};
use shieldops::event::{
    Action, ActionOutcome, ChainHash, Environment, Event, EventKind, Hypothesis, NewEvent,
    RemediationOutcome, ResourceId, Severity,
};
use shieldops::state::State;
use shieldops::store::EventLog;

const EVENTS: u64 = 1_000_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 3, 10, 0, 0).unwrap()
}

/// One event of a realistic mix: every 20 events an incident's whole life
/// (investigation, ranking, an operator verdict, a remediation run and
/// validated), the rest cost samples and heartbeats as in a live log.
fn synthetic(seq: u64) -> (DateTime<Utc>, EventKind) {
    let at = t0() + chrono::Duration::seconds(seq as i64);
    let block = seq - seq % 20;
    let alert = [
        "KubePodCrashLooping",
        "NodeDiskPressure",
        "HighLatency",
        "ServiceDown",
    ][(block / 20 % 4) as usize];
    let kind = match seq % 20 {
        1 => EventKind::IncidentOpened {
            title: alert.into(),
            alert: alert.into(),
            labels: Default::default(),
            severity: Severity::High,
            resource: ResourceId::new(format!("res-{}", block % 997)),
            fingerprint: format!("{alert}@res-{}", block % 997),
            alert_seq: 0,
        },
        2 => EventKind::InvestigationStarted {
            incident: block + 1,
            resource: ResourceId::new("r"),
            alert: alert.into(),
            severity: Severity::High,
        },
        3 => EventKind::HypothesesRanked {
            investigation: block + 2,
            hypotheses: (0..3)
                .map(|i| Hypothesis {
                    title: format!("cause {i}"),
                    confidence: 0.9 - i as f64 * 0.3 - (block % 7) as f64 * 0.02,
                    cites: vec!["e1".into()],
                    reasoning: String::new(),
                    recommended_action: None,
                })
                .collect(),
        },
        4 => EventKind::HypothesisFeedback {
            investigation: block + 2,
            hypothesis: "cause 0".into(),
            confirmed: !block.is_multiple_of(5),
            by: "alice".into(),
        },
        5 => EventKind::RemediationProposed {
            incident: Some(block + 1),
            investigation: Some(block + 2),
            action: Action::new("restart_pod", ResourceId::new("r")),
            environment: Environment::Staging,
            team: "t".into(),
            reason: String::new(),
            requested_by: "agent:remediation".into(),
            playbook: Some(format!("playbook-{}", block / 20 % 6)),
        },
        6 => EventKind::ActionExecuted {
            remediation: block + 5,
            outcome: ActionOutcome {
                success: true,
                message: String::new(),
                steps: vec![],
            },
        },
        7 => EventKind::ValidationFinished {
            remediation: block + 5,
            passed: !block.is_multiple_of(9),
            detail: String::new(),
        },
        8 => EventKind::RemediationFinished {
            remediation: block + 5,
            status: if !block.is_multiple_of(9) {
                RemediationOutcome::Succeeded
            } else {
                RemediationOutcome::RolledBack
            },
            detail: String::new(),
        },
        9 => EventKind::IncidentResolved {
            incident: block + 1,
            resolution: "fixed".into(),
        },
        n if n % 2 == 0 => EventKind::CostSample {
            resource: ResourceId::new(format!("res-{}", seq % 997)),
            service: "svc".into(),
            team: "t".into(),
            environment: Environment::Production,
            cents: seq % 1000,
            window_hours: 24,
        },
        _ => EventKind::AgentHeartbeat {
            agent: "cost".into(),
            status: "ok".into(),
            next_run: None,
        },
    };
    (at, kind)
}

fn events_in_memory() -> Vec<Event> {
    (1..=EVENTS)
        .map(|seq| {
            let (at, kind) = synthetic(seq);
            Event {
                seq,
                at,
                actor: "bench".into(),
                kind,
                prev_hash: ChainHash::GENESIS,
                hash: ChainHash::GENESIS,
            }
        })
        .collect()
}

fn cycle_in_memory(events: &[Event]) -> usize {
    let mut tally = Tally::default();
    for e in events {
        tally.add(e);
    }
    insights(&tally).len()
}

/// What the agent's first cycle does: fold the whole log, then the insights.
fn cycle_from_log(log: &EventLog) -> usize {
    let mut tally = Tally::default();
    tally.fold_log(log, 1).unwrap();
    insights(&tally).len()
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));

    let events = events_in_memory();
    c.bench_function(
        "learning tally and insights, 1,000,000 events in memory",
        |b| b.iter(|| black_box(cycle_in_memory(&events))),
    );
    // What the agent does at start-up: the runtime has folded the log into a
    // state already; the tally is taken from it, then the insights computed.
    let mut state = State::new();
    for e in &events {
        state.apply(e);
    }
    drop(events);
    c.bench_function(
        "learning cycle at start-up from the folded state, 1,000,000 events",
        |b| b.iter(|| black_box(insights(&Tally::from_state(&state)).len())),
    );
    drop(state);

    // The agent's first cycle reads the whole log from disk.
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let log = EventLog::open(&dir.path().join("log")).unwrap();
    let started = Instant::now();
    rt.block_on(async {
        let mut seq = 1;
        while seq <= EVENTS {
            let batch: Vec<NewEvent> = (seq..(seq + 10_000).min(EVENTS + 1))
                .map(|s| {
                    let (at, kind) = synthetic(s);
                    NewEvent::new(at, "bench", kind)
                })
                .collect();
            seq += batch.len() as u64;
            log.append_many(batch).await.unwrap();
        }
    });
    eprintln!(
        "wrote {} events in {:.1} s",
        log.last_seq(),
        started.elapsed().as_secs_f64()
    );
    c.bench_function("learning cycle from the event log, 1,000,000 events", |b| {
        b.iter(|| black_box(cycle_from_log(&log)))
    });
    c.final_summary();
    rt.block_on(log.close()).unwrap();
}
