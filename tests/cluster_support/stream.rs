//! The test's own view of a site's stream: an ordered JetStream consumer
//! that decodes every stored record, notes when it saw it, and wakes
//! waiters (awaited, never slept on).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
};
use futures::StreamExt;
use shieldops::event::Event;
use tokio::sync::watch;

use super::NatsCluster;

/// What the site's stream has stored, as seen from the test.
pub struct Stored {
    js: jetstream::Context,
    stream: String,
    seen: Arc<Mutex<Vec<(Event, Instant)>>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Stored {
    /// Follows the stream of `site` (which must exist) from its first record.
    pub async fn watch(nats: &NatsCluster, site: &str) -> Stored {
        let addrs: Vec<async_nats::ServerAddr> =
            nats.urls().iter().map(|u| u.parse().unwrap()).collect();
        let client = async_nats::ConnectOptions::new()
            .name("test-stream-watch")
            .connect(addrs)
            .await
            .unwrap();
        let js = jetstream::new(client);
        let stream = format!("SHIELDOPS_{site}");
        let consumer = js
            .get_stream(&stream)
            .await
            .unwrap()
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let seen: Arc<Mutex<Vec<(Event, Instant)>>> = Arc::default();
        let (tx, count) = watch::channel(0);
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(message) = messages.next().await {
                    // The ordered consumer recreates itself after a gap
                    // (a lost server): errors are reported, not fatal.
                    let Ok(message) = message else { continue };
                    let event = Event::decode(&message.payload).expect("a stored record decodes");
                    let mut seen = seen.lock().unwrap();
                    let due = seen.len() as u64 + 1;
                    if event.seq < due {
                        continue;
                    }
                    assert_eq!(event.seq, due, "the stream skipped a record");
                    seen.push((event, Instant::now()));
                    tx.send_replace(seen.len());
                }
            })
        };
        Stored {
            js,
            stream,
            seen,
            count,
            task,
        }
    }

    /// Every record seen so far, in seq order.
    pub fn events(&self) -> Vec<Event> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// How many records have been seen.
    pub fn len(&self) -> u64 {
        self.seen.lock().unwrap().len() as u64
    }

    /// When the record at `seq` was seen, if it was.
    pub fn seen_at(&self, seq: u64) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.get(usize::try_from(seq).ok()?.checked_sub(1)?)
            .map(|(_, at)| *at)
    }

    /// Waits (at most `secs`) until `done` holds for the records seen.
    pub async fn until(&mut self, secs: u64, what: &str, done: impl Fn(&[Event]) -> bool) {
        assert!(
            self.within(Duration::from_secs(secs), done).await,
            "timed out after {secs} s waiting for {what} (stream at seq {})",
            self.len()
        );
    }

    /// Waits at most `limit` until `done` holds for the records seen;
    /// whether it does.
    pub async fn within(&mut self, limit: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let events: Vec<Event> = seen.iter().map(|(e, _)| e.clone()).collect();
                if done(&events) {
                    return true;
                }
            }
            match tokio::time::timeout_at(deadline, self.count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("the stream watch ended"),
                Err(_) => return false,
            }
        }
    }

    /// The stream's last sequence as JetStream reports it now.
    pub async fn last_seq(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Asked again while a lost server's clients reconnect.
            match self.js.get_stream(&self.stream).await {
                Ok(mut s) => match s.info().await {
                    Ok(info) => return info.state.last_sequence,
                    Err(e) => assert!(Instant::now() < deadline, "stream info: {e}"),
                },
                Err(e) => assert!(Instant::now() < deadline, "stream: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every record the stream holds now has been seen.
    pub async fn catch_up(&mut self) {
        let end = self.last_seq().await;
        self.until(60, &format!("the stream's seq {end}"), |es| {
            es.len() as u64 >= end
        })
        .await;
    }
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.task.abort();
    }
}
