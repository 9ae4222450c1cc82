//! What keeps the listener up: how many connections it holds and from whom,
//! how long a connection may take to prove it holds a token, and how often a
//! token holder may ask for expensive or log-growing work.
//!
//! Two adversaries. Anyone who can reach the port, with no token, can open
//! connections and stall them (a TCP connection that never speaks, a TLS
//! handshake that never finishes, headers sent a byte a minute): each is
//! capped per source address and in total, and each must authenticate within
//! a deadline. When the total cap is reached the *oldest connection that has
//! not yet authenticated* is closed to make room, so a flood from many
//! addresses cycles through the unauthenticated slots and a real console,
//! which authenticates within milliseconds, still gets in; authenticated
//! sessions are never evicted. A token holder can ask for `inspect` (which
//! loads the connector's API server) and post alerts (each one an event):
//! both are token buckets per principal, and refusals are tallied and
//! recorded as one event per principal and kind per report window, so the
//! refusals themselves cannot grow the log without bound.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// `[remote.limits]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections held at once, authenticated or not (lowered at start to
    /// fit the process's descriptor limit).
    pub max_connections: usize,
    /// Connections held at once from one source address.
    pub max_connections_per_address: usize,
    /// How long a TLS handshake may take.
    pub handshake_timeout_ms: u64,
    /// How long a connection may take, after its handshake, to send request
    /// headers with a valid token; also the limit for each later request's headers.
    pub header_timeout_ms: u64,
    /// Largest request head (request line and headers) read before a token is checked.
    pub max_header_bytes: usize,
    /// `inspect` commands per principal per minute, and the burst allowed.
    pub inspect_per_minute: u32,
    pub inspect_burst: u32,
    /// Alerts posted per principal per minute, and the burst allowed (a
    /// notification with more alerts than the burst is refused as too large).
    pub alerts_per_minute: u32,
    pub alerts_burst: u32,
    /// Rate-limit refusals are recorded as one event per principal and kind
    /// per this many milliseconds, carrying the count.
    pub refusal_report_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_address: 64,
            handshake_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            inspect_per_minute: 30,
            inspect_burst: 10,
            alerts_per_minute: 600,
            alerts_burst: 300,
            refusal_report_ms: 60_000,
        }
    }
}

/// hyper's smallest read buffer: a request head must fit in at least this.
pub const MIN_HEADER_BYTES: usize = 8192;

impl Limits {
    /// Refuses values that would disable a limit or that the HTTP layer cannot honour.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("inspect_per_minute", self.inspect_per_minute.into()),
            ("inspect_burst", self.inspect_burst.into()),
            ("alerts_per_minute", self.alerts_per_minute.into()),
            ("alerts_burst", self.alerts_burst.into()),
            ("refusal_report_ms", self.refusal_report_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("remote.limits.{name} must be greater than 0"));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(format!(
                "remote.limits.max_header_bytes must be at least {MIN_HEADER_BYTES} (it is {})",
                self.max_header_bytes
            ));
        }
        Ok(())
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn refusal_report_every(&self) -> Duration {
        Duration::from_millis(self.refusal_report_ms)
    }
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its source address already holds its share.
    PerAddress,
    /// Every slot is held by an authenticated session.
    Full,
}

/// Connection counts since the last report, for the file log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionCounts {
    pub refused_per_address: u64,
    pub refused_full: u64,
    pub evicted: u64,
    pub timed_out: u64,
    pub unauthorized: u64,
}

impl AdmissionCounts {
    fn is_zero(&self) -> bool {
        *self == AdmissionCounts::default()
    }
}

/// The connections the listener holds.
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    inner: Mutex<AdmissionInner>,
}

#[derive(Default)]
struct AdmissionInner {
    next_id: u64,
    slots: HashMap<u64, SlotInfo>,
    per_address: HashMap<IpAddr, usize>,
    /// Unauthenticated slots, oldest first (ids grow with time).
    pending: BTreeSet<u64>,
    counts: AdmissionCounts,
}

struct SlotInfo {
    address: IpAddr,
    evict: CancellationToken,
}

impl Admission {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_address,
            inner: Mutex::new(AdmissionInner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, AdmissionInner> {
        // A panic elsewhere while holding the lock leaves plain counters: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a new connection from `address`, making room by closing
    /// the oldest unauthenticated connection if every slot is taken.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refused> {
        let mut inner = self.lock();
        if inner.per_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            inner.counts.refused_per_address += 1;
            return Err(Refused::PerAddress);
        }
        if inner.slots.len() >= self.max_total {
            let Some(oldest) = inner.pending.first().copied() else {
                inner.counts.refused_full += 1;
                return Err(Refused::Full);
            };
            if let Some(info) = inner.release(oldest) {
                info.evict.cancel();
            }
            inner.counts.evicted += 1;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = CancellationToken::new();
        inner.slots.insert(
            id,
            SlotInfo {
                address,
                evict: evict.clone(),
            },
        );
        *inner.per_address.entry(address).or_insert(0) += 1;
        inner.pending.insert(id);
        Ok(Slot {
            admission: self.clone(),
            id,
            evicted: evict,
        })
    }

    /// Connections held now: (all, not yet authenticated).
    pub fn held(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.slots.len(), inner.pending.len())
    }

