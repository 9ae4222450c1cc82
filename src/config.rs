//! Configuration: one TOML file at the XDG config path or `--config FILE`.
//! Unknown keys and bad values are reported with the key's path and line;
//! no file is needed for the demo. Secrets are masked whenever shown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub demo: DemoConfig,
    pub console: ConsoleConfig,
    /// Key rebinding: action name → key or keys.
    pub keys: crate::tui::KeymapConfig,
    pub policy: PolicyConfig,
    pub notify: crate::notify::NotifyConfig,
    /// `serve` and `attach`: tokens, TLS files, the token to present.
    pub remote: crate::remote::RemoteConfig,
    pub cost: crate::agents::cost::CostConfig,
    pub linux: crate::connectors::linux::LinuxConfig,
    /// `[aws]`: absent = no AWS connector (the Fleet pane says how to add one).
    pub aws: Option<crate::connectors::aws::AwsConfig>,
    /// `[credentials]`: absent = no credential stores are watched.
    pub credentials: Option<crate::connectors::credentials::CredentialsConfig>,
    /// `[security]`: the offline vulnerability database's staleness limit.
    pub security: crate::agents::security::SecurityConfig,
    /// `[kubernetes]`: contexts to watch and the kubeconfig to read.
    pub kubernetes: crate::connectors::kubernetes::KubernetesConfig,
    /// `[store]`: the event log's cache bound and its checkpoint witness.
    pub store: crate::store::StoreConfig,
    /// `[prometheus]`: absent = no Prometheus evidence or PromQL validation.
    pub prometheus: Option<crate::connectors::prometheus::PrometheusConfig>,
    /// `[cluster]`: the NATS JetStream cluster `serve --cluster` replicates
    /// the log on; absent = single machine.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// `[teams]`: principal (OS account or token principal) → the team it
    /// acts for; an unmapped person has no team, and the policy's team
    /// scoping refuses what they ask for. Agents act for their target's team.
    pub teams: std::collections::BTreeMap<String, String>,
}

/// `[runtime]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub read_only: bool,
    pub approval_ttl_secs: u64,
    pub escalation_chain: Vec<String>,
    /// Top-hypothesis confidence (0–1) at which a remediation is proposed.
    pub auto_propose_confidence: f64,
    pub discovery_interval_secs: u64,
    pub security_interval_secs: u64,
    pub cost_interval_secs: u64,
    pub learning_interval_secs: u64,
    pub validation_timeout_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let d = crate::runtime::RuntimeOptions::default();
        Self {
            read_only: false,
            approval_ttl_secs: d.approval_ttl.as_secs(),
            escalation_chain: d.escalation_chain,
            auto_propose_confidence: d.auto_propose_confidence,
            discovery_interval_secs: d.discovery_interval.as_secs(),
            security_interval_secs: d.security_interval.as_secs(),
            cost_interval_secs: d.cost_interval.as_secs(),
            learning_interval_secs: d.learning_interval.as_secs(),
            validation_timeout_secs: d.validation.timeout.as_secs(),
        }
    }
}

impl RuntimeConfig {
    /// The runtime options this section describes.
    pub fn options(&self) -> crate::runtime::RuntimeOptions {
        let mut o = crate::runtime::RuntimeOptions {
            read_only: self.read_only,
            approval_ttl: Duration::from_secs(self.approval_ttl_secs),
            escalation_chain: self.escalation_chain.clone(),
            auto_propose_confidence: self.auto_propose_confidence,
            discovery_interval: Duration::from_secs(self.discovery_interval_secs),
            security_interval: Duration::from_secs(self.security_interval_secs),
            cost_interval: Duration::from_secs(self.cost_interval_secs),
            learning_interval: Duration::from_secs(self.learning_interval_secs),
            ..Default::default()
        };
        o.validation.timeout = Duration::from_secs(self.validation_timeout_secs);
        o
    }
}

/// `[demo]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    pub seed: u64,
    pub speed: f64,
    /// A scenario file to play instead of the embedded one.
    pub scenario: Option<PathBuf>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            speed: 1.0,
            scenario: None,
        }
    }
}

