//! Linux hosts: how long the local host's snapshot takes (metrics from /proc
//! and statvfs, and the package list from the dpkg status database), and a
//! fan-out poll of 50 SSH targets — the same real sshd on 127.0.0.1 under 50
//! aliases, each with its own multiplexed master connection — where each
//! host answers the metrics probe and the systemd query (two round trips).
//!
//! Run: `cargo bench --bench linux` (needs openssh-server: scripts/install-test-deps.sh).

#[path = "../tests/linux_support/mod.rs"]
mod linux_support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use shieldops::clock::{ScaledClock, SharedClock};
use shieldops::connectors::linux::packages::{DPKG_STATUS, parse_dpkg_status};
use shieldops::connectors::linux::transport::SshOptions;
use shieldops::connectors::linux::{LinuxConfig, LinuxConnector, probe};
use shieldops::connectors::{InfraConnector, Scope};
use shieldops::event::{ConnectorId, Environment, HealthStatus};

#[path = "support/goal.rs"]
mod goal;

const FLEET: usize = 50;

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock: SharedClock = Arc::new(ScaledClock::real());

    c.bench_function("local host metrics (/proc, statvfs, top processes)", |b| {
        b.iter(|| black_box(probe::local().unwrap()))
    });
    c.bench_function("local host package list (dpkg status)", |b| {
        b.iter(|| {
            let text = std::fs::read_to_string(DPKG_STATUS).unwrap();
            black_box(parse_dpkg_status(&text, DPKG_STATUS).unwrap())
        })
    });
    let config = LinuxConfig::default();
    let local = LinuxConnector::from_config(&config, clock.clone())
        .unwrap()
        .remove(0);
    c.bench_function(
        "local host full poll (metrics + systemd query, packages cached)",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    local.invalidate().await;
                    black_box(local.list_resources(&Scope::default()).await.unwrap())
                })
            })
        },
    );

    // Without the systemctl test double (a Python script whose start-up
    // would dominate): each host answers the probe and the real systemctl,
    // which says systemd is not running here.
    let sshd = linux_support::Sshd::start_with(false);
    let aliases: Vec<String> = (1..=FLEET).map(|i| format!("host-{i:02}")).collect();
    let options = SshOptions {
        config_file: Some(sshd.ssh_config(&aliases, &[])),
        timeout: Duration::from_secs(20),
        accept_new_host_keys: false,
        control_dir: Some(sshd.control_dir()),
    };
    let hosts: Vec<(String, Environment, String)> = aliases
        .iter()
        .map(|a| (a.clone(), Environment::Staging, "ops".to_string()))
        .collect();
    let fleet = LinuxConnector::ssh_fleet(
        ConnectorId::new("linux:ssh"),
        &hosts,
        options,
        config.max_connections,
        clock,
        &config,
    );
    let started = Instant::now();
    let first = rt
        .block_on(fleet.list_resources(&Scope::default()))
        .unwrap();
    let cold = started.elapsed();
    let answered = first
        .iter()
        .filter(|r| r.kind == "host" && r.health.status != HealthStatus::Unknown)
        .count();
    assert_eq!(
        answered,
        FLEET,
        "every alias answered: {:?}",
        first
            .iter()
            .find(|r| r.health.status == HealthStatus::Unknown)
    );
    // A poll of 50 hosts takes seconds on a busy 2-core machine: timed by
    // hand over a few polls rather than criterion's hundred samples.
    let mut warm = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        rt.block_on(async {
            fleet.invalidate().await;
            black_box(fleet.list_resources(&Scope::default()).await.unwrap())
        });
        warm.push(started.elapsed().as_secs_f64());
    }
    warm.sort_by(f64::total_cmp);
    c.final_summary();
    println!(
        "\n{FLEET} SSH hosts (one sshd, {FLEET} aliases, {} connections at once):",
        config.max_connections
    );
    println!(
        "  first poll, including {FLEET} master connections and package lists: {:.2} s",
        cold.as_secs_f64()
    );
    println!(
        "  warm polls (multiplexed, one round trip per host): median {:.2} s, min {:.2} s, max {:.2} s (goal <= 2 s)",
        warm[warm.len() / 2],
        warm[0],
        warm[warm.len() - 1]
    );
    goal::at_most(
        "Linux: warm poll of the SSH fleet, median",
        warm[warm.len() / 2],
        2.0,
        "s",
    );
}
