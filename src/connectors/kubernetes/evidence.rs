//! Evidence for investigations: the pod's events, the previous container's
//! log tail (bounded and redacted), the owner chain, the rollout history, the
//! node's conditions and the autoscaler's state — each fetched live, and the
//! analyzers' findings citing the evidence they rest on.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use kube::ResourceExt;
use kube::api::{ListParams, LogParams};

use super::analyzers::{self, Finding};
use super::fleet::jiff_to_chrono;
use super::ids::{self, ObjectKey};
use super::{KubeConnector, map_err};
use crate::connectors::{Diagnosis, DiagnosisEvidence, DiagnosisFinding, Result};
use crate::event::{Action, InfraEvent, ResourceId};
use crate::redact;

/// Lines of the previous container's log kept as evidence.
const LOG_TAIL_LINES: i64 = 50;
/// Bytes of log fetched at most per container.
const LOG_TAIL_BYTES: i64 = 16 * 1024;
/// Longest log line kept.
const LOG_LINE_CHARS: usize = 300;

struct Builder {
    context: String,
    diagnosis: Diagnosis,
}

impl Builder {
    /// Records evidence; every line passes the redactor here (event and
    /// condition messages, autoscaler and node text are the workload's or
    /// the cluster's words), log tails already did as whole texts.
    fn evidence(&mut self, source: &str, summary: String, detail: Vec<String>) {
        self.diagnosis.evidence.push(DiagnosisEvidence {
            source: source.to_string(),
            summary: redact::line(&summary),
            detail: detail.iter().map(|l| redact::line(l)).collect(),
        });
    }

    fn findings(
        &mut self,
        findings: Vec<Finding>,
        sources: &[&str],
        target: &ResourceId,
        owner: Option<&ResourceId>,
    ) {
        let present: Vec<String> = sources
            .iter()
            .filter(|s| self.diagnosis.evidence.iter().any(|e| e.source == **s))
            .map(|s| s.to_string())
            .collect();
        for f in findings {
            let action = f.action.as_ref().map(|a| {
                let on = if a.on_owner {
                    owner.unwrap_or(target)
                } else {
                    target
                };
                let mut action = Action::new(a.name, on.clone());
                for (k, v) in &a.params {
                    action = action.with(k, v.clone());
                }
                action
            });
            self.diagnosis.findings.push(DiagnosisFinding {
                title: f.cause,
                confidence: f.confidence,
                reasoning: redact::line(&format!("{}: {}", f.reason, f.message)),
                sources: present.clone(),
                action,
            });
        }
    }
}

/// Everything the connector can tell about a resource.
pub async fn diagnose(conn: &KubeConnector, id: &ResourceId) -> Result<Diagnosis> {
    let key = conn.key(id)?;
    let mut b = Builder {
        context: conn.context().to_string(),
        diagnosis: Diagnosis::default(),
    };
    match key.kind.as_str() {
        "pod" => diagnose_pod(conn, id, &key, &mut b).await?,
        "deployment" => {
            let d: Deployment = conn
                .ns_api(&key.namespace)
                .get(&key.name)
                .await
                .map_err(|e| map_err(id, e))?;
            object_events(conn, &key, &mut b).await;
            rollouts(conn, &d, &mut b).await;
            autoscalers(conn, &key.namespace, &key.name, &mut b).await;
            let f = analyzers::deployment::analyze(&d);
            b.findings(f, &["k8s_events", "rollouts", "hpa"], id, None);
        }
        _ => {
            object_events(conn, &key, &mut b).await;
            let f = conn.judge(id).await?;
            b.findings(f, &["k8s_events"], id, None);
        }
    }
    Ok(b.diagnosis)
}

async fn diagnose_pod(
    conn: &KubeConnector,
    id: &ResourceId,
    key: &ObjectKey,
    b: &mut Builder,
) -> Result<()> {
    let pods = conn.ns_api::<Pod>(&key.namespace);
    let pod = pods.get(&key.name).await.map_err(|e| map_err(id, e))?;
    object_events(conn, key, b).await;
    previous_logs(&pods, &pod, b).await;
    let deployment = owner_chain(conn, &pod, b).await;
    let deployment_id = deployment
        .as_ref()
        .map(|d| ids::id(&b.context, &key.namespace, "deployment", &d.name_any()));
    if let Some(d) = &deployment {
        rollouts(conn, d, b).await;
        autoscalers(conn, &key.namespace, &d.name_any(), b).await;
    }
    let mut findings = analyzers::pod::analyze(&pod);
    for f in findings.iter_mut() {
        fill_memory_limit(f, &pod);
    }
    b.findings(
        findings,
        &["k8s_events", "previous_logs", "owner_chain", "rollouts"],
        id,
        deployment_id.as_ref(),
    );
    if let Some(d) = &deployment {
        let f = analyzers::deployment::analyze(d);
        b.findings(
            f,
            &["rollouts", "owner_chain"],
            deployment_id.as_ref().unwrap_or(id),
            None,
        );
    }
    if let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        node_pressure(conn, &node_name, b).await;
    }
    Ok(())
}

