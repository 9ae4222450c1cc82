//! The listener stays up: the real `serve` binary under connection floods
//! from many source addresses (every 127.0.0.0/8 address is loopback, so the
//! flood can come from 100 "hosts"), stalled TLS handshakes and headers,
//! oversized request heads, and token holders who ask too often. Deadlines
//! are configured short so each test awaits the close instead of sleeping.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use shieldops::event::EventKind;
use shieldops::remote::auth::Role;
use shieldops::remote::client::AttachOptions;
use shieldops::runtime::command::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod remote_support;
use remote_support::{Console, Server, WEEKDAY_START, http, self_signed_cert};

/// A TCP connection to `to` from 127.0.0.`from`.
async fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from([127, 0, 0, from]), 0))
        .unwrap();
    socket
        .connect(to)
        .await
        .unwrap_or_else(|e| panic!("connect from 127.0.0.{from}: {e}"))
}

/// Reads until the server closes the connection (within `secs`); what it sent.
async fn until_closed(stream: &mut TcpStream, secs: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("the server kept the connection open for {secs} s"),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One request on a kept-alive connection; its status and body.
async fn request(stream: &mut TcpStream, token: &str) -> (u16, String) {
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("the connection is open");
        assert!(n > 0, "closed instead of answering");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                return (status, body.to_string());
            }
        }
    }
}

/// Raises this process's descriptor limit to at least `need`.
fn raise_nofile(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= need,
        "this test needs {need} descriptors; the hard limit is {hard} (raise it with ulimit -Hn)"
    );
    if limit.current.is_some_and(|c| c < need) {
        limit.current = Some(need);
        setrlimit(Resource::Nofile, limit).unwrap();
    }
}

/// The start of a TLS record that announces a ClientHello and never sends it.
const STALLED_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_attaches_and_approves_through_a_flood_of_idle_and_stalled_connections() {
    const IDLE: usize = 5_000;
    const STALLED: usize = 200;
    raise_nofile((IDLE + STALLED + 512) as u64);
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(certs.path());
    // Default limits: 1024 connections, 64 per address, 10 s deadlines.
    // A slower demo than other tests use, so the remediation to approve is
    // still waiting when a loaded machine has finished opening the flood.
    let server = Server::start(
        &[("alice", Role::Approver)],
        &[
            "--speed",
            "10",
            "--start",
            WEEKDAY_START,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );

    // 5,000 connections that never say a word, 50 from each of 100 addresses
    // (under the per-address cap, far over the total), then 200 TLS
    // handshakes stalled after the first bytes of a ClientHello.
    let flood_started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        idle.push(connect_from(2 + (i / 50) as u8, server.addr).await);
    }
    let mut stalled = Vec::with_capacity(STALLED);
    for i in 0..STALLED {
        let mut s = connect_from(200 + (i / 50) as u8, server.addr).await;
        s.write_all(STALLED_CLIENT_HELLO).await.unwrap();
        stalled.push(s);
    }

    eprintln!("flood opened in {:?}", flood_started.elapsed());
    // A real console, over TLS, attaches and approves.
    let opts = AttachOptions {
        url: format!("wss://localhost:{}/ws", server.addr.port()),
        token: server.token("alice"),
        ca: Some(cert.clone()),
    };
    let started = Instant::now();
    let mut console = Console::attach(&opts)
        .await
        .expect("a console attaches during the flood");
    let attach_took = started.elapsed();
    console
        .until(120, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let id = console.state.approval_queue()[0].id;
    let (ok, message) = console
        .command(Command::Approve {
            remediation: id,
            comment: "through the flood".into(),
        })
        .await;
    assert!(ok, "{message}");
    console
        .until(60, "the approval recorded", |s| {
            s.remediations[&id]
                .approvals
                .iter()
                .any(|a| a.by == "alice")
        })
        .await;
    eprintln!("attached in {attach_took:?} behind {IDLE} idle and {STALLED} stalled connections");

    // The server held no more than its cap: the oldest idle connections
    // were closed to make room (5,200 pre-authentication connections, 1,024
    // slots), so at least the first 4,000 are closed by now.
    for (i, s) in idle.iter_mut().take(4_000).enumerate() {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            other => panic!("idle connection {i} still open: {other:?}"),
        }
    }
    drop(idle);
    drop(stalled);
    Console::attach(&opts).await.expect("and attaches again");
}

