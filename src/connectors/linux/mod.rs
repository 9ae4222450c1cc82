//! Linux hosts: the machine the console runs on (no configuration needed) and
//! SSH hosts reached through the system OpenSSH client.
//!
//! Each host shows as a `host` resource (load, memory, disks, installed
//! packages as `pkg:NAME` attributes for the security agent) and one
//! `service` resource per interesting systemd unit. A fleet connector polls
//! its hosts concurrently, each bounded by its timeout and circuit breaker, so
//! one dead host costs at most one timeout and then nothing.

mod actions;
pub mod breaker;
pub mod config;
pub mod guardrails;
pub mod hardening;
pub mod packages;
mod preview;
pub mod probe;
mod quarantine;
pub mod services;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::{ConnectorError, InfraConnector, Result, Scope, TimeWindow};
use crate::clock::SharedClock;
use crate::event::StringMap;
use crate::event::{
    Action, ActionOutcome, ConnectorId, Environment, Health, HealthStatus, InfraEvent, Provider,
    Resource, ResourceId, Snapshot,
};
pub use actions::SnapshotData;
pub use config::LinuxConfig;
use probe::HostFacts;
use services::{Manager, Unit};
use transport::{LocalTransport, SshOptions, SshTransport, Transport};

/// How long one poll's answers are reused by the calls that follow it
/// (an investigation asks for health, events and metrics in a row).
const FRESH_FOR: Duration = Duration::from_secs(2);
/// Journal lines per query, at most.
const JOURNAL_LINES: usize = 200;
/// How long hardening facts (sshd settings, file modes) are reused: they
/// change rarely and cost a round trip or more to read.
const HARDENING_FRESH_FOR: Duration = Duration::from_secs(300);

/// Where a host's facts come from.
enum Source {
    /// Read `/proc` directly; commands through the local shell.
    Local,
    /// One shell command over SSH.
    Remote,
}

/// What one poll of a host learned.
#[derive(Clone)]
struct Observation {
    at: Instant,
    facts: std::result::Result<HostFacts, (String, String)>,
    manager: Manager,
    units: Vec<Unit>,
}

#[derive(Default)]
struct PackageCache {
    stamp: Option<i64>,
    packages: BTreeMap<String, String>,
    /// Binary package → dpkg's `Source:` field, where it names one.
    sources: BTreeMap<String, String>,
    error: Option<String>,
}

/// One host of a fleet.
pub struct Host {
    id: ResourceId,
    name: String,
    environment: Environment,
    team: String,
    source: Source,
    transport: Arc<dyn Transport>,
    last: Mutex<Option<Observation>>,
    packages: Mutex<PackageCache>,
    hardening: Mutex<Option<(Instant, hardening::Hardening)>>,
}

impl Host {
    /// This machine, under its hostname.
    pub fn local(environment: Environment, team: &str, timeout: Duration) -> Host {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Host {
            id: ResourceId::new(format!("linux/local/{name}")),
            transport: Arc::new(LocalTransport::new(name.clone(), timeout)),
            name,
            environment,
            team: team.to_string(),
            source: Source::Local,
            last: Mutex::new(None),
            packages: Mutex::new(PackageCache::default()),
            hardening: Mutex::new(None),
        }
    }

    /// An SSH host known to ssh as `alias`.
    pub fn ssh(
        alias: &str,
        environment: Environment,
        team: &str,
        options: SshOptions,
        limit: Arc<Semaphore>,
    ) -> Host {
        Host {
            id: ResourceId::new(format!("linux/ssh/{alias}")),
            name: alias.to_string(),
            environment,
            team: team.to_string(),
            source: Source::Remote,
            transport: Arc::new(SshTransport::new(alias, options, limit)),
            last: Mutex::new(None),
            packages: Mutex::new(PackageCache::default()),
            hardening: Mutex::new(None),
        }
    }

    /// The host resource's id.
    pub fn id(&self) -> &ResourceId {
        &self.id
    }

    /// How commands reach this host.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }

    /// The id of one of this host's services.
    pub fn service_id(&self, unit: &str) -> ResourceId {
        ResourceId::new(format!("{}/service/{unit}", self.id))
    }

    /// A fresh observation, or the one taken less than [`FRESH_FOR`] ago.
    async fn observe(&self) -> Observation {
        let mut last = self.last.lock().await;
        if let Some(o) = last.as_ref()
            && o.at.elapsed() < FRESH_FOR
        {
            return o.clone();
        }
        let o = self.poll().await;
        *last = Some(o.clone());
        o
    }

