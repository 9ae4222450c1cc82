//! The `[notify]` section: channels by name, routing rules, retry and breaker
//! settings. Checked when the config file is read, so a rule naming a missing
//! channel or a malformed address is reported with its key path and line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::event::{Environment, Severity};

/// `[notify]`: nothing is sent unless channels and rules are configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[notify.channels.NAME]`: where notifications can go.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// `[[notify.rules]]`: which events go to which channels.
    pub rules: Vec<RuleConfig>,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
    /// Messages waiting per channel; past this, new ones are dropped and recorded as failed.
    pub queue: usize,
    /// Per-request timeout for HTTP and SMTP deliveries.
    pub timeout_secs: u64,
    /// On start, events recorded while no notifier ran are still sent if at
    /// most this old; older ones would only be noise.
    pub replay_window_secs: u64,
    /// `[notify.escalation]`: escalation contact (as named in
    /// `runtime.escalation_chain`) → the channels that reach them.
    pub escalation: BTreeMap<String, Vec<String>>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            channels: BTreeMap::new(),
            rules: Vec::new(),
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            queue: 256,
            timeout_secs: 10,
            replay_window_secs: 3_600,
            escalation: BTreeMap::new(),
        }
    }
}

/// One channel; `type` says which.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelConfig {
    Desktop(DesktopConfig),
    Slack(SlackConfig),
    Pagerduty(PagerDutyConfig),
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

/// `type = "desktop"`: a notification on the local session bus.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesktopConfig {}

/// `type = "slack"`: an incoming webhook (the URL is the credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub webhook_url: Secret,
}

/// `type = "pagerduty"`: Events API v2.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    pub routing_key: Secret,
    /// The Events API endpoint (a site's egress proxy may front it).
    #[serde(default = "pagerduty_default_url")]
    pub url: String,
}

fn pagerduty_default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

/// `type = "webhook"`: a JSON POST signed with HMAC-SHA256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: Secret,
    /// Shared key for the signature header.
    pub secret: Secret,
}

/// `type = "email"`: SMTP submission, always encrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "smtp_default_port")]
    pub port: u16,
    /// `starttls` (upgrade a plain connection, port 587) or `tls` (implicit, port 465).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Extra PEM certificates to trust (a site's internal CA), beside the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
}

fn smtp_default_port() -> u16 {
    587
}

/// How the SMTP connection is encrypted; there is deliberately no plaintext mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
}

/// `[[notify.rules]]`: an empty list matches anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// Event kinds, e.g. `incident_opened`.
    pub kinds: Vec<String>,
    /// The least severe event that matches.
    pub min_severity: Option<Severity>,
    pub environments: Vec<Environment>,
    pub teams: Vec<String>,
    /// Channel names from `[notify.channels]`.
    pub channels: Vec<String>,
}

/// `[notify.retry]`: exponential back-off with jitter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
        }
    }
}

/// `[notify.breaker]`: after this many failures in a row a channel rests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cooldown_secs: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown_secs: 60,
        }
    }
}

/// Event kinds that can be notified (see [`super::Message::from_event`]).
pub const NOTIFIABLE_KINDS: &[&str] = &[
    "incident_opened",
    "incident_acknowledged",
    "incident_resolved",
    "approval_requested",
    "approval_escalated",
    "remediation_finished",
    "security_finding",
    "cost_anomaly",
    "agent_error",
];

