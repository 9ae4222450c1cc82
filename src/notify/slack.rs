//! Slack incoming webhook with a Block Kit message.

use async_trait::async_trait;
use serde_json::json;

use super::{Channel, DeliveryError, Message};

/// Posts to one Slack incoming webhook.
pub(crate) struct Slack {
    pub url: String,
    pub client: reqwest::Client,
}

/// The Block Kit payload: a header, the body, and a context line.
pub fn payload(m: &Message) -> serde_json::Value {
    // Slack limits a header to 150 characters.
    let header: String = m.title.chars().take(150).collect();
    json!({
        "text": format!("[{}] {}", m.severity.as_str(), m.title),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": false}},
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(&m.body)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(&m.context_line())}]},
        ]
    })
}

/// Slack's mrkdwn escaping of the three control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Channel for Slack {
    fn recipient(&self) -> String {
        "slack incoming webhook".into()
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.url.clone()]
    }

    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError> {
        super::http::send(
            self.client.post(&self.url).json(&payload(m)),
            &self.secrets(),
        )
        .await
    }
}
