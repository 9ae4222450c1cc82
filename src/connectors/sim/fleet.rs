//! Generates the demo fleet: about 200 resources across three environments and
//! five teams. Names and ids are stable (derived from names, not the seed) so
//! the scenario file can refer to them; the seed varies the numbers.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::world::World;
use crate::event::StringMap;
use crate::event::{ConnectorId, Environment, Health, InfraEvent, Provider, Resource, ResourceId};

/// Kubernetes workloads per environment: (deployment, team, memory limit MiB, memory need MiB).
const WORKLOADS: &[(&str, &str, u32, u32)] = &[
    ("checkout-api", "checkout", 256, 180),
    ("cart-service", "checkout", 256, 150),
    ("payments-api", "payments", 512, 300),
    ("ledger-worker", "payments", 512, 350),
    ("search-indexer", "search", 1024, 700),
    ("recommendations", "search", 768, 400),
    ("api-gateway", "platform", 256, 120),
    ("auth-service", "platform", 256, 140),
    ("etl-runner", "data", 2048, 1200),
    ("notification-svc", "platform", 128, 70),
];

/// CPU of each workload's pods: (deployment, request millicores, typical usage millicores).
const WORKLOAD_CPU: &[(&str, u32, u32)] = &[
    ("checkout-api", 500, 180),
    ("cart-service", 250, 90),
    ("payments-api", 500, 220),
    ("ledger-worker", 500, 300),
    ("search-indexer", 1000, 650),
    ("recommendations", 750, 200),
    ("api-gateway", 250, 120),
    ("auth-service", 250, 60),
    ("etl-runner", 1000, 800),
    ("notification-svc", 100, 20),
];

/// Kubernetes node types per environment (dev, staging, prod).
const NODE_TYPES: [&str; 3] = ["m5.large", "m5.large", "m5.xlarge"];

/// vCPUs and memory (MiB) of the node types the demo uses.
fn node_capacity(instance_type: &str) -> (u32, u32) {
    match instance_type {
        "m5.xlarge" => (4000, 16384),
        _ => (2000, 8192),
    }
}

/// vCPUs of an instance type, from its size (`m5.2xlarge` → 8).
pub fn vcpus(instance_type: &str) -> Option<u32> {
    Some(match instance_type.split('.').nth(1)? {
        "micro" | "small" | "medium" | "large" => 2,
        "xlarge" => 4,
        "2xlarge" => 8,
        "4xlarge" => 16,
        "8xlarge" => 32,
        _ => return None,
    })
}

/// A stable factor in `[0.9, 1.1)` from a name, so usage varies between pods
/// without drawing from the seeded generator (which would shift every later number).
fn jitter(name: &str) -> f64 {
    let b = Sha256::digest(name.as_bytes());
    0.9 + (u16::from_be_bytes([b[0], b[1]]) as f64 / 65536.0) * 0.2
}

/// EC2 instance groups: (name prefix, team, instance type, count in dev/staging/prod).
const INSTANCE_GROUPS: &[(&str, &str, &str, [u32; 3])] = &[
    ("data-pipeline", "data", "m5.xlarge", [2, 3, 5]),
    ("kafka-broker", "data", "r5.large", [1, 3, 4]),
    ("batch-worker", "search", "c5.large", [3, 3, 4]),
    ("bastion", "platform", "t3.small", [1, 1, 2]),
    ("legacy-billing", "payments", "m5.large", [1, 1, 2]),
    ("ci-runner", "platform", "c5.2xlarge", [2, 1, 1]),
];

/// Linux host groups: (name prefix, team, count in dev/staging/prod).
const HOST_GROUPS: &[(&str, &str, [u32; 3])] = &[
    ("web", "checkout", [2, 3, 4]),
    ("db", "payments", [2, 2, 3]),
    ("cache", "platform", [2, 2, 2]),
    ("ops", "platform", [2, 3, 3]),
];

