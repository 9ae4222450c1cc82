//! TEST DOUBLE: a stand-in Kubernetes API server for the integration tests.
//!
//! No real kube-apiserver can be installed where these tests run, so this
//! speaks the real wire format for the part of the API the connector uses:
//! discovery (`/version`, `/api`, `/apis`, resource lists), list (with
//! `limit`/`continue`), watch (`?watch=1`, resourceVersion, bookmarks, `410
//! Gone` once a resourceVersion has been compacted away), get, create, replace,
//! the three patch types, delete, the scale subresource, pod logs, evictions
//! that respect PodDisruptionBudgets, RBAC Roles and ClusterRoles
//! (`rbac.authorization.k8s.io/v1`, stored and watched like any object), and `Status` errors (404, 409, 410, 429).
//! Objects are kept as JSON in memory and served over plain HTTP on 127.0.0.1.
//!
//! A few controller behaviours are imitated so actions can be validated: a
//! deployment whose pod template changes gets a new ReplicaSet revision (or an
//! old one back, as the real controller does), and a deleted pod owned by a
//! ReplicaSet is replaced. Nothing else of a real control plane is imitated.

#![allow(dead_code)]

mod controllers;
mod metrics;

#[allow(unused_imports)]
pub use controllers::{Crash, statefulset};
#[allow(unused_imports)]
pub use metrics::MetricsMode;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

/// One served resource type.
#[derive(Debug, Clone, Copy)]
pub struct ResType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short: &'static [&'static str],
}

impl ResType {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every resource type this double serves.
pub const TYPES: &[ResType] = &[
    rt("", "v1", "pods", "pod", "Pod", true, &["po"]),
    rt("", "v1", "nodes", "node", "Node", false, &["no"]),
    rt("", "v1", "services", "service", "Service", true, &["svc"]),
    rt(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
    ),
    rt("", "v1", "events", "event", "Event", true, &["ev"]),
    rt(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
    ),
    rt(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
    ),
    rt(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
    ),
    rt(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
    ),
    rt(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
    ),
    rt(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
    ),
    rt("batch", "v1", "jobs", "job", "Job", true, &[]),
    rt(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
    ),
    rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
    ),
    rt(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
    ),
    rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
    ),
];

const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> ResType {
    ResType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short,
    }
}

fn find_type(group: &str, version: &str, plural: &str) -> Option<&'static ResType> {
    TYPES
        .iter()
        .find(|t| t.group == group && t.version == version && t.plural == plural)
}

fn type_of_kind(kind: &str) -> Option<&'static ResType> {
    TYPES.iter().find(|t| t.kind == kind)
}

/// Where an object lives: (plural, namespace, name).
type Key = (&'static str, String, String);

#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    kind: &'static str,
    plural: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Watches from a resourceVersion below this get `410 Gone`.
    compacted_below: u64,
    logs: HashMap<(String, String, String, bool), String>,
    uid: u64,
    /// Requests served, by "METHOD path" (for assertions such as "no re-list").
    requests: Vec<String>,
    /// The most objects one list page holds, whatever `limit` the client asks
    /// (a real server may return fewer than asked and a `continue` token).
    page_limit: Option<usize>,
    /// List responses that were one page of several (had or followed a `continue`).
    pages_served: u64,
    /// `410 Gone` answers sent (watch errors with code 410).
    gone_sent: u64,
    /// Pods follow their controllers (see `controllers`), crash-looping when
    /// `crash_when` says so of their pod template.
    controllers: Option<controllers::Controllers>,
    /// The resource metrics API (`metrics.k8s.io`, see [`metrics`]).
    metrics: metrics::Metrics,
}

