//! What a Kubernetes action would change, read from the live object before
//! approval (current → new), and the parameters each action takes: one table,
//! read by the preview and by execution, so a parameter the connector would
//! ignore is refused, never dropped.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::Value;

use super::KubeConnector;
use super::actions::{bad, get_json, previous_revision, quantity_mib, unsupported};
use super::ids::ObjectKey;
use crate::connectors::{ConnectorError, Result, check_params, check_stated, preview_of};
use crate::event::{Action, Change, Preview};

/// The action's canonical name (the playbooks' node action names are accepted too).
pub fn canonical(name: &str) -> &str {
    match name {
        "cordon_node" => "cordon",
        "uncordon_node" => "uncordon",
        "drain_node" => "drain",
        other => other,
    }
}

/// The parameters `action` takes on an object of `kind`; `None` when the
/// connector does not do that action to that kind.
pub fn takes(action: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (canonical(action), kind) {
        ("restart_pod", "pod") => &[],
        ("rollout_restart", "deployment" | "statefulset" | "daemonset") => &[],
        ("scale", "deployment" | "statefulset" | "replicaset") => &["replicas", "current_replicas"],
        ("rollback_deployment", "deployment") => &[],
        ("set_resources", "deployment" | "statefulset" | "daemonset") => &[
            "container",
            "cpu_request_millicores",
            "memory_request_mib",
            "cpu_limit_millicores",
            "memory_limit_mib",
        ],
        ("cordon" | "uncordon" | "drain", "node") => &[],
        _ => return None,
    })
}

/// Refuses an action this connector does not do, or one carrying a
/// parameter it would not use.
pub fn check(action: &Action, kind: &str) -> Result<()> {
    let params = takes(&action.name, kind).ok_or_else(|| unsupported(action))?;
    check_params(action, params)
}

/// One resource field `set_resources` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceField {
    pub param: &'static str,
    /// `requests` or `limits`.
    pub section: &'static str,
    /// `cpu` or `memory`.
    pub resource: &'static str,
    pub label: &'static str,
}

/// Every field `set_resources` can set, in the order they are shown.
pub const RESOURCE_FIELDS: [ResourceField; 4] = [
    ResourceField {
        param: "cpu_request_millicores",
        section: "requests",
        resource: "cpu",
        label: "CPU request",
    },
    ResourceField {
        param: "memory_request_mib",
        section: "requests",
        resource: "memory",
        label: "memory request",
    },
    ResourceField {
        param: "cpu_limit_millicores",
        section: "limits",
        resource: "cpu",
        label: "CPU limit",
    },
    ResourceField {
        param: "memory_limit_mib",
        section: "limits",
        resource: "memory",
        label: "memory limit",
    },
];

/// What `set_resources` sets on one container: each field with its quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    pub container: String,
    pub fields: Vec<(ResourceField, String)>,
}

/// `500m`, `0.5`, `2` → millicores.
pub fn quantity_millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    let (num, scale) = match q.strip_suffix('m') {
        Some(n) => (n, 1.0),
        None => (q, 1000.0),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then(|| (n * scale).round() as u64)
}

/// The amount a quantity stands for, in the unit its parameter uses.
fn amount(field: &ResourceField, q: &str) -> Option<u64> {
    if field.resource == "memory" {
        quantity_mib(q)
    } else {
        quantity_millicores(q)
    }
}

