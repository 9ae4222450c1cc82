//! The event log replicated on a real 3-node NATS JetStream cluster
//! (tests/cluster_support): fenced appends, a standby that follows record by
//! record, and a takeover after the leader stops renewing its lease.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use shieldops::cluster::{Cluster, ClusterConfig, ClusterError, Leadership, Replicator};
use shieldops::event::{EventKind, NewEvent, ResourceId};
use shieldops::store::{EventLog, OpenOptions, StoreError};
use tokio_util::sync::CancellationToken;

mod cluster_support;
// The `serve` helpers in cluster_support run the binary through it.
mod remote_support;
use cluster_support::NatsCluster;
use cluster_support::stream::Stored;

fn draft(n: u64) -> NewEvent {
    NewEvent::new(
        Utc.timestamp_opt(1_767_225_600 + n as i64, 0).unwrap(),
        "test",
        EventKind::ResourceGone {
            resource: ResourceId::new(format!("k8s/prod/pod/p-{n}")),
        },
    )
}

/// Lease TTL of the checks: long enough that a renewal delayed by a busy
/// machine (the whole suite runs at once) does not depose a leader.
const LEASE_MS: u64 = 3_000;
/// Lease TTL of the failover figures.
const FIGURES_LEASE_MS: u64 = 1_500;

fn config(nats: &NatsCluster, site: &str, node: &str) -> ClusterConfig {
    ClusterConfig {
        servers: nats.urls(),
        site: site.into(),
        node: Some(node.into()),
        lease_ttl_ms: LEASE_MS,
        replicas: 3,
        ..ClusterConfig::default()
    }
}

/// A node: its connection, its local log replicated through it.
struct Member {
    cluster: Cluster,
    replicator: Arc<Replicator>,
    log: EventLog,
}

async fn member(nats: &NatsCluster, site: &str, node: &str, dir: &Path) -> Member {
    member_with(config(nats, site, node), dir).await
}

async fn member_with(config: ClusterConfig, dir: &Path) -> Member {
    let cluster = Cluster::connect(&config).await.unwrap();
    let replicator = cluster.replicator();
    let opts = OpenOptions {
        lock_wait: Duration::ZERO,
        ..OpenOptions::default()
    };
    let log = EventLog::open_replicated(dir, &opts, replicator.clone()).unwrap();
    Member {
        cluster,
        replicator,
        log,
    }
}

impl Member {
    async fn lead(&self) -> Leadership {
        let never = CancellationToken::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            self.cluster
                .follow_until_leader(&self.log, &self.replicator, None, &never),
        )
        .await
        .expect("leadership within 30 s")
        .unwrap()
        .expect("not cancelled")
    }

    /// Follows as a standby in the background until it leads (or `stop`).
    fn standby(
        &self,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<Option<Leadership>, ClusterError>> {
        let (cluster, log, rep, stop) = (
            self.cluster.clone(),
            self.log.clone(),
            self.replicator.clone(),
            stop.clone(),
        );
        tokio::spawn(async move { cluster.follow_until_leader(&log, &rep, None, &stop).await })
    }

    fn records(&self) -> Vec<(u64, Vec<u8>)> {
        self.log.scan_raw(1).map(Result::unwrap).collect()
    }
}

/// Waits (bounded) until `done`, re-checking on every tick.
async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The records of a fresh local log of `drafts`.
async fn history(drafts: Vec<NewEvent>) -> Vec<(u64, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    log.append_many(drafts).await.unwrap();
    log.scan_raw(1).map(Result::unwrap).collect()
}