impl NotifyConfig {
    /// Checks names, addresses and bounds; `text` is the file, to find lines.
    pub(crate) fn validate(&self, text: &str) -> Result<(), String> {
        let section_err = |section: &str, key: &str, why: String| {
            let line = crate::config::find_key_line(text, section, key)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            Err(format!("{line}key `{section}.{key}`: {why}"))
        };
        let r = &self.retry;
        if !(1..=20).contains(&r.max_attempts) {
            return section_err(
                "notify.retry",
                "max_attempts",
                "must be between 1 and 20".into(),
            );
        }
        if r.initial_backoff_ms == 0 || r.initial_backoff_ms > r.max_backoff_ms {
            return section_err(
                "notify.retry",
                "initial_backoff_ms",
                "must be at least 1 and at most max_backoff_ms".into(),
            );
        }
        if r.max_backoff_ms > 3_600_000 {
            return section_err(
                "notify.retry",
                "max_backoff_ms",
                "must be at most 3600000 (an hour)".into(),
            );
        }
        if self.breaker.failure_threshold == 0 {
            return section_err(
                "notify.breaker",
                "failure_threshold",
                "must be at least 1".into(),
            );
        }
        if !(1..=86_400).contains(&self.breaker.cooldown_secs) {
            return section_err(
                "notify.breaker",
                "cooldown_secs",
                "must be between 1 and 86400".into(),
            );
        }
        if !(1..=100_000).contains(&self.queue) {
            return section_err("notify", "queue", "must be between 1 and 100000".into());
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return section_err("notify", "timeout_secs", "must be between 1 and 300".into());
        }
        if self.replay_window_secs > 7 * 86_400 {
            return section_err(
                "notify",
                "replay_window_secs",
                "must be at most 604800 (a week)".into(),
            );
        }
        for (contact, channels) in &self.escalation {
            if channels.is_empty() {
                return section_err(
                    "notify.escalation",
                    contact,
                    "must name at least one channel".into(),
                );
            }
            if let Some(missing) = channels.iter().find(|c| !self.channels.contains_key(*c)) {
                return section_err(
                    "notify.escalation",
                    contact,
                    format!("channel `{missing}` is not configured in [notify.channels]"),
                );
            }
        }
        for (name, channel) in &self.channels {
            let section = format!("notify.channels.{name}");
            let bad = |key: &str, why: String| section_err(&section, key, why);
            // URLs are secrets: the message says what is wrong, never echoes them.
            let http_url = |key: &str, url: &str| match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
                _ => bad(key, "must be an http:// or https:// URL".into()),
            };
            match channel {
                ChannelConfig::Desktop(_) => {}
                ChannelConfig::Slack(c) => http_url("webhook_url", &c.webhook_url.0)?,
                ChannelConfig::Pagerduty(c) => {
                    http_url("url", &c.url)?;
                    if c.routing_key.0.trim().is_empty() {
                        return bad("routing_key", "must not be empty".into());
                    }
                }
                ChannelConfig::Webhook(c) => {
                    http_url("url", &c.url.0)?;
                    if c.secret.0.len() < 16 {
                        return bad("secret", "must be at least 16 characters".into());
                    }
                }
                ChannelConfig::Email(c) => {
                    if c.host.trim().is_empty() {
                        return bad("host", "must not be empty".into());
                    }
                    if c.from.parse::<lettre::message::Mailbox>().is_err() {
                        return bad("from", format!("`{}` is not an email address", c.from));
                    }
                    if c.to.is_empty() {
                        return bad("to", "must name at least one address".into());
                    }
                    if let Some(a) =
                        c.to.iter()
                            .find(|a| a.parse::<lettre::message::Mailbox>().is_err())
                    {
                        return bad("to", format!("`{a}` is not an email address"));
                    }
                    if c.password.is_some() && c.username.is_none() {
                        return bad("password", "needs `username` as well".into());
                    }
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let bad = |key: &str, why: String| {
                let line = find_array_key_line(text, "notify.rules", i, key)
                    .map(|l| format!("line {l}: "))
                    .unwrap_or_default();
                Err(format!("{line}key `notify.rules[{i}].{key}`: {why}"))
            };
            if rule.channels.is_empty() {
                return bad("channels", "must name at least one channel".into());
            }
            if let Some(c) = rule
                .channels
                .iter()
                .find(|c| !self.channels.contains_key(*c))
            {
                return bad(
                    "channels",
                    format!("no channel named `{c}` in [notify.channels]"),
                );
            }
            if let Some(k) = rule
                .kinds
                .iter()
                .find(|k| !NOTIFIABLE_KINDS.contains(&k.as_str()))
            {
                return bad(
                    "kinds",
                    format!(
                        "`{k}` is not a notifiable event kind (one of: {})",
                        NOTIFIABLE_KINDS.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    /// A copy safe to print: every secret masked.
    pub(crate) fn masked(&self) -> NotifyConfig {
        let mut c = self.clone();
        for channel in c.channels.values_mut() {
            match channel {
                ChannelConfig::Desktop(_) => {}
                ChannelConfig::Slack(s) => s.webhook_url = s.webhook_url.masked(),
                ChannelConfig::Pagerduty(p) => p.routing_key = p.routing_key.masked(),
                ChannelConfig::Webhook(w) => {
                    w.url = w.url.masked();
                    w.secret = w.secret.masked();
                }
                ChannelConfig::Email(e) => {
                    if let Some(p) = &mut e.password {
                        *p = p.masked();
                    }
                }
            }
        }
        c
    }
}

/// The line where `key` is set inside the `index`-th `[[array]]` table.
fn find_array_key_line(text: &str, array: &str, index: usize, key: &str) -> Option<usize> {
    let header = format!("[[{array}]]");
    let mut seen = None::<usize>;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.replace(' ', "") == header;
            if inside {
                seen = Some(seen.map_or(0, |n| n + 1));
                if seen == Some(index) && key.is_empty() {
                    return Some(i + 1);
                }
            }
        } else if inside && seen == Some(index) && t.split('=').next().map(str::trim) == Some(key) {
            return Some(i + 1);
        }
    }
    // The key is absent (e.g. a missing list): point at the table itself.
    if key.is_empty() {
        None
    } else {
        find_array_key_line(text, array, index, "")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const GOOD: &str = r#"
[notify]
timeout_secs = 5

[notify.channels.ops-slack]
type = "slack"
webhook_url = "https://hooks.slack.example/services/T0/B0/s3cr3tpath"

[notify.channels.pager]
type = "pagerduty"
routing_key = "R0UTINGKEY0123456789"

[notify.channels.audit]
type = "webhook"
url = "https://audit.example/hook?token=urlsecret"
secret = "0123456789abcdef0123"

[notify.channels.mail]
type = "email"
host = "smtp.example"
username = "shieldops"
password = "mailpassw0rd"
from = "ShieldOps <shieldops@example.com>"
to = ["oncall@example.com"]

[[notify.rules]]
kinds = ["incident_opened", "incident_resolved"]
min_severity = "high"
environments = ["production"]
teams = ["payments"]
channels = ["ops-slack", "pager"]

[[notify.rules]]
channels = ["audit", "mail"]
"#;

    fn err(text: &str) -> String {
        Config::parse(text, "c.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_full_section_parses_and_masks_every_secret() {
        let c = Config::parse(GOOD, "c.toml").unwrap();
        assert_eq!(c.notify.channels.len(), 4);
        assert_eq!(c.notify.rules.len(), 2);
        let shown = toml::to_string(&c.masked()).unwrap();
        let debug = format!("{c:?}");
        for secret in [
            "s3cr3tpath",
            "R0UTINGKEY",
            "urlsecret",
            "0123456789abcdef",
            "mailpassw0rd",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn a_rule_naming_a_missing_channel_names_the_rule_and_line() {
        let text = GOOD.replace(
            "channels = [\"audit\", \"mail\"]",
            "channels = [\"audit\", \"sms\"]",
        );
        let e = err(&text);
        assert!(e.contains("notify.rules[1].channels"), "{e}");
        assert!(e.contains("`sms`"), "{e}");
        let line = text.lines().position(|l| l.contains("\"sms\"")).unwrap() + 1;
        assert!(e.contains(&format!("line {line}:")), "{e}");
    }

    #[test]
    fn an_unknown_kind_in_a_rule_is_refused() {
        let e = err(&GOOD.replace("\"incident_resolved\"", "\"incident_reopened\""));
        assert!(e.contains("notify.rules[0].kinds"), "{e}");
        assert!(e.contains("incident_reopened"), "{e}");
    }

    #[test]
    fn an_unknown_channel_key_names_its_path_and_line() {
        let text = GOOD.replace("routing_key = ", "routing_kee = ");
        let e = err(&text);
        assert!(e.contains("notify.channels.pager"), "{e}");
        assert!(e.contains("routing_kee"), "{e}");
        assert!(e.contains("line "), "{e}");
    }

    #[test]
    fn an_unknown_channel_type_is_refused() {
        let e = err("[notify.channels.x]\ntype = \"carrier-pigeon\"\n");
        assert!(e.contains("notify.channels.x"), "{e}");
        assert!(e.contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let text = GOOD.replace(
            "https://hooks.slack.example/services/T0/B0/s3cr3tpath",
            "hooks.slack.example/s3cr3tpath",
        );
        let e = err(&text);
        assert!(e.contains("notify.channels.ops-slack.webhook_url"), "{e}");
        assert!(!e.contains("s3cr3tpath"), "{e}");
        let line = text
            .lines()
            .position(|l| l.contains("webhook_url"))
            .unwrap()
            + 1;
        assert!(e.contains(&format!("line {line}:")), "{e}");
    }

    #[test]
    fn bad_retry_and_email_values_name_their_keys() {
        let e = err("[notify.retry]\nmax_attempts = 0\n");
        assert!(e.contains("line 2: key `notify.retry.max_attempts`"), "{e}");
        let e = err(&GOOD.replace("to = [\"oncall@example.com\"]", "to = [\"not an address\"]"));
        assert!(e.contains("notify.channels.mail.to"), "{e}");
        let e = err(&GOOD.replace("secret = \"0123456789abcdef0123\"", "secret = \"short\""));
        assert!(e.contains("notify.channels.audit.secret"), "{e}");
        assert!(!e.contains("short\""), "{e}");
    }
}
