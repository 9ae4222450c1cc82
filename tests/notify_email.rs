//! Email through a real SMTP sink: aiosmtpd (PyPI), started here on a free
//! 127.0.0.1 port with STARTTLS required and a certificate from a throwaway
//! CA this test makes with `openssl`. The sink prints every message it
//! receives; the test reads the message back from its output.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shieldops::event::{EventKind, Severity};

mod notify_support;
use notify_support::{Bench, failed, sent};

const INSTALL: &str = "run scripts/install-test-deps.sh";

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); {INSTALL}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    let p = |f: &str| dir.join(f);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem"))
        .args(["-days", "2", "-subj", "/CN=shieldops test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-CAcreateserial")
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.pem")));
}

/// The aiosmtpd sink; killed on drop.
struct Sink {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    fn start(dir: &Path) -> Sink {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(probe, "Python module aiosmtpd is missing; {INSTALL}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n"])
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tlscert")
            .arg(dir.join("server.pem"))
            .arg("--tlskey")
            .arg(dir.join("server.key"))
            // The Debugging handler prints each message received.
            .args(["-c", "aiosmtpd.handlers.Debugging"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let sink = Sink {
            child,
            port,
            output,
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen: {}", sink.output.lock().unwrap());
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

fn config(port: u16, ca_file: Option<&Path>) -> String {
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        r#"
[notify.retry]
max_attempts = 1

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = {port}
{ca}from = "ShieldOps <shieldops@example.test>"
to = ["oncall@example.test", "ic@example.test"]

[[notify.rules]]
kinds = ["incident_opened"]
channels = ["mail"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_mailed_over_starttls_to_a_real_smtp_sink() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let sink = Sink::start(certs.path());

    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&config(sink.port, Some(&certs.path().join("ca.pem"))));
    let id = bench
        .open_incident("checkout crash-looping", Severity::Critical)
        .await;
    let events = bench.until("mail sent", |n| !n.is_empty()).await;
    assert_eq!(sent(&events).len(), 1, "{events:#?}");
    let EventKind::NotificationSent { to, subject, .. } = &events[0].kind else {
        unreachable!()
    };
    assert_eq!(to, "oncall@example.test, ic@example.test");
    assert_eq!(subject, &format!("Incident #{id}: checkout crash-looping"));

    let mut received = String::new();
    for _ in 0..200 {
        received = sink.output();
        if received.contains("END MESSAGE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let expected_subject =
        format!("Subject: [ShieldOps critical] Incident #{id}: checkout crash-looping");
    for needle in [
        expected_subject.as_str(),
        "From: ShieldOps <shieldops@example.test>",
        "To: oncall@example.test, ic@example.test",
        "KubePodCrashLooping on k8s/prod/payments/deployment/checkout",
        "env production",
        "team payments",
        &format!("shieldops-incident-{id}"),
    ] {
        assert!(received.contains(needle), "{needle:?} not in:\n{received}");
    }
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_an_untrusted_ca_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let sink = Sink::start(certs.path());

    let mut bench = Bench::new();
    bench.discover_checkout().await;
    // No ca_file: the sink's CA is not among the system roots.
    bench.start(&config(sink.port, None));
    bench.open_incident("checkout down", Severity::High).await;
    let events = bench.until("mail failed", |n| !n.is_empty()).await;
    assert_eq!(failed(&events).len(), 1, "{events:#?}");
    let EventKind::NotificationFailed { error, gave_up, .. } = &events[0].kind else {
        unreachable!()
    };
    assert!(*gave_up);
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(
        !sink.output().contains("MESSAGE FOLLOWS"),
        "nothing was delivered"
    );
    bench.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_is_mailed_to_the_contacts_channel() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let sink = Sink::start(certs.path());
    // No routing rule at all: the escalation mapping alone sends it.
    let cfg = format!(
        r#"
[runtime]
escalation_chain = ["incident-commander"]

[notify.retry]
max_attempts = 1

[notify.channels.mail]
type = "email"
host = "127.0.0.1"
port = {}
ca_file = "{}"
from = "ShieldOps <shieldops@example.test>"
to = ["ic@example.test"]

[notify.escalation]
incident-commander = ["mail"]
"#,
        sink.port,
        certs.path().join("ca.pem").display()
    );
    let mut bench = Bench::new();
    bench.discover_checkout().await;
    bench.start(&cfg);
    let rem = bench.propose_checkout_restart().await;
    bench
        .append(EventKind::ApprovalEscalated {
            remediation: rem,
            to: "incident-commander".into(),
            level: 2,
        })
        .await;
    let events = bench.until("mail sent", |n| !n.is_empty()).await;
    assert_eq!(sent(&events).len(), 1, "{events:#?}");
    let mut received = String::new();
    for _ in 0..200 {
        received = sink.output();
        if received.contains("END MESSAGE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for needle in [
        format!("Remediation #{rem} escalated, waiting for approval"),
        "To: ic@example.test".to_string(),
        "escalated to incident-commander (level 2)".to_string(),
    ] {
        assert!(received.contains(&needle), "{needle:?} not in:\n{received}");
    }
    bench.stop().await;
}
