//! The notifier task: follows the event log, routes each notifiable event,
//! and hands it to one worker per channel. Workers retry with back-off behind
//! their breaker and record every attempt through the log's single writer.
//!
//! Never blocking the runtime: the notifier only reads the log and appends
//! its own events; a full channel queue drops the message (recorded as
//! failed) rather than waiting. Not notifying twice after a restart: each
//! channel resumes after the last event it finished with (sent, or gave up),
//! as recorded in the log; per channel, events are delivered in seq order.
//! What was missed while nothing ran is sent only within the replay window.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::delivery::{Backoff, Breaker};
use super::{Channel, Message, NotifyPlan, redact};
use crate::clock::SharedClock;
use crate::event::{EventKind, NewEvent};
use crate::state::State;
use crate::store::EventLog;

/// The actor of every event the notifier records.
pub const ACTOR: &str = "notify";

/// Starts the notifier. `state` is the runtime's state at start (folded up to
/// `state.last_seq`); the notifier keeps its own copy up to date.
pub fn spawn(
    log: EventLog,
    clock: SharedClock,
    plan: Arc<NotifyPlan>,
    state: State,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    // Events before this were recorded while no notifier ran.
    let live_from = log.last_seq() + 1;
    tokio::spawn(async move {
        let names = plan.channel_names();
        let scan_log = log.clone();
        let done = match tokio::task::spawn_blocking(move || finished_up_to(&scan_log)).await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("notifier: cannot read past notifications: {e}");
                return;
            }
        };
        // A channel with no record starts where the runtime starts: history
        // from before it was configured is not sent.
        let resume: Vec<u64> = names
            .iter()
            .map(|n| done.get(n).map_or(state.last_seq + 1, |s| s + 1))
            .collect();
        let from = resume.iter().copied().min().unwrap_or(state.last_seq + 1);
        let window = chrono::Duration::from_std(plan.replay_window).unwrap_or_default();
        tracing::info!(from, channels = ?names, "notifier started");

        let mut seed_rng = match plan.seed {
            Some(s) => ChaCha8Rng::seed_from_u64(s),
            None => ChaCha8Rng::from_os_rng(),
        };
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for c in &plan.channels {
            let (tx, rx) = mpsc::channel::<Message>(plan.queue);
            queues.push(tx);
            let worker = Worker {
                name: c.name.clone(),
                channel: c.channel.clone(),
                log: log.clone(),
                clock: clock.clone(),
                backoff: plan.backoff,
                breaker: Breaker::new(
                    plan.breaker.failure_threshold,
                    std::time::Duration::from_secs(plan.breaker.cooldown_secs),
                ),
                rng: ChaCha8Rng::seed_from_u64(rand::Rng::random(&mut seed_rng)),
            };
            workers.push(tokio::spawn(worker.run(rx, cancel.clone())));
        }

        let mut state = state;
        let mut sub = log.subscribe(from);
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                next = sub.next() => next,
            };
            let event = match next {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    tracing::warn!("notifier: skipping an unreadable event: {e}");
                    continue;
                }
                None => break,
            };
            state.apply(&event);
            let Some(message) = Message::from_event(&event, &state) else {
                continue;
            };
            if event.seq < live_from && clock.now() - event.at > window {
                tracing::info!(
                    seq = event.seq,
                    "not notifying: older than the replay window"
                );
                continue;
            }
            for i in plan.targets(&message) {
                if event.seq < resume[i] {
                    continue;
                }
                if let Err(e) = queues[i].try_send(message.clone()) {
                    let (name, channel) = (&plan.channels[i].name, &plan.channels[i].channel);
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "queue full: dropped",
                        mpsc::error::TrySendError::Closed(_) => "channel worker stopped",
                    };
                    tracing::warn!(channel = %name, seq = event.seq, "notification {why}");
                    let _ = record(
                        &log,
                        &clock,
                        EventKind::NotificationFailed {
                            channel: name.clone(),
                            to: channel.recipient(),
                            error: why.into(),
                            event_seq: Some(event.seq),
                            attempt: 0,
                            gave_up: true,
                        },
                    )
                    .await;
                }
            }
        }
        drop(queues);
        for w in workers {
            let _ = w.await;
        }
    })
}

/// Per channel name, the highest event seq it has finished with.
fn finished_up_to(log: &EventLog) -> BTreeMap<String, u64> {
    let mut done = BTreeMap::new();
    for event in log.scan(1).flatten() {
        let finished = match event.kind {
            EventKind::NotificationSent {
                channel,
                event_seq: Some(seq),
                ..
            } => Some((channel, seq)),
            EventKind::NotificationFailed {
                channel,
                event_seq: Some(seq),
                gave_up: true,
                ..
            } => Some((channel, seq)),
            _ => None,
        };
        if let Some((channel, seq)) = finished {
            let e = done.entry(channel).or_insert(seq);
            *e = (*e).max(seq);
        }
    }
    done
}

async fn record(
    log: &EventLog,
    clock: &SharedClock,
    kind: EventKind,
) -> Result<(), crate::store::StoreError> {
    log.append(NewEvent::new(clock.now(), ACTOR, kind))
        .await
        .map(|_| ())
}

/// Delivers one channel's messages in order.
struct Worker {
    name: String,
    channel: Arc<dyn Channel>,
    log: EventLog,
    clock: SharedClock,
    backoff: Backoff,
    breaker: Breaker,
    rng: ChaCha8Rng,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>, cancel: CancellationToken) {
        let secrets = self.channel.secrets();
        let to = self.channel.recipient();
        loop {
            let message = tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let now = self.clock.now();
                let outcome = match self.breaker.allow(now) {
                    Err(open) => Err(super::DeliveryError::permanent(format!(
                        "circuit breaker open until {}; not attempted",
                        open.until.format("%H:%M:%S")
                    ))),
                    Ok(()) => {
                        let result = tokio::select! {
                            _ = cancel.cancelled() => return,
                            r = self.channel.deliver(&message) => r,
                        };
                        match &result {
                            Ok(()) => self.breaker.success(),
                            Err(_) => self.breaker.failure(self.clock.now()),
                        }
                        result
                    }
                };
                let (kind, retry) = match outcome {
                    Ok(()) => {
                        tracing::info!(channel = %self.name, seq = message.event_seq, attempt, "notification sent");
                        (
                            EventKind::NotificationSent {
                                channel: self.name.clone(),
                                to: to.clone(),
                                subject: message.title.clone(),
                                event_seq: Some(message.event_seq),
                                attempt,
                            },
                            false,
                        )
                    }
                    Err(e) => {
                        let error = redact(&e.message, &secrets);
                        let gave_up = !e.retryable || attempt >= self.backoff.max_attempts;
                        tracing::warn!(channel = %self.name, seq = message.event_seq, attempt, gave_up, "notification failed: {error}");
                        (
                            EventKind::NotificationFailed {
                                channel: self.name.clone(),
                                to: to.clone(),
                                error,
                                event_seq: Some(message.event_seq),
                                attempt,
                                gave_up,
                            },
                            !gave_up,
                        )
                    }
                };
                if record(&self.log, &self.clock, kind).await.is_err() {
                    // The log is closed: the runtime is stopping.
                    return;
                }
                if !retry {
                    break;
                }
                let wait = self.backoff.delay(attempt, &mut self.rng);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.clock.sleep(wait) => {}
                }
            }
        }
    }
}
