//! `[prometheus]`: where the metrics evidence comes from. Credentials are
//! read from files (never written inline, never logged); the URL may not
//! carry a user or password.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[prometheus]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus server (`http://prometheus:9090`, or a
    /// path prefix such as `https://host/prometheus/`).
    pub url: String,
    /// A file holding a bearer token (its whitespace trimmed).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication, the password read from a file.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// A PEM file of CA certificates to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one query may take, in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PromQL overrides by resource kind (`pod`, `service`, `host`) and
    /// query name; see [`super::queries`] for the defaults.
    #[serde(default)]
    pub queries: BTreeMap<String, BTreeMap<String, String>>,
}

/// `[prometheus.basic_auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    pub password_file: PathBuf,
}

fn default_timeout_ms() -> u64 {
    5000
}

impl PrometheusConfig {
    /// A config for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
            timeout_ms: default_timeout_ms(),
            queries: BTreeMap::new(),
        }
    }

    /// Checks what can be checked without the files: the key at fault and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ("url".to_string(), format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(("url".into(), "must be http:// or https://".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err((
                "url".into(),
                "must not carry credentials; use bearer_token_file or basic_auth.password_file"
                    .into(),
            ));
        }
        if self.bearer_token_file.is_some() && self.basic_auth.is_some() {
            return Err((
                "bearer_token_file".into(),
                "give either bearer_token_file or basic_auth, not both".into(),
            ));
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(("timeout_ms".into(), "must be between 1 and 600000".into()));
        }
        for (kind, overrides) in &self.queries {
            let Some(defaults) = super::queries::defaults(kind) else {
                return Err((
                    format!("queries.{kind}"),
                    format!(
                        "unknown resource kind; expected one of {}",
                        super::queries::KINDS.join(", ")
                    ),
                ));
            };
            for (name, text) in overrides {
                let Some(default) = defaults.iter().find(|q| q.name == name) else {
                    let names: Vec<&str> = defaults.iter().map(|q| q.name).collect();
                    return Err((
                        format!("queries.{kind}.{name}"),
                        format!(
                            "unknown query (its fact would be in no catalogue); expected one of {}",
                            names.join(", ")
                        ),
                    ));
                };
                if let Err(why) = super::promql::check(text) {
                    return Err((format!("queries.{kind}.{name}"), why));
                }
                for p in super::promql::placeholders(text) {
                    if !default.kind.placeholders().contains(&p.as_str()) {
                        return Err((
                            format!("queries.{kind}.{name}"),
                            format!(
                                "placeholder `{{{p}}}` is not known for {kind}; known: {}",
                                default.kind.placeholders().join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configs_name_their_key() {
        let mut c = PrometheusConfig::new("http://user:pw@127.0.0.1:9090");
        assert_eq!(c.validate().unwrap_err().0, "url");
        c.url = "ftp://x".into();
        assert_eq!(c.validate().unwrap_err().0, "url");
        c.url = "http://127.0.0.1:9090".into();
        assert!(c.validate().is_ok());
        c.timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().0, "timeout_ms");
        c.timeout_ms = 100;
        c.queries.insert(
            "pod".into(),
            [(
                "cpu_throttle_ratio".to_string(),
                "sum(x{pod=\"{pod}\"}".to_string(),
            )]
            .into(),
        );
        assert_eq!(
            c.validate().unwrap_err().0,
            "queries.pod.cpu_throttle_ratio"
        );
        c.queries.insert(
            "pod".into(),
            [("made_up".to_string(), "up".to_string())].into(),
        );
        assert_eq!(c.validate().unwrap_err().0, "queries.pod.made_up");
        c.queries.insert(
            "pod".into(),
            [("restarts".to_string(), "up{x=\"{host}\"}".to_string())].into(),
        );
        assert!(c.validate().unwrap_err().1.contains("{host}"));
        c.queries.clear();
        c.queries.insert("lambda".into(), BTreeMap::new());
        assert_eq!(c.validate().unwrap_err().0, "queries.lambda");
    }
}

#[cfg(test)]
mod file_tests {
    use crate::config::Config;

    #[test]
    fn the_section_parses_and_its_mistakes_name_key_and_line() {
        let c = Config::parse(
            "[prometheus]\nurl = \"http://127.0.0.1:9090\"\nbearer_token_file = \"/run/t\"\ntimeout_ms = 1500\n\n[prometheus.queries.pod]\nrestarts = 'sum(x{pod=\"{pod}\"})'\n",
            "c.toml",
        )
        .unwrap();
        let p = c.prometheus.unwrap();
        assert_eq!(p.timeout_ms, 1500);
        assert_eq!(p.queries["pod"]["restarts"], "sum(x{pod=\"{pod}\"})");
        let e = Config::parse(
            "[prometheus]\nurl = \"http://127.0.0.1:9090\"\n\n[prometheus.queries.pod]\nrestarts = 'sum(x{pod=\"{pod}\"}'\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 5") && e.contains("prometheus.queries.pod.restarts"),
            "{e}"
        );
        let e = Config::parse(
            "[prometheus]\nurl = \"http://me:pw@127.0.0.1:9090\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("prometheus.url"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        let e = Config::parse(
            "[prometheus]\nurl = \"http://x\"\ntoken = \"s3cr3t\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("token") && !e.contains("s3cr3t"), "{e}");
    }
}
