//! Ingresses: rules that route to a service that does not exist.

use k8s_openapi::api::networking::v1::Ingress;

use super::Finding;
use crate::event::HealthStatus;

/// Findings for one ingress, given the names of the services in its namespace.
pub fn analyze(ing: &Ingress, services: &[String]) -> Vec<Finding> {
    let Some(spec) = &ing.spec else {
        return Vec::new();
    };
    let mut backends: Vec<String> = spec
        .default_backend
        .iter()
        .filter_map(|b| b.service.as_ref().map(|s| s.name.clone()))
        .collect();
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
            if let Some(s) = &path.backend.service {
                backends.push(s.name.clone());
            }
        }
    }
    backends.sort();
    backends.dedup();
    backends
        .into_iter()
        .filter(|b| !services.contains(b))
        .map(|b| {
            Finding::new(
                HealthStatus::Unhealthy,
                "BackendServiceMissing",
                format!("backend service {b} does not exist"),
                format!("the ingress routes to service {b}, which does not exist"),
                0.7,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    #[test]
    fn missing_backend() {
        let json = r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"shop"},
          "spec":{"rules":[{"host":"shop.example","http":{"paths":[
            {"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}},
            {"path":"/api","pathType":"Prefix","backend":{"service":{"name":"api","port":{"number":80}}}}]}}]}}"#;
        let ing: Ingress = parse(json);
        let f = analyze(&ing, &["web".to_string()]);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("api"));
        assert!(analyze(&ing, &["web".into(), "api".into()]).is_empty());
    }
}