/// Credentials: (name, team, environment, days until expiry at start).
const CREDENTIALS: &[(&str, &str, Environment, i64)] = &[
    (
        "payments-db-password",
        "payments",
        Environment::Production,
        5,
    ),
    (
        "checkout-stripe-key",
        "checkout",
        Environment::Production,
        64,
    ),
    ("search-es-token", "search", Environment::Production, 120),
    (
        "platform-tls-wildcard",
        "platform",
        Environment::Production,
        45,
    ),
    ("data-warehouse-key", "data", Environment::Staging, 30),
    ("ci-deploy-token", "platform", Environment::Development, 200),
    ("ledger-hmac-secret", "payments", Environment::Staging, 90),
    (
        "auth-jwt-signing-key",
        "platform",
        Environment::Production,
        150,
    ),
];

/// Packages every simulated host has: (name, version).
const BASE_PACKAGES: &[(&str, &str)] = &[
    ("openssh-server", "1:9.2p1-2+deb12u3"),
    ("openssl", "3.0.15-1~deb12u1"),
    ("libc6", "2.36-9+deb12u9"),
    ("nginx", "1.22.1-9"),
    ("sudo", "1.9.13p3-1+deb12u1"),
];

/// Hourly on-demand price in cents for the instance types the demo uses.
pub fn hourly_cents(instance_type: &str) -> u64 {
    match instance_type {
        "t3.small" => 2,
        "c5.large" => 9,
        "r5.large" => 13,
        "m5.large" => 10,
        "m5.xlarge" => 19,
        "c5.2xlarge" => 34,
        "m5.4xlarge" => 77,
        "m5.8xlarge" => 154,
        _ => 10,
    }
}

const ENVS: [Environment; 3] = [
    Environment::Development,
    Environment::Staging,
    Environment::Production,
];

/// The connector id that owns Kubernetes resources of an environment.
pub fn k8s_connector(env: Environment) -> ConnectorId {
    ConnectorId::new(format!("sim:k8s/demo-{}", env.short()))
}

/// The connector id that owns AWS resources.
pub fn aws_connector() -> ConnectorId {
    ConnectorId::new("sim:aws/demo/us-east-1")
}

/// The connector id that owns Linux hosts.
pub fn linux_connector() -> ConnectorId {
    ConnectorId::new("sim:linux/demo")
}

fn stable_hex(seed: &str, len: usize) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    hex::encode(digest)[..len].to_string()
}