/// The running test double.
pub struct TestApiServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    changes: broadcast::Sender<Change>,
    /// Bumped to cut every open watch connection.
    cut: watch::Sender<u64>,
    /// While true, watches hold back events (as a stalled connection would).
    paused: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApiServer {
    /// Starts the double on 127.0.0.1 at a free port.
    pub async fn start() -> TestApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Mutex::new(Inner {
            rv: 1000,
            ..Inner::default()
        }));
        let (changes, _) = broadcast::channel(1 << 16);
        let (cut, _) = watch::channel(0u64);
        let (paused, _) = watch::channel(false);
        let shared = Shared {
            inner: inner.clone(),
            changes: changes.clone(),
            cut: cut.subscribe(),
            paused: paused.subscribe(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(stream, shared).await;
                });
            }
        });
        let server = TestApiServer {
            addr,
            inner,
            changes,
            cut,
            paused,
            task,
        };
        server.create(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}));
        server.create(
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kube-system"}}),
        );
        server
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig naming this server as `context` into `dir`.
    pub fn write_kubeconfig(&self, dir: &Path, context: &str) -> PathBuf {
        let path = dir.join(format!("kubeconfig-{context}"));
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\nusers:\n- name: {context}\n  user:\n    token: test-token\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates an object (panics on a conflict: test setup is trusted).
    pub fn create(&self, object: Value) -> Value {
        let mut inner = self.inner.lock().unwrap();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let t = type_of_kind(&kind).unwrap_or_else(|| panic!("unserved kind {kind}"));
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(if t.namespaced { "default" } else { "" })
            .to_string();
        match create_object(&mut inner, &self.changes, t, &ns, object) {
            Ok(v) => v,
            Err((code, msg)) => panic!("create failed: {code} {msg}"),
        }
    }

    /// The stored object, if any.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let t = type_of_kind(kind)?;
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .get(&(t.plural, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// All stored objects of a kind.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        let Some(t) = type_of_kind(kind) else {
            return vec![];
        };
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .filter(|(k, _)| k.0 == t.plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Replaces an object as a controller would (status changes included), bumping its resourceVersion.
    pub fn update(&self, kind: &str, ns: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let t = type_of_kind(kind).expect("kind");
        let mut inner = self.inner.lock().unwrap();
        let key = (t.plural, ns.to_string(), name.to_string());
        let current = inner.objects.get(&key).cloned().expect("object exists");
        let mut obj = current.clone();
        edit(&mut obj);
        commit_update(&mut inner, &self.changes, t, key, &current, obj);
    }

    /// Deletes an object as a controller would.
    pub fn remove(&self, kind: &str, ns: &str, name: &str) {
        let t = type_of_kind(kind).expect("kind");
        let mut inner = self.inner.lock().unwrap();
        let _ = delete_object(&mut inner, &self.changes, t, ns, name);
    }

    /// Sets a container's log (current or previous instance).
    pub fn set_log(&self, ns: &str, pod: &str, container: &str, previous: bool, text: &str) {
        self.inner.lock().unwrap().logs.insert(
            (ns.into(), pod.into(), container.into(), previous),
            text.into(),
        );
    }

    /// Forgets history: a watch resuming from any resourceVersion seen so far gets `410 Gone`.
    pub fn compact(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.compacted_below = inner.rv + 1;
        inner.history.clear();
    }

    /// Cuts every open watch connection (as a dropped network would).
    pub fn cut_watches(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Holds back (true) or releases (false) watch events on open connections.
    pub fn pause_watches(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.lock().unwrap().rv
    }

    /// Caps every list page at `n` objects (the client then follows `continue`).
    pub fn limit_pages(&self, n: usize) {
        self.inner.lock().unwrap().page_limit = Some(n);
    }

    /// List responses served as one page of several.
    pub fn pages_served(&self) -> u64 {
        self.inner.lock().unwrap().pages_served
    }

    /// `410 Gone` answers sent so far.
    pub fn gone_sent(&self) -> u64 {
        self.inner.lock().unwrap().gone_sent
    }

    /// From now on pods follow their Deployments' ReplicaSets and their
    /// StatefulSets as the controllers would make them; a pod whose template
    /// `crash_when` picks crash-loops (see [`controllers`]).
    pub fn run_controllers(
        &self,
        crash_when: impl Fn(&Value) -> Option<Crash> + Send + Sync + 'static,
    ) {
        self.inner.lock().unwrap().controllers = Some(controllers::Controllers {
            crash_when: Arc::new(crash_when),
        });
    }

    /// Serves `metrics.k8s.io` as `mode` says (served, not installed, down, forbidden).
    pub fn set_metrics_mode(&self, mode: MetricsMode) {
        self.inner.lock().unwrap().metrics.mode = mode;
    }

    /// Sets a pod's metrics: per container its name, CPU and memory quantities
    /// as metrics-server writes them (`12345678n`, `131072Ki`).
    pub fn set_pod_metrics(&self, ns: &str, name: &str, containers: &[(&str, &str, &str)]) {
        self.inner
            .lock()
            .unwrap()
            .metrics
            .set_pod(ns, name, containers);
    }

    /// Sets a node's metrics (CPU and memory quantities).
    pub fn set_node_metrics(&self, name: &str, cpu: &str, memory: &str) {
        self.inner
            .lock()
            .unwrap()
            .metrics
            .set_node(name, cpu, memory);
    }

    /// Requests served so far ("METHOD path?query").
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changes: broadcast::Sender<Change>,
    cut: watch::Receiver<u64>,
    paused: watch::Receiver<bool>,
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    Ok(Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    }))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve_connection(stream: TcpStream, shared: Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader).await? {
        let watching = matches!(
            req.query.get("watch").map(String::as_str),
            Some("1" | "true")
        );
        if req.method == "GET" && watching {
            return serve_watch(reader.into_inner(), &shared, req).await;
        }
        let (status, content_type, body) = handle(&shared, &req);
        let stream = reader.get_mut();
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            reason_phrase(status),
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.flush().await?;
    }
    Ok(())
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

type Reply = (u16, &'static str, Vec<u8>);

fn reply(code: u16, v: &Value) -> Reply {
    (
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn error(code: u16, message: &str) -> Reply {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        _ => "BadRequest",
    };
    reply(code, &status_body(code, reason, message))
}

/// A parsed resource path.
struct Target {
    t: &'static ResType,
    ns: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(path: &str) -> Result<Target, Reply> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(error(
                404,
                "the server could not find the requested resource",
            ));
        }
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] => (ns.to_string(), {
            let mut v = vec![*plural];
            v.extend(more);
            v
        }),
        other => (String::new(), other.to_vec()),
    };
    let plural = rest.first().copied().unwrap_or_default();
    let t = find_type(group, version, plural)
        .ok_or_else(|| error(404, "the server could not find the requested resource"))?;
    Ok(Target {
        t,
        ns,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

fn handle(shared: &Shared, req: &Request) -> Reply {
    {
        let mut inner = shared.inner.lock().unwrap();
        let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        inner
            .requests
            .push(format!("{} {}?{}", req.method, req.path, q.join("&")));
    }
    match (req.method.as_str(), req.path.trim_end_matches('/')) {
        ("GET", "/version") => {
            return reply(
                200,
                &json!({"major":"1","minor":"34","gitVersion":"v1.34.0","gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.24.0","compiler":"gc","platform":"linux/amd64"}),
            );
        }
        ("GET", "/api") => {
            return reply(
                200,
                &json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1"}]}),
            );
        }
        ("GET", "/apis") => {
            let mut groups = group_list();
            shared.inner.lock().unwrap().metrics.add_group(&mut groups);
            return reply(200, &groups);
        }
        ("GET", p) if p.starts_with(metrics::PREFIX) => {
            return shared.inner.lock().unwrap().metrics.handle(p, &req.query);
        }
        ("GET", p) if is_group_version(p) => return resource_list(p),
        _ => {}
    }
    let target = match parse_target(&req.path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut inner = shared.inner.lock().unwrap();
    let inner = &mut *inner;
    let ch = &shared.changes;
    let t = target.t;
    match (req.method.as_str(), &target.name, target.sub.as_deref()) {
        ("GET", None, _) => list(inner, t, &target.ns, &req.query),
        ("POST", None, _) => match serde_json::from_slice::<Value>(&req.body) {
            Ok(obj) => match create_object(inner, ch, t, &target.ns, obj) {
                Ok(v) => reply(201, &v),
                Err((c, m)) => error(c, &m),
            },
            Err(e) => error(400, &format!("invalid body: {e}")),
        },
        ("GET", Some(name), None) => match inner.objects.get(&key(t, &target.ns, name)) {
            Some(v) => reply(200, v),
            None => not_found(t, name),
        },
        ("GET", Some(name), Some("log")) => pod_log(inner, &target.ns, name, &req.query),
        ("GET", Some(name), Some("scale")) => match inner.objects.get(&key(t, &target.ns, name)) {
            Some(v) => reply(200, &scale_of(t, v)),
            None => not_found(t, name),
        },
        ("PATCH", Some(name), sub) => patch(inner, ch, t, &target.ns, name, sub, req),
        ("PUT", Some(name), sub) => match serde_json::from_slice::<Value>(&req.body) {
            Ok(obj) => replace(inner, ch, t, &target.ns, name, sub, obj),
            Err(e) => error(400, &format!("invalid body: {e}")),
        },
        ("DELETE", Some(name), None) => match delete_object(inner, ch, t, &target.ns, name) {
            Ok(v) => reply(200, &v),
            Err((c, m)) => error(c, &m),
        },
        ("POST", Some(name), Some("eviction")) => evict(inner, ch, &target.ns, name),
        _ => error(405, "method not allowed"),
    }
}

fn not_found(t: &ResType, name: &str) -> Reply {
    let group = if t.group.is_empty() {
        String::new()
    } else {
        format!(".{}", t.group)
    };
    error(404, &format!("{}{group} \"{name}\" not found", t.plural))
}

fn key(t: &ResType, ns: &str, name: &str) -> Key {
    (t.plural, ns.to_string(), name.to_string())
}

fn is_group_version(p: &str) -> bool {
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    matches!(segs.as_slice(), ["api", _] | ["apis", _, _])
}

fn group_list() -> Value {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in TYPES.iter().filter(|t| !t.group.is_empty()) {
        let v = groups.entry(t.group).or_default();
        if !v.contains(&t.version) {
            v.push(t.version);
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions.clone(), "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind":"APIGroupList","apiVersion":"v1","groups":groups})
}

fn resource_list(p: &str) -> Reply {
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    let (group, version) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return error(404, "not found"),
    };
    let mut resources = Vec::new();
    for t in TYPES
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": VERBS, "shortNames": t.short,
        }));
        // RBAC objects have no status subresource on a real server.
        if !t.group.starts_with("rbac.") {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get","patch","update"]}));
        }
        if matches!(t.kind, "Deployment" | "ReplicaSet" | "StatefulSet") {
            resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get","patch","update"]}));
        }
        if t.kind == "Pod" {
            resources.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
            resources.push(json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}));
        }
    }
    if resources.is_empty() {
        return error(404, "the server could not find the requested resource");
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    reply(
        200,
        &json!({"kind":"APIResourceList","apiVersion":"v1","groupVersion":gv,"resources":resources}),
    )
}