/// A set_resources suggestion gets the container's limit raised by half.
fn fill_memory_limit(f: &mut Finding, pod: &Pod) {
    let Some(a) = f.action.as_mut().filter(|a| a.name == "set_resources") else {
        return;
    };
    let container = a
        .params
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone());
    let limit = pod
        .spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| Some(&c.name) == container.as_ref())
        })
        .and_then(|c| {
            c.resources
                .as_ref()?
                .limits
                .as_ref()?
                .get("memory")
                .cloned()
        })
        .and_then(|q| super::actions::quantity_mib(&q.0));
    if let Some(mib) = limit {
        // The same figure the investigation and the playbooks quote
        // (`sizing`): with no observed demand here, one step over the limit.
        let proposed = crate::sizing::oom_memory_limit_mib(mib as f64, None);
        a.params
            .push(("memory_limit_mib".into(), proposed.to_string()));
    }
}

async fn object_events(conn: &KubeConnector, key: &ObjectKey, b: &mut Builder) {
    let api: kube::Api<KubeEvent> = if key.namespace.is_empty() {
        kube::Api::all(conn.client.clone())
    } else {
        conn.ns_api(&key.namespace)
    };
    let mut fields = format!("involvedObject.name={}", key.name);
    if !key.namespace.is_empty() {
        fields.push_str(&format!(",involvedObject.namespace={}", key.namespace));
    }
    let Ok(list) = api.list(&ListParams::default().fields(&fields)).await else {
        return;
    };
    let mut events: Vec<(chrono::DateTime<chrono::Utc>, String)> = list
        .items
        .iter()
        .map(|e| {
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .map(jiff_to_chrono)
                .unwrap_or_default();
            let count = e
                .count
                .filter(|c| *c > 1)
                .map(|c| format!(" (x{c})"))
                .unwrap_or_default();
            (
                at,
                format!(
                    "{} {} {}: {}{count}",
                    at.format("%H:%M:%S"),
                    e.type_.as_deref().unwrap_or("Normal"),
                    e.reason.as_deref().unwrap_or(""),
                    redact::line(e.message.as_deref().unwrap_or(""))
                ),
            )
        })
        .collect();
    if events.is_empty() {
        return;
    }
    events.sort_by_key(|(at, _)| *at);
    let warnings = list
        .items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .count();
    let skip = events.len().saturating_sub(20);
    b.evidence(
        "k8s_events",
        format!(
            "{} Kubernetes event(s), {warnings} warning(s)",
            events.len()
        ),
        events.into_iter().skip(skip).map(|(_, l)| l).collect(),
    );
}

async fn previous_logs(pods: &kube::Api<Pod>, pod: &Pod, b: &mut Builder) {
    let restarted: Vec<String> = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter(|c| {
            c.restart_count > 0
                || c.last_state
                    .as_ref()
                    .is_some_and(|l| l.terminated.is_some())
        })
        .map(|c| c.name.clone())
        .collect();
    let mut detail = Vec::new();
    for container in &restarted {
        let params = LogParams {
            container: Some(container.clone()),
            previous: true,
            tail_lines: Some(LOG_TAIL_LINES),
            limit_bytes: Some(LOG_TAIL_BYTES),
            ..Default::default()
        };
        match pods.logs(&pod.name_any(), &params).await {
            Ok(text) => detail.extend(bounded_lines(&text, container)),
            Err(e) => detail.push(format!("[{container}] previous log unavailable: {e}")),
        }
    }
    if !detail.is_empty() {
        b.evidence(
            "previous_logs",
            format!(
                "last {} line(s) of the previous container(s): {}",
                detail.len(),
                restarted.join(", ")
            ),
            detail,
        );
    }
}

