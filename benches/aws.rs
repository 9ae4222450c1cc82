//! AWS connector figures: time and memory to discover 5,000 instances, and
//! the cost of steady-state polls when nothing changed (the idle cycle
//! between polls, and a real poll whose diff is empty).
//!
//! moto's server is the real emulator but needs tens of seconds to answer for
//! 5,000 instances, which would hide the connector's own cost. So the first
//! discovery goes through a recording proxy to moto, and the figures for the
//! connector alone come from a second connector served the recorded answers
//! byte for byte by a local replaying responder (a test double: it answers
//! each request with what moto answered to the same request).
//! Prints a table; `cargo bench --bench aws` (needs scripts/install-test-deps.sh).

#[path = "../tests/aws_support/mod.rs"]
mod aws_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shieldops::agents::AgentContext;
use shieldops::agents::discovery::Discovery;
use shieldops::clock::SharedClock;
use shieldops::connectors::{Listing, Registry, Scope};
use shieldops::state::State;
use shieldops::store::EventLog;

#[path = "support/goal.rs"]
mod goal;

/// Counts allocations so the per-instance cost of a poll can be shown.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwards the caller's layout unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INSTANCES: usize = 5_000;

fn counts() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Times moto answering DescribeInstances for the whole fleet over plain
/// HTTP (no SDK, no parsing), to tell the emulator's time from the connector's.
fn raw_describe_instances(port: u16, region: &str) -> Duration {
    use std::io::{Read, Write};
    let body = "Action=DescribeInstances&Version=2016-11-15&MaxResults=1000";
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260107/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let elapsed = t.elapsed();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.matches("<instanceId>").count() >= INSTANCES,
        "raw answer holds the fleet"
    );
    elapsed
}

/// moto's answers by request: status and body.
type Tape = HashMap<(String, Vec<u8>), (u16, Vec<u8>)>;

/// What identifies a request to replay: the JSON protocols' target header
/// (ECS, STS) and the body (the query protocol's action, page size and token).
fn request_key(head: &str, body: &[u8]) -> (String, Vec<u8>) {
    let target = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amz-target")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (target, body.to_vec())
}