    async fn poll(&self) -> Observation {
        let at = Instant::now();
        let (facts, services) = match self.source {
            Source::Local => {
                let facts = tokio::task::spawn_blocking(probe::local)
                    .await
                    .map_err(|e| ("probe_failed".to_string(), e.to_string()))
                    .and_then(|r| r.map_err(|e| ("probe_failed".to_string(), e.to_string())));
                let services = match self.transport.run(&services_script()).await {
                    Ok(out) => parse_services(&out.stdout),
                    Err(e) => (Manager::Absent(format!("cannot ask systemd: {e}")), vec![]),
                };
                (facts, services)
            }
            Source::Remote => {
                // One round trip: the probe, then the systemd query.
                let script = format!(
                    "{}; echo; echo @@services; {}",
                    probe::remote_script(),
                    services_script()
                );
                let started = chrono::Utc::now();
                match self.transport.run(&script).await {
                    Ok(out) => {
                        let rtt = chrono::Utc::now() - started;
                        let mid = started + rtt / 2;
                        let (probe_out, services_out) = out
                            .stdout
                            .split_once("\n@@services\n")
                            .unwrap_or((out.stdout.as_str(), ""));
                        let facts =
                            probe::parse_remote(probe_out, mid.timestamp_micros() as f64 / 1e6)
                                .map_err(|e| ("probe_failed".to_string(), e.to_string()));
                        (facts, parse_services(services_out))
                    }
                    Err(e) => (
                        Err((e.reason().to_string(), e.to_string())),
                        (Manager::Absent("host unreachable".into()), Vec::new()),
                    ),
                }
            }
        };
        let (manager, units) = services;
        if let Ok(f) = &facts {
            self.refresh_packages(f).await;
            self.refresh_hardening().await;
        }
        Observation {
            at,
            facts,
            manager,
            units,
        }
    }

    /// Re-reads the package list when the package database changed.
    async fn refresh_packages(&self, facts: &HostFacts) {
        let stamp = facts.dpkg_mtime.or(facts.has_rpm.then_some(0));
        let mut cache = self.packages.lock().await;
        if cache.stamp == stamp
            && (stamp.is_none() || !cache.packages.is_empty() || cache.error.is_some())
        {
            return;
        }
        let result = if facts.dpkg_mtime.is_some() {
            let text = match self.source {
                Source::Local => tokio::fs::read_to_string(packages::DPKG_STATUS)
                    .await
                    .map_err(|e| format!("{}: {e}", packages::DPKG_STATUS)),
                Source::Remote => self
                    .transport
                    .run(&format!("cat {}", packages::DPKG_STATUS))
                    .await
                    .map(|o| o.stdout)
                    .map_err(|e| e.to_string()),
            };
            text.and_then(|t| {
                packages::parse_dpkg_inventory(
                    &t,
                    &format!("{}:{}", self.name, packages::DPKG_STATUS),
                )
                .map_err(|e| e.to_string())
            })
        } else if facts.has_rpm {
            self.transport
                .run(packages::RPM_QUERY)
                .await
                .map_err(|e| e.to_string())
                .and_then(|o| packages::parse_rpm_query(&o.stdout).map_err(|e| e.to_string()))
                .map(|versions| packages::Inventory {
                    versions,
                    sources: BTreeMap::new(),
                })
        } else {
            Ok(packages::Inventory::default())
        };
        cache.stamp = stamp;
        match result {
            Ok(p) => {
                cache.packages = p.versions;
                cache.sources = p.sources;
                cache.error = None;
            }
            Err(e) => {
                tracing::warn!(host = %self.name, "cannot read installed packages: {e}");
                cache.error = Some(e);
            }
        }
    }

