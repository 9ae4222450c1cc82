//! `shieldops serve` and `attach` end to end: the real binary serving the
//! demo, real WebSocket connections (the library's client, and the `attach`
//! binary), bearer tokens and roles, bad frames, concurrent approvals,
//! resuming after a dropped connection.

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use shieldops::event::EventKind;
use shieldops::remote::auth::Role;
use shieldops::remote::client::LinkError;
use shieldops::remote::protocol::{ErrorCode, MAX_CLIENT_FRAME, ServerMessage, decode_server};
use shieldops::runtime::command::Command;
use shieldops::state::Stage;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod remote_support;
use remote_support::{Console, Relay, Server, WEEKDAY_START, collect_lines, http, shieldops};

fn demo_server(principals: &[(&str, Role)]) -> Server {
    Server::start(principals, &["--speed", "25", "--start", WEEKDAY_START])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_and_underprivileged_tokens_are_refused() {
    let server = demo_server(&[("alice", Role::Approver), ("victor", Role::Viewer)]);

    // HTTP: no token, a wrong one, a malformed header: 401 with an empty body.
    for token in [None, Some("so_not-a-token")] {
        let (status, body) = http(server.addr, "GET", "/metrics", token, b"");
        assert_eq!(status, 401);
        assert!(body.is_empty(), "a 401 says nothing else: {body:?}");
        let (status, _) = http(
            server.addr,
            "POST",
            "/api/v1/alerts/alertmanager",
            token,
            b"{}",
        );
        assert_eq!(status, 401);
    }
    let (status, body) = http(server.addr, "GET", "/healthz", None, b"");
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, body) = http(
        server.addr,
        "GET",
        "/healthz",
        Some(&server.token("victor")),
        b"",
    );
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = http(
        server.addr,
        "GET",
        "/metrics",
        Some(&server.token("victor")),
        b"",
    );
    assert_eq!(status, 200);
    assert!(body.contains("shieldops_events_appended_total"), "{body}");

    // WebSocket: the upgrade itself is refused.
    let mut opts = server.opts("alice");
    opts.token = "so_wrong".into();
    assert_eq!(
        Console::attach(&opts).await.err(),
        Some(LinkError::Unauthorized)
    );
    let request = server.url().into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401 without a token, got {:?}", other.map(|_| ())),
    }

    // A viewer watches but cannot approve, deny or acknowledge; nor post alerts.
    let mut viewer = Console::attach(&server.opts("victor")).await.unwrap();
    assert_eq!(viewer.conn.welcome.role, Role::Viewer);
    viewer
        .until(60, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let id = viewer.state.approval_queue()[0].id;
    let (ok, message) = viewer
        .command(Command::Approve {
            remediation: id,
            comment: "looks fine".into(),
        })
        .await;
    assert!(!ok);
    assert!(
        message.contains("victor is a viewer") && message.contains("approver role"),
        "{message}"
    );
    let (ok, _) = viewer.command(Command::Acknowledge { incident: 1 }).await;
    assert!(!ok);
    // Inspecting a resource only reads: a viewer may, and sees the answer arrive.
    let target = viewer
        .state
        .fleet
        .resources
        .keys()
        .next()
        .cloned()
        .expect("a fleet");
    let (ok, message) = viewer
        .command(Command::Inspect {
            resource: target.clone(),
        })
        .await;
    assert!(ok, "{message}");
    viewer
        .until(60, "the inspection recorded", |s| {
            s.fleet.get(&target).is_some_and(|v| v.inspection.is_some())
        })
        .await;
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/alerts/alertmanager",
        Some(&server.token("victor")),
        b"{}",
    );
    assert_eq!(status, 403, "{body}");
    // Nothing the viewer sent reached the log as an approval.
    assert_eq!(
        viewer.count(|k| matches!(k, EventKind::ApprovalGranted { .. })),
        0
    );
}

