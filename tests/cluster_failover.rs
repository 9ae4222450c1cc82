//! Failover at the remediation path's crash points, with real servers: a
//! real 3-node NATS JetStream cluster (tests/cluster_support) and two real
//! `shieldops serve --cluster` processes on the demo fleet. The leader is
//! SIGKILLed between the snapshot and the execution of an approved
//! remediation, and during its validation; in a third run the NATS server
//! the leader is connected to is killed with a remediation in flight.
//!
//! After each: the action ran at most once in the site's one log (never
//! again after an uncertain crash point), every event a console saw
//! acknowledged is in the final log, every node's log and the stream hold
//! one history (each a prefix of the longest) and `log verify` is clean on
//! every node.
//!
//! When the kill lands is decided by what the stream has stored, seen by the
//! test's own JetStream consumer ([`Stored`]), not by sleeping:
//!
//! - Between snapshot and execution the leader spends microseconds (the
//!   demo connector's change is in memory), so no observer can stop it
//!   there. The leader of that test runs with `SHIELDOPS_TEST_HOLD_AFTER=
//!   snapshot_taken`, a knob compiled only with debug assertions
//!   (`agents::remediation::hold_for_tests`; a release build has none):
//!   that remediation stops for good once its snapshot is durable, the rest
//!   of the runtime goes on, and the test kills the process when the stream
//!   shows the snapshot.
//! - During validation no knob is needed: the oom-kill playbook polls health
//!   every 15 simulated seconds and needs two healthy polls, so at least
//!   0.6 s pass (at `--speed 25`) between `action_executed` and
//!   `validation_finished`. The test SIGSTOPs the leader as soon as the
//!   stream shows `action_executed`, then SIGKILLs it; that the kill landed
//!   inside validation is checked, not assumed: the new leader's first seq
//!   (it prints where it began to lead) comes after the execution and before
//!   the validation's end.
//!
//! The demo connector is simulated inside each process, so a connector-side
//! effect is not observable across nodes; executions are counted in the
//! log (`action_executed` per remediation), which is what the next leader
//! resumes from.

use std::time::{Duration, Instant};

use serde_json::Value;
use shieldops::event::Event;
use shieldops::remote::client::Incoming;
use shieldops::runtime::command::Command as RtCommand;

mod cluster_support;
mod remote_support;
use cluster_support::NatsCluster;
use cluster_support::serve::{Node, assert_prefix, pair, pair_with_env};
use cluster_support::stream::Stored;
use remote_support::Console;

/// The site of the serve nodes (tests/cluster_support/serve.rs).
const SITE: &str = "it";

/// Whether `e` is a `kind` record about remediation `id`.
fn is(e: &Event, kind: &str, id: u64) -> bool {
    let v = e.to_json();
    v["kind"] == kind && v["remediation"] == id
}

/// The seq of the first `kind` record about `id` in `events`.
fn seq_of(events: &[Event], kind: &str, id: u64) -> Option<u64> {
    events.iter().find(|e| is(e, kind, id)).map(|e| e.seq)
}

fn count(events: &[Event], kind: &str, id: u64) -> usize {
    events.iter().filter(|e| is(e, kind, id)).count()
}

/// Attaches to the leader, waits for the first remediation awaiting
/// approval and approves it (alice, an approver; the agent asked).
async fn approve_first(leader: &Node) -> (Console, u64) {
    let mut console = Console::attach(&leader.opts()).await.unwrap();
    console
        .until(120, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let id = console.state.approval_queue()[0].id;
    let (ok, message) = console
        .command(RtCommand::Approve {
            remediation: id,
            comment: "failover test".into(),
        })
        .await;
    assert!(ok, "{message}");
    (console, id)
}

/// Keeps reading `console` until its connection ends (its node died or
/// stepped down); then hands back every event it was sent.
fn keep_reading(mut console: Console) -> tokio::task::JoinHandle<Console> {
    tokio::spawn(async move {
        while let Ok(incoming) = console.conn.next().await {
            if let Incoming::Event(e) = incoming {
                console.state.apply(&e);
                console.events.push(*e);
            }
        }
        console
    })
}

/// Every event the console was sent (each acknowledged: the leader sends
/// only durable events) is the final log's record at that seq.
fn assert_acknowledged_kept(console: &Console, final_log: &[String]) {
    assert!(
        console.state.last_seq as usize <= final_log.len(),
        "the console saw seq {} but the final log ends at {}",
        console.state.last_seq,
        final_log.len()
    );
    for e in &console.events {
        let kept: Value = serde_json::from_str(&final_log[e.seq as usize - 1]).unwrap();
        assert_eq!(kept, e.to_json(), "acknowledged seq {} was lost", e.seq);
    }
}

/// The stream's records as `log export` prints them.
fn lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(&e.to_json()).unwrap())
        .collect()
}