    /// Re-reads the hardening facts when the last reading is older than [`HARDENING_FRESH_FOR`].
    async fn refresh_hardening(&self) {
        let mut cache = self.hardening.lock().await;
        if cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < HARDENING_FRESH_FOR)
        {
            return;
        }
        let facts = hardening::collect(self.transport.as_ref(), hardening::SSHD_CONFIG).await;
        *cache = Some((Instant::now(), facts));
    }

    fn health(&self, o: &Observation) -> Health {
        let f = match &o.facts {
            Ok(f) => f,
            Err((reason, message)) => {
                return Health::new(HealthStatus::Unknown, reason.clone(), message.clone());
            }
        };
        host_health(f, &o.manager, &o.units)
    }

    async fn resources(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<Resource> {
        let o = self.observe().await;
        let mut labels = StringMap::new();
        labels.insert("team".to_string(), self.team.clone());
        labels.insert("host".to_string(), self.name.clone());
        let mut attributes = StringMap::new();
        attributes.insert(
            "source".into(),
            match self.source {
                Source::Local => "local".into(),
                Source::Remote => "ssh".into(),
            },
        );
        if let Ok(f) = &o.facts {
            attributes.insert("kernel".into(), f.kernel.clone());
            attributes.insert("os".into(), f.os.clone());
            attributes.insert("cpus".into(), f.cpus.to_string());
            attributes.insert(
                "memory_total_mib".into(),
                (f.mem_total_bytes >> 20).to_string(),
            );
            attributes.insert(
                "mounts".into(),
                f.mounts
                    .iter()
                    .map(|m| m.mount.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        attributes.insert(
            "service_manager".into(),
            match &o.manager {
                Manager::Running(s) => format!("systemd ({s})"),
                Manager::Absent(why) => format!("none: {why}"),
            },
        );
        {
            let cache = self.packages.lock().await;
            attributes.insert("packages".into(), cache.packages.len().to_string());
            attributes.extend(
                cache
                    .packages
                    .iter()
                    .map(|(name, version)| (format!("pkg:{name}"), version.clone())),
            );
            // Advisories are per source package (`libssl3` comes from `openssl`).
            attributes.extend(
                cache
                    .sources
                    .iter()
                    .map(|(name, source)| (format!("pkgsrc:{name}"), source.clone())),
            );
        }
        match &*self.hardening.lock().await {
            Some((_, h)) => attributes.extend(h.attributes.clone()),
            None => attributes.extend(hardening::Hardening::unknown("not read yet").attributes),
        }
        let mut out = vec![Resource {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: "host".into(),
            provider: Provider::Linux,
            connector: ConnectorId::new(""),
            environment: self.environment,
            team: self.team.clone(),
            labels: labels.clone(),
            attributes,
            health: self.health(&o),
            created_at: now,
        }];
        for u in &o.units {
            let mut attributes = StringMap::new();
            attributes.insert("host".into(), self.id.to_string());
            attributes.insert("unit".into(), u.id.clone());
            attributes.insert("description".into(), u.description.clone());
            attributes.insert("enabled".into(), u.enabled.clone());
            out.push(Resource {
                id: self.service_id(&u.id),
                name: format!("{}:{}", self.name, u.id),
                kind: "service".into(),
                provider: Provider::Linux,
                connector: ConnectorId::new(""),
                environment: self.environment,
                team: self.team.clone(),
                labels: labels.clone(),
                attributes,
                health: u.health(),
                created_at: now,
            });
        }
        out
    }
}

/// The shell that asks systemd whether it runs and, if so, about its service units.
fn services_script() -> String {
    format!(
        "command -v systemctl >/dev/null 2>&1 || {{ echo '@@manager 127'; exit 0; }}; \
             s=$(systemctl is-system-running 2>&1); rc=$?; \
             echo \"@@manager $rc\"; echo \"$s\"; \
             case \"$s\" in running|degraded|starting|initializing|maintenance|stopping) ;; *) exit 0;; esac; \
             echo @@show; \
             systemctl list-units --type=service --all --no-legend --plain --no-pager \
               | awk '{{ if ($1 == \"●\" || $1 == \"*\") print $2; else print $1 }}' \
               | xargs -r systemctl show --no-pager -p {} --",
        services::SHOW_PROPERTIES
    )
}

/// Parses the answer to [`services_script`].
fn parse_services(stdout: &str) -> (Manager, Vec<Unit>) {
    let (head, show) = match stdout.split_once("@@show\n") {
        Some((h, s)) => (h, s),
        None => (stdout, ""),
    };
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.strip_prefix("@@manager "))
        .and_then(|c| c.trim().parse::<i32>().ok());
    // stdout and stderr arrive merged: the state is the line that is one.
    let rest: Vec<&str> = lines.collect();
    let state = rest
        .iter()
        .find(|l| services::MANAGER_STATES.contains(&l.trim()))
        .copied()
        .unwrap_or_default();
    let errors: Vec<&str> = rest
        .iter()
        .filter(|l| l.trim() != state.trim())
        .copied()
        .collect();
    let manager = services::parse_manager(code, state, &errors.join("\n"));
    let units = match manager {
        Manager::Running(_) => services::parse_show(show)
            .into_iter()
            .filter(Unit::interesting)
            .collect(),
        Manager::Absent(_) => vec![],
    };
    (manager, units)
}

/// A host's health from its facts: the worst finding gives the status and the
/// reason (the earlier in this list on a tie); the message lists every finding.
fn host_health(f: &HostFacts, manager: &Manager, units: &[Unit]) -> Health {
    let mut found: Vec<Health> = Vec::new();
    let failed: Vec<&str> = units
        .iter()
        .filter(|u| u.active == "failed")
        .map(|u| u.id.as_str())
        .collect();
    if !failed.is_empty() {
        found.push(Health::new(
            HealthStatus::Degraded,
            "units_failed",
            format!("failed: {}", failed.join(", ")),
        ));
    }
    if let Some(m) = f.fullest() {
        let r = m.used_ratio();
        // Health messages stay stable between polls (whole percents, no
        // live byte counts) so discovery records changes, not jitter.
        let msg = format!("{} is {:.0}% full", m.mount, (r * 100.0).floor());
        if r >= 0.95 {
            found.push(Health::new(
                HealthStatus::Unhealthy,
                "disk_nearly_full",
                msg,
            ));
        } else if r >= 0.85 {
            found.push(Health::new(HealthStatus::Degraded, "disk_nearly_full", msg));
        }
    }
    if let Some(m) = f.fullest_inodes()
        && m.inode_ratio() >= 0.90
    {
        found.push(Health::new(
            HealthStatus::Degraded,
            "inodes_nearly_exhausted",
            format!(
                "{} uses {:.0}% of its inodes",
                m.mount,
                m.inode_ratio() * 100.0
            ),
        ));
    }
    if f.mem_total_bytes > 0 && f.memory_ratio() >= 0.95 {
        found.push(Health::new(
            HealthStatus::Degraded,
            "memory_pressure",
            format!(
                "{:.0}% of memory in use",
                (f.memory_ratio() * 100.0).floor()
            ),
        ));
    }
    let per_cpu = f.load[0] / f64::from(f.cpus.max(1));
    if per_cpu >= 2.0 {
        found.push(Health::new(
            HealthStatus::Degraded,
            "high_load",
            format!("load above twice the CPU count ({} CPU(s))", f.cpus),
        ));
    }
    if f.clock_skew_secs.abs() >= 5.0 {
        found.push(Health::new(
            HealthStatus::Degraded,
            "clock_skew",
            format!(
                "clock is {} the console's by more than 5 s",
                if f.clock_skew_secs > 0.0 {
                    "ahead of"
                } else {
                    "behind"
                }
            ),
        ));
    }
    let worst = found
        .iter()
        .enumerate()
        .max_by_key(|(i, h)| (rank(h.status), std::cmp::Reverse(*i)))
        .map(|(_, h)| h.clone());
    if let Some(mut w) = worst {
        w.message = found
            .iter()
            .map(|h| h.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return w;
    }
    match manager {
        // Healthy, but say plainly that services cannot be watched here.
        Manager::Absent(why) => Health::new(
            HealthStatus::Healthy,
            "no_service_manager",
            format!("no service manager running: {why}"),
        ),
        Manager::Running(_) => Health::healthy(),
    }
}

fn rank(s: HealthStatus) -> u8 {
    match s {
        HealthStatus::Healthy => 0,
        HealthStatus::Unknown => 1,
        HealthStatus::Degraded => 2,
        HealthStatus::Unhealthy => 3,
    }
}

/// Linux hosts behind one connector id.
pub struct LinuxConnector {
    id: ConnectorId,
    hosts: Vec<Arc<Host>>,
    clock: SharedClock,
    quarantine_dir: PathBuf,
    retention: chrono::Duration,
    /// The only directories clean_disk may touch.
    clean_roots: Vec<String>,
    /// The quarantine batch the last host snapshot made (and when), for the
    /// action that follows it. The batch itself lives on the host and its name
    /// in the recorded snapshot; this only pairs a snapshot with its action.
    pending_batches: std::sync::Mutex<HashMap<ResourceId, (String, chrono::DateTime<chrono::Utc>)>>,
}

/// How long a host snapshot's batch waits for its action before another
/// remediation of the host may take a snapshot.
const PENDING_FOR: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

impl LinuxConnector {
    /// A connector over `hosts`.
    pub fn new(
        id: ConnectorId,
        hosts: Vec<Host>,
        clock: SharedClock,
        config: &LinuxConfig,
    ) -> Self {
        Self {
            id,
            hosts: hosts.into_iter().map(Arc::new).collect(),
            clock,
            quarantine_dir: config.quarantine_dir.clone(),
            retention: chrono::Duration::hours(
                i64::try_from(config.quarantine_retention_hours).unwrap_or(i64::MAX / 7200),
            ),
            clean_roots: config.clean_roots.clone(),
            pending_batches: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The connectors a configuration asks for: the local host (unless
    /// disabled) and the SSH fleet (when any host is configured).
    pub fn from_config(
        config: &LinuxConfig,
        clock: SharedClock,
    ) -> anyhow::Result<Vec<LinuxConnector>> {
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut out = Vec::new();
        if config.local {
            out.push(LinuxConnector::new(
                ConnectorId::new("linux:local"),
                vec![Host::local(config.environment, &config.team, timeout)],
                clock.clone(),
                config,
            ));
        }
        let mut aliases: Vec<(String, Environment, String)> = config
            .hosts
            .iter()
            .map(|h| {
                (
                    h.alias.clone(),
                    h.environment.unwrap_or(config.environment),
                    h.team.clone().unwrap_or_else(|| config.team.clone()),
                )
            })
            .collect();
        if let Some(pattern) = &config.ssh_config_hosts {
            let path = config
                .ssh_config_file
                .clone()
                .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".ssh/config")))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "linux.ssh_config_hosts: no home directory to find ~/.ssh/config"
                    )
                })?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!(
                    "linux.ssh_config_hosts: cannot read {}: {e}",
                    path.display()
                )
            })?;
            for alias in config::ssh_config_aliases(&text, pattern) {
                if !aliases.iter().any(|(a, _, _)| *a == alias) {
                    aliases.push((alias, config.environment, config.team.clone()));
                }
            }
        }
        if !aliases.is_empty() {
            let options = SshOptions {
                config_file: config.ssh_config_file.clone(),
                timeout,
                accept_new_host_keys: config.accept_new_host_keys,
                control_dir: None,
            };
            out.push(LinuxConnector::ssh_fleet(
                ConnectorId::new("linux:ssh"),
                &aliases,
                options,
                config.max_connections,
                clock,
                config,
            ));
        }
        Ok(out)
    }

    /// A fleet of SSH hosts sharing one connection limit.
    pub fn ssh_fleet(
        id: ConnectorId,
        hosts: &[(String, Environment, String)],
        options: SshOptions,
        max_connections: usize,
        clock: SharedClock,
        config: &LinuxConfig,
    ) -> Self {
        let limit = Arc::new(Semaphore::new(max_connections.max(1)));
        let hosts = hosts
            .iter()
            .map(|(alias, env, team)| Host::ssh(alias, *env, team, options.clone(), limit.clone()))
            .collect();
        Self::new(id, hosts, clock, config)
    }

    /// Forgets every host's last observation, so the next call polls afresh.
    pub async fn invalidate(&self) {
        for h in &self.hosts {
            *h.last.lock().await = None;
        }
    }

    /// The hosts (benches and tests reach them through here).
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    /// The host owning `id`, and the unit when `id` is a service.
    fn locate(&self, id: &ResourceId) -> Result<(Arc<Host>, Option<String>)> {
        for h in &self.hosts {
            if id == &h.id {
                return Ok((h.clone(), None));
            }
            if let Some(unit) = id.as_str().strip_prefix(&format!("{}/service/", h.id)) {
                return Ok((h.clone(), Some(unit.to_string())));
            }
        }
        Err(ConnectorError::NotFound(id.clone()))
    }

    /// The unit an action targets: the service resource itself, or a host plus its `service` parameter.
    fn unit_of(action: &Action, unit: Option<String>) -> Result<String> {
        let name = match (unit, action.params.get("service")) {
            (Some(u), _) => u,
            (None, Some(s)) => services::unit_name(s),
            (None, None) => {
                return Err(ConnectorError::BadParam {
                    action: action.name.clone(),
                    param: "service".into(),
                    reason: "target a service resource or name the unit in `service`".into(),
                });
            }
        };
        if !services::valid_unit(&name) {
            return Err(ConnectorError::BadParam {
                action: action.name.clone(),
                param: "service".into(),
                reason: format!("`{name}` is not a unit name"),
            });
        }
        Ok(name)
    }

    /// A fresh batch name for a snapshot of `host`, unless another
    /// remediation's snapshot of it still waits for its action (its files
    /// would go into the wrong batch).
    fn reserve_batch(&self, host: &Host, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
        let mut pending = self
            .pending_batches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((b, at)) = pending.get(&host.id)
            && now - *at < PENDING_FOR
        {
            return Err(ConnectorError::Backend(format!(
                "{}: the snapshot for batch {b} (taken {at}) still waits for its action; one host-level remediation at a time",
                host.name
            )));
        }
        let batch = quarantine::new_batch(now);
        pending.insert(host.id.clone(), (batch.clone(), now));
        Ok(batch)
    }

    fn qdir(&self) -> String {
        self.quarantine_dir.display().to_string()
    }

    /// Purges quarantine batches past the retention on every host; returns what went.
    pub async fn purge_quarantines(&self) -> Vec<String> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for h in &self.hosts {
            match quarantine::purge(h.transport.as_ref(), &self.qdir(), now, self.retention).await {
                Ok(gone) => out.extend(gone.into_iter().map(|p| format!("{}:{p}", h.name))),
                Err(e) => tracing::warn!(host = %h.name, "quarantine purge failed: {e}"),
            }
        }
        out
    }

    async fn journal(
        &self,
        host: &Host,
        unit: Option<&str>,
        window: TimeWindow,
    ) -> Vec<InfraEvent> {
        let target = match unit {
            Some(u) => format!("-u {}", actions::quote(u)),
            None => "-k".to_string(),
        };
        let script = format!(
            "out=''; if command -v journalctl >/dev/null 2>&1; then \
               out=$(journalctl {target} -o json --no-pager -n {JOURNAL_LINES} --since=@{from} --until=@{to} 2>/dev/null); fi; \
             if [ -n \"$out\" ]; then echo @@journal; printf '%s\\n' \"$out\"; \
             else echo @@files; \
               for f in {files}; do [ -r \"$f\" ] && tail -n 5000 \"$f\"; done | grep -F -- {needle} | tail -n {JOURNAL_LINES}; fi; true",
            from = window.from.timestamp(),
            to = window.to.timestamp() + 1,
            files = if unit.is_some() {
                "/var/log/syslog /var/log/messages /var/log/daemon.log"
            } else {
                "/var/log/kern.log /var/log/messages /var/log/syslog"
            },
            needle = actions::quote(
                unit.map(|u| u.trim_end_matches(".service"))
                    .unwrap_or("kernel")
            ),
        );
        let out = match host.transport.run(&script).await {
            Ok(o) => o,
            Err(e) => {
                return vec![InfraEvent {
                    at: self.clock.now(),
                    resource: host.id.clone(),
                    kind: "Warning".into(),
                    reason: e.reason().into(),
                    message: e.to_string(),
                }];
            }
        };
        let resource = match unit {
            Some(u) => host.service_id(u),
            None => host.id.clone(),
        };
        if let Some(json) = out.stdout.strip_prefix("@@journal\n") {
            let (lines, _) = services::parse_journal_json(json);
            lines
                .into_iter()
                .map(|l| journal_event(&resource, l.at, l.priority, l.message))
                .collect()
        } else {
            let text = out.stdout.strip_prefix("@@files\n").unwrap_or(&out.stdout);
            // Redacted whole, before splitting: a key block spans lines.
            let text = crate::redact::text(text);
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let at = l
                        .split_whitespace()
                        .next()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or(window.to);
                    let lower = l.to_lowercase();
                    let priority = if lower.contains("error")
                        || lower.contains("fail")
                        || lower.contains("killed process")
                    {
                        3
                    } else {
                        6
                    };
                    journal_event(&resource, at, priority, l.to_string())
                })
                .collect()
        }
    }

    /// Extra evidence for a host whose disk or CPU is under pressure.
    async fn pressure_events(&self, host: &Host, o: &Observation) -> Vec<InfraEvent> {
        let Ok(f) = &o.facts else { return vec![] };
        let now = self.clock.now();
        let mut out = Vec::new();
        if let Some(m) = f.fullest().filter(|m| m.used_ratio() >= 0.85) {
            let script = format!(
                "timeout 10 du -x -k -d 2 -- {} 2>/dev/null | sort -rn | head -n 8",
                actions::quote(&m.mount)
            );
            if let Ok(out_du) = host.transport.run(&script).await {
                let biggest: Vec<String> = out_du
                    .stdout
                    .lines()
                    .filter_map(|l| l.split_once('\t'))
                    .map(|(k, p)| {
                        format!("{p} {} MiB", k.trim().parse::<u64>().unwrap_or(0) / 1024)
                    })
                    .collect();
                out.push(InfraEvent {
                    at: now,
                    resource: host.id.clone(),
                    kind: "Warning".into(),
                    reason: "DiskNearlyFull".into(),
                    // Any local user names directories under /tmp: their
                    // names pass the redactor (secrets, terminal escapes).
                    message: crate::redact::line(&format!(
                        "{} is {:.0}% full; biggest directories: {}",
                        m.mount,
                        m.used_ratio() * 100.0,
                        biggest.join(", ")
                    )),
                });
            }
        }
        if f.load[0] / f64::from(f.cpus.max(1)) >= 2.0 {
            out.push(InfraEvent {
                at: now,
                resource: host.id.clone(),
                kind: "Warning".into(),
                reason: "HighLoad".into(),
                // Process names are any local user's choice.
                message: crate::redact::line(&format!(
                    "load {:.2} on {} CPU(s); top processes: {}",
                    f.load[0],
                    f.cpus,
                    f.top_cpu
                        .iter()
                        .map(|p| format!("{} (pid {}, {:.1}% CPU)", p.comm, p.pid, p.cpu_percent))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        for u in o.units.iter().filter(|u| u.active == "failed") {
            out.push(InfraEvent {
                at: now,
                resource: host.service_id(&u.id),
                kind: "Warning".into(),
                reason: "UnitFailed".into(),
                message: format!("{}: {}", u.id, u.health().message),
            });
        }
        out
    }
}

fn journal_event(
    resource: &ResourceId,
    at: chrono::DateTime<chrono::Utc>,
    priority: u8,
    message: String,
) -> InfraEvent {
    let lower = message.to_lowercase();
    let oom = lower.contains("out of memory")
        || lower.contains("oom-kill")
        || lower.contains("killed process");
    InfraEvent {
        at,
        resource: resource.clone(),
        kind: if priority <= 3 || oom {
            "Warning".into()
        } else {
            "Normal".into()
        },
        // The investigation's memory analyzer knows the kubelet's reason for an OOM kill.
        reason: if oom {
            "OOMKilling".into()
        } else {
            "Journal".into()
        },
        message,
    }
}

#[async_trait]
impl InfraConnector for LinuxConnector {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn provider(&self) -> Provider {
        Provider::Linux
    }

    async fn list_resources(&self, scope: &Scope) -> Result<Vec<Resource>> {
        let now = self.clock.now();
        // Hosts are polled concurrently; each is bounded by its own timeout
        // and breaker, and an unreachable host is listed with its reason.
        let all = join_all(self.hosts.iter().map(|h| h.resources(now))).await;
        Ok(all
            .into_iter()
            .flatten()
            .map(|mut r| {
                r.connector = self.id.clone();
                r
            })
            .filter(|r| scope.kinds.is_empty() || scope.kinds.contains(&r.kind))
            .collect())
    }

    async fn health(&self, id: &ResourceId) -> Result<Health> {
        let (host, unit) = self.locate(id)?;
        // Health checks during validation must see the effect of an action: no cache.
        *host.last.lock().await = None;
        let o = host.observe().await;
        match unit {
            None => Ok(host.health(&o)),
            Some(u) => match o.units.iter().find(|x| x.id == u) {
                Some(unit) => Ok(unit.health()),
                None => match (&o.facts, &o.manager) {
                    (Err((reason, message)), _) => Ok(Health::new(
                        HealthStatus::Unknown,
                        reason.clone(),
                        message.clone(),
                    )),
                    (_, Manager::Absent(why)) => Ok(Health::new(
                        HealthStatus::Unknown,
                        "no_service_manager",
                        format!("no service manager running: {why}"),
                    )),
                    _ => Err(ConnectorError::NotFound(id.clone())),
                },
            },
        }
    }

    async fn events(&self, id: &ResourceId, window: TimeWindow) -> Result<Vec<InfraEvent>> {
        let (host, unit) = self.locate(id)?;
        let mut events = self.journal(&host, unit.as_deref(), window).await;
        if unit.is_none() {
            let o = host.observe().await;
            events.extend(self.pressure_events(&host, &o).await);
        }
        Ok(events)
    }

    async fn metrics(&self, id: &ResourceId) -> Result<BTreeMap<String, f64>> {
        let (host, unit) = self.locate(id)?;
        let o = host.observe().await;
        match unit {
            None => {
                let f = o
                    .facts
                    .as_ref()
                    .map_err(|(_, m)| ConnectorError::Backend(m.clone()))?;
                let mut m = f.metrics();
                m.insert(
                    "failed_units".into(),
                    o.units.iter().filter(|u| u.active == "failed").count() as f64,
                );
                Ok(m)
            }
            Some(u) => {
                let unit = o
                    .units
                    .iter()
                    .find(|x| x.id == u)
                    .ok_or_else(|| ConnectorError::NotFound(id.clone()))?;
                let mut m = BTreeMap::new();
                m.insert("restarts".into(), unit.restarts as f64);
                m.insert(
                    "active".into(),
                    if unit.active == "active" { 1.0 } else { 0.0 },
                );
                if let Some(code) = unit.exit_status {
                    m.insert("exit_status".into(), code as f64);
                }
                Ok(m)
            }
        }
    }

    async fn snapshot(&self, id: &ResourceId) -> Result<Snapshot> {
        let (host, unit) = self.locate(id)?;
        let now = self.clock.now();
        let units: Vec<String> = match &unit {
            Some(u) => vec![u.clone()],
            None => {
                let o = host.observe().await;
                o.units.iter().map(|u| u.id.clone()).collect()
            }
        };
        let o = host.observe().await;
        let states = if matches!(o.manager, Manager::Running(_)) {
            actions::unit_states(host.transport.as_ref(), &units).await?
        } else {
            actions::UnitStates::default()
        };
        // A host snapshot makes the quarantine batch a clean_disk after it
        // fills (checking the quarantine first), so a batch missing at restore
        // is always an error. A service snapshot never touches the quarantine.
        let batch = if unit.is_none() {
            let batch = self.reserve_batch(&host, now)?;
            if let Err(e) = quarantine::prepare(host.transport.as_ref(), &self.qdir(), &batch).await
            {
                self.pending_batches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&host.id);
                return Err(e);
            }
            Some(batch)
        } else {
            None
        };
        let data = SnapshotData {
            host: host.name.clone(),
            units: states,
            batch: batch.clone(),
            quarantine_dir: batch.as_ref().map(|_| self.qdir()),
        };
        let summary = match &batch {
            Some(b) => format!(
                "{} unit state(s) of {}; quarantine batch {b}",
                data.units.0.len(),
                host.name
            ),
            None => format!("{} unit state(s) of {}", data.units.0.len(), host.name),
        };
        Ok(Snapshot {
            resource: id.clone(),
            connector: self.id.clone(),
            taken_at: now,
            data: serde_json::to_value(&data)
                .map_err(|e| ConnectorError::Backend(e.to_string()))?,
            summary,
        })
    }

    async fn preview(&self, action: &Action) -> Result<crate::event::Preview> {
        let (host, unit) = self.locate(&action.target)?;
        preview::check(action, unit.is_some())?;
        // The dry run lists only what the clean-up itself could touch.
        if let Some(refused) = guardrails::check_with_roots(action, &self.clean_roots) {
            return Err(ConnectorError::BadParam {
                action: action.name.clone(),
                param: "params".into(),
                reason: refused,
            });
        }
        let t = host.transport.as_ref();
        if let Some(verb) = actions::service_verb(&action.name) {
            let unit = Self::unit_of(action, unit)?;
            return preview::service_preview(t, action, verb, &unit).await;
        }
        let spec = preview::clean_spec(action)?;
        let files = preview::clean_candidates(t, &spec).await?;
        Ok(preview::clean_preview(action, &host.name, &spec, &files))
    }

    async fn execute(&self, action: &Action) -> Result<ActionOutcome> {
        let (host, unit) = self.locate(&action.target)?;
        // Whatever is asked of the host itself consumes its snapshot's batch,
        // refused or not.
        let batch = if unit.is_none() {
            self.pending_batches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&host.id)
                .map(|(b, _)| b)
        } else {
            None
        };
        if let Some(refused) = guardrails::check_with_roots(action, &self.clean_roots) {
            return Err(ConnectorError::BadParam {
                action: action.name.clone(),
                param: "params".into(),
                reason: refused,
            });
        }
        // A parameter this action would ignore is refused, as in the preview.
        preview::check(action, unit.is_some())?;
        let outcome = if let Some(verb) = actions::service_verb(&action.name) {
            let unit = Self::unit_of(action, unit)?;
            actions::service_action(host.transport.as_ref(), verb, &unit).await?
        } else if action.name == "clean_disk" {
            if unit.is_some() {
                return Err(ConnectorError::Unsupported {
                    action: action.name.clone(),
                    resource: action.target.clone(),
                });
            }
            let request =
                guardrails::clean_request(action).map_err(|reason| ConnectorError::BadParam {
                    action: action.name.clone(),
                    param: "params".into(),
                    reason,
                })?;
            // Without the batch a snapshot made, nothing moved could be restored.
            let batch = batch.ok_or_else(|| ConnectorError::BadParam {
                action: action.name.clone(),
                param: "target".into(),
                reason: format!(
                    "no snapshot of {} made a quarantine batch for this clean-up; nothing moved",
                    host.name
                ),
            })?;
            if let Err(e) = quarantine::purge(
                host.transport.as_ref(),
                &self.qdir(),
                self.clock.now(),
                self.retention,
            )
            .await
            {
                tracing::warn!(host = %host.name, "quarantine purge failed: {e}");
            }
            quarantine::clean(host.transport.as_ref(), &self.qdir(), &batch, &request).await?
        } else {
            return Err(ConnectorError::Unsupported {
                action: action.name.clone(),
                resource: action.target.clone(),
            });
        };
        // The next health check must see what the action did.
        *host.last.lock().await = None;
        Ok(outcome)
    }

    async fn restore(&self, snapshot: &Snapshot) -> Result<ActionOutcome> {
        let data: SnapshotData = super::recorded_state(snapshot, &self.id)?;
        let (host, unit) = self.locate(&snapshot.resource)?;
        let t = host.transport.as_ref();
        let mut steps = actions::restore_units(t, &data.units).await?;
        let mut problems = Vec::new();
        let mut files = String::new();
        // A service snapshot never touches the quarantine.
        if let (None, Some(batch)) = (unit, &data.batch) {
            let qdir = self.qdir();
            let r = match &data.quarantine_dir {
                Some(recorded) if *recorded != qdir => quarantine::Restored {
                    fatal: Some(format!(
                        "the snapshot's quarantine `{recorded}` is not the configured `{qdir}`; nothing moved back"
                    )),
                    ..Default::default()
                },
                _ => quarantine::restore(t, &qdir, batch).await?,
            };
            steps.extend(r.restored.iter().map(|p| format!("moved back {p}")));
            steps.extend(
                r.in_place
                    .iter()
                    .map(|p| format!("already in place (never moved, or moved back before): {p}")),
            );
            steps.extend(r.refused.iter().map(|p| format!("not moved back: {p}")));
            files = format!(", {} file(s) moved back", r.restored.len());
            if let Some(why) = &r.fatal {
                steps.push(format!("restore of batch {batch} failed: {why}"));
                problems.push(why.clone());
            }
            if !r.refused.is_empty() {
                problems.push(format!(
                    "{} file(s) not moved back: {}",
                    r.refused.len(),
                    r.refused.join("; ")
                ));
            }
        }
        *host.last.lock().await = None;
        Ok(ActionOutcome {
            success: problems.is_empty(),
            message: format!(
                "{} unit(s) checked{files} on {}{}",
                data.units.0.len(),
                host.name,
                if problems.is_empty() {
                    String::new()
                } else {
                    format!("; FAILED: {}", problems.join("; "))
                }
            ),
            steps,
        })
    }
}
