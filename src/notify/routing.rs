//! Routing rules: which channels a message goes to.

use std::collections::BTreeSet;

use super::config::RuleConfig;
use super::message::Message;

/// One rule from `[[notify.rules]]`, with channel names resolved to indices.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub config: RuleConfig,
    pub channels: Vec<usize>,
}

impl Rule {
    /// Whether every condition the rule sets holds for `m` (an unset one holds).
    pub fn matches(&self, m: &Message) -> bool {
        let c = &self.config;
        (c.kinds.is_empty() || c.kinds.contains(&m.kind))
            && c.min_severity.is_none_or(|s| m.severity >= s)
            && (c.environments.is_empty()
                || m.environment.is_some_and(|e| c.environments.contains(&e)))
            && (c.teams.is_empty() || m.team.as_ref().is_some_and(|t| c.teams.contains(t)))
    }
}

/// Channel indices of every rule that matches, each once.
pub(crate) fn route(rules: &[Rule], m: &Message) -> BTreeSet<usize> {
    rules
        .iter()
        .filter(|r| r.matches(m))
        .flat_map(|r| r.channels.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Environment, Severity};
    use crate::notify::message::Lifecycle;

    fn msg(kind: &str, sev: Severity, env: Option<Environment>, team: Option<&str>) -> Message {
        Message {
            event_seq: 7,
            kind: kind.into(),
            at: chrono::Utc::now(),
            title: "t".into(),
            body: "b".into(),
            severity: sev,
            environment: env,
            team: team.map(Into::into),
            resource: None,
            incident: None,
            lifecycle: Lifecycle::Trigger,
            dedup_key: "k".into(),
            escalated_to: None,
        }
    }

    fn rule(config: RuleConfig, channels: Vec<usize>) -> Rule {
        Rule { config, channels }
    }

    #[test]
    fn rules_match_on_kind_severity_environment_and_team() {
        let rules = vec![
            rule(
                RuleConfig {
                    kinds: vec!["incident_opened".into()],
                    min_severity: Some(Severity::High),
                    environments: vec![Environment::Production],
                    teams: vec!["payments".into()],
                    channels: vec![],
                },
                vec![0],
            ),
            rule(
                RuleConfig {
                    kinds: vec!["agent_error".into()],
                    ..Default::default()
                },
                vec![1, 0],
            ),
        ];
        let prod = Some(Environment::Production);
        let hit = msg(
            "incident_opened",
            Severity::Critical,
            prod,
            Some("payments"),
        );
        assert_eq!(route(&rules, &hit), BTreeSet::from([0]));
        for miss in [
            msg("incident_opened", Severity::Medium, prod, Some("payments")),
            msg(
                "incident_opened",
                Severity::High,
                Some(Environment::Staging),
                Some("payments"),
            ),
            msg("incident_opened", Severity::High, prod, Some("search")),
            msg("incident_opened", Severity::High, None, None),
            msg("incident_resolved", Severity::High, prod, Some("payments")),
        ] {
            assert!(route(&rules, &miss).is_empty(), "{miss:?}");
        }
        let both = msg("agent_error", Severity::High, None, None);
        assert_eq!(route(&rules, &both), BTreeSet::from([0, 1]));
    }
}
