//! Cluster mode (`serve --cluster`): the site's event log replicated on a
//! NATS JetStream stream, one fenced leader, standbys that follow and take
//! over.
//!
//! - The stream is the source of truth. Stream sequence = event seq: the
//!   record at seq N is the stream's message N, byte for byte what the local
//!   sled log stores ([`crate::store`]).
//! - The leader's appends go through [`Replicator`] (a [`Replicate`] hook in
//!   the log's single writer): each record is published with
//!   `Nats-Expected-Last-Sequence: N-1` and written to sled only after
//!   JetStream's acknowledgement. A leader whose view of the stream is stale
//!   cannot extend it: JetStream refuses, and the leader steps down.
//! - Leadership is a lease in a JetStream key-value bucket whose `max_age`
//!   is the lease's TTL: taken with create-if-absent, renewed every third of
//!   the TTL by compare-and-set on its revision. The holder appends only while
//!   its own clock says the lease is still valid (measured from before the
//!   renewal was sent, so never later than the bucket's expiry).
//! - A standby follows the stream into its own sled copy through
//!   [`EventLog::append_raw`] (each record checked: intact, next seq, chained
//!   to the previous hash). When the lease lapses it takes it, catches up to
//!   the stream's last record, and only then may append.

mod config;
mod follow;
mod lease;
mod status;
mod view;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::store::{EventLog, Replicate, StoreError};

pub use config::ClusterConfig;
pub use lease::LeaseHolder;
pub use view::{ClusterView, LeaseView, NodeRole, NodeSeen, next_view};

/// Errors of cluster mode. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The `[cluster]` section or a file it names is unusable.
    #[error("{0}")]
    Config(String),
    /// The NATS servers could not be reached or refused the login.
    #[error("cannot connect to NATS at {servers}: {message}")]
    Connect { servers: String, message: String },
    /// JetStream refused or failed a request.
    #[error("JetStream {what}: {message}")]
    JetStream { what: String, message: String },
    /// The local log and the stream hold different histories.
    #[error(
        "the local event log and the stream {stream} differ at seq {seq}: {reason}; this node will not follow or lead on a history it cannot reconcile"
    )]
    Diverged {
        stream: String,
        seq: u64,
        reason: String,
    },
    /// The local event log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn js_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// A connection to the site's stream and lease bucket.
#[derive(Clone)]
pub struct Cluster {
    config: ClusterConfig,
    node: String,
    stream: SiteStream,
    lease: lease::Lease,
}