/// A log tail as evidence lines: at most [`LOG_TAIL_LINES`], cut at
/// [`LOG_LINE_CHARS`], prefixed with the container. The whole text is
/// redacted before it is split, so a key block across lines is masked whole.
fn bounded_lines(text: &str, container: &str) -> Vec<String> {
    let text = redact::text(text);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES as usize);
    lines[skip..]
        .iter()
        .map(|line| {
            let mut l = line.to_string();
            if l.chars().count() > LOG_LINE_CHARS {
                l = l.chars().take(LOG_LINE_CHARS).collect::<String>() + "…";
            }
            format!("[{container}] {l}")
        })
        .collect()
}

/// The running containers' log tails (bounded, redacted).
async fn current_logs(pods: &kube::Api<Pod>, pod: &Pod, b: &mut Builder) {
    let containers: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    let mut detail = Vec::new();
    for container in &containers {
        let params = LogParams {
            container: Some(container.clone()),
            tail_lines: Some(LOG_TAIL_LINES),
            limit_bytes: Some(LOG_TAIL_BYTES),
            ..Default::default()
        };
        match pods.logs(&pod.name_any(), &params).await {
            Ok(text) => detail.extend(bounded_lines(&text, container)),
            Err(e) => detail.push(format!("[{container}] log unavailable: {e}")),
        }
    }
    b.evidence(
        "logs",
        format!(
            "last {} log line(s) of {} (redacted, at most {LOG_TAIL_LINES} per container)",
            detail.len(),
            containers.join(", ")
        ),
        detail,
    );
}

/// What the drill-down shows on request: the object's recent Kubernetes
/// events and, for a pod, each container's log tail (and the previous
/// container's, when one restarted). Reads only.
pub async fn inspect(conn: &KubeConnector, id: &ResourceId) -> Result<Vec<DiagnosisEvidence>> {
    let key = conn.key(id)?;
    let mut b = Builder {
        context: conn.context().to_string(),
        diagnosis: Diagnosis::default(),
    };
    if key.kind == "pod" {
        let pods = conn.ns_api::<Pod>(&key.namespace);
        let pod = pods.get(&key.name).await.map_err(|e| map_err(id, e))?;
        object_events(conn, &key, &mut b).await;
        current_logs(&pods, &pod, &mut b).await;
        previous_logs(&pods, &pod, &mut b).await;
    } else {
        // The object must exist; then its events are what there is to show.
        conn.judge(id).await?;
        object_events(conn, &key, &mut b).await;
    }
    if !b
        .diagnosis
        .evidence
        .iter()
        .any(|e| e.source == "k8s_events")
    {
        b.evidence("k8s_events", "no Kubernetes events".into(), Vec::new());
    }
    b.diagnosis
        .evidence
        .sort_by_key(|e| e.source != "k8s_events");
    Ok(b.diagnosis.evidence)
}

/// pod → replicaset → deployment; returns the deployment when there is one.
async fn owner_chain(conn: &KubeConnector, pod: &Pod, b: &mut Builder) -> Option<Deployment> {
    let ns = pod.namespace().unwrap_or_default();
    let mut chain = vec![format!("pod/{}", pod.name_any())];
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .cloned();
    let mut deployment = None;
    if let Some(o) = owner {
        chain.push(format!("{}/{}", o.kind.to_ascii_lowercase(), o.name));
        if o.kind == "ReplicaSet"
            && let Ok(rs) = conn.ns_api::<ReplicaSet>(&ns).get(&o.name).await
        {
            if let Some(rev) = revision(&rs)
                && let Some(l) = chain.last_mut()
            {
                l.push_str(&format!(" (revision {rev})"));
            }
            if let Some(d) = rs
                .owner_references()
                .iter()
                .find(|r| r.kind == "Deployment")
                && let Ok(dep) = conn.ns_api::<Deployment>(&ns).get(&d.name).await
            {
                chain.push(format!("deployment/{}", d.name));
                deployment = Some(dep);
            }
        }
    }
    b.evidence("owner_chain", chain.join(" → "), chain.clone());
    deployment
}

fn revision(rs: &ReplicaSet) -> Option<i64> {
    rs.annotations()
        .get("deployment.kubernetes.io/revision")
        .and_then(|r| r.parse().ok())
}