/// `a=b,c!=d,e` label selectors and `a.b=c` field selectors.
fn matches_selectors(obj: &Value, query: &HashMap<String, String>) -> bool {
    if let Some(sel) = query.get("labelSelector").filter(|s| !s.is_empty()) {
        let labels = &obj["metadata"]["labels"];
        for term in sel.split(',') {
            let ok = if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels[k.trim()].as_str() == Some(v.trim())
            } else {
                labels.get(term.trim()).is_some()
            };
            if !ok {
                return false;
            }
        }
    }
    if let Some(sel) = query.get("fieldSelector").filter(|s| !s.is_empty()) {
        for term in sel.split(',') {
            let (path, want, negate) = match term.split_once("!=") {
                Some((k, v)) => (k, v, true),
                None => match term.split_once("==").or_else(|| term.split_once('=')) {
                    Some((k, v)) => (k, v, false),
                    None => continue,
                },
            };
            let mut cur = obj;
            for part in path.trim().split('.') {
                cur = &cur[part];
            }
            let have = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            if (have == want.trim()) == negate {
                return false;
            }
        }
    }
    true
}

fn list(
    inner: &mut Inner,
    t: &'static ResType,
    ns: &str,
    query: &HashMap<String, String>,
) -> Reply {
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX)
        .min(inner.page_limit.unwrap_or(usize::MAX));
    // The continue token is "<resourceVersion>/<offset>": pages of one list share a snapshot's rv.
    let (list_rv, offset) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => match c.split_once('/') {
            Some((rv, off)) => (
                rv.parse().unwrap_or(inner.rv),
                off.parse::<usize>().unwrap_or(0),
            ),
            None => return error(400, "bad continue token"),
        },
        None => (inner.rv, 0),
    };
    let mut items = Vec::new();
    let mut more = false;
    let mut index = 0usize;
    for ((plural, ons, _), obj) in &inner.objects {
        if *plural != t.plural || (!ns.is_empty() && ons != ns) || !matches_selectors(obj, query) {
            continue;
        }
        if index >= offset {
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(obj.clone());
        }
        index += 1;
    }
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if more || offset > 0 {
        inner.pages_served += 1;
    }
    if more {
        metadata["continue"] = json!(format!("{list_rv}/{}", offset + items.len()));
    }
    reply(
        200,
        &json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(), "metadata": metadata, "items": items}),
    )
}

fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Stores an object under a new resourceVersion and tells the watches.
fn store(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    key: Key,
    mut obj: Value,
    kind: &'static str,
) -> Value {
    inner.rv += 1;
    let rv = inner.rv;
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    obj["apiVersion"] = json!(t.api_version());
    obj["kind"] = json!(t.kind);
    inner.objects.insert(key, obj.clone());
    publish(inner, changes, t, kind, obj.clone());
    obj
}

fn publish(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    kind: &'static str,
    object: Value,
) {
    let change = Change {
        rv: inner.rv,
        kind,
        plural: t.plural,
        object,
    };
    inner.history.push_back(change.clone());
    while inner.history.len() > 200_000 {
        if let Some(old) = inner.history.pop_front() {
            inner.compacted_below = old.rv + 1;
        }
    }
    let _ = changes.send(change);
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn create_object(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    ns: &str,
    mut obj: Value,
) -> Result<Value, (u16, String)> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err((
            422,
            format!("{} is invalid: metadata.name: Required value", t.kind),
        ));
    }
    let ns = if t.namespaced {
        ns.to_string()
    } else {
        String::new()
    };
    let k = key(t, &ns, &name);
    if inner.objects.contains_key(&k) {
        return Err((409, format!("{} \"{name}\" already exists", t.plural)));
    }
    inner.uid += 1;
    let meta = &mut obj["metadata"];
    if t.namespaced {
        meta["namespace"] = json!(ns);
    }
    if meta["uid"].is_null() {
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", inner.uid));
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(now_rfc3339());
    }
    meta["generation"] = json!(1);
    let stored = store(inner, changes, t, k, obj, "ADDED");
    if t.kind == "StatefulSet" {
        controllers::reconcile_statefulset(inner, changes, &ns, &name);
        return Ok(inner.objects[&key(t, &ns, &name)].clone());
    }
    if t.kind == "Deployment" {
        reconcile_deployment(inner, changes, &ns, &name);
        return Ok(inner.objects[&key(t, &ns, &name)].clone());
    }
    Ok(stored)
}

fn delete_object(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    ns: &str,
    name: &str,
) -> Result<Value, (u16, String)> {
    let Some(mut obj) = inner.objects.remove(&key(t, ns, name)) else {
        return Err((404, format!("{} \"{name}\" not found", t.plural)));
    };
    inner.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    publish(inner, changes, t, "DELETED", obj.clone());
    if t.kind == "Pod" {
        replace_owned_pod(inner, changes, &obj);
    }
    Ok(obj)
}

/// Imitates the ReplicaSet controller: a deleted pod of a ReplicaSet is replaced, running and ready.
fn replace_owned_pod(inner: &mut Inner, changes: &broadcast::Sender<Change>, old: &Value) {
    let Some(owner) = old["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["kind"] == "ReplicaSet"))
    else {
        return;
    };
    let rs = owner["name"].as_str().unwrap_or_default();
    let ns = old["metadata"]["namespace"].as_str().unwrap_or_default();
    inner.uid += 1;
    let name = format!("{rs}-{:05x}", inner.uid & 0xfffff);
    let mut pod = old.clone();
    pod["metadata"] = json!({
        "name": name, "namespace": ns, "labels": old["metadata"]["labels"],
        "ownerReferences": old["metadata"]["ownerReferences"],
        "uid": format!("00000000-0000-4000-8000-{:012x}", inner.uid),
        "creationTimestamp": now_rfc3339(),
    });
    // A cordoned node gets no new pods: the replacement goes elsewhere.
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cordoned = inner
        .objects
        .get(&("nodes", String::new(), node))
        .is_some_and(|n| n["spec"]["unschedulable"] == json!(true));
    if cordoned && let Some(spec) = pod["spec"].as_object_mut() {
        spec.remove("nodeName");
    }
    pod["status"] = running_status(&pod["spec"]);
    let pods = type_of_kind("Pod").expect("pods served");
    let k = key(pods, ns, &name);
    store(inner, changes, pods, k, pod, "ADDED");
}

/// A running, ready pod status for a pod spec.
pub fn running_status(spec: &Value) -> Value {
    let statuses: Vec<Value> = spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now_rfc3339()}}}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "Ready", "status": "True"}
        ],
        "containerStatuses": statuses,
        "startTime": now_rfc3339(),
    })
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    old["spec"] != new["spec"]
}