fn refs(records: &[(u64, Vec<u8>)]) -> Vec<(u64, &[u8])> {
    records.iter().map(|(s, b)| (*s, b.as_slice())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_refuses_an_append_whose_expected_last_sequence_is_stale() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    // Two writers with different histories of their own.
    let ours = history((1..=3).map(draft).collect()).await;
    let theirs = history((101..=103).map(draft).collect()).await;
    let a = Cluster::connect(&config(&nats, "fence", "a"))
        .await
        .unwrap();
    let b = Cluster::connect(&config(&nats, "fence", "b"))
        .await
        .unwrap();

    a.stream().publish(&refs(&ours[..1])).await.unwrap();
    // b believes the stream is still empty: its seq 1 is refused.
    let err = b.stream().publish(&refs(&theirs[..1])).await.unwrap_err();
    assert!(err.to_string().contains("another leader appended"), "{err}");
    a.stream().publish(&refs(&ours[1..2])).await.unwrap();
    // A stale batch of three: refused whole. (Sent as separate pipelined
    // messages, its seq 3, expecting the stream to end at 2, which it now
    // does, would have been stored after a record it does not chain to.)
    let err = b.stream().publish(&refs(&theirs)).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(a.stream().last_seq().await.unwrap(), 2);
    assert_eq!(a.stream().record(2).await.unwrap().unwrap(), ours[1].1);
    assert_eq!(a.stream().record(3).await.unwrap(), None);
    // The writer that is current goes on.
    a.stream().publish(&refs(&ours[2..])).await.unwrap();
    assert_eq!(a.stream().last_seq().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_follows_the_leaders_records_byte_for_byte_and_cannot_append() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = member(&nats, "follow", "a", da.path()).await;
    let leading = a.lead().await;
    assert_eq!(
        a.cluster.leader().await.unwrap().map(|h| h.node).as_deref(),
        Some("a")
    );
    a.log
        .append_many((1..=40).map(draft).collect())
        .await
        .unwrap();

    let b = member(&nats, "follow", "b", db.path()).await;
    let stop = CancellationToken::new();
    let standby = b.standby(&stop);
    for n in 41..=60 {
        a.log.append(draft(n)).await.unwrap();
    }
    until("the standby to catch up", 30, || b.log.last_seq() == 60).await;
    assert_eq!(b.records(), a.records());
    let report = b.log.verify().unwrap();
    assert_eq!((report.checked, report.first_bad), (60, None));
    assert_eq!(a.cluster.stream().last_seq().await.unwrap(), 60);

    // The standby's own appends are refused and leave no trace.
    let err = b.log.append(draft(99)).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("standby"), "{err}");
    assert_eq!(a.cluster.stream().last_seq().await.unwrap(), 60);
    stop.cancel();
    assert!(standby.await.unwrap().unwrap().is_none());
    drop(leading);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_renewing_a_standby_takes_over_and_the_old_leader_is_fenced() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = member(&nats, "takeover", "a", da.path()).await;
    let a_leads = a.lead().await;
    a.log
        .append_many((1..=5).map(draft).collect())
        .await
        .unwrap();
    let b = member(&nats, "takeover", "b", db.path()).await;
    let stop = CancellationToken::new();
    let standby = b.standby(&stop);
    a.log.append(draft(6)).await.unwrap();
    // The leader stops renewing (as a dead one would); its lease lapses
    // after the TTL and the standby takes it, caught up to seq 6.
    let stopped = Instant::now();
    a_leads.resign();
    let b_leads = tokio::time::timeout(Duration::from_secs(30), standby)
        .await
        .expect("takeover within 30 s")
        .unwrap()
        .unwrap()
        .expect("b leads");
    let took = stopped.elapsed();
    // The last renewal was at most a third of the TTL before the resignation.
    assert!(
        took >= Duration::from_millis(LEASE_MS * 2 / 3),
        "the lease was still valid: {took:?}"
    );
    assert_eq!(b.log.last_seq(), 6);
    assert_eq!(
        b.cluster.leader().await.unwrap().map(|h| h.node).as_deref(),
        Some("b")
    );
    let seventh = b.log.append(draft(7)).await.unwrap();
    assert_eq!(seventh.seq, 7);

    // The old leader refuses itself, and had it not, JetStream refuses its
    // stale view: its seq 7 (expecting the stream to end at 6) is not taken.
    let err = a.log.append(draft(70)).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let stale = EventLog::open(dir.path()).unwrap();
    let raw: Vec<Vec<u8>> = a.records().into_iter().map(|(_, b)| b).collect();
    stale.append_raw(raw).await.unwrap();
    let forged = stale.append(draft(71)).await.unwrap();
    let bytes: Vec<u8> = stale.scan_raw(7).next().unwrap().unwrap().1;
    let err = a
        .cluster
        .stream()
        .publish(&[(forged.seq, bytes.as_slice())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // One history: the stream's seq 7 is b's, and b's log is the stream's.
    assert_eq!(
        b.cluster.stream().record(7).await.unwrap().unwrap(),
        b.records()[6].1
    );
    assert_eq!(a.records(), b.records()[..6].to_vec());
    drop(b_leads);
}

/// The node leading the Raft group of JetStream stream `stream`.
async fn raft_leader(nats: &NatsCluster, stream: &str) -> usize {
    let addrs: Vec<async_nats::ServerAddr> =
        nats.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = async_nats::jetstream::new(async_nats::connect(addrs).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = match js.get_stream(stream).await {
            Ok(mut s) => s
                .info()
                .await
                .ok()
                .and_then(|i| i.cluster.clone())
                .and_then(|c| c.leader),
            Err(_) => None,
        };
        if let Some(i) = leader.as_deref().and_then(NatsCluster::index_of) {
            return i;
        }
        assert!(Instant::now() < deadline, "stream {stream} has no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Appends from `tasks` concurrent writers until `stop`, counting the
/// acknowledged ones in `acked`; the first refusal cancels `stop`.
fn load(
    log: &EventLog,
    tasks: u64,
    stop: &CancellationToken,
    acked: &Arc<std::sync::atomic::AtomicU64>,
) -> Vec<tokio::task::JoinHandle<Result<(), StoreError>>> {
    (0..tasks)
        .map(|t| {
            let (log, stop, acked) = (log.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut n = t * 1_000_000;
                while !stop.is_cancelled() {
                    n += 1;
                    if let Err(e) = log.append(draft(n)).await {
                        // One refusal stops them all: the leader stepped down.
                        stop.cancel();
                        return Err(e);
                    }
                    acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_rides_out_the_loss_of_its_nats_server_with_appends_in_flight() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let Some(mut nats) = NatsCluster::start() else {
        return;
    };
    let probe = Cluster::connect(&config(&nats, "retry", "probe"))
        .await
        .unwrap();
    // The leader connects to a server that leads neither the stream's nor
    // the lease bucket's Raft group: losing it loses the connection and the
    // acknowledgements in flight on it (a transient failure), not a group's
    // leader (an election longer than the lease).
    let busy = [
        raft_leader(&nats, "SHIELDOPS_retry").await,
        raft_leader(&nats, "KV_shieldops_lease_retry").await,
    ];
    let victim = (0..cluster_support::NODES)
        .find(|i| !busy.contains(i))
        .unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = member_with(
        ClusterConfig {
            servers: vec![nats.urls()[victim].clone()],
            ..config(&nats, "retry", "a")
        },
        da.path(),
    )
    .await;
    let a_leads = a.lead().await;
    assert_eq!(nats.connected_to("shieldops-a"), Some(victim));
    let b = member(&nats, "retry", "b", db.path()).await;
    let stop_b = CancellationToken::new();
    let standby = b.standby(&stop_b);

    let stop = CancellationToken::new();
    let acked = Arc::new(AtomicU64::new(0));
    let writers = load(&a.log, 8, &stop, &acked);
    let after = |n: u64| {
        let (acked, stop, leads) = (acked.clone(), stop.clone(), &a_leads);
        move || {
            assert!(
                !stop.is_cancelled(),
                "an append failed: the leader stepped down: {:?}",
                leads.stepped_down()
            );
            acked.load(Ordering::SeqCst) >= n
        }
    };
    until("appends before the loss", 60, after(200)).await;
    // The server hangs, then dies: what the leader sent it meanwhile is
    // lost unanswered, so an append is certainly in flight when it goes
    // (a bare kill may fall between two publishes). The hang is the fault
    // itself, shorter than the lease, not a wait for anything.
    nats.pause(victim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_kill = acked.load(Ordering::SeqCst);
    tokio::task::block_in_place(|| nats.kill(victim));
    until("appends after the loss", 60, after(at_kill + 200)).await;
    tokio::task::block_in_place(|| nats.restart(victim));
    let at_restart = acked.load(Ordering::SeqCst);
    until("appends after the restart", 60, after(at_restart + 200)).await;
    stop.cancel();
    for w in futures::future::join_all(writers).await {
        w.unwrap().expect("no append failed");
    }
    assert_eq!(a_leads.stepped_down(), None, "the leader stayed");
    let retried = a.cluster.stream().retried();
    println!(
        "{} appends acknowledged, NATS server n{victim} lost after {at_kill} and back after {at_restart}; {retried} publish(es) retried",
        acked.load(Ordering::SeqCst)
    );
    assert!(retried > 0, "an append was in flight when the server went");

    // Every acknowledged append is stored once, in order, and followed.
    let end = a.log.last_seq();
    assert_eq!(end, acked.load(Ordering::SeqCst));
    assert_eq!(probe.stream().last_seq().await.unwrap(), end);
    until("the standby to catch up", 60, || b.log.last_seq() == end).await;
    assert_eq!(b.records(), a.records());
    let report = b.log.verify().unwrap();
    assert_eq!((report.checked, report.first_bad), (end, None));
    stop_b.cancel();
    assert!(standby.await.unwrap().unwrap().is_none());
}

/// Figures for the README (Performance › Cluster mode), not a check:
/// replicated append throughput, failover time, and a standby's lag under
/// the demo load.
/// `cargo nextest run --test cluster_log --run-ignored only --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run on purpose"]
async fn figures_replicated_append_throughput_and_failover_time() {
    let Some(nats) = NatsCluster::start() else {
        return;
    };
    const EVENTS: u64 = 2_000;
    const BATCH: u64 = 50;
    async fn rate(log: &EventLog) -> f64 {
        let started = Instant::now();
        let appenders = (0..EVENTS / BATCH).map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                let drafts = (i * BATCH..(i + 1) * BATCH).map(draft).collect();
                log.append_many(drafts).await.unwrap();
            })
        });
        for a in futures::future::join_all(appenders).await {
            a.unwrap();
        }
        EVENTS as f64 / started.elapsed().as_secs_f64()
    }
    let (dl, dr) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = rate(&EventLog::open(dl.path()).unwrap()).await;
    let leader = member(&nats, "bench", "a", dr.path()).await;
    let _leads = leader.lead().await;
    let replicated = rate(&leader.log).await;
    println!(
        "append {EVENTS} events ({} appenders × {BATCH}): local {local:.0}/s, replicated (R3) {replicated:.0}/s = {:.2}×",
        EVENTS / BATCH,
        replicated / local
    );

    let mut failovers = Vec::new();
    for i in 0..20 {
        let site = format!("failover{i}");
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let quick = |node: &str| ClusterConfig {
            lease_ttl_ms: FIGURES_LEASE_MS,
            ..config(&nats, &site, node)
        };
        let a = member_with(quick("a"), da.path()).await;
        let a_leads = a.lead().await;
        a.log.append(draft(1)).await.unwrap();
        let b = member_with(quick("b"), db.path()).await;
        let stop = CancellationToken::new();
        let standby = b.standby(&stop);
        until("the standby to follow", 30, || b.log.last_seq() == 1).await;
        let died = Instant::now();
        a_leads.resign();
        let _b_leads = standby.await.unwrap().unwrap().unwrap();
        b.log.append(draft(2)).await.unwrap();
        failovers.push(died.elapsed());
    }
    failovers.sort();
    let at = |q: f64| failovers[((failovers.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "failover (lease TTL 1.5 s, 20 runs): leader stops → new leader's first event p50 {:?}, p99 {:?}",
        at(0.5),
        at(0.99)
    );

    // A standby's lag under the demo load: two `serve --cluster` processes
    // on the demo fleet (--speed 25), sampled every 100 ms. In events: the
    // leader's last seq minus the standby's (the standby asked first, so
    // never under-counted). In time: how long ago the oldest record the
    // standby still lacks was stored, as the test's own consumer of the
    // stream saw it (0 when it lacks none).
    const SAMPLE_FOR: Duration = Duration::from_secs(30);
    let root = tempfile::tempdir().unwrap();
    let (a, b) = cluster_support::serve::pair(&nats, root.path());
    let stored = Stored::watch(&nats, "it").await;
    let (mut events, mut behind) = (Vec::new(), Vec::new());
    let first = a.last_seq().await;
    let started = Instant::now();
    while started.elapsed() < SAMPLE_FOR {
        let standby = b.last_seq().await;
        let leader = a.last_seq().await;
        events.push(leader.saturating_sub(standby));
        behind.push(
            stored
                .seen_at(standby + 1)
                .map_or(Duration::ZERO, |t| t.elapsed()),
        );
        // A sampling period, not a wait for something.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = (a.last_seq().await - first) as f64 / started.elapsed().as_secs_f64();
    events.sort();
    behind.sort();
    let q = |n: usize, p: f64| ((n as f64 * p).ceil() as usize).saturating_sub(1);
    println!(
        "standby lag under the demo load ({rate:.0} events/s, {} samples over {SAMPLE_FOR:?}): events p50 {}, p99 {}, max {}; time p50 {:?}, p99 {:?}, max {:?}",
        events.len(),
        events[q(events.len(), 0.5)],
        events[q(events.len(), 0.99)],
        events[events.len() - 1],
        behind[q(behind.len(), 0.5)],
        behind[q(behind.len(), 0.99)],
        behind[behind.len() - 1],
    );
}