fn images(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The deployment's ReplicaSets, newest revision first.
pub async fn revisions(conn: &KubeConnector, d: &Deployment) -> Vec<ReplicaSet> {
    let ns = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let selector = d
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let Ok(list) = conn
        .ns_api::<ReplicaSet>(&ns)
        .list(&ListParams::default().labels(&selector))
        .await
    else {
        return Vec::new();
    };
    let mut owned: Vec<ReplicaSet> = list
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    owned.sort_by_key(|rs| std::cmp::Reverse(revision(rs).unwrap_or(0)));
    owned
}

async fn rollouts(conn: &KubeConnector, d: &Deployment, b: &mut Builder) {
    let owned = revisions(conn, d).await;
    if owned.is_empty() {
        return;
    }
    let lines: Vec<String> = owned
        .iter()
        .take(10)
        .map(|rs| {
            let at = rs
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| jiff_to_chrono(t.0).to_rfc3339())
                .unwrap_or_default();
            format!(
                "revision {} at {at}: {} ({} replicas)",
                revision(rs).unwrap_or(0),
                images(rs),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
            )
        })
        .collect();
    let summary = match (owned.first(), owned.get(1)) {
        (Some(cur), Some(prev)) if images(cur) != images(prev) => format!(
            "revision {} changed the image: {} → {}",
            revision(cur).unwrap_or(0),
            images(prev),
            images(cur)
        ),
        (Some(cur), _) => format!("current revision {}", revision(cur).unwrap_or(0)),
        _ => String::new(),
    };
    b.evidence("rollouts", summary, lines);
}

/// Rollouts as change events (for the investigation's "recent change" analysis).
pub async fn rollout_changes(conn: &KubeConnector, key: &ObjectKey) -> Vec<InfraEvent> {
    let Ok(d) = conn
        .ns_api::<Deployment>(&key.namespace)
        .get(&key.name)
        .await
    else {
        return Vec::new();
    };
    let owned = revisions(conn, &d).await;
    let id = ids::id(conn.context(), &key.namespace, "deployment", &key.name);
    owned
        .windows(2)
        .map(|w| (&w[0], Some(&w[1])))
        .chain(owned.last().map(|l| (l, None)))
        .filter_map(|(rs, prev)| {
            let at = jiff_to_chrono(rs.metadata.creation_timestamp.as_ref()?.0);
            Some(InfraEvent {
                at,
                resource: id.clone(),
                kind: "change".into(),
                reason: "Rollout".into(),
                message: match prev {
                    Some(p) => format!(
                        "revision {}: {} → {}",
                        revision(rs).unwrap_or(0),
                        images(p),
                        images(rs)
                    ),
                    None => format!("revision {}: {}", revision(rs).unwrap_or(0), images(rs)),
                },
            })
        })
        .collect()
}

async fn autoscalers(conn: &KubeConnector, ns: &str, deployment: &str, b: &mut Builder) {
    let Ok(list) = conn
        .ns_api::<HorizontalPodAutoscaler>(ns)
        .list(&ListParams::default())
        .await
    else {
        return;
    };
    if let Some(h) = list.items.iter().find(|h| {
        h.spec.as_ref().is_some_and(|s| {
            s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == deployment
        })
    }) {
        let spec = h.spec.as_ref();
        let status = h.status.as_ref();
        let mut detail = vec![format!(
            "min {} max {} current {} desired {}",
            spec.and_then(|s| s.min_replicas).unwrap_or(1),
            spec.map(|s| s.max_replicas).unwrap_or(0),
            status.and_then(|s| s.current_replicas).unwrap_or(0),
            status.map(|s| s.desired_replicas).unwrap_or(0)
        )];
        for c in status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            detail.push(format!(
                "{}={} {}: {}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            ));
        }
        b.evidence(
            "hpa",
            format!("autoscaler {}: {}", h.name_any(), detail[0]),
            detail,
        );
        let hid = ids::id(&b.context, ns, "hpa", &h.name_any());
        b.findings(analyzers::hpa::analyze(h), &["hpa"], &hid, None);
    }
}

async fn node_pressure(conn: &KubeConnector, name: &str, b: &mut Builder) {
    let Ok(node) = kube::Api::<Node>::all(conn.client.clone()).get(name).await else {
        return;
    };
    let findings = analyzers::node::analyze(&node);
    let detail: Vec<String> = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .map(|c| {
            format!(
                "{}={} ({})",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    let summary = if findings.is_empty() {
        format!("node {name}: ready, no pressure")
    } else {
        format!(
            "node {name}: {}",
            findings
                .iter()
                .map(|f| f.reason.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    b.evidence("node_pressure", summary, detail);
    let nid = ids::id(&b.context, "", "node", name);
    b.findings(findings, &["node_pressure"], &nid, None);
}