impl ResourceChange {
    /// Reads the parameters of a `set_resources` action against the live
    /// object's containers: the container (the first when not named) and at
    /// least one field, each a whole number in range, with no request over
    /// its limit once applied.
    pub fn parse(action: &Action, object: &Value) -> Result<ResourceChange> {
        let containers = object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let container = match action.params.get("container") {
            Some(c) => c.clone(),
            None => containers
                .first()
                .and_then(|c| c["name"].as_str())
                .map(String::from)
                .ok_or_else(|| bad(action, "container", "the workload has no containers"))?,
        };
        let live = containers
            .iter()
            .find(|c| c["name"].as_str() == Some(container.as_str()))
            .ok_or_else(|| {
                bad(
                    action,
                    "container",
                    format!("no container named {container}"),
                )
            })?;
        let mut fields = Vec::new();
        for field in RESOURCE_FIELDS {
            let Some(v) = action.params.get(field.param) else {
                continue;
            };
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| bad(action, field.param, format!("`{v}` is not a whole number")))?;
            let (range, unit) = if field.resource == "memory" {
                (16..=1_048_576, "Mi")
            } else {
                (10..=256_000, "m")
            };
            if !range.contains(&n) {
                return Err(bad(
                    action,
                    field.param,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
            fields.push((field, format!("{n}{unit}")));
        }
        if fields.is_empty() {
            return Err(bad(
                action,
                "params",
                format!(
                    "give at least one of {}",
                    RESOURCE_FIELDS.map(|f| f.param).join(", ")
                ),
            ));
        }
        let change = ResourceChange { container, fields };
        // A request above its limit is refused by the API server after the
        // approval; say so before it.
        for resource in ["cpu", "memory"] {
            let after = |section: &str| {
                change
                    .fields
                    .iter()
                    .find(|(f, _)| f.section == section && f.resource == resource)
                    .map(|(f, q)| (f.param, amount(f, q)))
                    .or_else(|| {
                        let f = RESOURCE_FIELDS
                            .iter()
                            .find(|f| f.section == section && f.resource == resource)?;
                        let q = live["resources"][section][resource].as_str()?;
                        Some((f.param, amount(f, q)))
                    })
            };
            if let (Some((rp, Some(request))), Some((lp, Some(limit)))) =
                (after("requests"), after("limits"))
                && request > limit
            {
                return Err(bad(
                    action,
                    if action.params.contains_key(rp) {
                        rp
                    } else {
                        lp
                    },
                    format!("the {resource} request would exceed its limit ({request} > {limit})"),
                ));
            }
        }
        Ok(change)
    }

    /// The strategic-merge patch that sets exactly these fields.
    pub fn patch(&self) -> Value {
        let mut resources = serde_json::Map::new();
        for (f, q) in &self.fields {
            resources
                .entry(f.section)
                .or_insert_with(|| Value::Object(Default::default()))
                .as_object_mut()
                .map(|m| m.insert(f.resource.to_string(), Value::String(q.clone())));
        }
        serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": self.container, "resources": resources}
        ]}}}})
    }

    /// The fields of `object`'s container that do not hold what was set
    /// (compared as amounts: the API server may write `1Gi` for `1024Mi`).
    pub fn not_applied(&self, object: &Value) -> Vec<String> {
        let c = object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["name"].as_str() == Some(self.container.as_str()))
            });
        self.fields
            .iter()
            .filter(|(f, q)| {
                let now = c.and_then(|c| c["resources"][f.section][f.resource].as_str());
                now.and_then(|n| amount(f, n)) != amount(f, q)
            })
            .map(|(f, q)| format!("{} is not {q}", f.label))
            .collect()
    }

    /// `memory limit 384Mi, CPU request 250m`.
    pub fn describe(&self) -> String {
        self.fields
            .iter()
            .map(|(f, q)| format!("{} {q}", f.label))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "unset".into(),
        other => other.to_string(),
    }
}

