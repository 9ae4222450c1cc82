//! Compliance evaluation time over a large fleet's inventory: 500 hosts,
//! 2,000 pods, 200 roles, 100 credentials and 300 open CVE findings
//! (about 14,000 control results), evaluated by the embedded bundle through
//! the gate's compliance entry point, as the security agent does each scan.
//! The scan interval is a minute, so the target is well under a second.
//!
//! Run: `cargo bench --bench compliance`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::{Value, json};
use shieldops::policy::Gate;

fn inventory(hosts: usize, pods: usize, roles: usize, creds: usize, vulns: usize) -> Value {
    let hosts: Vec<Value> = (0..hosts)
        .map(|i| {
            json!({"id": format!("linux/ssh/h{i}"), "name": format!("h{i}"), "kind": "host",
            "attributes": {
                "sshd.permit_root_login": if i % 7 == 0 { "yes" } else { "no" },
                "sshd.password_authentication": if i % 5 == 0 { "unknown" } else { "no" },
                "sshd.source": "sshd -T",
                "file./etc/shadow.mode": "0640",
                "file./etc/shadow.owner": "root:shadow",
                "unattended_upgrades": if i % 3 == 0 { "disabled" } else { "enabled" },
            }})
        })
        .collect();
    let pods: Vec<Value> = (0..pods)
        .map(|i| {
            json!({"id": format!("k8s/c/ns/pod/p{i}"), "name": format!("p{i}"), "kind": "pod",
            "attributes": {
                "security.privileged": if i % 50 == 0 { "true" } else { "false" },
                "security.run_as_root": if i % 4 == 0 { "unknown" } else { "false" },
                "resources.limits": if i % 9 == 0 { "missing" } else { "set" },
            }})
        })
        .collect();
    let roles: Vec<Value> = (0..roles)
        .map(|i| {
            json!({"id": format!("k8s/c/clusterrole/r{i}"), "name": format!("r{i}"), "kind": "clusterrole",
                "attributes": {"rbac.wildcard": if i % 10 == 0 { "true" } else { "false" }, "rbac.wildcard_rules": ""}})
        })
        .collect();
    let creds: Vec<Value> = (0..creds)
        .map(|i| {
            json!({"id": format!("vault/c{i}"), "name": format!("c{i}"), "kind": "credential",
                "rotated_age_days": (i * 3) % 200,
                "attributes": {"store": "vault", "path": format!("secret/c{i}"), "rotation_enabled": "false"}})
        })
        .collect();
    let vulns: Vec<Value> = (0..vulns)
        .map(|i| {
            json!({"id": format!("CVE-2024-{i}@linux/ssh/h{}", i % 500), "cve": format!("CVE-2024-{i}"),
                "resource": format!("linux/ssh/h{}", i % 500),
                "severity": if i % 2 == 0 { "critical" } else { "high" }, "age_days": i % 60})
        })
        .collect();
    json!({
        "hosts": hosts, "pods": pods, "roles": roles, "credentials": creds,
        "vulnerabilities": vulns,
        "vulndb": {"loaded": true, "stale": false, "summary": "debian 48211 records, 1 days old (limit 7 days)"},
        "audit_log": {"intact": true, "detail": "hash chain intact"},
    })
}

fn main() {
    let gate = Gate::load(None).expect("embedded bundle");
    let doc = inventory(500, 2000, 200, 100, 300);
    let results = gate.evaluate_compliance(&doc).expect("evaluates");
    println!("{} control results", results.len());

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    c.bench_function("compliance/fleet_2800_subjects", |b| {
        b.iter(|| black_box(gate.evaluate_compliance(black_box(&doc)).map(|r| r.len())))
    });
    let small = inventory(20, 50, 10, 5, 10);
    c.bench_function("compliance/fleet_85_subjects", |b| {
        b.iter(|| black_box(gate.evaluate_compliance(black_box(&small)).map(|r| r.len())))
    });
    c.final_summary();

    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            black_box(gate.evaluate_compliance(&doc).map(|r| r.len()).unwrap_or(0));
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "large fleet: min {:?}, median {:?}, max {:?} over 5 evaluations",
        times[0], times[2], times[4]
    );
}