fn patch(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Request,
) -> Reply {
    let content_type = req
        .headers
        .get("content-type")
        .map(String::as_str)
        .unwrap_or_default();
    let body = &req.body;
    let k = key(t, ns, name);
    let Some(current) = inner.objects.get(&k).cloned() else {
        return not_found(t, name);
    };
    let Ok(p) = serde_json::from_slice::<Value>(body) else {
        return error(400, "the patch is not JSON");
    };
    let base = if sub == Some("scale") {
        scale_of(t, &current)
    } else {
        current.clone()
    };
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let patched = match media {
        "application/merge-patch+json" => {
            let mut v = base.clone();
            merge_patch(&mut v, &p);
            v
        }
        "application/strategic-merge-patch+json" => {
            let mut v = base.clone();
            strategic_merge(&mut v, &p);
            v
        }
        "application/json-patch+json" => match json_patch(&base, &p) {
            Ok(v) => v,
            Err(m) => return error(422, &m),
        },
        other => {
            return error(
                415,
                &format!("the body of the request was in an unknown format: {other}"),
            );
        }
    };
    if let Some(want) = p["metadata"]["resourceVersion"].as_str()
        && want
            != current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return conflict(t, name);
    }
    let updated = if sub == Some("scale") {
        let mut obj = current.clone();
        obj["spec"]["replicas"] = patched["spec"]["replicas"].clone();
        obj
    } else {
        patched
    };
    let out = commit_update(inner, changes, t, k, &current, updated);
    if sub == Some("scale") {
        reply(200, &scale_of(t, &out))
    } else {
        reply(200, &out)
    }
}

fn conflict(t: &ResType, name: &str) -> Reply {
    error(
        409,
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            t.plural
        ),
    )
}

fn commit_update(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    k: Key,
    current: &Value,
    mut updated: Value,
) -> Value {
    if spec_changed(current, &updated) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        updated["metadata"]["generation"] = json!(generation);
    }
    let (ns, name) = (k.1.clone(), k.2.clone());
    let out = store(inner, changes, t, k, updated, "MODIFIED");
    if t.kind == "StatefulSet" {
        controllers::reconcile_statefulset(inner, changes, &ns, &name);
        return inner.objects[&key(t, &ns, &name)].clone();
    }
    if t.kind == "Deployment" {
        reconcile_deployment(inner, changes, &ns, &name);
        return inner.objects[&key(t, &ns, &name)].clone();
    }
    out
}

fn replace(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    t: &'static ResType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    obj: Value,
) -> Reply {
    let k = key(t, ns, name);
    let Some(current) = inner.objects.get(&k).cloned() else {
        return not_found(t, name);
    };
    let want = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !want.is_empty()
        && want
            != current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return conflict(t, name);
    }
    let updated = if sub == Some("scale") {
        let mut o = current.clone();
        o["spec"]["replicas"] = obj["spec"]["replicas"].clone();
        o
    } else {
        let mut o = obj;
        for field in ["uid", "creationTimestamp", "namespace", "generation"] {
            o["metadata"][field] = current["metadata"][field].clone();
        }
        o
    };
    let out = commit_update(inner, changes, t, k, &current, updated);
    reply(200, &out)
}

fn scale_of(t: &ResType, obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "resourceVersion": obj["metadata"]["resourceVersion"], "uid": obj["metadata"]["uid"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
        "_kind": t.kind,
    })
    .as_object()
    .map(|m| {
        let mut m = m.clone();
        m.remove("_kind");
        Value::Object(m)
    })
    .unwrap_or_default()
}