impl Cluster {
    /// Connects to `config.servers`, and makes the site's stream and lease
    /// bucket if they do not exist yet.
    pub async fn connect(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        config.validate()?;
        let servers = config.servers.join(",");
        let node = config.node.clone().unwrap_or_else(default_node_name);
        let connect_error = |message: String| ClusterError::Connect {
            servers: servers.clone(),
            message,
        };
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("shieldops-{node}"))
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &config.credentials_file {
            opts = opts.credentials_file(path).await.map_err(|e| {
                ClusterError::Config(format!(
                    "[cluster] credentials_file {}: {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(path) = &config.token_file {
            opts = opts.token(config::read_token_file(path)?);
        }
        if let Some(ca) = &config.ca {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        let addrs = config
            .servers
            .iter()
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|e| ClusterError::Config(format!("[cluster] servers: {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = opts
            .connect(addrs)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let js = jetstream::new(client);
        let stream = SiteStream::open(&js, config).await?;
        let lease = lease::Lease::open(&js, config).await?;
        Ok(Cluster {
            config: config.clone(),
            node,
            stream,
            lease,
        })
    }

    /// This node's name in the lease.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The site this node serves.
    pub fn site(&self) -> &str {
        &self.config.site
    }

    /// The site's stream.
    pub fn stream(&self) -> &SiteStream {
        &self.stream
    }

    /// Who holds the lease now, if anyone.
    pub async fn leader(&self) -> Result<Option<LeaseHolder>, ClusterError> {
        self.lease.holder().await
    }

    /// The hook for [`EventLog::open_replicated`]: refuses every append until
    /// this node leads; must be made inside the tokio runtime.
    pub fn replicator(&self) -> Arc<Replicator> {
        Arc::new(Replicator {
            handle: tokio::runtime::Handle::current(),
            stream: self.stream.clone(),
            state: Arc::new(LeaderState::default()),
        })
    }

    /// Follows the stream into `log` until this node holds the lease and has
    /// caught up; then `replicator` accepts appends and the returned
    /// [`Leadership`] keeps the lease. `None` if `cancel` fired first.
    /// `console` (this node's console URL) is published in the lease.
    pub async fn follow_until_leader(
        &self,
        log: &EventLog,
        replicator: &Replicator,
        console: Option<String>,
        cancel: &CancellationToken,
    ) -> Result<Option<Leadership>, ClusterError> {
        follow::check_prefix(&self.stream, log).await?;
        let stop_following = CancellationToken::new();
        let follower = tokio::spawn(follow::follow_patiently(
            self.stream.clone(),
            log.clone(),
            stop_following.clone(),
        ));
        let ttl = self.config.lease_ttl();
        let attempt_every = (ttl / 4).max(Duration::from_millis(100));
        let holder = LeaseHolder {
            node: self.node.clone(),
            console,
        };
        let taken = loop {
            if follower.is_finished() {
                break None;
            }
            let sent = Instant::now();
            match self.lease.try_take(&holder).await {
                Ok(Some(revision)) => break Some((revision, sent)),
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot ask for the lease: {e}"),
            }
            tokio::select! {
                _ = cancel.cancelled() => break None,
                _ = tokio::time::sleep(attempt_every) => {}
            }
        };
        let Some((revision, sent)) = taken else {
            stop_following.cancel();
            return match follower.await {
                Ok(Err(e)) => Err(e),
                _ => Ok(None),
            };
        };
        tracing::info!(node = %self.node, "took the leadership lease; catching up");
        let state = replicator.state.clone();
        state.renewed(sent + ttl);
        let keeper = tokio::spawn(lease::keep(
            self.lease.clone(),
            holder,
            revision,
            ttl,
            state.clone(),
        ));
        // Nothing is appended to the stream while this node holds the lease
        // (a deposed leader's own clock stops it, and its stale expected
        // sequence would be refused): catch up to the end as it stands now.
        let end = self.stream.last_seq().await?;
        let caught_up = follow::wait_for(log, end, &state.lost, cancel).await;
        stop_following.cancel();
        match follower.await {
            Ok(Err(e)) => {
                state.step_down(format!("following failed: {e}"));
                return Err(e);
            }
            Err(e) => return Err(js_error("follower", e)),
            Ok(Ok(())) => {}
        }
        if !caught_up {
            keeper.abort();
            return Ok(None);
        }
        follow::seed(&self.stream, log, end).await?;
        state.leading.store(true, Ordering::SeqCst);
        tracing::info!(node = %self.node, last_seq = log.last_seq(), "leading");
        Ok(Some(Leadership { state, keeper }))
    }
}

/// Attempts at a JetStream request made while joining: a cluster that has
/// just started (or is electing a leader) times requests out for a while.
const JOIN_ATTEMPTS: u32 = 20;
/// Pause between those attempts.
const JOIN_RETRY: Duration = Duration::from_millis(500);

/// `request` until it succeeds, at most [`JOIN_ATTEMPTS`] times.
async fn patiently<T, E, F, Fut>(what: &str, request: F) -> Result<T, ClusterError>
where
    E: std::fmt::Display,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= JOIN_ATTEMPTS => return Err(js_error(what, e)),
            Err(e) => {
                tracing::info!("JetStream {what}: {e}; retrying");
                attempt += 1;
                tokio::time::sleep(JOIN_RETRY).await;
            }
        }
    }
}

/// A node's host name and process id: distinct for two nodes on one host.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|_| "node".into())
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>();
    format!("{host}-{}", std::process::id())
}

/// The site's JetStream stream: one message per event, stream seq = event seq.
#[derive(Clone)]
pub struct SiteStream {
    js: jetstream::Context,
    name: String,
    subject: String,
    /// Publishes sent again after a transient failure (all clones share it).
    retried: Arc<AtomicU64>,
    /// How long a publish whose outcome is unknown is retried: one lease TTL.
    retry_for: Duration,
}

impl SiteStream {
    async fn open(js: &jetstream::Context, config: &ClusterConfig) -> Result<Self, ClusterError> {
        let name = config.stream_name();
        let subject = config.subject();
        let stream = jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            num_replicas: config.replicas,
            storage: jetstream::stream::StorageType::File,
            // Nothing ages out or is discarded: the stream is the history.
            discard: jetstream::stream::DiscardPolicy::New,
            allow_direct: true,
            // A leader's group goes in as one all-or-nothing batch.
            allow_atomic_publish: true,
            ..Default::default()
        };
        patiently(&format!("stream {name}"), || {
            js.get_or_create_stream(stream.clone())
        })
        .await?;
        // A stream just made may not be known yet to the server this client
        // talks to: a leader's first append would get "no stream found" and
        // step down. A publish expecting an impossible last sequence is
        // refused by the stream itself and stores nothing; once that refusal
        // comes back, publishes reach the stream.
        patiently(&format!("stream {name} reachable"), || async {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                u64::MAX.to_string().as_str(),
            );
            let probe = PublishMessage::build()
                .payload(Bytes::new())
                .headers(headers);
            let ack = js
                .send_publish(subject.clone(), probe)
                .await
                .map_err(|e| e.to_string())?;
            match ack.await {
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(()),
                Err(e) => Err(e.to_string()),
                // No stream ends at u64::MAX; were it stored, followers
                // would refuse the record loudly: never retried.
                Ok(_) => {
                    tracing::error!("stream {name}: a probe publish was stored");
                    Ok(())
                }
            }
        })
        .await?;
        Ok(SiteStream {
            js: js.clone(),
            name,
            subject,
            retried: Arc::default(),
            retry_for: config.lease_ttl(),
        })
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream's last sequence (0 = empty).
    pub async fn last_seq(&self) -> Result<u64, ClusterError> {
        let stream = self.handle().await?;
        // A read: retried like the handle, through a NATS server's loss.
        patiently(&format!("stream {} info", self.name), || async {
            stream.get_info().await.map(|i| i.state.last_sequence)
        })
        .await
    }

    /// The stored bytes of the record at `seq`, if the stream has it.
    pub async fn record(&self, seq: u64) -> Result<Option<Vec<u8>>, ClusterError> {
        let stream = self.handle().await?;
        match stream.direct_get(seq).await {
            Ok(message) => Ok(Some(message.payload.to_vec())),
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(js_error(&format!("stream {} record {seq}", self.name), e)),
        }
    }

    /// Publishes `records` (seq, exact bytes, consecutive) fenced on the
    /// stream ending at the first one's `seq - 1`
    /// (`Nats-Expected-Last-Sequence`), and returns once JetStream stored
    /// them all. A stale writer gets an error and extends nothing.
    ///
    /// Several records go as one JetStream atomic batch (`Nats-Batch-*`):
    /// all stored or none, the fence checked once for the batch. Pipelined
    /// as separate messages they could not be: after one foreign append, a
    /// stale batch's first record would be refused but its second
    /// (expecting one more) would match and be stored after a record it
    /// does not chain to.
    ///
    /// A transient failure (see [`SiteStream::publish_while`]) is retried.
    pub async fn publish(&self, records: &[(u64, &[u8])]) -> Result<(), ClusterError> {
        self.publish_while(records, || Ok(())).await
    }

    /// [`SiteStream::publish`], retrying a failure whose outcome is unknown
    /// (a timeout, a lost connection, no responders while the stream's Raft
    /// group elects a leader) for at most one lease TTL after the first
    /// failure, each time only if `may_retry` still allows it (a leader:
    /// while its lease is valid). A stream unavailable for longer than that
    /// is not waited for: the leader steps down, as its successor would
    /// take over by then anyway.
    ///
    /// A retry is safe because it is the same bytes under the same fence:
    /// JetStream stores at most one of the attempts. If an earlier attempt
    /// was stored after all, the retry is refused as stale; the records then
    /// in the stream at those seqs are read back, and only if they are these
    /// very bytes is the publish a success. A refusal with no uncertain
    /// attempt before it (another writer moved the stream on) is never
    /// retried.
    pub async fn publish_while(
        &self,
        records: &[(u64, &[u8])],
        may_retry: impl Fn() -> Result<(), String>,
    ) -> Result<(), ClusterError> {
        for chunk in records.chunks(MAX_ATOMIC_BATCH) {
            self.publish_chunk(chunk, &may_retry).await?;
        }
        Ok(())
    }

    /// How many publishes were sent again after a transient failure since
    /// this connection was made.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    async fn publish_chunk(
        &self,
        records: &[(u64, &[u8])],
        may_retry: &impl Fn() -> Result<(), String>,
    ) -> Result<(), ClusterError> {
        let mut uncertain = false;
        let mut attempt = 1;
        let mut give_up = None;
        loop {
            let failure = match self.publish_batch(records, attempt).await {
                Ok(()) => return Ok(()),
                Err(Failed::Refused(e)) if uncertain => match self.holds(records).await {
                    Ok(true) => {
                        tracing::info!(
                            "{}: an earlier attempt was stored after all",
                            describe(records)
                        );
                        return Ok(());
                    }
                    Ok(false) => return Err(e),
                    // Still unknown: the next attempt settles it.
                    Err(check) => check,
                },
                Err(Failed::Refused(e) | Failed::Final(e)) => return Err(e),
                Err(Failed::Uncertain(e)) => {
                    uncertain = true;
                    e
                }
            };
            let give_up = *give_up.get_or_insert_with(|| Instant::now() + self.retry_for);
            let pause = (PUBLISH_RETRY * attempt).min(PUBLISH_RETRY_MAX);
            if Instant::now() + pause >= give_up {
                return Err(failure);
            }
            if let Err(why) = may_retry() {
                return Err(ClusterError::JetStream {
                    what: describe(records),
                    message: format!("{failure}; not retried: {why}"),
                });
            }
            tracing::warn!("{failure}; retrying (after attempt {attempt})");
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// Whether the stream holds exactly `records` at their seqs.
    async fn holds(&self, records: &[(u64, &[u8])]) -> Result<bool, ClusterError> {
        for (seq, bytes) in records {
            if self.record(*seq).await?.as_deref() != Some(*bytes) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn publish_batch(&self, records: &[(u64, &[u8])], attempt: u32) -> Result<(), Failed> {
        let (Some((first, head)), Some((last, _))) = (records.first(), records.last()) else {
            return Ok(());
        };
        let (first, last) = (*first, *last);
        // The first record's hash names the batch (unique: it chains to all
        // before it), and the attempt keeps a retry apart from the remains
        // of an earlier, unfinished one.
        let batch_id = format!("{}-{attempt}", hex::encode(head.get(..16).unwrap_or(head)));
        let client = self.js.client();
        let mut ack = None;
        for (i, (seq, bytes)) in records.iter().enumerate() {
            let mut headers = async_nats::HeaderMap::new();
            if i == 0 {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    (first - 1).to_string().as_str(),
                );
            }
            let payload = Bytes::copy_from_slice(bytes);
            if records.len() == 1 {
                let message = PublishMessage::build().payload(payload).headers(headers);
                ack = Some(self.send(first, message).await.map_err(Failed::Uncertain)?);
                break;
            }
            headers.insert(async_nats::header::NATS_BATCH_ID, batch_id.as_str());
            headers.insert(
                async_nats::header::NATS_BATCH_SEQUENCE,
                (i + 1).to_string().as_str(),
            );
            if *seq == last {
                headers.insert(async_nats::header::NATS_BATCH_COMMIT, "1");
                let message = PublishMessage::build().payload(payload).headers(headers);
                ack = Some(self.send(last, message).await.map_err(Failed::Uncertain)?);
            } else {
                client
                    .publish_with_headers(self.subject.clone(), headers, payload)
                    .await
                    .map_err(|e| Failed::Uncertain(js_error(&format!("publish seq {seq}"), e)))?;
            }
        }
        let Some(ack) = ack else {
            return Ok(());
        };
        match ack.await {
            Ok(ack) if ack.sequence == last => Ok(()),
            Ok(ack) => Err(Failed::Final(ClusterError::Diverged {
                stream: self.name.clone(),
                seq: last,
                reason: format!("JetStream stored it as stream sequence {}", ack.sequence),
            })),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(Failed::Refused(ClusterError::JetStream {
                    what: describe(records),
                    message: format!(
                        "refused: the stream no longer ends at seq {} (another leader appended)",
                        first - 1
                    ),
                }))
            }
            // A timeout, no responders, a server error: stored or not,
            // JetStream did not say.
            Err(e) => Err(Failed::Uncertain(ClusterError::JetStream {
                what: describe(records),
                message: format!("refused: {e}"),
            })),
        }
    }

    async fn send(
        &self,
        seq: u64,
        message: PublishMessage,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, ClusterError> {
        self.js
            .send_publish(self.subject.clone(), message)
            .await
            .map_err(|e| js_error(&format!("publish seq {seq}"), e))
    }

    /// The stream's handle. Only a read, so a request that times out (a
    /// NATS server lost, the stream's Raft group electing) is asked again
    /// for a while, as when joining, rather than ending a standby or a new
    /// leader's catch-up.
    async fn handle(&self) -> Result<jetstream::stream::Stream, ClusterError> {
        patiently(&format!("stream {}", self.name), || {
            self.js.get_stream(&self.name)
        })
        .await
    }
}

/// Records in one JetStream atomic batch at most (the server's default limit
/// is 1,000).
const MAX_ATOMIC_BATCH: usize = 500;
/// Pause before the second attempt at a publish whose outcome is unknown
/// (then twice, three times as long, …).
const PUBLISH_RETRY: Duration = Duration::from_millis(250);
/// Longest pause between two attempts.
const PUBLISH_RETRY_MAX: Duration = Duration::from_secs(1);

/// How one publish attempt failed.
enum Failed {
    /// Certainly not stored: the stream no longer ends where the fence says.
    Refused(ClusterError),
    /// Stored or not, JetStream did not say: a retry may settle it.
    Uncertain(ClusterError),
    /// Certainly wrong, and a retry would not change it.
    Final(ClusterError),
}

/// `publish seqs A..=B` or `publish seq A`, for errors.
fn describe(records: &[(u64, &[u8])]) -> String {
    match (records.first(), records.last()) {
        (Some((first, _)), Some((last, _))) if first != last => {
            format!("publish seqs {first}..={last}")
        }
        (Some((first, _)), _) => format!("publish seq {first}"),
        _ => "publish".into(),
    }
}

/// Whether this node may append, and why it stopped.
#[derive(Default)]
struct LeaderState {
    /// Caught up and holding the lease.
    leading: AtomicBool,
    /// Until when the lease is certainly this node's (its own clock).
    valid_until: Mutex<Option<Instant>>,
    /// Fires once the node stepped down.
    lost: CancellationToken,
    why: Mutex<Option<String>>,
}

impl LeaderState {
    fn renewed(&self, until: Instant) {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }

    /// Whether the lease is still certainly this node's, by its own clock.
    fn lease_valid(&self) -> bool {
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Whether an append may go out now; the reason when not.
    fn may_append(&self) -> Result<(), String> {
        if self.lost.is_cancelled() {
            return Err(self
                .why()
                .unwrap_or_else(|| "this node stepped down".into()));
        }
        if !self.leading.load(Ordering::SeqCst) {
            return Err("this node is a standby: only the leader appends".into());
        }
        if self.lease_valid() {
            return Ok(());
        }
        let why = "the leadership lease expired before it was renewed".to_string();
        self.step_down(why.clone());
        Err(why)
    }

    fn step_down(&self, why: String) {
        self.leading.store(false, Ordering::SeqCst);
        self.why
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| {
                tracing::warn!("stepping down: {why}");
                why
            });
        self.lost.cancel();
    }

    fn why(&self) -> Option<String> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The [`Replicate`] hook of a cluster node's event log.
pub struct Replicator {
    handle: tokio::runtime::Handle,
    stream: SiteStream,
    state: Arc<LeaderState>,
}

impl Replicate for Replicator {
    fn replicate(&self, records: &[(u64, &[u8])]) -> Result<(), String> {
        self.state.may_append()?;
        // The writer's sequencer thread is not a runtime thread: it may block.
        // A transient failure is retried only while this node may still
        // append (its lease valid by its own clock, not stepped down).
        let publish = self
            .stream
            .publish_while(records, || self.state.may_append());
        match self.handle.block_on(publish) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Refused, or still unknown after the retries: either way
                // this node's view of the stream can no longer be trusted to
                // lead.
                let why = e.to_string();
                self.state.step_down(why.clone());
                Err(why)
            }
        }
    }
}

/// This node leads: the lease is kept until [`Leadership::lost`] fires.
pub struct Leadership {
    state: Arc<LeaderState>,
    keeper: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Resolves once this node has stepped down, with the reason.
    pub async fn lost(&self) -> String {
        self.state.lost.cancelled().await;
        self.state
            .why()
            .unwrap_or_else(|| "this node stepped down".into())
    }

    /// Whether this node has stepped down, and why.
    pub fn stepped_down(&self) -> Option<String> {
        self.state.lost.is_cancelled().then(|| {
            self.state
                .why()
                .unwrap_or_else(|| "this node stepped down".into())
        })
    }

    /// Stops appending and renewing (the lease then lapses after its TTL).
    pub fn resign(&self) {
        self.state.step_down("resigned".into());
        self.keeper.abort();
    }
}