fn pod_suffix(seed: &str) -> String {
    // Kubernetes' pod-name alphabet avoids vowels and confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Builds the demo world at `start`.
pub fn generate(seed: u64, start: DateTime<Utc>) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut world = World::default();
    let created = start - Duration::days(30);

    for (e, env) in ENVS.iter().enumerate() {
        let ctx = format!("demo-{}", env.short());
        let connector = k8s_connector(*env);
        let replicas = [1u32, 2, 4][e];
        let nodes = 4;
        for n in 0..nodes {
            let name = format!("node-{}-{n}", env.short());
            let mut attrs = StringMap::new();
            attrs.insert("disk_used_pct".into(), rng.random_range(35..70).to_string());
            attrs.insert(
                "reclaimable_pct".into(),
                rng.random_range(10..30).to_string(),
            );
            attrs.insert("cordoned".into(), "false".into());
            attrs.insert("kubelet".into(), "v1.30.4".into());
            attrs.insert("context".into(), ctx.clone());
            let node_type = NODE_TYPES[e];
            let (cpu, mem) = node_capacity(node_type);
            attrs.insert("instance_type".into(), node_type.into());
            attrs.insert("region".into(), "us-east-1".into());
            attrs.insert("cpu_capacity_millicores".into(), cpu.to_string());
            attrs.insert("memory_capacity_mib".into(), mem.to_string());
            world.insert(resource(
                format!("k8s/{ctx}/node/{name}"),
                &name,
                "node",
                Provider::Kubernetes,
                &connector,
                *env,
                "platform",
                attrs,
                created,
            ));
        }
        for (deploy, team, limit, need) in WORKLOADS {
            let dep_id = format!("k8s/{ctx}/{team}/deployment/{deploy}");
            let rs = stable_hex(&format!("{ctx}/{deploy}/rs"), 10);
            let image = format!("registry.demo/{deploy}:v2.{}.0", rng.random_range(1..9));
            let mut attrs = StringMap::new();
            attrs.insert("replicas".into(), replicas.to_string());
            attrs.insert("image".into(), image.clone());
            attrs.insert(
                "previous_image".into(),
                format!("registry.demo/{deploy}:v1.9.0"),
            );
            attrs.insert("revision".into(), rng.random_range(3..20).to_string());
            attrs.insert("memory_limit_mib".into(), limit.to_string());
            attrs.insert("context".into(), ctx.clone());
            attrs.insert("namespace".into(), team.to_string());
            world.insert(resource(
                dep_id.clone(),
                deploy,
                "deployment",
                Provider::Kubernetes,
                &connector,
                *env,
                team,
                attrs,
                created,
            ));
            for i in 0..replicas {
                let pod = format!(
                    "{deploy}-{}-{}",
                    &rs[..9],
                    pod_suffix(&format!("{ctx}/{deploy}/{i}"))
                );
                let mut attrs = StringMap::new();
                attrs.insert("owner".into(), dep_id.clone());
                attrs.insert("node".into(), format!("node-{}-{}", env.short(), i % nodes));
                attrs.insert("image".into(), image.clone());
                attrs.insert("memory_limit_mib".into(), limit.to_string());
                attrs.insert(
                    "memory_need_mib".into(),
                    (*need as f64 * rng.random_range(0.9..1.05))
                        .round()
                        .to_string(),
                );
                attrs.insert("restarts".into(), "0".into());
                attrs.insert("latency_ms".into(), rng.random_range(40..120).to_string());
                if let Some((_, request, usage)) = WORKLOAD_CPU.iter().find(|(d, _, _)| d == deploy)
                {
                    attrs.insert("cpu_request_millicores".into(), request.to_string());
                    let used = *usage as f64 * jitter(&format!("{ctx}/{deploy}/{i}"));
                    attrs.insert("cpu_usage_millicores".into(), format!("{used:.0}"));
                }
                attrs.insert("latency_slo_ms".into(), "500".into());
                attrs.insert("rps".into(), rng.random_range(20..400).to_string());
                attrs.insert("context".into(), ctx.clone());
                attrs.insert("namespace".into(), team.to_string());
                world.insert(resource(
                    format!("k8s/{ctx}/{team}/pod/{pod}"),
                    &pod,
                    "pod",
                    Provider::Kubernetes,
                    &connector,
                    *env,
                    team,
                    attrs,
                    created + Duration::hours(rng.random_range(1..600)),
                ));
            }
        }
    }

    let aws = aws_connector();
    for (prefix, team, itype, counts) in INSTANCE_GROUPS {
        for (e, env) in ENVS.iter().enumerate() {
            for i in 0..counts[e] {
                let name = format!("{prefix}-{}-{i}", env.short());
                let id = format!("i-0{}", stable_hex(&name, 16));
                let mut attrs = StringMap::new();
                attrs.insert("instance_id".into(), id.clone());
                attrs.insert("state".into(), "running".into());
                attrs.insert("instance_type".into(), itype.to_string());
                attrs.insert(
                    "az".into(),
                    ["us-east-1a", "us-east-1b", "us-east-1c"][i as usize % 3].into(),
                );
                attrs.insert("hourly_cost_cents".into(), hourly_cents(itype).to_string());
                attrs.insert("cpu_util_pct".into(), rng.random_range(8..70).to_string());
                attrs.insert("status_check".into(), "ok".into());
                world.insert(resource(
                    format!("aws/us-east-1/ec2/{id}"),
                    &name,
                    "ec2_instance",
                    Provider::Aws,
                    &aws,
                    *env,
                    team,
                    attrs,
                    created + Duration::hours(rng.random_range(1..600)),
                ));
            }
        }
    }

    let linux = linux_connector();
    for (prefix, team, counts) in HOST_GROUPS {
        for (e, env) in ENVS.iter().enumerate() {
            for i in 0..counts[e] {
                let name = format!("{prefix}-{}-{i}", env.short());
                let mut attrs = StringMap::new();
                attrs.insert("disk_used_pct".into(), rng.random_range(30..75).to_string());
                attrs.insert(
                    "reclaimable_pct".into(),
                    rng.random_range(10..35).to_string(),
                );
                attrs.insert("load1".into(), format!("{:.2}", rng.random_range(0.1..2.5)));
                attrs.insert("kernel".into(), "6.1.0-28-amd64".into());
                attrs.insert("service:sshd".into(), "active".into());
                if *prefix == "web" {
                    attrs.insert("service:nginx".into(), "active".into());
                }
                for (pkg, version) in BASE_PACKAGES {
                    attrs.insert(format!("pkg:{pkg}"), version.to_string());
                }
                world.insert(resource(
                    format!("linux/{name}"),
                    &name,
                    "host",
                    Provider::Linux,
                    &linux,
                    *env,
                    team,
                    attrs,
                    created,
                ));
            }
        }
    }

    for (name, team, env, days) in CREDENTIALS {
        let mut attrs = StringMap::new();
        attrs.insert(
            "expires_at".into(),
            (start + Duration::days(*days)).to_rfc3339(),
        );
        attrs.insert("version".into(), rng.random_range(1..12).to_string());
        attrs.insert("store".into(), "secretsmanager".into());
        world.insert(resource(
            format!("aws/us-east-1/secret/{name}"),
            name,
            "credential",
            Provider::Aws,
            &aws,
            *env,
            team,
            attrs,
            created,
        ));
    }

    // History that investigations will find: a rollout of checkout-api shortly before the trouble.
    let checkout = ResourceId::new("k8s/demo-prod/checkout/deployment/checkout-api");
    world.record(InfraEvent {
        at: start - Duration::minutes(11),
        resource: checkout,
        kind: "change".into(),
        reason: "ScalingReplicaSet".into(),
        message: "rollout: image registry.demo/checkout-api:v2.4.0 (was v2.3.1), revision 15"
            .into(),
    });
    world
}