/// What `action` would change on its target, read from the API server now.
pub async fn preview(conn: &KubeConnector, action: &Action) -> Result<Preview> {
    let id = &action.target;
    let k = conn.key(id)?;
    check(action, &k.kind)?;
    let object = get_json(conn, id, &k).await?;
    let name = format!("{} {}", k.kind, display_name(&k));
    let replicas = shown(&object["spec"]["replicas"]);
    let mut notes = Vec::new();
    let changes = match canonical(&action.name) {
        "set_resources" => {
            let change = ResourceChange::parse(action, &object)?;
            let live = object["spec"]["template"]["spec"]["containers"]
                .as_array()
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c["name"].as_str() == Some(change.container.as_str()))
                })
                .cloned()
                .unwrap_or(Value::Null);
            if k.kind != "daemonset" {
                notes.push(format!(
                    "rolls out new pods for {replicas} replica(s) with these resources"
                ));
            }
            notes.push(format!(
                "other requests and limits of container {} are kept",
                change.container
            ));
            change
                .fields
                .iter()
                .map(|(f, q)| {
                    Change::new(
                        format!("{} {}", change.container, f.label),
                        shown(&live["resources"][f.section][f.resource]),
                        q.clone(),
                    )
                })
                .collect()
        }
        "scale" => {
            let wanted = action
                .params
                .get("replicas")
                .ok_or_else(|| bad(action, "replicas", "required"))?;
            let n: i32 = wanted
                .trim()
                .parse()
                .map_err(|_| bad(action, "replicas", "not a whole number"))?;
            if !(0..=1000).contains(&n) {
                return Err(bad(action, "replicas", "must be between 0 and 1000"));
            }
            check_stated(action, "current_replicas", &replicas)?;
            vec![Change::new("replicas", replicas, n.to_string())]
        }
        "rollout_restart" => {
            notes.push("pods are replaced as the rollout strategy allows".into());
            vec![Change::new(
                "pods",
                format!("{replicas} running"),
                format!("{replicas} recreated"),
            )]
        }
        "rollback_deployment" => {
            let d: Deployment = serde_json::from_value(object.clone())
                .map_err(|e| ConnectorError::Backend(format!("{id}: {e}")))?;
            let (current_rev, previous, previous_rev) =
                previous_revision(conn, &d).await.ok_or_else(|| {
                    bad(
                        action,
                        "revision",
                        format!(
                            "deployment {} has no previous revision to roll back to",
                            k.name
                        ),
                    )
                })?;
            let mut changes = vec![Change::new(
                "revision",
                current_rev.to_string(),
                format!("{previous_rev} ({})", previous.name_any()),
            )];
            let prev_containers = serde_json::to_value(
                previous
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| t.spec.as_ref())
                    .map(|s| &s.containers),
            )
            .unwrap_or(Value::Null);
            let images = |cs: &Value| -> Vec<(String, String)> {
                cs.as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| (shown(&c["name"]), shown(&c["image"])))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let before = images(&object["spec"]["template"]["spec"]["containers"]);
            for (c, image) in images(&prev_containers) {
                let now = before
                    .iter()
                    .find(|(n, _)| *n == c)
                    .map_or("unset".to_string(), |(_, i)| i.clone());
                if now != image {
                    changes.push(Change::new(format!("{c} image"), now, image));
                }
            }
            notes.push(
                "the whole pod template returns to the previous revision's (env, resources, probes)"
                    .into(),
            );
            changes
        }
        "restart_pod" => {
            let owner = object["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|o| o.iter().find(|r| r["controller"] == Value::Bool(true)))
                .map(|o| format!("{}/{}", shown(&o["kind"]), shown(&o["name"])))
                .ok_or_else(|| ConnectorError::Unsupported {
                    action: "restart_pod (a pod without a controller would not come back)".into(),
                    resource: id.clone(),
                })?;
            let restarts: i64 = object["status"]["containerStatuses"]
                .as_array()
                .map(|cs| cs.iter().filter_map(|c| c["restartCount"].as_i64()).sum())
                .unwrap_or(0);
            vec![Change::new(
                "pod",
                format!(
                    "{} on {}, {restarts} restart(s)",
                    shown(&object["status"]["phase"]),
                    shown(&object["spec"]["nodeName"])
                ),
                format!("deleted; {owner} recreates it"),
            )]
        }
        verb @ ("cordon" | "uncordon" | "drain") => {
            let cordoned = object["spec"]["unschedulable"].as_bool().unwrap_or(false);
            let label = |c: bool| if c { "cordoned" } else { "schedulable" };
            let mut changes = vec![Change::new(
                "scheduling",
                label(cordoned),
                label(verb != "uncordon"),
            )];
            if verb == "drain" {
                let pods = kube::Api::<Pod>::all(conn.client.clone())
                    .list(&ListParams::default().fields(&format!("spec.nodeName={}", k.name)))
                    .await
                    .map_err(|e| super::map_err(id, e))?;
                let (evicted, kept): (Vec<&Pod>, Vec<&Pod>) = pods.items.iter().partition(|p| {
                    let daemon = p.owner_references().iter().any(|o| o.kind == "DaemonSet");
                    let mirror = p.annotations().contains_key("kubernetes.io/config.mirror");
                    !daemon && !mirror
                });
                changes.push(Change::new(
                    "pods on the node",
                    pods.items.len().to_string(),
                    format!("{} (evicts {})", kept.len(), evicted.len()),
                ));
                let names: Vec<String> = evicted
                    .iter()
                    .take(10)
                    .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
                    .collect();
                if !names.is_empty() {
                    notes.push(format!(
                        "evicts {}{}; a PodDisruptionBudget that refuses stops the drain",
                        names.join(", "),
                        if evicted.len() > names.len() {
                            ", …"
                        } else {
                            ""
                        }
                    ));
                }
            }
            changes
        }
        _ => return Err(unsupported(action)),
    };
    let mut p = preview_of(action, name, changes);
    p.notes.extend(notes);
    Ok(p)
}