fn pod_log(inner: &Inner, ns: &str, name: &str, query: &HashMap<String, String>) -> Reply {
    let Some(pod) = inner
        .objects
        .get(&("pods", ns.to_string(), name.to_string()))
    else {
        return error(404, &format!("pods \"{name}\" not found"));
    };
    let container = query
        .get("container")
        .cloned()
        .or_else(|| {
            pod["spec"]["containers"][0]["name"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_default();
    let previous = matches!(
        query.get("previous").map(String::as_str),
        Some("true" | "1")
    );
    let Some(text) = inner.logs.get(&(
        ns.to_string(),
        name.to_string(),
        container.clone(),
        previous,
    )) else {
        let what = if previous {
            "previous terminated container"
        } else {
            "container"
        };
        return error(
            400,
            &format!("{what} \"{container}\" in pod \"{name}\" not found"),
        );
    };
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(n) = query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if let Some(limit) = query
        .get("limitBytes")
        .and_then(|n| n.parse::<usize>().ok())
    {
        out.truncate(limit);
    }
    (200, "text/plain", out.into_bytes())
}

fn label_selector_matches(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .map(|m| m.iter().all(|(k, v)| &labels[k] == v))
        .unwrap_or(false)
}

/// An eviction: refused with 429 while a matching PodDisruptionBudget allows no disruption.
fn evict(inner: &mut Inner, changes: &broadcast::Sender<Change>, ns: &str, name: &str) -> Reply {
    let Some(pod) = inner
        .objects
        .get(&("pods", ns.to_string(), name.to_string()))
        .cloned()
    else {
        return error(404, &format!("pods \"{name}\" not found"));
    };
    let pdbs: Vec<(Key, Value)> = inner
        .objects
        .iter()
        .filter(|((p, pns, _), v)| {
            *p == "poddisruptionbudgets"
                && pns == ns
                && label_selector_matches(&v["spec"]["selector"], &pod["metadata"]["labels"])
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (_, pdb) in &pdbs {
        if pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) < 1 {
            return error(
                429,
                &format!(
                    "Cannot evict pod as it would violate the pod's disruption budget {}.",
                    pdb["metadata"]["name"].as_str().unwrap_or_default()
                ),
            );
        }
    }
    let pdb_type = type_of_kind("PodDisruptionBudget").expect("served");
    for (k, mut pdb) in pdbs {
        let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
        store(inner, changes, pdb_type, k, pdb, "MODIFIED");
    }
    let pods = type_of_kind("Pod").expect("served");
    match delete_object(inner, changes, pods, ns, name) {
        Ok(_) => reply(
            201,
            &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}),
        ),
        Err((c, m)) => error(c, &m),
    }
}

/// Imitates the deployment controller: the pod template picks (or makes) the
/// ReplicaSet of the current revision, which gets the replicas; the status is
/// reported as fully rolled out.
fn reconcile_deployment(
    inner: &mut Inner,
    changes: &broadcast::Sender<Change>,
    ns: &str,
    name: &str,
) {
    let deployments = type_of_kind("Deployment").expect("served");
    let rs_type = type_of_kind("ReplicaSet").expect("served");
    let dk = key(deployments, ns, name);
    let Some(mut deploy) = inner.objects.get(&dk).cloned() else {
        return;
    };
    let uid = deploy["metadata"]["uid"].clone();
    let template = strip_hash(&deploy["spec"]["template"]);
    let owned: Vec<(Key, Value)> = inner
        .objects
        .iter()
        .filter(|((p, pns, _), v)| {
            *p == "replicasets"
                && pns == ns
                && v["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|r| r["uid"] == uid))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let revision = |v: &Value| -> i64 {
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let max_rev = owned.iter().map(|(_, v)| revision(v)).max().unwrap_or(0);
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
    let current = owned
        .iter()
        .find(|(_, v)| strip_hash(&v["spec"]["template"]) == template)
        .map(|(k, _)| k.clone());
    let current_key = match current {
        Some(k) => k,
        None => {
            let hash = format!("{:x}", fnv(&template.to_string()) & 0xffffffffff);
            let rs_name = format!("{name}-{hash}");
            let mut tpl = template.clone();
            tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = deploy["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = tpl["metadata"]["labels"].clone();
            if labels.is_null() {
                labels = json!({});
            }
            inner.uid += 1;
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                    "uid": format!("00000000-0000-4000-8000-{:012x}", inner.uid),
                    "creationTimestamp": now_rfc3339(), "generation": 1,
                    "annotations": {"deployment.kubernetes.io/revision": (max_rev + 1).to_string()},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"replicas": 0, "selector": selector, "template": tpl},
                "status": {"replicas": 0},
            });
            let k = key(rs_type, ns, &rs_name);
            store(inner, changes, rs_type, k.clone(), rs, "ADDED");
            k
        }
    };
    let mut new_rev = max_rev.max(1);
    let rollout = controllers::plan_rollout(inner, &template, &owned, &current_key, replicas);
    for (k, _) in owned.iter().map(|(k, v)| (k.clone(), v.clone())).chain(
        inner
            .objects
            .get(&current_key)
            .cloned()
            .map(|v| (current_key.clone(), v)),
    ) {
        let Some(mut rs) = inner.objects.get(&k).cloned() else {
            continue;
        };
        let is_current = k == current_key;
        let want = match &rollout {
            Some(plan) => plan.want(&k),
            None if is_current => replicas,
            None => 0,
        };
        let mut changed = rs["spec"]["replicas"].as_i64() != Some(want)
            || (rollout.is_none() && rs["status"]["readyReplicas"].as_i64().unwrap_or(0) != want);
        if is_current && revision(&rs) != max_rev.max(revision(&rs)) {
            // An old template came back: its ReplicaSet takes the next revision.
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!((max_rev + 1).to_string());
            changed = true;
        }
        if is_current {
            new_rev = revision(&rs);
        }
        if changed {
            rs["spec"]["replicas"] = json!(want);
            if rollout.is_some() {
                // The pods decide the status (see controllers::run_replica_sets).
                store(inner, changes, rs_type, k, rs, "MODIFIED");
                continue;
            }
            rs["status"] = json!({"replicas": want, "readyReplicas": want, "availableReplicas": want, "fullyLabeledReplicas": want, "observedGeneration": rs["metadata"]["generation"]});
            store(inner, changes, rs_type, k, rs, "MODIFIED");
        }
    }
    let generation = deploy["metadata"]["generation"].clone();
    if let Some(plan) = &rollout {
        let status = controllers::run_replica_sets(inner, changes, ns, plan, &generation);
        let rev = new_rev.to_string();
        if deploy["status"] != status
            || deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] != json!(rev)
        {
            deploy["status"] = status;
            deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(rev);
            store(inner, changes, deployments, dk, deploy, "MODIFIED");
        }
        return;
    }
    let status = json!({
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{}\" has successfully progressed.", current_key.2)}
        ]
    });
    let rev = new_rev.to_string();
    if deploy["status"] != status
        || deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] != json!(rev)
    {
        deploy["status"] = status;
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(rev);
        store(inner, changes, deployments, dk, deploy, "MODIFIED");
    }
}

