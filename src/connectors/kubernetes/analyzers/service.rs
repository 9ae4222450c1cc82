//! Services: a selector that matches no ready endpoint.

use k8s_openapi::api::core::v1::{Endpoints, Service};

use super::Finding;
use crate::event::HealthStatus;

/// Ready and not-ready addresses of an Endpoints object.
pub fn endpoint_counts(ep: &Endpoints) -> (usize, usize) {
    ep.subsets.iter().flatten().fold((0, 0), |(r, n), s| {
        (
            r + s.addresses.as_ref().map_or(0, Vec::len),
            n + s.not_ready_addresses.as_ref().map_or(0, Vec::len),
        )
    })
}

/// Findings for one service, given its Endpoints (absent = none yet).
pub fn analyze(svc: &Service, endpoints: Option<&Endpoints>) -> Vec<Finding> {
    let spec = svc.spec.as_ref();
    let has_selector = spec
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty());
    let external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    if !has_selector || external {
        return Vec::new();
    }
    let (ready, not_ready) = endpoints.map(endpoint_counts).unwrap_or((0, 0));
    if ready > 0 {
        return Vec::new();
    }
    let (message, cause) = if not_ready > 0 {
        (
            format!("0 ready endpoints, {not_ready} not ready"),
            "the service's pods exist but fail their readiness probes",
        )
    } else {
        (
            "no endpoints: the selector matches no running pod".to_string(),
            "the service's selector matches no pod (label mismatch or workload scaled to zero)",
        )
    };
    vec![Finding::new(
        HealthStatus::Unhealthy,
        "NoReadyEndpoints",
        message,
        cause,
        0.6,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kubernetes::analyzers::parse;

    const SVC: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"checkout","namespace":"payments"},
      "spec":{"selector":{"app":"checkout"},"ports":[{"port":80,"targetPort":8080}],"type":"ClusterIP"}}"#;

    #[test]
    fn no_ready_endpoints() {
        let ep: Endpoints = parse(
            r#"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"checkout"},
          "subsets":[{"notReadyAddresses":[{"ip":"10.0.0.7"}],"ports":[{"port":8080}]}]}"#,
        );
        let f = analyze(&parse(SVC), Some(&ep));
        assert_eq!(f[0].reason, "NoReadyEndpoints");
        assert!(f[0].message.contains("1 not ready"));
        assert_eq!(analyze(&parse(SVC), None)[0].reason, "NoReadyEndpoints");
    }

    #[test]
    fn ready_endpoints_and_selectorless_services_are_fine() {
        let ep: Endpoints = parse(
            r#"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"checkout"},
          "subsets":[{"addresses":[{"ip":"10.0.0.7"}],"ports":[{"port":8080}]}]}"#,
        );
        assert!(analyze(&parse(SVC), Some(&ep)).is_empty());
        let bare: Service = parse(
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"ext"},"spec":{"ports":[{"port":5432}]}}"#,
        );
        assert!(analyze(&bare, None).is_empty());
    }
}
