//! Cost and learning through the real runtime and the real binary:
//! a cost recommendation applied through the safety path (policy, a distinct
//! approver, snapshot, execution, validation) on the demo fleet with time
//! driven by hand; and learning over event logs recorded by running the demo
//! with several seeds, checked against an independent computation here.

mod demo_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use shieldops::agents::learning::{Tally, insights};
use shieldops::clock::ManualClock;
use shieldops::connectors::sim::Sim;
use shieldops::event::{ChainHash, Event, EventKind, RemediationOutcome, ResourceId};
use shieldops::runtime::RuntimeOptions;
use shieldops::runtime::command::Command;
use shieldops::state::Stage;

mod runtime_support;

use runtime_support::{Driven, shipped_policy, start_time};

struct Harness {
    driven: Driven,
    sim: Arc<Sim>,
}

impl std::ops::Deref for Harness {
    type Target = Driven;
    fn deref(&self) -> &Driven {
        &self.driven
    }
}

impl Harness {
    async fn new(options: RuntimeOptions) -> Harness {
        let clock = ManualClock::new(start_time());
        let sim = Sim::open(7, None, Arc::new(clock.clone())).unwrap();
        let driven = Driven::start(clock, sim.registry(), shipped_policy(), None, options);
        Harness { driven, sim }
    }

    async fn stop(self) {
        self.driven.stop().await;
    }
}