fn strip_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    t
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge patch for what clients send here: maps merge, lists of
/// named objects (containers, env, volumes, ports) merge by `name`, `$patch:
/// replace|delete` and `$`-directives are honoured or dropped.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = p.clone();
                p.remove("$patch");
                *t = p;
                return;
            }
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.remove(k);
                    continue;
                }
                strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter().all(|e| e.get("name").is_some()) && !p.is_empty() =>
        {
            for item in p {
                let name = &item["name"];
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.retain(|e| &e["name"] != name);
                } else if let Some(existing) = t.iter_mut().find(|e| &e["name"] == name) {
                    strategic_merge(existing, item);
                } else {
                    let mut item = item.clone();
                    strategic_merge(&mut Value::Null, &Value::Null);
                    if let Some(o) = item.as_object_mut() {
                        o.retain(|k, _| !k.starts_with('$'));
                    }
                    t.push(item);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// RFC 6902 JSON patch (add, remove, replace, test).
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let mut doc = doc.clone();
    let ops = ops
        .as_array()
        .ok_or("a JSON patch is a list of operations")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("operation without path")?;
        let tokens: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let (last, parents) = tokens.split_last().ok_or("empty path")?;
        let mut parent = &mut doc;
        for t in parents {
            parent = match parent {
                Value::Object(m) => m.get_mut(t).ok_or(format!("path {path} not found"))?,
                Value::Array(a) => t
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get_mut(i))
                    .ok_or(format!("path {path} not found"))?,
                _ => return Err(format!("path {path} not found")),
            };
        }
        match op["op"].as_str().unwrap_or_default() {
            "add" | "replace" => {
                let value = op["value"].clone();
                match parent {
                    Value::Object(m) => {
                        m.insert(last.clone(), value);
                    }
                    Value::Array(a) if last == "-" => a.push(value),
                    Value::Array(a) => {
                        let i: usize = last.parse().map_err(|_| format!("bad index in {path}"))?;
                        if op["op"] == "add" {
                            a.insert(i.min(a.len()), value);
                        } else if let Some(slot) = a.get_mut(i) {
                            *slot = value;
                        }
                    }
                    _ => return Err(format!("path {path} not found")),
                }
            }
            "remove" => match parent {
                Value::Object(m) => {
                    m.remove(last);
                }
                Value::Array(a) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < a.len()
                    {
                        a.remove(i);
                    }
                }
                _ => return Err(format!("path {path} not found")),
            },
            "test" => {
                if parent.get(last) != Some(&op["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unsupported op {other}")),
        }
    }
    Ok(doc)
}

fn watch_line(kind: &str, object: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    line
}

async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    stream.write_all(data).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

