//! Notifications: events routed by rules to channels (desktop, Slack,
//! PagerDuty, a signed webhook, email), delivered with retries, back-off and
//! a circuit breaker per channel; every attempt is recorded as a
//! `notification_sent` or `notification_failed` event. Secrets (webhook URLs,
//! routing keys, passwords) stay inside the channel: what is recorded or
//! logged names the channel and a secret-free recipient only.

mod config;
mod delivery;
pub mod desktop;
mod email;
mod http;
mod message;
pub mod pagerduty;
mod routing;
pub mod slack;
mod task;
pub mod webhook;
pub mod witness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use config::{
    BreakerConfig, ChannelConfig, DesktopConfig, EmailConfig, NOTIFIABLE_KINDS, NotifyConfig,
    PagerDutyConfig, RetryConfig, RuleConfig, SlackConfig, SmtpTls, WebhookConfig,
};
pub use delivery::{Backoff, Breaker, BreakerOpen};
pub use message::{Lifecycle, Message};
pub use task::spawn;

/// One way of telling people.
#[async_trait]
pub trait Channel: Send + Sync {
    /// Where it goes, safe to record: no URL, key or password.
    fn recipient(&self) -> String;
    /// Every secret this channel holds, so errors can be scrubbed of them.
    fn secrets(&self) -> Vec<String>;
    /// One delivery attempt.
    async fn deliver(&self, m: &Message) -> Result<(), DeliveryError>;
}

/// Why one attempt failed, and whether another could work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
    pub retryable: bool,
}

impl DeliveryError {
    /// A failure another attempt may get past (timeouts, 5xx, 429).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
    /// A failure that will not change (4xx, a malformed message).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// `text` with every occurrence of every secret replaced by `********`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret containing another is masked whole.
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(s.as_str(), "********");
    }
    out
}

/// A named channel ready to deliver.
pub(crate) struct NamedChannel {
    pub name: String,
    pub channel: Arc<dyn Channel>,
}

/// Channels, rules and delivery settings, built from `[notify]`.
pub struct NotifyPlan {
    pub(crate) channels: Vec<NamedChannel>,
    pub(crate) rules: Vec<routing::Rule>,
    pub(crate) backoff: Backoff,
    pub(crate) breaker: BreakerConfig,
    pub(crate) queue: usize,
    pub(crate) replay_window: Duration,
    /// Seed for the back-off jitter; `None` draws one from the OS.
    pub(crate) seed: Option<u64>,
    /// Escalation contact → indices of the channels that reach them.
    pub(crate) escalation: BTreeMap<String, Vec<usize>>,
}

impl std::fmt::Debug for NotifyPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.channels.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("NotifyPlan")
            .field("channels", &names)
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// A channel that could not be set up, named by its key path.
#[derive(Debug, thiserror::Error)]
#[error("key `notify.channels.{channel}`: {message}")]
pub struct SetupError {
    pub channel: String,
    pub message: String,
}

impl NotifyPlan {
    /// Builds the channels `config` names (reading CA files, building clients).
    /// `None` when no rule routes anywhere: then no notifier runs at all.
    pub fn from_config(config: &NotifyConfig) -> Result<Option<NotifyPlan>, SetupError> {
        if (config.rules.is_empty() && config.escalation.is_empty()) || config.channels.is_empty() {
            return Ok(None);
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let err = |channel: &str, message: String| SetupError {
            channel: channel.to_string(),
            message,
        };
        let mut client = None;
        let mut http = |name: &str| -> Result<reqwest::Client, SetupError> {
            if client.is_none() {
                client = Some(http::client(timeout).map_err(|m| err(name, m))?);
            }
            Ok(client.clone().expect("set just above"))
        };
        let mut channels = Vec::new();
        for (name, c) in &config.channels {
            let channel: Arc<dyn Channel> = match c {
                ChannelConfig::Desktop(_) => Arc::new(desktop::Desktop),
                ChannelConfig::Slack(s) => Arc::new(slack::Slack {
                    url: s.webhook_url.0.clone(),
                    client: http(name)?,
                }),
                ChannelConfig::Pagerduty(p) => Arc::new(pagerduty::PagerDuty {
                    routing_key: p.routing_key.0.clone(),
                    url: p.url.clone(),
                    client: http(name)?,
                }),
                ChannelConfig::Webhook(w) => Arc::new(webhook::Webhook {
                    host: reqwest::Url::parse(&w.url.0)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_string))
                        .ok_or_else(|| err(name, "url: not an http(s) URL".into()))?,
                    url: w.url.0.clone(),
                    secret: w.secret.0.clone(),
                    client: http(name)?,
                }),
                ChannelConfig::Email(e) => {
                    Arc::new(email::Email::new(e, timeout).map_err(|m| err(name, m))?)
                }
            };
            channels.push(NamedChannel {
                name: name.clone(),
                channel,
            });
        }
        let index = |n: &str| channels.iter().position(|c| c.name == n);
        let mut rules = Vec::new();
        for (i, r) in config.rules.iter().enumerate() {
            let resolved = r
                .channels
                .iter()
                .map(|n| {
                    index(n).ok_or_else(|| SetupError {
                        channel: n.clone(),
                        message: format!("named by notify.rules[{i}] but not configured"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(routing::Rule {
                config: r.clone(),
                channels: resolved,
            });
        }
        let mut escalation = BTreeMap::new();
        for (contact, names) in &config.escalation {
            let resolved = names
                .iter()
                .map(|n| {
                    index(n).ok_or_else(|| SetupError {
                        channel: n.clone(),
                        message: format!("named by notify.escalation.{contact} but not configured"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            escalation.insert(contact.clone(), resolved);
        }
        Ok(Some(NotifyPlan {
            channels,
            rules,
            escalation,
            backoff: Backoff {
                max_attempts: config.retry.max_attempts.max(1),
                initial: Duration::from_millis(config.retry.initial_backoff_ms),
                max: Duration::from_millis(config.retry.max_backoff_ms),
            },
            breaker: config.breaker.clone(),
            queue: config.queue.max(1),
            replay_window: Duration::from_secs(config.replay_window_secs),
            seed: None,
        }))
    }

    /// Fixes the back-off jitter's random sequence (for reproducible runs).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Names of the channels `m` is routed to.
    pub fn route(&self, m: &Message) -> Vec<&str> {
        self.targets(m)
            .into_iter()
            .map(|i| self.channels[i].name.as_str())
            .collect()
    }

    /// Channel indices for `m`: every matching rule's, and for an escalation
    /// the channels its contact is mapped to, each once.
    pub(crate) fn targets(&self, m: &Message) -> std::collections::BTreeSet<usize> {
        let mut out = routing::route(&self.rules, m);
        if let Some(contact) = &m.escalated_to {
            out.extend(self.escalation.get(contact).into_iter().flatten().copied());
        }
        out
    }

    /// Whether an escalation to `contact` reaches at least one channel.
    pub fn reaches(&self, contact: &str) -> bool {
        self.escalation.get(contact).is_some_and(|c| !c.is_empty())
    }

    /// Names of the configured channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_every_secret_longest_first() {
        let secrets = vec![
            "https://hooks.example/T0/B0/abc".to_string(),
            "abc".to_string(),
            "R0UT1NGKEY".to_string(),
        ];
        let out = redact(
            "error sending to https://hooks.example/T0/B0/abc with R0UT1NGKEY",
            &secrets,
        );
        assert_eq!(out, "error sending to ******** with ********");
    }
}
