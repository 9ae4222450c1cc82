//! PagerDuty Events API v2: trigger, acknowledge and resolve, grouped by a
//! dedup key per incident (or remediation) so one page follows one incident.

use async_trait::async_trait;
use serde_json::json;

use super::{Channel, DeliveryError, Lifecycle, Message};
use crate::event::Severity;

/// Sends events to one PagerDuty service integration.
pub(crate) struct PagerDuty {
    pub routing_key: String,
    pub url: String,
    pub client: reqwest::Client,
}

/// The Events v2 body. Acknowledge and resolve carry only the key and action.
pub fn payload(m: &Message, routing_key: &str) -> serde_json::Value {
    let action = match m.lifecycle {
        Lifecycle::Trigger => "trigger",
        Lifecycle::Acknowledge => "acknowledge",
        Lifecycle::Resolve => "resolve",
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": m.dedup_key,
    });
    if m.lifecycle == Lifecycle::Trigger {
        let severity = match m.severity {
            Severity::Critical => "critical",
            Severity::High => "error",
            Severity::Medium | Severity::Low => "warning",
            Severity::Info => "info",
        };
        body["payload"] = json!({
            // PagerDuty limits the summary to 1024 characters.
            "summary": m.title.chars().take(1024).collect::<String>(),
            "source": m.resource.as_ref().map_or("shieldops".to_string(), |r| r.to_string()),
            "severity": severity,
            "timestamp": m.at.to_rfc3339(),
            "class": m.kind,
            "group": m.team,
            "custom_details": {
                "body": m.body,
                "environment": m.environment.map(|e| e.as_str()),
                "event_seq": m.event_seq,
                "incident": m.incident,
            },
        });
        body["client"] = json!("ShieldOps");
    }
    body
}

#[async_trait]
impl Channel for PagerDuty {
    fn recipient(&self) -> String {
        "pagerduty events v2".into()
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.routing_key.clone()]
    }

    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError> {
        super::http::send(
            self.client
                .post(&self.url)
                .json(&payload(m, &self.routing_key)),
            &self.secrets(),
        )
        .await
    }
}
