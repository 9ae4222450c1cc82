//! `serve --cluster` end to end: a real 3-node NATS JetStream cluster
//! (tests/cluster_support) and two real `shieldops serve` processes on the
//! demo fleet. The leader is killed while an approval is pending, or paused
//! past its lease; the standby takes over, nothing runs twice and the logs
//! never fork.

use std::time::{Duration, Instant};

use shieldops::event::EventKind;
use shieldops::remote::client::LinkError;
use shieldops::runtime::command::Command as RtCommand;
use shieldops::state::Stage;

mod cluster_support;
mod remote_support;
use cluster_support::NatsCluster;
use cluster_support::serve::{LEASE_MS, assert_prefix, count_kind, pair};
use remote_support::{Console, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_with_an_approval_pending_the_standby_resumes_it_and_runs_it_once() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&nats, root.path());
    // A console attached to the standby is refused and told where the
    // leader is; without a token it learns nothing.
    let standby = b.standby_addr();
    let (status, body) = http(standby, "GET", "/ws", None, b"");
    assert_eq!((status, body.as_str()), (401, ""));
    let mut to_standby = a.opts();
    to_standby.url = format!("ws://{standby}/ws");
    to_standby.token = b.token.clone();
    match Console::attach(&to_standby).await {
        Err(LinkError::Fatal(message)) => {
            assert!(message.contains("503"), "{message}");
            assert!(message.contains("standby of site it"), "{message}");
            assert!(
                message.contains(&a.opts().url),
                "names the leader: {message}"
            );
        }
        other => panic!("a standby served a console: {:?}", other.map(|_| ())),
    }
    let mut console = Console::attach(&a.opts()).await.unwrap();
    console
        .until(120, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let pending = console.state.approval_queue()[0].clone();
    console.conn.close().await;

    a.kill();
    b.until_printed("node b leads site it", 60);
    let mut console = Console::attach(&b.opts()).await.unwrap();
    let still = console.state.approval_queue();
    assert!(
        still.iter().any(|r| r.id == pending.id),
        "the approval is still pending on the new leader: {still:?}"
    );
    let needed = pending.required_approvals.max(1);
    assert_eq!(needed, 1, "the demo's first remediation needs one approval");
    let (ok, message) = console
        .command(RtCommand::Approve {
            remediation: pending.id,
            comment: "after failover".into(),
        })
        .await;
    assert!(ok, "{message}");
    let id = pending.id;
    console
        .until(180, "the remediation to finish", |s| {
            matches!(s.remediations[&id].stage, Stage::Finished(_))
        })
        .await;
    // Once, in the one log the whole site shares (the console folds all of it).
    let executions = console.count(
        |k| matches!(k, EventKind::ActionExecuted { remediation, .. } if *remediation == id),
    );
    assert_eq!(executions, 1);

    // The dead leader's copy is a prefix of the new leader's; restarted, it
    // follows as a standby and catches up.
    let before = a.export();
    b.assert_verifies();
    let after = b.export();
    assert_prefix(&before, &after);
    // The request was the old leader's, the approval and the single
    // execution the new one's; nothing was asked or run twice.
    let of = |lines: &[String], kind: &str| count_kind(lines, kind, &id);
    assert_eq!(of(&before, "approval_requested"), 1);
    assert_eq!(of(&before, "approval_granted"), 0);
    assert_eq!(of(&before, "action_executed"), 0);
    assert_eq!(of(&after, "approval_requested"), 1);
    assert_eq!(of(&after, "approval_granted"), 1);
    assert_eq!(of(&after, "action_executed"), 1);
    a.spawn();
    a.until_printed("node a of site it: standby", 60);
    let target = b.export().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.export().len() < target {
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.assert_verifies();
    assert_prefix(&a.export(), &b.export());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_steps_down_on_waking_and_the_log_does_not_fork() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&nats, root.path());
    // Let the leader append a while so the standby has something to follow.
    let mut console = Console::attach(&a.opts()).await.unwrap();
    console.until(60, "events", |s| s.last_seq > 20).await;
    console.conn.close().await;

    a.signal("-STOP");
    let paused = Instant::now();
    b.until_printed("node b leads site it", 60);
    assert!(
        paused.elapsed() >= Duration::from_millis(LEASE_MS / 2),
        "the standby took over before the lease could have lapsed"
    );
    // The new leader appends before the old one wakes.
    let mut console = Console::attach(&b.opts()).await.unwrap();
    let at = console.state.last_seq;
    console
        .until(60, "the new leader's events", |s| s.last_seq > at + 5)
        .await;
    a.signal("-CONT");
    assert_eq!(a.exit_code(60), Some(75), "stderr: {}", a.stderr());
    assert!(a.stderr().contains("stepped down"), "{}", a.stderr());

    b.assert_verifies();
    a.assert_verifies();
    assert_prefix(&a.export(), &b.export());
}