/// `[console]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub theme: String,
    pub max_fps: u32,
    pub bell: bool,
    pub desktop_notifications: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            theme: "default".into(),
            max_fps: 10,
            bell: true,
            desktop_notifications: true,
        }
    }
}

/// `[policy]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A directory of .rego files and data.json that extends the embedded bundle.
    pub dir: Option<PathBuf>,
    /// A directory of playbooks that extends the embedded ones.
    pub playbooks: Option<PathBuf>,
}

/// A secret: kept as given, shown masked.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Secret {
    /// The secret with its value hidden (empty stays empty).
    pub fn masked(&self) -> Secret {
        if self.0.is_empty() {
            Secret(String::new())
        } else {
            Secret("********".into())
        }
    }
}

/// `line N: key `section.key`: why` for a key that may be nested below its
/// section (`vault.address`, `queries.pod.restarts`): the line is found in
/// the key's own table.
fn nested_key_error(text: &str, section: &str, key: &str, why: &str) -> String {
    let (table, leaf) = match key.rsplit_once('.') {
        Some((inner, leaf)) => (format!("{section}.{inner}"), leaf),
        None => (section.to_string(), key),
    };
    let line = find_key_line(text, &table, leaf)
        .map(|l| format!("line {l}: "))
        .unwrap_or_default();
    format!("{line}key `{section}.{key}`: {why}")
}