const SHORT_LIMITS: &str = "[remote.limits]\nmax_connections = 6\nmax_connections_per_address = 3\nheader_timeout_ms = 60000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_per_address_and_in_total_spare_authenticated_connections() {
    let server = Server::start_with_config(
        &[("olga", Role::Operator)],
        SHORT_LIMITS,
        &["--no-scenario"],
    );
    let token = server.token("olga");

    // Three from one address are held; a fourth from it is closed at once.
    let mut a = Vec::new();
    for _ in 0..3 {
        a.push(connect_from(2, server.addr).await);
    }
    let mut fourth = connect_from(2, server.addr).await;
    assert!(until_closed(&mut fourth, 30).await.is_empty());

    // Another address is not affected; an authenticated keep-alive connection.
    let mut session = connect_from(3, server.addr).await;
    assert_eq!(request(&mut session, &token).await, (200, "ok\n".into()));

    // Six held (3 + 1 + 2): the seventh takes the slot of the oldest
    // connection without a token, never the authenticated one.
    let mut b = [
        connect_from(4, server.addr).await,
        connect_from(4, server.addr).await,
    ];
    let mut seventh = connect_from(5, server.addr).await;
    assert!(
        until_closed(&mut a[0], 30).await.is_empty(),
        "the oldest evicted"
    );
    assert_eq!(request(&mut seventh, &token).await.0, 200);
    assert_eq!(request(&mut session, &token).await.0, 200);
    // The rest were held all along, and answer once they show a token.
    assert_eq!(request(&mut a[1], &token).await.0, 200);
    assert_eq!(request(&mut b[0], &token).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_valid_token_in_time_is_closed() {
    let server = Server::start_with_config(
        &[("olga", Role::Operator)],
        "[remote.limits]\nheader_timeout_ms = 300\n",
        &["--no-scenario"],
    );
    let token = server.token("olga");
    // Silent, half a request line, and headers without a token trickled in:
    // each closed near the configured deadline, far before the default 10 s.
    let started = Instant::now();
    let mut silent = connect_from(2, server.addr).await;
    let mut half = connect_from(2, server.addr).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    for s in [&mut silent, &mut half] {
        let got = until_closed(s, 30).await;
        assert!(!String::from_utf8_lossy(&got).contains(" 200 "), "{got:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed by the configured deadline: {:?}",
        started.elapsed()
    );
    // A console that showed its token in time stays, past the deadline
    // (a later connection's close is how the test knows the deadline passed).
    let mut ok = connect_from(3, server.addr).await;
    assert_eq!(request(&mut ok, &token).await.0, 200);
    let mut console = Console::attach(&server.opts("olga")).await.unwrap();
    let mut probe = connect_from(3, server.addr).await;
    until_closed(&mut probe, 30).await;
    let (ok, message) = console.command(Command::Rescan).await;
    assert!(ok, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_closed_by_its_deadline() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(certs.path());
    let server = Server::start_with_config(
        &[("olga", Role::Operator)],
        "[remote.limits]\nhandshake_timeout_ms = 300\n",
        &[
            "--no-scenario",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let started = Instant::now();
    let mut stalled = connect_from(2, server.addr).await;
    stalled.write_all(STALLED_CLIENT_HELLO).await.unwrap();
    let mut silent = connect_from(2, server.addr).await;
    until_closed(&mut stalled, 30).await;
    until_closed(&mut silent, 30).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed by the configured deadline: {:?}",
        started.elapsed()
    );
    // A real handshake still completes.
    let opts = AttachOptions {
        url: format!("wss://localhost:{}/ws", server.addr.port()),
        token: server.token("olga"),
        ca: Some(cert),
    };
    Console::attach(&opts).await.expect("attach over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_neither_a_long_head_nor_a_body_is_read() {
    let server = Server::start(&[("olga", Role::Operator)], &["--no-scenario"]);
    // A 64 KiB header: refused (431) or cut, never buffered whole.
    let mut long = connect_from(2, server.addr).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = long.write_all(head.as_bytes()).await;
    let got = String::from_utf8_lossy(&until_closed(&mut long, 30).await).to_string();
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 431"), "{got}");
    // A POST that announces 100 MB without a token: 401, and the connection
    // is closed without the body being waited for.
    let mut post = connect_from(2, server.addr).await;
    post.write_all(
        b"POST /api/v1/alerts/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{",
    )
    .await
    .unwrap();
    let got = String::from_utf8_lossy(&until_closed(&mut post, 30).await).to_string();
    assert!(got.starts_with("HTTP/1.1 401"), "{got}");
}

/// The refused counts recorded for `principal` and `command` so far.
fn refusals(console: &Console, principal: &str, command: &str) -> Vec<u64> {
    console
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::OperatorCommand {
                by,
                command: c,
                accepted: false,
                detail,
            } if by == principal && c == command && detail.starts_with("rate limited") => detail
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.parse().ok()),
            _ => None,
        })
        .collect()
}

fn alert(name: &str) -> String {
    format!(
        r#"{{"status":"firing","labels":{{"alertname":"{name}","resource":"target/x"}},"fingerprint":"{name}"}}"#
    )
}

fn notification(alerts: &[String]) -> Vec<u8> {
    format!(r#"{{"version":"4","alerts":[{}]}}"#, alerts.join(",")).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_alert_intake_are_rate_limited_per_principal_and_refusals_recorded_in_aggregate()
 {
    let server = Server::start_with_config(
        &[
            ("victor", Role::Viewer),
            ("vera", Role::Viewer),
            ("olga", Role::Operator),
        ],
        "[remote.limits]\ninspect_per_minute = 1\ninspect_burst = 2\nalerts_per_minute = 1\nalerts_burst = 2\nrefusal_report_ms = 500\n",
        &["--speed", "25", "--start", WEEKDAY_START],
    );
    let mut victor = Console::attach(&server.opts("victor")).await.unwrap();
    victor
        .until(60, "a fleet", |s| !s.fleet.resources.is_empty())
        .await;
    let target = victor
        .state
        .fleet
        .resources
        .keys()
        .next()
        .cloned()
        .expect("a fleet");
    let inspect = || Command::Inspect {
        resource: target.clone(),
    };
    for _ in 0..2 {
        let (ok, message) = victor.command(inspect()).await;
        assert!(ok, "{message}");
    }
    const REFUSED: u64 = 30;
    for _ in 0..REFUSED {
        let (ok, message) = victor.command(inspect()).await;
        assert!(!ok);
        assert!(
            message.contains("rate limited") && message.contains("try again in"),
            "{message}"
        );
    }
    // Another principal has its own bucket.
    let mut vera = Console::attach(&server.opts("vera")).await.unwrap();
    let (ok, message) = vera.command(inspect()).await;
    assert!(ok, "{message}");

    // Alerts: the burst passes, the next is 429 with Retry-After, more than
    // the burst at once is 413.
    let olga = server.token("olga");
    let post = |body: Vec<u8>| {
        http(
            server.addr,
            "POST",
            "/api/v1/alerts/alertmanager",
            Some(&olga),
            &body,
        )
    };
    assert_eq!(post(notification(&[alert("A")])).0, 200);
    assert_eq!(post(notification(&[alert("B")])).0, 200);
    let (status, body) = post(notification(&[alert("C")]));
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("rate limited") && body.contains("retry in"),
        "{body}"
    );
    let (status, body) = post(notification(&[alert("D"), alert("E"), alert("F")]));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("alerts_burst"), "{body}");

    // Every refusal is recorded, in far fewer events than refusals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let inspects: u64 = refusals(&victor, "victor", "inspect").iter().sum();
        let alerts: u64 = refusals(&victor, "olga", "post alerts").iter().sum();
        if inspects == REFUSED && alerts == 2 {
            break;
        }
        assert!(inspects <= REFUSED && alerts <= 2, "{inspects} {alerts}");
        let next = tokio::time::timeout_at(deadline, victor.conn.next())
            .await
            .unwrap_or_else(|_| panic!("recorded so far: {inspects} inspects, {alerts} alerts"))
            .unwrap();
        if let shieldops::remote::client::Incoming::Event(e) = next {
            victor.state.apply(&e);
            victor.events.push(*e);
        }
    }
    let events = refusals(&victor, "victor", "inspect").len() as u64;
    assert!(
        events < REFUSED / 2,
        "{events} events for {REFUSED} refusals"
    );
    assert!(refusals(&victor, "vera", "inspect").is_empty());
}