/// A raw WebSocket with a valid token, to send frames the client never would.
async fn raw(
    server: &Server,
    principal: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", server.token(principal))
            .parse()
            .unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The `error` frame a bad session ends with, and that the socket then closes.
async fn expect_error(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (ErrorCode, String) {
    let mut error = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no close in time")
        {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMessage::Error { code, message }) = decode_server(t.as_bytes()) {
                    error = Some((code, message));
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    error.expect("an error frame before the close")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_own_connection() {
    let server = demo_server(&[("olga", Role::Operator)]);
    let mut healthy = Console::attach(&server.opts("olga")).await.unwrap();

    let mut ws = raw(&server, "olga").await;
    ws.send(Message::text(r#"{"type":"hello","version":99}"#))
        .await
        .unwrap();
    let (code, message) = expect_error(&mut ws).await;
    assert_eq!(code, ErrorCode::VersionMismatch);
    assert!(
        message.contains("99") && message.contains("version 1"),
        "{message}"
    );

    let mut ws = raw(&server, "olga").await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(expect_error(&mut ws).await.0, ErrorCode::Malformed);

    let mut ws = raw(&server, "olga").await;
    ws.send(Message::text(r#"{"type":"hello","version":1}"#))
        .await
        .unwrap();
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert_eq!(expect_error(&mut ws).await.0, ErrorCode::Malformed);

    let mut ws = raw(&server, "olga").await;
    ws.send(Message::text(r#"{"type":"hello","version":1}"#))
        .await
        .unwrap();
    let big = format!(
        r#"{{"type":"command","id":1,"command":{{"command":"deny","remediation":1,"reason":"{}"}}}}"#,
        "x".repeat(MAX_CLIENT_FRAME)
    );
    let _ = ws.send(Message::text(big)).await;
    assert_eq!(expect_error(&mut ws).await.0, ErrorCode::TooLarge);

    // Fuzz-style: random bytes as text and binary frames, each on its own
    // connection, each ends only that connection.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    for i in 0..40 {
        let mut ws = raw(&server, "olga").await;
        let len = rng.random_range(0..2048);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let frame = if i % 2 == 0 {
            Message::text(String::from_utf8_lossy(&bytes).to_string())
        } else {
            Message::binary(bytes)
        };
        let _ = ws.send(frame).await;
        let code = expect_error(&mut ws).await.0;
        assert!(
            matches!(code, ErrorCode::Malformed | ErrorCode::VersionMismatch),
            "{code:?}"
        );
    }

    // The healthy console still streams and is still answered.
    let seen = healthy.state.last_seq;
    healthy
        .until(60, "more events", |s| s.last_seq > seen)
        .await;
    let (ok, message) = healthy.command(Command::Rescan).await;
    assert!(ok, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_approvals_yield_one_outcome_and_both_consoles_agree() {
    let approvers = ["alice", "bob", "carol", "dave"];
    let principals: Vec<(&str, Role)> = approvers.iter().map(|a| (*a, Role::Approver)).collect();
    let server = demo_server(&principals);
    let mut consoles = Vec::new();
    for name in approvers {
        consoles.push(Console::attach(&server.opts(name)).await.unwrap());
    }
    consoles[0]
        .until(60, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    // Every console at the same seq (each attached at its own), then one more
    // approver than needed, all at the same moment.
    let target = consoles.iter().map(|c| c.state.last_seq).max().unwrap();
    for c in consoles.iter_mut() {
        c.advance_to(target).await;
    }
    let rem = consoles[0].state.approval_queue()[0].clone();
    let needed = rem.required_approvals.max(1) as usize;
    assert!(needed < approvers.len(), "needs {needed} approvals");
    let racers = needed + 1;
    let replies = futures::future::join_all(consoles.iter_mut().take(racers).map(|c| {
        c.command(Command::Approve {
            remediation: rem.id,
            comment: "race".into(),
        })
    }))
    .await;
    let accepted = replies.iter().filter(|(ok, _)| *ok).count();
    assert_eq!(accepted, needed, "{replies:?}");
    let (_, refusal) = replies.iter().find(|(ok, _)| !ok).unwrap();
    assert!(
        refusal.contains("not awaiting approval") && refusal.contains("approved by"),
        "the late console is told what happened and by whom: {refusal}"
    );
    let winners: Vec<&str> = approvers
        .iter()
        .take(racers)
        .zip(&replies)
        .filter(|(_, (ok, _))| *ok)
        .map(|(n, _)| *n)
        .collect();
    for w in &winners {
        assert!(refusal.contains(w), "{refusal} names {w}");
    }

    // Exactly one execution, seen by the console that watches it finish.
    let id = rem.id;
    consoles[0]
        .until(120, "the remediation to finish", |s| {
            matches!(s.remediations[&id].stage, Stage::Finished(_))
        })
        .await;
    let executions = consoles[0].count(
        |k| matches!(k, EventKind::ActionExecuted { remediation, .. } if *remediation == id),
    );
    assert_eq!(executions, 1);
    let granted: Vec<String> = consoles[0]
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ApprovalGranted {
                remediation, by, ..
            } if *remediation == id => Some(by.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(granted.len(), needed);
    for by in &granted {
        assert!(
            winners.contains(&by.as_str()),
            "recorded approver {by} is a token principal"
        );
    }

    // Two consoles at the same seq hold the same state, and so does a third
    // that starts from a fresh snapshot.
    let (a, rest) = consoles.split_at_mut(1);
    let a = &mut a[0];
    let b = &mut rest[0];
    for _ in 0..20 {
        let fresh = Console::attach(&server.opts("dave")).await.unwrap();
        let seq = fresh.state.last_seq;
        if a.state.last_seq > seq || b.state.last_seq > seq {
            fresh.conn.close().await;
            continue;
        }
        a.advance_to(seq).await;
        b.advance_to(seq).await;
        assert_eq!(a.state, b.state, "two consoles at seq {seq}");
        assert_eq!(a.state, fresh.state, "a fresh snapshot at seq {seq}");
        return;
    }
    panic!("no snapshot caught up with the consoles in 20 tries");
}

#[derive(Debug)]
struct Line {
    seq: u64,
    hash: String,
    prev_hash: String,
}

/// Event lines and the snapshot seq of an `attach --headless` transcript.
fn parse(lines: &[String]) -> (u64, Vec<Line>, Vec<String>) {
    let mut snapshot = None;
    let mut events = Vec::new();
    let mut links = Vec::new();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        if let Some(s) = v["snapshot"].as_u64() {
            snapshot = Some(s);
        } else if let Some(seq) = v["seq"].as_u64() {
            events.push(Line {
                seq,
                hash: v["hash"].as_str().unwrap().to_string(),
                prev_hash: v["prev_hash"].as_str().unwrap().to_string(),
            });
        } else if let Some(link) = v["link"].as_str() {
            links.push(link.to_string());
        }
    }
    (snapshot.expect("a snapshot line first"), events, links)
}

fn assert_unbroken(snapshot: u64, events: &[Line]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, snapshot + 1 + i as u64, "no gap, no duplicate");
        if i > 0 {
            assert_eq!(e.prev_hash, events[i - 1].hash, "chain at seq {}", e.seq);
        }
    }
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_resumes_after_a_dropped_connection_and_a_restart_without_gaps() {
    let server = demo_server(&[("alice", Role::Operator)]);
    let relay = Relay::start(server.addr).await;
    let url = format!("ws://{}/ws", relay.addr);
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shieldops"))
            .arg("--log-dir")
            .arg(server.dir.path().join("client-logs"))
            .args(["attach", &url, "--headless"])
            .env("SHIELDOPS_TOKEN", server.token("alice"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut client = spawn();
    let lines = collect_lines(&mut client);
    let more_than = |lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, min: usize| {
        let lines = lines.clone();
        move || lines.lock().unwrap().len() > min
    };
    wait_for("the first events", 60, more_than(&lines, 20)).await;
    // The link lines after the cut: "disconnected", then "connected" again.
    // Counted before cutting: the client may print its "disconnected"
    // before this task runs again.
    let cut_at = lines.lock().unwrap().len();
    relay.cut();
    let link_after =
        |lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, from: usize, link: &str| {
            lines.lock().unwrap()[from..]
                .iter()
                .position(|l| l.contains(&format!("\"link\":\"{link}\"")))
                .map(|p| p + from)
        };
    wait_for("the disconnect", 30, || {
        link_after(&lines, cut_at, "disconnected").is_some()
    })
    .await;
    let down_at = link_after(&lines, cut_at, "disconnected").unwrap();
    wait_for("the reconnect", 60, || {
        link_after(&lines, down_at, "connected").is_some()
    })
    .await;
    let after_reconnect = lines.lock().unwrap().len();
    wait_for(
        "events after the reconnect",
        60,
        more_than(&lines, after_reconnect + 10),
    )
    .await;
    client.kill().unwrap();
    client.wait().unwrap();
    let transcript = lines.lock().unwrap().clone();
    let (snapshot, events, links) = parse(&transcript);
    let down = links.iter().position(|l| l == "disconnected").unwrap();
    assert!(
        links[down..].contains(&"connected".to_string()),
        "{links:?}"
    );
    assert!(events.len() > 30);
    assert_unbroken(snapshot, &events);
    let last_seen = events.last().unwrap().seq;

    // Killed and started again: a fresh snapshot, then an unbroken stream from it.
    let mut client = spawn();
    let lines = collect_lines(&mut client);
    wait_for("events after the restart", 60, more_than(&lines, 10)).await;
    client.kill().unwrap();
    client.wait().unwrap();
    let (snapshot, events, _) = parse(&lines.lock().unwrap());
    assert!(
        snapshot >= last_seen,
        "the restart starts at or after {last_seen}"
    );
    assert_unbroken(snapshot, &events);

    // The server went on through all of it.
    let (status, _) = http(
        server.addr,
        "GET",
        "/healthz",
        Some(&server.token("alice")),
        b"",
    );
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_the_log_stays_whole() {
    let mut server = demo_server(&[("alice", Role::Operator)]);
    let mut console = Console::attach(&server.opts("alice")).await.unwrap();
    console.until(60, "some events", |s| s.last_seq > 20).await;
    // Every console disconnecting does not stop the server.
    console.conn.close().await;
    let mut again = Console::attach(&server.opts("alice")).await.unwrap();
    again.until(60, "more events", |s| s.last_seq > 30).await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let verify = shieldops(server.dir.path())
        .args(["log", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
