//! Finding clusters the way kubectl does: the `KUBECONFIG` list (merged,
//! first file wins), else `~/.kube/config`, else the in-cluster service
//! account. Each selected context becomes its own connector (its own fleet).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Which contexts to connect to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ContextSelection {
    /// The kubeconfig's current context (kubectl's default).
    #[default]
    Current,
    /// These contexts, each as its own fleet.
    Named(Vec<String>),
    /// Every context in the kubeconfig.
    All,
}

/// One cluster to connect to.
#[derive(Clone)]
pub struct ClusterTarget {
    /// The context name (`in-cluster` for the service account).
    pub context: String,
    pub config: kube::Config,
}

/// Why no cluster could be set up.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("context `{0}` is not in the kubeconfig (known: {1})")]
    UnknownContext(String, String),
}

/// The targets the selection names; empty when no cluster is configured at all.
/// `path` (the config's `kubernetes.kubeconfig`) replaces kubectl's search and must exist.
pub async fn discover(
    selection: &ContextSelection,
    path: Option<&Path>,
) -> Result<Vec<ClusterTarget>, DiscoveryError> {
    let read = match path {
        Some(p) => Kubeconfig::read_from(p)
            .map_err(|e| DiscoveryError::Kubeconfig(format!("{}: {e}", p.display())))?,
        None => return discover_in(selection, kubectl_search()?).await,
    };
    discover_in(selection, Some(read)).await
}

/// The kubeconfig kubectl would read; `None` when there is none at all.
fn kubectl_search() -> Result<Option<Kubeconfig>, DiscoveryError> {
    Ok(match Kubeconfig::read() {
        Ok(k) => Some(k),
        // No file at all is "not configured"; a broken file is an error.
        Err(kube::config::KubeconfigError::FindPath) => None,
        Err(kube::config::KubeconfigError::ReadConfig(e, path))
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty()) =>
        {
            tracing::debug!("no kubeconfig at {}", path.display());
            None
        }
        Err(e) => return Err(DiscoveryError::Kubeconfig(e.to_string())),
    })
}

async fn discover_in(
    selection: &ContextSelection,
    kubeconfig: Option<Kubeconfig>,
) -> Result<Vec<ClusterTarget>, DiscoveryError> {
    let Some(kubeconfig) = kubeconfig.filter(|k| !k.contexts.is_empty()) else {
        return Ok(match kube::Config::incluster() {
            Ok(config) if selection == &ContextSelection::Current => vec![ClusterTarget {
                context: "in-cluster".into(),
                config,
            }],
            _ => Vec::new(),
        });
    };
    let known: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let names: Vec<String> = match selection {
        ContextSelection::Current => match &kubeconfig.current_context {
            Some(c) if !c.is_empty() => vec![c.clone()],
            _ => vec![known[0].clone()],
        },
        ContextSelection::Named(n) => n.clone(),
        ContextSelection::All => known.clone(),
    };
    let mut out = Vec::new();
    for name in names {
        if !known.contains(&name) {
            return Err(DiscoveryError::UnknownContext(name, known.join(", ")));
        }
        let options = KubeConfigOptions {
            context: Some(name.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .map_err(|e| DiscoveryError::Kubeconfig(format!("context {name}: {e}")))?;
        out.push(ClusterTarget {
            context: name,
            config,
        });
    }
    Ok(out)
}

/// The one line the Fleet pane shows when no cluster is configured.
pub const HOW_TO_ADD: &str = "No Kubernetes cluster configured: set KUBECONFIG, create ~/.kube/config or set kubeconfig under [kubernetes], then restart; pick contexts with --context or [kubernetes] contexts";

/// Written as `"current"`, `"all"` or a list of context names (in `[kubernetes] contexts`).
impl serde::Serialize for ContextSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ContextSelection::Current => s.serialize_str("current"),
            ContextSelection::All => s.serialize_str("all"),
            ContextSelection::Named(names) => names.serialize(s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ContextSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ContextSelection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"current\", \"all\" or a list of context names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "current" => Ok(ContextSelection::Current),
                    "all" => Ok(ContextSelection::All),
                    other => Err(E::custom(format!(
                        "`{other}` is neither \"current\" nor \"all\"; name contexts as a list, e.g. [\"{other}\"]"
                    ))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    if name.trim().is_empty() {
                        return Err(serde::de::Error::custom("a context name is empty"));
                    }
                    names.push(name);
                }
                if names.is_empty() {
                    return Err(serde::de::Error::custom(
                        "the list names no context (leave the key out for the current one)",
                    ));
                }
                Ok(ContextSelection::Named(names))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[kubernetes]`: which clusters to watch. Without the section the
/// kubeconfig's current context is watched, as kubectl would; `--context`
/// on the command line overrides `contexts`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// `"current"` (default), `"all"`, or a list of context names, each its own fleet.
    pub contexts: ContextSelection,
    /// A kubeconfig file to read instead of `KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<std::path::PathBuf>,
}

impl KubernetesConfig {
    /// The first bad key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(p) = &self.kubeconfig
            && !p.is_file()
        {
            return Err((
                "kubeconfig",
                format!("{} is not a readable file", p.display()),
            ));
        }
        Ok(())
    }

    /// The selection in force: `--context` values when given, else `contexts`.
    pub fn selection(&self, flags: &[String]) -> ContextSelection {
        match flags {
            [] => self.contexts.clone(),
            [all] if all == "all" => ContextSelection::All,
            named => ContextSelection::Named(named.to_vec()),
        }
    }
}