/// A configuration problem, naming the file, the key and the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    /// The default config file location (XDG config directory).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "shieldops")
            .map(|d| d.config_dir().join("config.toml"))
    }

    /// Loads `explicit` if given (it must exist), else the default path if it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => Self::default_path().filter(|p| p.exists()),
        };
        let Some(path) = path else {
            return Ok((Config::default(), None));
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let config = Self::parse(&text, &path.display().to_string())?;
        Ok((config, Some(path)))
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let deserializer = toml::de::Deserializer::parse(text).map_err(|e| err(e.to_string()))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            err(format!("{line}key `{path}`: {}", inner.message()))
        })?;
        config.validate(text).map_err(err)?;
        Ok(config)
    }

    fn validate(&self, text: &str) -> Result<(), String> {
        let bad = |section: &str, key: &str, why: &str| {
            let line = find_key_line(text, section, key)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            Err(format!("{line}key `{section}.{key}`: {why}"))
        };
        let r = &self.runtime;
        if !(0.0..=1.0).contains(&r.auto_propose_confidence) {
            return bad(
                "runtime",
                "auto_propose_confidence",
                "must be between 0 and 1",
            );
        }
        const WEEK: u64 = 7 * 24 * 3600;
        if !(1..=WEEK).contains(&r.approval_ttl_secs) {
            return bad(
                "runtime",
                "approval_ttl_secs",
                "must be between 1 and 604800 (a week)",
            );
        }
        for (key, v) in [
            ("discovery_interval_secs", r.discovery_interval_secs),
            ("security_interval_secs", r.security_interval_secs),
            ("cost_interval_secs", r.cost_interval_secs),
            ("learning_interval_secs", r.learning_interval_secs),
            ("validation_timeout_secs", r.validation_timeout_secs),
        ] {
            if !(1..=WEEK).contains(&v) {
                return bad("runtime", key, "must be between 1 and 604800 (a week)");
            }
        }
        if !(self.demo.speed.is_finite() && self.demo.speed > 0.0 && self.demo.speed <= 1000.0) {
            return bad("demo", "speed", "must be greater than 0 and at most 1000");
        }
        if let Err((key, why)) = self.linux.validate() {
            return bad("linux", key, &why);
        }
        if let Err((key, why)) = self.store.validate() {
            return bad("store", key, &why);
        }
        if let Some(c) = &self.store.checkpoints {
            let is_webhook = matches!(
                self.notify.channels.get(&c.channel),
                Some(crate::notify::ChannelConfig::Webhook(_))
            );
            if !is_webhook {
                return bad(
                    "store.checkpoints",
                    "channel",
                    &format!(
                        "{:?} is not a `type = \"webhook\"` channel in [notify.channels]",
                        c.channel
                    ),
                );
            }
        }
        if !(1..=60).contains(&self.console.max_fps) {
            return bad("console", "max_fps", "must be between 1 and 60");
        }
        let cost = &self.cost;
        if cost.currency.trim().is_empty() {
            return bad("cost", "currency", "must not be empty");
        }
        if !(cost.burn_alert.is_finite() && cost.burn_alert > 0.0) {
            return bad("cost", "burn_alert", "must be greater than 0");
        }
        for (team, budget) in &cost.budgets {
            if !(budget.is_finite() && *budget > 0.0) {
                return bad("cost.budgets", team, "must be a positive monthly amount");
            }
        }
        if let Some(path) = &cost.price_table
            && let Err(e) = crate::agents::cost::pricing::PriceTable::load(Some(path))
        {
            return bad("cost", "price_table", &e.to_string());
        }
        if let Some(aws) = &self.aws
            && let Err((key, why)) = aws.validate()
        {
            return bad("aws", key, &why);
        }
        if let Some(creds) = &self.credentials
            && let Err((key, why)) = creds.validate()
        {
            return Err(nested_key_error(text, "credentials", &key, &why));
        }
        if let Err((key, why)) = self.security.validate() {
            return bad("security", key, &why);
        }
        if let Err((key, why)) = self.kubernetes.validate() {
            return bad("kubernetes", key, &why);
        }
        if let Some(p) = &self.prometheus
            && let Err((key, why)) = p.validate()
        {
            return Err(nested_key_error(text, "prometheus", &key, &why));
        }
        // Every escalation contact must reach someone: a contact no channel
        // delivers to would only be a record that nobody reads.
        if let Some(contact) = r
            .escalation_chain
            .iter()
            .find(|c| !self.notify.escalation.contains_key(*c))
        {
            return bad(
                "runtime",
                "escalation_chain",
                &format!(
                    "contact `{contact}` maps to no notify channel; add it to [notify.escalation]"
                ),
            );
        }
        for (principal, team) in &self.teams {
            if principal.trim().is_empty() || principal.starts_with("agent:") {
                return bad(
                    "teams",
                    principal,
                    "must name a person or a token's principal",
                );
            }
            if team.trim().is_empty() {
                return bad("teams", principal, "must name a team");
            }
        }
        self.notify.validate(text)
    }

    /// A copy safe to print: every secret masked.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        c.notify = c.notify.masked();
        c.remote = c.remote.masked();
        if let Some(creds) = &mut c.credentials
            && let Some(vault) = &mut creds.vault
        {
            vault.token = vault.token.as_ref().map(crate::config::Secret::masked);
        }
        c
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key` is set inside `[section]`, if it can be found.
pub(crate) fn find_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == section && t.split('=').next().map(str::trim) == Some(key) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.console.max_fps, 10);
        assert_eq!(c.demo.seed, 42);
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let e = Config::parse("[console]\ntheme = \"mono\"\nfps = 3\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("console"), "{e}");
        assert!(e.contains("fps"), "{e}");
    }

    #[test]
    fn bad_type_names_path_and_line() {
        let e = Config::parse("[runtime]\n\napproval_ttl_secs = \"soon\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("runtime.approval_ttl_secs"), "{e}");
    }

    #[test]
    fn bad_value_names_path_and_line() {
        let e = Config::parse("[console]\nmax_fps = 0\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("console.max_fps"), "{e}");
    }

    #[test]
    fn cost_budgets_and_price_tables_are_checked() {
        let c = Config::parse(
            "[cost]\ncurrency = \"USD\"\n[cost.budgets]\ndata = 2500.0\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.cost.budgets["data"], 2500.0);
        let e = Config::parse("[cost.budgets]\ndata = 1.0\nsearch = -5.0\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("cost.budgets.search"),
            "{e}"
        );
        let e = Config::parse("[cost]\nburn = 2\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("burn"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("prices.csv");
        std::fs::write(
            &table,
            "# source: x\n# date: 2025-01-01\nregion,instance_type\n",
        )
        .unwrap();
        let text = format!("[cost]\nprice_table = {:?}\n", table.display().to_string());
        let e = Config::parse(&text, "c.toml").unwrap_err().to_string();
        assert!(
            e.contains("cost.price_table") && e.contains("prices.csv:3"),
            "{e}"
        );
    }

    #[test]
    fn aws_section_is_checked_with_key_and_line() {
        let c = Config::parse("[aws]\nregions = [\"eu-west-1\"]\n", "c.toml").unwrap();
        assert_eq!(c.aws.unwrap().regions, vec!["eu-west-1".to_string()]);
        let e = Config::parse("[aws]\nregion = \"eu-west-1\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("aws"), "{e}");
        let e = Config::parse(
            "[aws]\n\npoll_interval_secs = 10\npoll_jitter_secs = 20\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 4") && e.contains("aws.poll_jitter_secs"),
            "{e}"
        );
    }

    #[test]
    fn credentials_section_is_checked_with_key_and_line() {
        let c = Config::parse(
            "[credentials]\nteam = \"platform\"\n[credentials.vault]\naddress = \"http://127.0.0.1:8200\"\ntoken = \"s.abc\"\n",
            "c.toml",
        )
        .unwrap();
        let creds = c.credentials.clone().unwrap();
        assert_eq!(creds.vault.unwrap().address, "http://127.0.0.1:8200");
        assert!(!toml::to_string(&c.masked()).unwrap().contains("s.abc"));
        assert!(!format!("{c:?}").contains("s.abc"));
        let e = Config::parse("[credentials.vault]\naddres = \"x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("credentials.vault.addres"),
            "{e}"
        );
        let e = Config::parse(
            "[credentials.vault]\n\naddress = \"ftp://vault\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 3") && e.contains("credentials.vault.address"),
            "{e}"
        );
        let e = Config::parse("[credentials.rotation]\nlength = 4\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("credentials.rotation.length"),
            "{e}"
        );
    }

    #[test]
    fn security_section_is_checked_with_key_and_line() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.security.cve_max_age_days, 7);
        let c = Config::parse("[security]\ncve_max_age_days = 14\n", "c.toml").unwrap();
        assert_eq!(c.security.cve_max_age_days, 14);
        let e = Config::parse("[security]\n\ncve_max_age = 3\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("security"), "{e}");
        let e = Config::parse("[security]\ncve_max_age_days = 0\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("security.cve_max_age_days"),
            "{e}"
        );
    }

    #[test]
    fn kubernetes_section_is_checked_with_key_and_line() {
        use crate::connectors::kubernetes::ContextSelection;
        assert_eq!(
            Config::parse("", "c.toml").unwrap().kubernetes.contexts,
            ContextSelection::Current
        );
        let c = Config::parse("[kubernetes]\ncontexts = \"all\"\n", "c.toml").unwrap();
        assert_eq!(c.kubernetes.contexts, ContextSelection::All);
        let c =
            Config::parse("[kubernetes]\ncontexts = [\"prod\", \"stage\"]\n", "c.toml").unwrap();
        assert_eq!(
            c.kubernetes.contexts,
            ContextSelection::Named(vec!["prod".into(), "stage".into()])
        );
        // --context overrides the file.
        assert_eq!(
            c.kubernetes.selection(&["all".into()]),
            ContextSelection::All
        );
        assert_eq!(
            c.kubernetes.selection(&[]),
            ContextSelection::Named(vec!["prod".into(), "stage".into()])
        );
        for (text, line, key) in [
            ("[kubernetes]\n\ncontext = \"prod\"\n", "line 3", "context"),
            (
                "[kubernetes]\ncontexts = \"prod\"\n",
                "line 2",
                "kubernetes.contexts",
            ),
            (
                "[kubernetes]\ncontexts = []\n",
                "line 2",
                "kubernetes.contexts",
            ),
            (
                "[kubernetes]\nkubeconfig = \"/nonexistent/kubeconfig\"\n",
                "line 2",
                "kubernetes.kubeconfig",
            ),
        ] {
            let e = Config::parse(text, "c.toml").unwrap_err().to_string();
            assert!(e.contains(line) && e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let c = Config::parse(
            "[notify.channels.ops]\ntype = \"slack\"\nwebhook_url = \"https://hooks.example/abc\"\n",
            "c.toml",
        )
        .unwrap();
        let shown = toml::to_string(&c.masked()).unwrap();
        assert!(!shown.contains("hooks.example"), "{shown}");
        assert!(shown.contains("********"));
        assert!(!format!("{:?}", c).contains("hooks.example"));
    }
}