/// The production instance recommendation with the largest saving, once there is one.
async fn production_resize(h: &Harness) -> (ResourceId, String) {
    let state = h
        .until("a production rightsizing recommendation", |s| {
            s.cost.recommendations.values().any(|r| {
                r.action
                    .as_ref()
                    .is_some_and(|a| a.name == "resize_instance")
                    && s.fleet.get(&r.resource).is_some_and(|v| {
                        v.resource.environment == shieldops::event::Environment::Production
                            && v.resource.team == "data"
                    })
            })
        })
        .await;
    let rec = state
        .cost
        .recommendations
        .values()
        .filter(|r| {
            r.action
                .as_ref()
                .is_some_and(|a| a.name == "resize_instance")
                && state.fleet.get(&r.resource).is_some_and(|v| {
                    v.resource.environment == shieldops::event::Environment::Production
                        && v.resource.team == "data"
                })
        })
        .max_by_key(|r| r.monthly_savings_cents)
        .unwrap();
    let target = rec.action.as_ref().unwrap().params["instance_type"].clone();
    (rec.resource.clone(), target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_recommendation_needs_policy_and_a_distinct_approver_then_really_resizes() {
    // People act for the team `[teams]` maps them to; the recommendation
    // picked below is the data team's.
    let teams = ["alice", "bob", "carol"]
        .into_iter()
        .map(|p| (p.to_string(), "data".to_string()))
        .collect();
    let h = Harness::new(RuntimeOptions {
        teams,
        ..RuntimeOptions::default()
    })
    .await;
    let (resource, target) = production_resize(&h).await;
    let before = h
        .sim
        .with_world(|w| w.observe(&resource, Utc::now()).unwrap().attributes);
    assert_ne!(before["instance_type"], target);

    let reply = h
        .command(
            "alice",
            Command::ApplyRecommendation {
                resource: resource.clone(),
            },
        )
        .await
        .unwrap();
    assert!(reply.starts_with("proposed as remediation #"), "{reply}");
    let state = h
        .until("the proposal to await approval", |s| {
            s.remediations
                .values()
                .any(|r| r.stage == Stage::AwaitingApproval)
        })
        .await;
    let rem = state.approval_queue()[0].clone();
    assert_eq!(rem.action.target, resource);
    assert_eq!(rem.playbook.as_deref(), Some("cost-rightsizing"));
    assert_eq!(rem.requested_by, "alice");
    let decision = rem.decision.as_ref().unwrap();
    assert!(decision.allow && decision.required_approvals >= 1);
    // Nothing has changed yet, and the requester cannot approve her own request.
    assert!(
        h.command(
            "alice",
            Command::Approve {
                remediation: rem.id,
                comment: String::new()
            }
        )
        .await
        .is_err()
    );
    let unchanged = h.sim.with_world(|w| {
        w.observe(&resource, Utc::now()).unwrap().attributes["instance_type"].clone()
    });
    assert_eq!(unchanged, before["instance_type"]);
    // A second request for the same resource while one is in flight is refused.
    assert!(
        h.command(
            "carol",
            Command::ApplyRecommendation {
                resource: resource.clone()
            }
        )
        .await
        .is_err()
    );

    h.command(
        "bob",
        Command::Approve {
            remediation: rem.id,
            comment: "saves money".into(),
        },
    )
    .await
    .unwrap();
    let state = h
        .until("the remediation to finish", |s| {
            matches!(s.remediations[&rem.id].stage, Stage::Finished(_))
        })
        .await;
    assert_eq!(
        state.remediations[&rem.id].stage,
        Stage::Finished(RemediationOutcome::Succeeded),
        "{:?}",
        state.remediations[&rem.id].detail
    );
    let after = h
        .sim
        .with_world(|w| w.observe(&resource, Utc::now()).unwrap().attributes);
    assert_eq!(after["instance_type"], target);
    assert!(state.remediations[&rem.id].snapshot.is_some());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_proposes_nothing_and_unknown_resources_are_refused() {
    let h = Harness::new(RuntimeOptions {
        read_only: true,
        ..RuntimeOptions::default()
    })
    .await;
    let (resource, _) = production_resize(&h).await;
    let refused = h
        .command("alice", Command::ApplyRecommendation { resource })
        .await;
    assert!(refused.unwrap_err().contains("read-only"));
    assert!(h.state().remediations.is_empty());
    h.stop().await;

    let h = Harness::new(RuntimeOptions::default()).await;
    let refused = h
        .command(
            "alice",
            Command::ApplyRecommendation {
                resource: ResourceId::new("aws/nowhere/ec2/i-0"),
            },
        )
        .await;
    assert!(refused.unwrap_err().contains("no cost recommendation"));
    h.stop().await;
}

/// An exported line back as an event (the hashes are not needed here).
fn event_of(line: &Value) -> Event {
    let mut obj = line.as_object().unwrap().clone();
    let seq = obj.remove("seq").unwrap().as_u64().unwrap();
    let at = DateTime::parse_from_rfc3339(obj.remove("at").unwrap().as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let actor = obj.remove("actor").unwrap().as_str().unwrap().to_string();
    obj.remove("prev_hash");
    obj.remove("hash");
    let kind: EventKind = serde_json::from_value(Value::Object(obj)).unwrap();
    Event {
        seq,
        at,
        actor,
        kind,
        prev_hash: ChainHash::GENESIS,
        hash: ChainHash::GENESIS,
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// The figures computed straight from the exported JSON, without the learning code:
/// topic → metric → value (rounded to two places as insights are).
fn independent(lines: &[Value]) -> BTreeMap<String, BTreeMap<&'static str, f64>> {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let mut out: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    // Mean time to resolve per alert.
    let mut opened: BTreeMap<u64, (String, DateTime<Utc>)> = BTreeMap::new();
    let mut minutes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut fingerprints: BTreeMap<String, usize> = BTreeMap::new();
    // Remediations: seq → (learned-under key, executed at, validated at, restored, finished as).
    #[derive(Default)]
    struct Rem {
        key: String,
        executed: Option<DateTime<Utc>>,
        validated: Option<DateTime<Utc>>,
        restored: bool,
        finished: Option<String>,
    }
    let mut rems: BTreeMap<u64, Rem> = BTreeMap::new();
    for l in lines {
        let seq = l["seq"].as_u64().unwrap();
        match l["kind"].as_str().unwrap() {
            "incident_opened" => {
                opened.insert(seq, (l["alert"].as_str().unwrap().to_string(), time(l)));
                *fingerprints
                    .entry(l["fingerprint"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            "incident_resolved" => {
                if let Some((alert, at)) = opened.remove(&l["incident"].as_u64().unwrap()) {
                    let m = (time(l) - at).num_milliseconds() as f64 / 60_000.0;
                    minutes.entry(alert).or_default().push(m);
                }
            }
            "remediation_proposed" => {
                let key = match l["playbook"].as_str() {
                    Some(p) => format!("playbook:{p}"),
                    None => format!("action:{}", l["action"]["name"].as_str().unwrap()),
                };
                rems.insert(
                    seq,
                    Rem {
                        key,
                        ..Rem::default()
                    },
                );
            }
            "action_executed"
            | "validation_finished"
            | "remediation_restored"
            | "remediation_finished" => {
                let r = rems.get_mut(&l["remediation"].as_u64().unwrap()).unwrap();
                match l["kind"].as_str().unwrap() {
                    "action_executed" => r.executed = Some(time(l)),
                    "validation_finished" => r.validated = Some(time(l)),
                    "remediation_restored" => r.restored = true,
                    _ => r.finished = Some(l["status"].as_str().unwrap().to_string()),
                }
            }
            _ => {}
        }
    }
    for (alert, ms) in minutes {
        let m = out.entry(format!("mttr:{alert}")).or_default();
        m.insert(
            "mttr_minutes",
            round(ms.iter().sum::<f64>() / ms.len() as f64),
        );
        m.insert("incidents", ms.len() as f64);
    }
    let mut by_key: BTreeMap<String, Vec<&Rem>> = BTreeMap::new();
    for r in rems.values().filter(|r| r.finished.is_some()) {
        by_key.entry(r.key.clone()).or_default().push(r);
    }
    for (key, rs) in by_key {
        let ran: Vec<&&Rem> = rs.iter().filter(|r| r.executed.is_some()).collect();
        let m = out.entry(key).or_default();
        m.insert("runs", ran.len() as f64);
        if ran.is_empty() {
            continue;
        }
        let ok = ran
            .iter()
            .filter(|r| r.finished.as_deref() == Some("succeeded"))
            .count();
        m.insert("succeeded", ok as f64);
        m.insert("success_rate", round(ok as f64 / ran.len() as f64));
        m.insert("restores", ran.iter().filter(|r| r.restored).count() as f64);
        let secs: Vec<f64> = ran
            .iter()
            .filter_map(|r| Some((r.validated? - r.executed?).num_milliseconds() as f64 / 1000.0))
            .collect();
        if !secs.is_empty() {
            m.insert(
                "validation_secs",
                round(secs.iter().sum::<f64>() / secs.len() as f64),
            );
        }
    }
    for (fp, n) in fingerprints.into_iter().filter(|(_, n)| *n >= 2) {
        out.entry(format!("recurring:{fp}"))
            .or_default()
            .insert("occurrences", n as f64);
    }
    out
}

#[test]
fn learning_over_recorded_demo_logs_matches_an_independent_computation() {
    let mut seen_mttr = 0;
    let mut seen_playbooks = 0;
    for seed in [3u64, 11, 42] {
        let dir = tempfile::tempdir().unwrap();
        let out = demo_support::headless_demo(dir.path(), 20, "bob")
            .args(["--seed", &seed.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "demo seed {seed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = demo_support::export(dir.path());
        let mut tally = Tally::default();
        for l in &lines {
            tally.add(&event_of(l));
        }
        let learned: BTreeMap<String, BTreeMap<String, f64>> = insights(&tally)
            .into_iter()
            .map(|i| (i.topic, i.metrics))
            .collect();
        let expected = independent(&lines);
        assert!(
            !expected.is_empty(),
            "seed {seed}: the demo resolved nothing"
        );
        for (topic, figures) in &expected {
            let got = learned
                .get(topic)
                .unwrap_or_else(|| panic!("seed {seed}: no insight on {topic}: {learned:?}"));
            for (k, v) in figures {
                assert_eq!(got.get(*k), Some(v), "seed {seed}: {topic} {k}");
            }
            seen_mttr += topic.starts_with("mttr:") as usize;
            seen_playbooks += topic.starts_with("playbook:") as usize;
        }
        // Whatever the running agent recorded stays in range.
        for l in lines.iter().filter(|l| l["kind"] == "learning_insight") {
            if let Some(rate) = l["metrics"]["success_rate"].as_f64() {
                assert!((0.0..=1.0).contains(&rate), "{l}");
            }
            if let Some(pct) = l["metrics"]["recommended_pct"].as_f64() {
                assert!((0.0..=100.0).contains(&pct), "{l}");
            }
        }
        // The recorded MTTR insights are the agent's own, from the same log.
        assert!(
            lines.iter().any(|l| l["kind"] == "learning_insight"
                && l["topic"].as_str().unwrap().starts_with("mttr:")),
            "seed {seed}: the learning agent recorded no MTTR insight"
        );
    }
    assert!(seen_mttr >= 3 && seen_playbooks >= 3);
}
