//! `serve --cluster` end to end: a real 3-node NATS JetStream cluster
//! (tests/cluster_support) and two real `shieldops serve` processes on the
//! demo fleet. The leader is killed while an approval is pending, or paused
//! past its lease; the standby takes over, nothing runs twice and the logs
//! never fork. Consoles attached to a standby see the leader's history and
//! carry on when their node takes over.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shieldops::cluster::{ClusterView, NodeRole};
use shieldops::event::EventKind;
use shieldops::remote::client::Incoming;
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
    // The standby's listener wants a token like the leader's; with one it
    // serves a console (its commands refused: see
    // a_console_on_a_standby_sees_the_leaders_history_and_carries_on_when_it_takes_over).
    let standby = b.standby_addr();
    let (status, body) = http(standby, "GET", "/ws", None, b"");
    assert_eq!((status, body.as_str()), (401, ""));
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

/// Reads (folding events) until the console's cluster view satisfies `done`.
async fn until_view(
    console: &mut Console,
    secs: u64,
    what: &str,
    done: impl Fn(&ClusterView) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !console.conn.cluster().is_some_and(&done) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            console.conn.cluster()
        );
        // Cluster views arrive between events: look at each one.
        match tokio::time::timeout(Duration::from_millis(250), console.conn.next()).await {
            Err(_) => {}
            Ok(Ok(Incoming::Event(e))) => {
                console.state.apply(&e);
                console.events.push(*e);
            }
            Ok(Ok(Incoming::Reply { .. })) => {}
            Ok(Err(e)) => panic!("the connection failed waiting for {what}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_on_a_standby_sees_the_leaders_history_and_carries_on_when_it_takes_over() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&nats, root.path());
    let leader_url = a.opts().url;
    let mut on_b = a.opts();
    on_b.url = format!("ws://{}/ws", b.standby_addr());
    on_b.token = b.token.clone();

    // Both consoles are told what their node is and who leads.
    let mut on_leader = Console::attach(&a.opts()).await.unwrap();
    let mut on_standby = Console::attach(&on_b).await.unwrap();
    let told = on_standby
        .conn
        .welcome
        .cluster
        .clone()
        .expect("a cluster node says so");
    assert_eq!(
        (told.node.as_str(), told.role, told.site.as_str()),
        ("b", NodeRole::Standby, "it")
    );
    assert!(!on_standby.conn.welcome.read_only);
    let told = on_leader
        .conn
        .welcome
        .cluster
        .clone()
        .expect("a cluster node says so");
    assert_eq!(told.node, "a");
    // The lease is read about once a second: the views follow shortly.
    until_view(&mut on_leader, 30, "a told it leads", |v| {
        v.role == NodeRole::Leader && v.leader() == Some(("a", Some(leader_url.as_str())))
    })
    .await;
    until_view(&mut on_standby, 30, "b told a leads", |v| {
        v.role == NodeRole::Standby && v.leader() == Some(("a", Some(leader_url.as_str())))
    })
    .await;

    // The standby's console sees the same history: at the same seq, the
    // same state, whichever snapshot each started from.
    on_leader
        .until(120, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let pending = on_leader.state.approval_queue()[0].id;
    let seq = on_leader.state.last_seq.max(on_standby.state.last_seq);
    on_leader.advance_to(seq).await;
    on_standby.advance_to(seq).await;
    assert_eq!(
        serde_json::to_value(&on_leader.state).unwrap(),
        serde_json::to_value(&on_standby.state).unwrap(),
        "the standby's console differs from the leader's at seq {seq}"
    );

    // Its commands are refused, naming the leader's console; nothing is recorded.
    let (ok, message) = on_standby
        .command(RtCommand::Approve {
            remediation: pending,
            comment: "from the standby".into(),
        })
        .await;
    assert!(!ok, "a standby took a command: {message}");
    assert!(
        message.contains("node b is a standby of site it"),
        "{message}"
    );
    assert!(message.contains(&leader_url), "names the leader: {message}");
    // So are alerts (Alertmanager retries); its metrics are served.
    let standby = b.standby_addr();
    let (status, body) = http(
        standby,
        "POST",
        "/api/v1/alerts/alertmanager",
        Some(&b.token),
        br#"{"alerts":[]}"#,
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&leader_url), "{body}");
    let (status, body) = http(standby, "GET", "/metrics", Some(&b.token), b"");
    assert_eq!(status, 200, "{body}");

    // `:cluster`'s data: both nodes by their heartbeats (a's first one,
    // written while it was still a standby, may be the one read first), the
    // lease held by a.
    until_view(
        &mut on_standby,
        30,
        "both nodes' heartbeats, a's as leader",
        |v| {
            let named: Vec<(&str, NodeRole)> =
                v.nodes.iter().map(|n| (n.name.as_str(), n.role)).collect();
            named == [("a", NodeRole::Leader), ("b", NodeRole::Standby)]
        },
    )
    .await;
    let view = on_standby.conn.cluster().unwrap().clone();
    let lease = view.lease.clone().expect("a holds the lease");
    assert_eq!(lease.holder, "a");
    assert!(lease.revision > 0);
    assert!(lease.expires > view.at - chrono::Duration::milliseconds(LEASE_MS as i64));
    assert_eq!(view.nodes[0].role, NodeRole::Leader);
    assert_eq!(view.nodes[1].role, NodeRole::Standby);
    assert!(view.nodes.iter().all(|n| n.last_seq <= view.stream_seq));
    on_leader.conn.close().await;

    // The leader dies; the console on b stays on its connection while b
    // takes over, and is told so.
    a.kill();
    b.until_printed("node b leads site it", 60);
    until_view(&mut on_standby, 60, "b leading", |v| {
        v.role == NodeRole::Leader && v.leader().is_some_and(|(n, _)| n == "b")
    })
    .await;
    let (ok, message) = on_standby
        .command(RtCommand::Approve {
            remediation: pending,
            comment: "after takeover".into(),
        })
        .await;
    assert!(ok, "{message}");
    on_standby
        .until(180, "the remediation to finish", |s| {
            matches!(s.remediations[&pending].stage, Stage::Finished(_))
        })
        .await;
    // What it folded is one run of consecutive records (each also checked
    // against the chain as it arrived): no gap, no duplicate.
    let seqs: Vec<u64> = on_standby.events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "the console saw a gap or a duplicate: {seqs:?}"
    );
    let approvals: Vec<&str> = on_standby
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ApprovalGranted {
                remediation, by, ..
            } if *remediation == pending => Some(by.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        approvals,
        ["alice"],
        "approved once, by the token's principal"
    );
    let executions = on_standby.count(
        |k| matches!(k, EventKind::ActionExecuted { remediation, .. } if *remediation == pending),
    );
    assert_eq!(executions, 1);
    b.assert_verifies();
}