/// Restarts `down` (its process gone) as a standby of `up`, waits until it
/// caught up, and checks one history across both nodes and the stream, each
/// verified.
async fn one_history(down: &mut Node, up: &Node, stored: &mut Stored) {
    down.assert_verifies();
    let before = down.export();
    assert_prefix(&before, &up.export());
    down.spawn();
    down.until_printed(&format!("node {} of site it: standby", down.name), 60);
    let target = up.last_seq().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while down.last_seq().await < target {
        assert!(
            Instant::now() < deadline,
            "node {} did not catch up to seq {target}",
            down.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    up.assert_verifies();
    down.assert_verifies();
    // The standby's copy first: the leader only grows meanwhile.
    let behind = down.export();
    let ahead = up.export();
    assert_prefix(&behind, &ahead);
    stored.catch_up().await;
    assert_one_history(&lines(&stored.events()), &ahead);
}

/// One of `x` and `y` is a prefix of the other.
fn assert_one_history(x: &[String], y: &[String]) {
    if x.len() <= y.len() {
        assert_prefix(x, y);
    } else {
        assert_prefix(y, x);
    }
}

/// Approves the leader's first remediation, kills the leader (stopped
/// first, so nothing more leaves it) the moment `kind` is stored for it,
/// and waits until the standby leads and the remediation finished there.
/// Returns the remediation, the seq the new leader began at, what the
/// console saw before the kill, and the site's events.
async fn kill_the_leader_once_stored(
    a: &mut Node,
    b: &Node,
    stored: &mut Stored,
    kind: &str,
) -> (u64, u64, Console, Vec<Event>) {
    let (console, id) = approve_first(a).await;
    let seen = keep_reading(console);
    stored
        .until(120, &format!("the approved remediation's {kind}"), |es| {
            seq_of(es, kind, id).is_some()
        })
        .await;
    a.signal("-STOP");
    a.kill();
    let seen = seen.await.unwrap();
    b.until_printed("node b leads site it", 60);
    let from = b.leads_from().unwrap();
    stored
        .until(240, "the remediation's end on the new leader", |es| {
            seq_of(es, "remediation_finished", id).is_some()
        })
        .await;
    (id, from, seen, stored.events())
}

/// The remediation was validated once and finished once, and restored
/// exactly when its validation failed; returns whether it passed.
fn assert_validated_once_and_restored_if_unhealthy(events: &[Event], id: u64) -> bool {
    assert_eq!(count(events, "validation_finished", id), 1);
    let passed = events
        .iter()
        .find(|e| is(e, "validation_finished", id))
        .map(|e| e.to_json()["passed"] == true)
        .unwrap();
    assert_eq!(
        count(events, "remediation_restored", id),
        usize::from(!passed),
        "restored only if unhealthy"
    );
    assert_eq!(count(events, "remediation_finished", id), 1);
    passed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_between_snapshot_and_execution_the_action_is_never_run_and_is_validated()
{
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair_with_env(
        &nats,
        root.path(),
        &[("SHIELDOPS_TEST_HOLD_AFTER", "snapshot_taken")],
    );
    let mut stored = Stored::watch(&nats, SITE).await;
    let (id, from, seen, events) =
        kill_the_leader_once_stored(&mut a, &b, &mut stored, "snapshot_taken").await;
    let snapshot = seq_of(&events, "snapshot_taken", id).unwrap();
    assert!(snapshot <= from, "the snapshot was the old leader's");
    // Whether the old leader ran the action is unknown to the new one, so
    // it never runs it: it validates, and restores if the target is not
    // healthy. (It was held before executing: nobody ran it.)
    assert_eq!(count(&events, "action_executed", id), 0);
    assert_eq!(count(&events, "snapshot_taken", id), 1);
    assert!(seq_of(&events, "validation_finished", id).unwrap() > from);
    let passed = assert_validated_once_and_restored_if_unhealthy(&events, id);
    let restores = count(&events, "remediation_restored", id);
    println!(
        "remediation #{id}: snapshot at seq {snapshot}, new leader from seq {from}, validation passed: {passed}, restores: {restores}"
    );

    let final_log = b.export();
    assert_acknowledged_kept(&seen, &final_log);
    one_history(&mut a, &b, &mut stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_during_validation_the_new_leader_validates_without_running_it_again() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&nats, root.path());
    let mut stored = Stored::watch(&nats, SITE).await;
    let (id, from, seen, events) =
        kill_the_leader_once_stored(&mut a, &b, &mut stored, "action_executed").await;
    let executed = seq_of(&events, "action_executed", id).unwrap();
    let validated = seq_of(&events, "validation_finished", id).unwrap();
    assert!(
        executed <= from && from < validated,
        "the kill was to land during validation: executed at seq {executed}, validated at seq {validated}, new leader from seq {from}"
    );
    // Once: the old leader's. The new one validates what it ran.
    assert_eq!(count(&events, "action_executed", id), 1);
    let passed = assert_validated_once_and_restored_if_unhealthy(&events, id);
    println!(
        "remediation #{id}: executed at seq {executed}, new leader from seq {from}, validated at seq {validated} (passed: {passed})"
    );

    let final_log = b.export();
    assert_acknowledged_kept(&seen, &final_log);
    one_history(&mut a, &b, &mut stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_killed_under_the_leader_with_a_remediation_in_flight_loses_nothing() {
    let Some(mut nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, mut b) = pair(&nats, root.path());
    let mut stored = Stored::watch(&nats, SITE).await;
    let (console, id) = approve_first(&a).await;
    let seen = keep_reading(console);
    stored
        .until(120, "the approved remediation's snapshot", |es| {
            seq_of(es, "snapshot_taken", id).is_some()
        })
        .await;
    // The server the leader's connection is on (by the connection's name);
    // its streams keep quorum on the other two.
    let victim = nats
        .connected_to("shieldops-a")
        .expect("the leader is connected to one of the NATS servers");
    // It hangs, then dies: what the leader sent it meanwhile (the demo
    // appends dozens of events a second) is lost unanswered, so an append
    // is in flight when it goes. The hang is the fault itself, shorter
    // than the lease, not a wait for anything.
    nats.pause(victim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.kill(victim);
    let killed_at = stored.len();

    // Someone finishes it; while waiting, a node that is gone is shown.
    let deadline = Instant::now() + Duration::from_secs(240);
    let finished = |es: &[Event]| seq_of(es, "remediation_finished", id).is_some();
    while !stored.within(Duration::from_secs(2), finished).await {
        assert!(
            Instant::now() < deadline && b.running(),
            "no end of the remediation (stream at seq {}); a running: {}, stderr: {}\nb running: {}, stderr: {}",
            stored.len(),
            a.running(),
            a.stderr(),
            b.running(),
            b.stderr()
        );
    }
    // The leader rode it out, or stepped down cleanly and the standby took
    // over; nothing else.
    let took_over = match a.exited() {
        None => false,
        Some(code) => {
            assert_eq!(code, Some(75), "stderr: {}", a.stderr());
            b.until_printed("node b leads site it", 60);
            true
        }
    };
    let events = stored.events();
    let executions = count(&events, "action_executed", id);
    assert!(executions <= 1, "ran {executions} times");
    if executions == 0 {
        // Only after a takeover between snapshot and execution.
        assert!(took_over, "the action never ran, yet the leader stayed");
        let from = b.leads_from().unwrap();
        assert!(seq_of(&events, "snapshot_taken", id).unwrap() <= from);
    }
    assert_eq!(count(&events, "validation_finished", id), 1);
    assert_eq!(count(&events, "remediation_finished", id), 1);
    // Appends went on after the loss (the leader's or its successor's).
    stored
        .until(60, "appends after the NATS server's loss", |es| {
            es.len() as u64 > killed_at + 5
        })
        .await;
    println!(
        "NATS server n{victim} killed at seq {killed_at}: {}; publishes retried by a: {}",
        if took_over {
            format!(
                "the leader stepped down and the standby took over ({})",
                a.stderr()
                    .lines()
                    .find(|l| l.contains("stepped down"))
                    .unwrap_or("")
            )
        } else {
            "the leader kept leading".into()
        },
        a.log_mentions("; retrying (")
    );

    tokio::task::block_in_place(|| nats.restart(victim));
    if took_over {
        let seen = seen.await.unwrap();
        assert_acknowledged_kept(&seen, &b.export());
        one_history(&mut a, &b, &mut stored).await;
    } else {
        // Still leading: the standby follows; compare once it caught up.
        let target = a.last_seq().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while b.last_seq().await < target {
            assert!(Instant::now() < deadline, "the standby did not catch up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.assert_verifies();
        b.assert_verifies();
        assert_prefix(&b.export(), &a.export());
        // Stopped, the leader's log is complete: every record it was
        // acknowledged, the console's included, and the stream's.
        a.kill();
        let seen = seen.await.unwrap();
        let leader = a.export();
        assert_acknowledged_kept(&seen, &leader);
        a.assert_verifies();
        stored.catch_up().await;
        assert_one_history(&lines(&stored.events()), &leader);
    }
}
