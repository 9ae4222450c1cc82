//! Facts: what an investigation learned, as dotted names → values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{Alert, Health, Resource};

/// One fact's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fact {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::Bool(b) => write!(f, "{b}"),
            Fact::Number(n) => f.write_str(&super::expr::format_number(*n)),
            Fact::Text(s) => f.write_str(s),
        }
    }
}

impl From<bool> for Fact {
    fn from(v: bool) -> Self {
        Fact::Bool(v)
    }
}

impl From<f64> for Fact {
    fn from(v: f64) -> Self {
        Fact::Number(v)
    }
}

impl From<i64> for Fact {
    fn from(v: i64) -> Self {
        Fact::Number(v as f64)
    }
}

impl From<u32> for Fact {
    fn from(v: u32) -> Self {
        Fact::Number(f64::from(v))
    }
}

impl From<&str> for Fact {
    fn from(v: &str) -> Self {
        Fact::Text(v.to_string())
    }
}

impl From<String> for Fact {
    fn from(v: String) -> Self {
        Fact::Text(v)
    }
}

/// Facts gathered by an investigation, keyed by dotted name (`health.reason`,
/// `metrics.memory_usage_ratio`, `events.count`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Facts(BTreeMap<String, Fact>);

impl Facts {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one fact (replacing an earlier value).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Fact>) -> &mut Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Builder form of [`Facts::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Fact>) -> Self {
        self.set(name, value);
        self
    }

    /// One fact, if known.
    pub fn get(&self, name: &str) -> Option<&Fact> {
        self.0.get(name)
    }

    /// Every fact in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Fact)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many facts are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no fact is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `health.status`, `health.reason` and `health.message`.
    pub fn add_health(&mut self, health: &Health) -> &mut Self {
        self.set("health.status", health.status.as_str());
        self.set("health.reason", health.reason.as_str());
        self.set("health.message", health.message.as_str());
        self
    }

    /// Adds `resource.kind`, `.environment`, `.team`, `resource.labels.*` and
    /// `resource.attributes.*` (numeric attributes become numbers).
    pub fn add_resource(&mut self, resource: &Resource) -> &mut Self {
        self.set("resource.id", resource.id.as_str());
        self.set("resource.kind", resource.kind.as_str());
        self.set("resource.environment", resource.environment.as_str());
        self.set("resource.team", resource.team.as_str());
        for (k, v) in &resource.labels {
            self.set(format!("resource.labels.{k}"), v.as_str());
        }
        for (k, v) in &resource.attributes {
            self.set(format!("resource.attributes.{k}"), parse_scalar(v));
        }
        self
    }

    /// Adds `alert.name`, `alert.severity` and `alert.labels.*`.
    pub fn add_alert(&mut self, alert: &Alert) -> &mut Self {
        self.set("alert.name", alert.name.as_str());
        self.set("alert.severity", alert.severity.as_str());
        for (k, v) in &alert.labels {
            self.set(format!("alert.labels.{k}"), v.as_str());
        }
        self
    }
}

/// A number when the text is one, else the text.
fn parse_scalar(text: &str) -> Fact {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Fact::Number(n),
        _ => Fact::Text(text.to_string()),
    }
}

impl FromIterator<(String, Fact)> for Facts {
    fn from_iter<I: IntoIterator<Item = (String, Fact)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}
