//! Resource ids: `k8s/<context>/<namespace>/<kind>/<name>` for namespaced
//! objects, `k8s/<context>/<kind>/<name>` for cluster-scoped ones (nodes).
//! The context may itself contain `/` (EKS ARNs do), so parsing strips the
//! connector's own prefix rather than splitting the whole id.

use crate::event::ResourceId;

/// Where an object lives, parsed back from an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

/// The id of an object in `context`.
pub fn id(context: &str, namespace: &str, kind: &str, name: &str) -> ResourceId {
    if namespace.is_empty() {
        ResourceId::new(format!("k8s/{context}/{kind}/{name}"))
    } else {
        ResourceId::new(format!("k8s/{context}/{namespace}/{kind}/{name}"))
    }
}

/// Parses an id of `context`; `None` if it belongs elsewhere.
pub fn parse(context: &str, id: &ResourceId) -> Option<ObjectKey> {
    let rest = id.as_str().strip_prefix(&format!("k8s/{context}/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [kind, name] => Some(ObjectKey {
            namespace: String::new(),
            kind: kind.to_string(),
            name: name.to_string(),
        }),
        [ns, kind, name] => Some(ObjectKey {
            namespace: ns.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_slashes_in_the_context() {
        let ctx = "arn:aws:eks:eu-west-1:1:cluster/prod";
        let pod = id(ctx, "payments", "pod", "checkout-1");
        assert_eq!(
            parse(ctx, &pod),
            Some(ObjectKey {
                namespace: "payments".into(),
                kind: "pod".into(),
                name: "checkout-1".into()
            })
        );
        let node = id(ctx, "", "node", "n1");
        assert_eq!(parse(ctx, &node).map(|k| k.kind), Some("node".into()));
        assert_eq!(parse("other", &node), None);
    }
}