    /// The counts since the last call, or `None` if nothing happened.
    pub fn take_counts(&self) -> Option<AdmissionCounts> {
        let mut inner = self.lock();
        let counts = std::mem::take(&mut inner.counts);
        (!counts.is_zero()).then_some(counts)
    }

    /// Notes a connection closed for missing its deadline.
    pub fn note_timeout(&self) {
        self.lock().counts.timed_out += 1;
    }

    /// Notes a request refused for a missing or unknown token.
    pub fn note_unauthorized(&self) {
        self.lock().counts.unauthorized += 1;
    }
}

impl AdmissionInner {
    fn release(&mut self, id: u64) -> Option<SlotInfo> {
        let info = self.slots.remove(&id)?;
        self.pending.remove(&id);
        if let Some(n) = self.per_address.get_mut(&info.address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&info.address);
            }
        }
        Some(info)
    }
}

/// One admitted connection; its place is given back when dropped.
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    evicted: CancellationToken,
}

impl Slot {
    /// The connection presented a valid token: it can no longer be evicted.
    pub fn authenticated(&self) {
        self.admission.lock().pending.remove(&self.id);
    }

    /// Whether the connection has presented a valid token (or was evicted).
    pub fn is_authenticated(&self) -> bool {
        !self.admission.lock().pending.contains(&self.id)
    }

    /// Cancelled when the slot is taken for a newer connection.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.lock().release(self.id);
    }
}

/// A token bucket: `capacity` tokens, refilled at `per_minute` a minute.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limited {
    /// `inspect` commands (each loads a connector's API server).
    Inspect,
    /// Alerts posted to the Alertmanager webhook (each one an event).
    Alerts,
}

impl Limited {
    /// How the refusal event names the refused work.
    pub fn describe(self) -> &'static str {
        match self {
            Limited::Inspect => "inspect",
            Limited::Alerts => "post alerts",
        }
    }
}

/// A refusal answer: how long until the request could succeed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRefusal {
    pub retry_after: Duration,
    /// The request asks for more at once than the burst allows: it never will.
    pub exceeds_burst: bool,
}

/// Refusals not yet recorded, for one principal and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalReport {
    pub principal: String,
    pub limited: Limited,
    pub refused: u64,
}

/// Token buckets per principal and kind, and the tally of refusals.
pub struct RateLimits {
    limits: Limits,
    inner: Mutex<RateInner>,
}

#[derive(Default)]
struct RateInner {
    buckets: HashMap<(String, Limited), Bucket>,
    /// Refusals since the last report (a sorted map, so reports come in a stable order).
    refused: std::collections::BTreeMap<(String, Limited), u64>,
}

impl RateLimits {
    pub fn new(limits: &Limits) -> RateLimits {
        RateLimits {
            limits: limits.clone(),
            inner: Mutex::new(RateInner::default()),
        }
    }

    fn rate(&self, what: Limited) -> (f64, f64) {
        let (per_minute, burst) = match what {
            Limited::Inspect => (self.limits.inspect_per_minute, self.limits.inspect_burst),
            Limited::Alerts => (self.limits.alerts_per_minute, self.limits.alerts_burst),
        };
        (f64::from(per_minute) / 60.0, f64::from(burst))
    }

    /// Takes `n` tokens of `what` for `principal` at `now`, or tallies a refusal.
    pub fn take(
        &self,
        principal: &str,
        what: Limited,
        n: u32,
        now: Instant,
    ) -> Result<(), RateRefusal> {
        let (per_second, burst) = self.rate(what);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (principal.to_string(), what);
        let bucket = inner.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now.max(bucket.last);
        let wanted = f64::from(n);
        if bucket.tokens >= wanted {
            bucket.tokens -= wanted;
            return Ok(());
        }
        let exceeds_burst = wanted > burst;
        let missing = (wanted.min(burst) - bucket.tokens).max(0.0);
        let retry_after = Duration::from_secs_f64((missing / per_second).ceil().max(1.0));
        *inner.refused.entry(key).or_insert(0) += 1;
        Err(RateRefusal {
            retry_after,
            exceeds_burst,
        })
    }