fn display_name(k: &ObjectKey) -> String {
    if k.namespace.is_empty() {
        k.name.clone()
    } else {
        format!("{}/{}", k.namespace, k.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceId;
    use serde_json::json;

    fn object() -> Value {
        json!({"spec": {"replicas": 4, "template": {"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}},
            {"name": "sidecar"}
        ]}}}})
    }

    fn action(params: &[(&str, &str)]) -> Action {
        let mut a = Action::new(
            "set_resources",
            ResourceId::new("k8s/c/shop/deployment/web"),
        );
        for (k, v) in params {
            a = a.with(k, *v);
        }
        a
    }

    #[test]
    fn requests_and_limits_are_set_only_where_given() {
        let c = ResourceChange::parse(
            &action(&[
                ("cpu_request_millicores", "250"),
                ("memory_request_mib", "384"),
            ]),
            &object(),
        )
        .unwrap();
        assert_eq!(c.container, "app");
        assert_eq!(
            c.patch(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "384Mi"}}}
            ]}}}})
        );
        // Read back in the API server's own spelling, the change holds.
        let mut after = object();
        after["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] =
            json!({"cpu": "0.25", "memory": "384Mi"});
        assert!(c.not_applied(&after).is_empty());
        // The old requests do not pass for the new ones.
        assert_eq!(
            c.not_applied(&object()),
            vec!["CPU request is not 250m", "memory request is not 384Mi"]
        );
    }

    #[test]
    fn a_request_over_its_limit_is_refused_before_approval() {
        let err = ResourceChange::parse(&action(&[("memory_request_mib", "768")]), &object())
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory_request_mib"), "{err}");
        assert!(err.contains("exceed its limit (768 > 512)"), "{err}");
        // Raising the limit with it is fine.
        ResourceChange::parse(
            &action(&[("memory_request_mib", "768"), ("memory_limit_mib", "1024")]),
            &object(),
        )
        .unwrap();
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (params, needle) in [
            (vec![("memory_limit_mib", "lots")], "memory_limit_mib"),
            (vec![("cpu_limit_millicores", "5")], "cpu_limit_millicores"),
            (
                vec![("container", "nope"), ("memory_limit_mib", "384")],
                "container",
            ),
            (vec![], "give at least one of"),
        ] {
            let err = ResourceChange::parse(&action(&params), &object())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn an_ignored_parameter_is_refused_by_name() {
        // The spelling the connector used to take for the CPU limit, and a
        // parameter no Kubernetes action uses.
        for (name, param) in [
            ("set_resources", "cpu_limit_millis"),
            ("rollout_restart", "replicas"),
            ("scale", "instance_type"),
            ("cordon_node", "force"),
        ] {
            let a = Action::new(name, ResourceId::new("x")).with(param, "1");
            let kind = match name {
                "cordon_node" => "node",
                _ => "deployment",
            };
            let err = check(&a, kind).unwrap_err().to_string();
            assert!(err.contains(param) && err.contains("ignored"), "{err}");
        }
        // The reason shown to approvers is not a parameter of the change.
        let a = Action::new("rollback_deployment", ResourceId::new("x")).with("reason", "p99");
        check(&a, "deployment").unwrap();
        assert!(check(&Action::new("drain", ResourceId::new("x")), "deployment").is_err());
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(quantity_millicores("500m"), Some(500));
        assert_eq!(quantity_millicores("1"), Some(1000));
        assert_eq!(quantity_millicores("0.25"), Some(250));
        assert_eq!(quantity_millicores("lots"), None);
    }
}
