//! Parameters with provenance, through the shipped playbooks: an alert label
//! is marked as the alert's, and a credential is rotated only on an expiry
//! its store's data shows, never because an alert names it.

use shieldops::event::{
    Alert, AlertStatus, Health, HealthStatus, ParamSource, ResourceId, Severity,
};
use shieldops::playbook::{Facts, Library};

fn alert(name: &str, resource: &ResourceId, labels: &[(&str, &str)]) -> Alert {
    Alert {
        name: name.into(),
        severity: Severity::High,
        resource: resource.clone(),
        fingerprint: "fp".into(),
        summary: String::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        status: AlertStatus::Firing,
        source: "alertmanager".into(),
    }
}

#[test]
fn an_instance_type_taken_from_an_alert_label_is_marked_as_the_alerts() {
    let library = Library::load(None).unwrap();
    let playbook = library.get("ec2-cpu-saturated").unwrap();
    let target = ResourceId::new("aws/123/us-east-1/ec2/i-0abc");
    let mut facts = Facts::new()
        .with("resource.kind", "ec2_instance")
        .with("resource.attributes.instance_type", "m5.large");
    facts.add_alert(&alert(
        "EC2CPUSaturated",
        &target,
        &[("target_instance_type", "x2iedn.32xlarge")],
    ));
    facts.add_health(&Health::new(
        HealthStatus::Degraded,
        "CPUSaturated",
        "cpu 100%",
    ));
    let decision = playbook.decide(&facts, &target).unwrap().expect("resize");
    assert_eq!(decision.action.name, "resize_instance");
    assert_eq!(decision.action.params["instance_type"], "x2iedn.32xlarge");
    assert_eq!(
        decision.action.param_sources["instance_type"],
        ParamSource::Alert
    );
}

#[test]
fn a_credential_is_rotated_only_on_an_expiry_its_store_shows() {
    let library = Library::load(None).unwrap();
    let playbook = library.get("credential-expiring").unwrap();
    let target = ResourceId::new("vault/secret/payments/db");
    let base = || {
        let mut f = Facts::new()
            .with("resource.kind", "credential")
            .with("resource.labels.credential_type", "secret")
            .with("resource.labels.store", "vault");
        // The alert claims an expiry and names another secret besides.
        f.add_alert(&alert(
            "CredentialExpiring",
            &target,
            &[
                ("store", "vault"),
                ("secret", "vault/secret/payments/root"),
                ("days_left", "0"),
            ],
        ));
        f
    };
    // The store's data says the secret is fine: nothing is rotated.
    let mut healthy = base();
    healthy.add_health(&Health::healthy());
    assert!(playbook.decide(&healthy, &target).unwrap().is_none());
    // No health known: unknown is not expiring.
    assert!(playbook.decide(&base(), &target).unwrap().is_none());
    // The connector reports the expiry within its window: rotate this one.
    for reason in ["CredentialExpiring", "CredentialExpired"] {
        let mut expiring = base();
        expiring.add_health(&Health::new(HealthStatus::Degraded, reason, "expires soon"));
        let decision = playbook
            .decide(&expiring, &target)
            .unwrap()
            .expect("rotation");
        assert_eq!(decision.action.name, "rotate_secret");
        assert_eq!(
            decision.action.target, target,
            "the alert's other secret is never acted on"
        );
        assert_eq!(decision.action.params["reason"], reason);
        assert_eq!(decision.action.param_sources["reason"], ParamSource::Facts);
    }
}