    /// The refusals tallied since the last call (one report per principal and kind).
    pub fn take_reports(&self) -> Vec<RefusalReport> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut inner.refused)
            .into_iter()
            .map(|((principal, limited), refused)| RefusalReport {
                principal,
                limited,
                refused,
            })
            .collect()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl RefusalReport {
    /// The detail recorded with the refusal event.
    pub fn detail(&self, limits: &Limits, window: Duration) -> String {
        let (per_minute, burst) = match self.limited {
            Limited::Inspect => (limits.inspect_per_minute, limits.inspect_burst),
            Limited::Alerts => (limits.alerts_per_minute, limits.alerts_burst),
        };
        format!(
            "rate limited: {} request(s) refused within {} ms (limit {per_minute} a minute, burst {burst})",
            self.refused,
            window.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn per_address_cap_refuses_only_that_address() {
        let a = Admission::new(10, 2);
        let _s1 = a.admit(addr(2)).unwrap();
        let s2 = a.admit(addr(2)).unwrap();
        assert_eq!(a.admit(addr(2)).err(), Some(Refused::PerAddress));
        let _other = a.admit(addr(3)).unwrap();
        drop(s2);
        let _again = a.admit(addr(2)).unwrap();
        assert_eq!(a.take_counts().unwrap().refused_per_address, 1);
        assert_eq!(a.take_counts(), None);
    }

    #[test]
    fn a_full_listener_evicts_the_oldest_unauthenticated_and_never_a_session() {
        let a = Admission::new(3, 10);
        let session = a.admit(addr(1)).unwrap();
        session.authenticated();
        let old = a.admit(addr(2)).unwrap();
        let newer = a.admit(addr(2)).unwrap();
        let newest = a.admit(addr(3)).unwrap();
        assert!(old.evicted().is_cancelled());
        assert!(!newer.evicted().is_cancelled());
        assert!(!session.evicted().is_cancelled());
        assert_eq!(a.held(), (3, 2));
        // The evicted slot's drop gives nothing back twice.
        drop(old);
        assert_eq!(a.held(), (3, 2));
        newer.authenticated();
        newest.authenticated();
        assert_eq!(a.admit(addr(4)).err(), Some(Refused::Full));
        let counts = a.take_counts().unwrap();
        assert_eq!((counts.evicted, counts.refused_full), (1, 1));
        drop(session);
        assert!(a.admit(addr(4)).is_ok());
    }

    #[test]
    fn the_bucket_refills_with_time_and_tallies_refusals() {
        let limits = Limits {
            inspect_per_minute: 60,
            inspect_burst: 2,
            ..Limits::default()
        };
        let r = RateLimits::new(&limits);
        let t0 = Instant::now();
        assert!(r.take("vic", Limited::Inspect, 1, t0).is_ok());
        assert!(r.take("vic", Limited::Inspect, 1, t0).is_ok());
        let refusal = r.take("vic", Limited::Inspect, 1, t0).unwrap_err();
        assert_eq!(refusal.retry_after, Duration::from_secs(1));
        assert!(!refusal.exceeds_burst);
        // Another principal has its own bucket; alerts are another kind.
        assert!(r.take("olga", Limited::Inspect, 1, t0).is_ok());
        assert!(r.take("vic", Limited::Alerts, 1, t0).is_ok());
        for _ in 0..99 {
            assert!(r.take("vic", Limited::Inspect, 1, t0).is_err());
        }
        // One second later, one token; not more than the burst after an hour.
        assert!(
            r.take("vic", Limited::Inspect, 1, t0 + Duration::from_secs(1))
                .is_ok()
        );
        let later = t0 + Duration::from_secs(3600);
        assert!(r.take("vic", Limited::Inspect, 2, later).is_ok());
        assert!(r.take("vic", Limited::Inspect, 1, later).is_err());
        // A clock that steps back takes nothing away and gives nothing.
        assert!(r.take("vic", Limited::Inspect, 1, t0).is_err());

        let reports = r.take_reports();
        assert_eq!(
            reports,
            vec![RefusalReport {
                principal: "vic".into(),
                limited: Limited::Inspect,
                refused: 102,
            }]
        );
        assert!(r.take_reports().is_empty(), "each refusal reported once");
        let detail = reports[0].detail(&limits, Duration::from_secs(60));
        assert!(
            detail.contains("102") && detail.contains("burst 2"),
            "{detail}"
        );
    }

    #[test]
    fn more_than_the_burst_at_once_is_never_granted() {
        let limits = Limits {
            alerts_burst: 3,
            ..Limits::default()
        };
        let r = RateLimits::new(&limits);
        let t0 = Instant::now();
        let refusal = r.take("am", Limited::Alerts, 4, t0).unwrap_err();
        assert!(refusal.exceeds_burst);
        assert!(r.take("am", Limited::Alerts, 3, t0).is_ok());
    }

    #[test]
    fn limits_that_disable_themselves_are_refused() {
        assert!(Limits::default().validate().is_ok());
        let e = Limits {
            max_connections: 0,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("remote.limits.max_connections"), "{e}");
        let e = Limits {
            max_header_bytes: 100,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("8192"), "{e}");
    }
}