async fn serve_watch(mut stream: TcpStream, shared: &Shared, req: Request) -> std::io::Result<()> {
    let target = match parse_target(&req.path) {
        Ok(t) => t,
        Err((code, ctype, body)) => {
            let head = format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                reason_phrase(code),
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            return stream.write_all(&body).await;
        }
    };
    let t = target.t;
    let since: u64 = req
        .query
        .get("resourceVersion")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let bookmarks = matches!(
        req.query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let timeout = req
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(300);
    let mut cut = shared.cut.clone();
    cut.mark_unchanged();
    let mut paused = shared.paused.clone();
    // Subscribe before reading history, so nothing falls between the two.
    let (mut rx, backlog, expired, current_rv) = {
        let mut inner = shared.inner.lock().unwrap();
        let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        inner
            .requests
            .push(format!("WATCH {}?{}", req.path, q.join("&")));
        let rx = shared.changes.subscribe();
        let expired = since != 0 && since < inner.compacted_below.saturating_sub(1);
        let backlog: Vec<Change> = if since == 0 {
            // "Any" version: start with the current objects as ADDED.
            inner
                .objects
                .iter()
                .filter(|((p, _, _), _)| *p == t.plural)
                .map(|(_, v)| Change {
                    rv: rv_of(v),
                    kind: "ADDED",
                    plural: t.plural,
                    object: v.clone(),
                })
                .collect()
        } else {
            inner
                .history
                .iter()
                .filter(|c| c.rv > since)
                .cloned()
                .collect()
        };
        (rx, backlog, expired, inner.rv)
    };
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await?;
    if expired {
        shared.inner.lock().unwrap().gone_sent += 1;
        let status = status_body(
            410,
            "Expired",
            &format!("too old resource version: {since} ({current_rv})"),
        );
        write_chunk(&mut stream, &watch_line("ERROR", &status)).await?;
        return stream.write_all(b"0\r\n\r\n").await;
    }
    let wanted = |c: &Change| -> bool {
        c.plural == t.plural
            && (target.ns.is_empty()
                || c.object["metadata"]["namespace"].as_str() == Some(&target.ns))
            && matches_selectors(&c.object, &req.query)
    };
    let mut last_sent = since;
    let mut held: Vec<Change> = Vec::new();
    for c in backlog {
        if wanted(&c) {
            held.push(c);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        // Tests pause, change, cut, then unpause without waiting for this
        // task. So delivery checks `paused` and then the cut, at the moment of
        // sending: seeing "not paused" after a change made while paused means
        // the cut that followed it is already visible, and nothing leaks out.
        if !*paused.borrow() {
            for c in std::mem::take(&mut held) {
                if cut.has_changed().unwrap_or(true) {
                    return Ok(());
                }
                if c.rv <= last_sent && since != 0 {
                    continue;
                }
                last_sent = last_sent.max(c.rv);
                write_chunk(&mut stream, &watch_line(c.kind, &c.object)).await?;
            }
        }
        tokio::select! {
            biased;
            _ = cut.changed() => {
                // Dropped without a final chunk, as a broken connection would be.
                return Ok(());
            }
            _ = tokio::time::sleep_until(deadline) => {
                return stream.write_all(b"0\r\n\r\n").await;
            }
            _ = paused.changed() => {}
            msg = rx.recv() => match msg {
                Ok(c) => if wanted(&c) { held.push(c) },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    shared.inner.lock().unwrap().gone_sent += 1;
                    let status = status_body(410, "Expired", "watch fell too far behind");
                    write_chunk(&mut stream, &watch_line("ERROR", &status)).await?;
                    return stream.write_all(b"0\r\n\r\n").await;
                }
                Err(_) => return Ok(()),
            },
            _ = tick.tick() => {
                if !bookmarks {
                    continue;
                }
                // A bookmark promises every change up to its resourceVersion
                // was sent. Under the store's lock (changes are published
                // under it) pull in what is pending, and mark only when
                // nothing is pending, held back or cut off.
                let mark_rv = {
                    let inner = shared.inner.lock().unwrap();
                    while let Ok(c) = rx.try_recv() {
                        if wanted(&c) {
                            held.push(c);
                        }
                    }
                    let quiet = held.is_empty()
                        && !*paused.borrow()
                        && !cut.has_changed().unwrap_or(true);
                    quiet.then_some(inner.rv)
                };
                if let Some(rv) = mark_rv {
                    let mark = json!({"kind": t.kind, "apiVersion": t.api_version(), "metadata": {"resourceVersion": rv.to_string()}});
                    last_sent = last_sent.max(rv);
                    write_chunk(&mut stream, &watch_line("BOOKMARK", &mark)).await?;
                }
            }
        }
    }
}

/// A pod owned by a ReplicaSet, running and ready unless the caller changes its status.
pub fn pod(ns: &str, name: &str, rs: Option<&str>, node: &str, image: &str) -> Value {
    let spec = json!({
        "nodeName": node,
        "containers": [{"name": "app", "image": image,
            "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "128Mi", "cpu": "100m"}}}],
    });
    let mut meta = json!({"name": name, "namespace": ns, "labels": {"app": rs.map(|r| r.rsplit_once('-').map(|x| x.0).unwrap_or(r)).unwrap_or(name)}});
    if let Some(rs) = rs {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": format!("rs-{rs}"), "controller": true}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": running_status(&spec), "spec": spec})
}

/// A deployment `name` in `ns` with `replicas` of `image`, labelled `app: name`.
pub fn deployment(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": replicas, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}}}]}}},
    })
}

/// A ready node.
pub fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
            {"type": "KernelReady", "status": "True", "reason": "KernelHasNoDeadlock"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}
        ], "nodeInfo": {"machineID": "0", "systemUUID": "0", "bootID": "0", "kernelVersion": "6.1.0",
            "osImage": "Debian GNU/Linux 12", "containerRuntimeVersion": "containerd://1.7.0",
            "kubeletVersion": "v1.34.0", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}},
    })
}

/// Connects a Kubernetes connector to the double through a kubeconfig, as a
/// user would, waking `changed` on fleet changes; waits for the first sync.
pub async fn connect_with(
    server: &TestApiServer,
    dir: &Path,
    changed: Arc<tokio::sync::Notify>,
) -> shieldops::connectors::kubernetes::KubeConnector {
    let path = server.write_kubeconfig(dir, "test");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let target = shieldops::connectors::kubernetes::ClusterTarget {
        context: "test".into(),
        config,
    };
    let conn =
        shieldops::connectors::kubernetes::KubeConnector::start(target, changed).expect("start");
    assert!(
        conn.wait_synced(Duration::from_secs(20)).await,
        "watchers did not sync"
    );
    conn
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
pub async fn eventually<F: FnMut() -> bool>(within: Duration, mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connector on `server`'s cluster (context `test`), once its watches have
/// listed everything.
pub async fn connect(
    server: &TestApiServer,
    dir: &Path,
) -> shieldops::connectors::kubernetes::KubeConnector {
    use shieldops::connectors::kubernetes::{ClusterTarget, KubeConnector};
    let path = server.write_kubeconfig(dir, "test");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let conn = KubeConnector::start(
        ClusterTarget {
            context: "test".into(),
            config,
        },
        Arc::new(tokio::sync::Notify::new()),
    )
    .expect("start");
    assert!(conn.wait_synced(Duration::from_secs(20)).await);
    conn
}

/// A tool from PATH, else from Python's scripts directory.
pub fn tool(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return p;
    }
    let scripts = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let p = PathBuf::from(scripts).join(name);
    assert!(
        p.is_file(),
        "`{name}` is not installed: run scripts/install-test-deps.sh"
    );
    p
}

/// Runs the real `kubectl` against a kubeconfig; whether it succeeded, and its output.
pub async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