/// A discovery context over one AWS connector pointed at `endpoint`.
async fn context(
    endpoint: &str,
    region: &str,
) -> (
    AgentContext,
    EventLog,
    tempfile::TempDir,
    Arc<shieldops::clock::ManualClock>,
) {
    let clock = aws_support::manual_clock();
    let c = aws_support::connector(
        &aws_support::config(endpoint, region),
        clock.clone() as SharedClock,
    )
    .await;
    let mut registry = Registry::new();
    registry.add(c);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(&dir.path().join("log")).expect("log");
    let ctx = AgentContext {
        log: log.clone(),
        registry,
        clock: clock.clone() as SharedClock,
        playbooks: Arc::new(shieldops::playbook::Library::load(None).expect("playbooks")),
    };
    (ctx, log, dir, clock)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let moto = aws_support::Moto::start();
    let region = "eu-north-1";
    let ec2 = aws_sdk_ec2::Client::new(&aws_support::sdk(&moto.url(), region).await);
    let seeding = Instant::now();
    for _ in 0..(INSTANCES / 100) {
        ec2.run_instances()
            .image_id("ami-12c6146b")
            .min_count(100)
            .max_count(100)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("team")
                            .value("search")
                            .build(),
                    )
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("environment")
                            .value("production")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("RunInstances");
    }
    eprintln!("seeded {INSTANCES} instances in {:.1?}", seeding.elapsed());
    let raw = raw_describe_instances(moto.port, region);

    // 1. Through moto (recording every answer): the emulator's time dominates.
    let tape: Arc<Mutex<Tape>> = Arc::default();
    let recording = tape.clone();
    let moto_port = moto.port;
    let recorder = aws_support::Responder::start(move |_, head, body| {
        let (status, out) = aws_support::forward(moto_port, head, body);
        recording
            .lock()
            .expect("tape")
            .insert(request_key(head, body), (status, out.clone()));
        (status, "text/xml", out)
    });
    let through_moto = {
        let (ctx, _log, _dir, _clock) = context(&recorder.url(), region).await;
        let mut discovery = Discovery::from_state(&State::new());
        let t = Instant::now();
        let recorded = discovery.poll(&ctx).await;
        assert_eq!(
            recorded,
            INSTANCES + 1,
            "the fleet is discovered through moto"
        );
        t.elapsed()
    };

    // 2. The connector alone: the same answers replayed from memory.
    let replaying = tape.clone();
    let replayer = aws_support::Responder::start(move |_, head, body| {
        match replaying
            .lock()
            .expect("tape")
            .get(&request_key(head, body))
        {
            Some((status, out)) => (*status, "text/xml", out.clone()),
            None => (500, "text/plain", b"not recorded".to_vec()),
        }
    });
    let (ctx, log, _dir, clock) = context(&replayer.url(), region).await;
    let c = ctx.registry.all().next().expect("one connector").clone();
    let mut discovery = Discovery::from_state(&State::new());

    let rss_before = rss_kib("VmRSS:");
    let t = Instant::now();
    let recorded = discovery.poll(&ctx).await;
    let first = t.elapsed();
    let rss_after = rss_kib("VmRSS:");
    assert_eq!(
        recorded,
        INSTANCES + 1,
        "every instance and the connector status recorded"
    );

    // 2. The idle cycle: the connector's interval has not passed.
    let (a0, b0) = counts();
    let t = Instant::now();
    let idle_events = discovery.poll(&ctx).await;
    let idle = t.elapsed();
    let (a1, b1) = counts();

    // 3. A real poll with nothing changed: listing alone, then listing + diff.
    clock.advance(Duration::from_secs(61));
    let (l0, lb0) = counts();
    let t = Instant::now();
    let listing = c.refresh(&Scope::default()).await.expect("poll");
    let list_time = t.elapsed();
    let (l1, lb1) = counts();
    let Listing::Fresh(resources) = listing else {
        panic!("a fresh listing")
    };
    assert_eq!(resources.len(), INSTANCES);
    drop(resources);
    clock.advance(Duration::from_secs(61));
    let (d0, db0) = counts();
    let t = Instant::now();
    let steady_events = discovery.poll(&ctx).await;
    let steady = t.elapsed();
    let (d1, db1) = counts();

    let n = INSTANCES as f64;
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| first discovery of {INSTANCES} instances through moto (list + record) | {:.2} s |",
        through_moto.as_secs_f64()
    );
    println!(
        "| first discovery of {INSTANCES} instances, connector alone (replayed answers) | {:.2} s |",
        first.as_secs_f64()
    );
    goal::at_most(
        &format!("AWS: discovery of {INSTANCES} instances, connector alone"),
        first.as_secs_f64(),
        10.0,
        "s",
    );
    println!(
        "| resident memory growth during it | {:.1} MiB |",
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
    );
    println!(
        "| idle cycle (interval not passed) | {:.1} µs, {} allocations, {idle_events} events |",
        idle.as_secs_f64() * 1e6,
        a1 - a0
    );
    println!(
        "| no-change poll, listing only | {:.2} s, {:.1} allocations ({:.1} KiB) per instance |",
        list_time.as_secs_f64(),
        (l1 - l0) as f64 / n,
        (lb1 - lb0) as f64 / n / 1024.0
    );
    println!(
        "| no-change poll, listing + diff | {:.2} s, {:.1} allocations ({:.1} KiB) per instance, {steady_events} events |",
        steady.as_secs_f64(),
        (d1 - d0) as f64 / n,
        (db1 - db0) as f64 / n / 1024.0
    );
    println!(
        "| diff beyond the listing | {:.2} allocations per instance |",
        ((d1 - d0) as f64 - (l1 - l0) as f64) / n
    );
    println!(
        "| moto alone: one raw DescribeInstances answer (all {INSTANCES}) | {:.2} s |",
        raw.as_secs_f64()
    );
    let _ = (b0, b1);
    assert_eq!(steady_events, 0, "a no-change poll records nothing");
    log.close().await.expect("close");
}