#[allow(clippy::too_many_arguments)]
fn resource(
    id: String,
    name: &str,
    kind: &str,
    provider: Provider,
    connector: &ConnectorId,
    environment: Environment,
    team: &str,
    attributes: StringMap,
    created_at: DateTime<Utc>,
) -> Resource {
    let mut labels = StringMap::new();
    labels.insert("team".into(), team.to_string());
    labels.insert("environment".into(), environment.as_str().to_string());
    Resource {
        id: ResourceId::new(id),
        name: name.to_string(),
        kind: kind.to_string(),
        provider,
        connector: connector.clone(),
        environment,
        team: team.to_string(),
        labels,
        attributes,
        health: Health::healthy(),
        created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_two_hundred_resources_across_envs_and_teams() {
        let world = generate(7, Utc::now());
        let n = world.resources.len();
        assert!((170..=230).contains(&n), "{n} resources");
        let teams: std::collections::BTreeSet<_> = world
            .resources
            .values()
            .map(|r| r.resource.team.clone())
            .collect();
        assert!(teams.len() >= 5);
    }

    #[test]
    fn same_seed_same_world_names_stable_across_seeds() {
        let t = Utc::now();
        let a = generate(1, t);
        let b = generate(1, t);
        let c = generate(2, t);
        assert_eq!(
            serde_json::to_string(&a.resources).unwrap(),
            serde_json::to_string(&b.resources).unwrap()
        );
        let ids_a: Vec<_> = a.resources.keys().collect();
        let ids_c: Vec<_> = c.resources.keys().collect();
        assert_eq!(ids_a, ids_c);
    }
}