/// The screen of `shieldops attach URL` in a 120×40 pseudo-terminal, as a
/// terminal emulator shows it.
struct Terminal {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Terminal {
    fn attach(url: &str, token: &str, home: &Path) -> Terminal {
        use portable_pty::{CommandBuilder, PtySize, native_pty_system};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        std::fs::create_dir_all(home).unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_shieldops"));
        cmd.arg("--log-dir");
        cmd.arg(home.join("logs"));
        cmd.args(["attach", url]);
        cmd.env("SHIELDOPS_TOKEN", token);
        cmd.env("TERM", "xterm-256color");
        cmd.env("HOME", home);
        cmd.env("XDG_CONFIG_HOME", home.join("config"));
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let parser = Arc::new(Mutex::new(vt100::Parser::new(40, 120, 0)));
        let p = parser.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match std::io::Read::read(&mut reader, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => p.lock().unwrap().process(&buf[..n]),
                }
            }
        });
        Terminal {
            parser,
            writer,
            child,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits until the screen satisfies `done` (at most `secs` seconds).
    fn until(&self, secs: u64, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.parser.lock().unwrap().screen().contents();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_console_on_a_standby_shows_its_role_the_leader_and_cluster_then_leading() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (mut a, b) = pair(&nats, root.path());
    let url = format!("ws://{}/ws", b.standby_addr());
    let mut term = Terminal::attach(&url, &b.token, &root.path().join("client"));
    let header = |s: &str| s.lines().next().unwrap_or_default().to_string();
    term.until(60, "the standby's role and leader in the header", |s| {
        let h = header(s);
        h.contains("● live") && h.contains("◆ standby") && h.contains("leader a")
    });
    term.send(b":cluster\r");
    let shown = term.until(30, "the :cluster view with both nodes", |s| {
        s.contains("Cluster: site it · this node b (standby)")
            && s.contains("held by a")
            && s.contains("b (this)")
            && s.lines().any(|l| l.contains(" a ") && l.contains("leader"))
    });
    assert!(shown.contains(&a.opts().url), "{shown}");
    term.send(b"\x1b");
    a.kill();
    b.until_printed("node b leads site it", 60);
    term.until(60, "b leading in the header", |s| {
        let h = header(s);
        h.contains("◆ leader b") && !h.contains("disconnected")
    });
}
