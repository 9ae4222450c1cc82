//! Finding clusters the way kubectl does: the `KUBECONFIG` list (merged,
//! first file wins), else `~/.kube/config`, else the in-cluster service
//! account. Each selected context becomes its own connector (its own fleet).

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
pub async fn discover(selection: &ContextSelection) -> Result<Vec<ClusterTarget>, DiscoveryError> {
    let kubeconfig = match Kubeconfig::read() {
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
    };
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
pub const HOW_TO_ADD: &str = "No Kubernetes cluster configured: set KUBECONFIG or create ~/.kube/config (e.g. `kubectl config set-cluster`), then restart; pick contexts with --context";
