//! The input document the policy sees, and how it is built from projected state.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::event::StringMap;
use crate::event::{Action, Environment, Resource};
use crate::state::State;

/// The action being decided: its name, parameters, and where each came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInput {
    pub name: String,
    /// Parameter name → `playbook`, `facts`, `live`, `alert` or `operator`;
    /// a parameter the runtime has no source for is absent here.
    #[serde(default)]
    pub param_sources: BTreeMap<String, String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

impl ActionInput {
    /// The input form of `action`.
    fn of(action: &Action) -> Self {
        Self {
            name: action.name.clone(),
            param_sources: action
                .param_sources
                .iter()
                .filter(|(k, _)| action.params.contains_key(*k))
                .map(|(k, s)| (k.clone(), s.as_str().to_string()))
                .collect(),
            params: action.params.clone(),
        }
    }
}

/// The resource the action targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInput {
    pub environment: Environment,
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub labels: StringMap,
    pub team: String,
}

/// Who asks for the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequesterInput {
    pub name: String,
    pub team: String,
}

/// When the decision is made, from the caller's clock (never the engine's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeInput {
    /// Hour of the day in UTC, 0–23.
    pub hour: u32,
    pub rfc3339: String,
    /// English weekday name in UTC, e.g. `Saturday`.
    pub weekday: String,
}

impl TimeInput {
    /// The time fields for `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            rfc3339: crate::event::rfc3339(&now),
            // English names whatever the locale, as the policy expects.
            weekday: weekday_name(now.weekday()).to_string(),
            hour: now.hour(),
        }
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// Remediations approved or under way in a window, counted from the event log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateInput {
    /// In the target's environment, in the last hour.
    pub environment_last_hour: u32,
    /// In the target's environment, in the last minute.
    pub environment_last_minute: u32,
    /// By the requesting team, in the last hour.
    pub team_last_hour: u32,
}

/// Everything the policy bundle decides on (`input` in Rego).
///
/// Fields here and in every nested struct are declared in alphabetical order,
/// so serde's encoding is already canonical JSON (sorted keys) and the gate
/// digests it without re-encoding; a unit test holds this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub action: ActionInput,
    /// How many resources the action touches (blast radius), from live state.
    pub affected_resources: u32,
    /// The requester asks to act inside a change freeze (costs an extra approval).
    #[serde(default)]
    pub freeze_override: bool,
    pub rate: RateInput,
    pub requester: RequesterInput,
    pub target: TargetInput,
    pub time: TimeInput,
}

/// Action parameter that, set to `true`, requests a change-freeze override.
pub const FREEZE_OVERRIDE_PARAM: &str = "freeze_override";

impl PolicyInput {
    /// The input for `action` on `target`, asked by `requester` of `team` at
    /// `now`, with no fleet to read: rate counts start at zero and the blast
    /// radius is what the action and its target alone say ([`affected_resources`]).
    pub fn new(
        action: &Action,
        target: &Resource,
        requester: &str,
        team: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            action: ActionInput::of(action),
            target: TargetInput {
                id: target.id.to_string(),
                kind: target.kind.clone(),
                environment: target.environment,
                team: target.team.clone(),
                labels: target.labels.clone(),
            },
            requester: RequesterInput {
                name: requester.to_string(),
                team: team.to_string(),
            },
            affected_resources: affected_resources(action, Some(target), &[]),
            time: TimeInput::at(now),
            rate: RateInput::default(),
            freeze_override: freeze_override(action),
        }
    }

    /// Builds the input for a proposed remediation from the projected state.
    ///
    /// Rate counts are the other remediations approved or under way in the
    /// last minute and hour (see [`rate_counts`]), in the target's environment
    /// and by the requesting team; the blast radius is read from the fleet
    /// ([`affected_resources`]). When the target is no
    /// longer in the fleet, the target is described from the proposal alone
    /// (no kind, no labels), which the policy treats as it sees fit. When the
    /// proposal and the fleet disagree on the environment, the more critical
    /// one is used. `None` when the remediation is unknown.
    pub fn for_remediation(
        state: &State,
        remediation_id: u64,
        requester_team: &str,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let rem = state.remediations.get(&remediation_id)?;
        let resource = state
            .fleet
            .resources
            .get(&rem.action.target)
            .map(|v| &v.resource);
        let target = match resource {
            Some(r) => TargetInput {
                id: r.id.to_string(),
                kind: r.kind.clone(),
                environment: r.environment.max(rem.environment),
                team: r.team.clone(),
                labels: r.labels.clone(),
            },
            None => TargetInput {
                id: rem.action.target.to_string(),
                kind: String::new(),
                environment: rem.environment,
                team: rem.team.clone(),
                labels: StringMap::new(),
            },
        };
        let rate = rate_counts(
            state,
            remediation_id,
            target.environment,
            requester_team,
            now,
        );
        let on_connector: Vec<&Resource> = match resource {
            Some(r) => state
                .fleet
                .resources
                .values()
                .map(|v| &v.resource)
                .filter(|o| o.connector == r.connector)
                .collect(),
            None => Vec::new(),
        };
        Some(Self {
            action: ActionInput::of(&rem.action),
            target,
            requester: RequesterInput {
                name: rem.requested_by.clone(),
                team: requester_team.to_string(),
            },
            affected_resources: affected_resources(&rem.action, resource, &on_connector),
            time: TimeInput::at(now),
            rate,
            freeze_override: freeze_override(&rem.action),
        })
    }
}

impl PolicyInput {
    /// The input as a regorus value, built directly rather than by parsing
    /// its JSON (the same document; a unit test holds this).
    pub fn to_rego_value(&self) -> regorus::Value {
        use regorus::Value as V;
        // Object keys are the same every time: allocate them once and share
        // them (regorus values are reference-counted), which saves a third of
        // the build.
        static KEYS: std::sync::OnceLock<[V; 21]> = std::sync::OnceLock::new();
        let k = KEYS.get_or_init(|| {
            [
                "action",
                "name",
                "params",
                "affected_resources",
                "freeze_override",
                "rate",
                "environment_last_hour",
                "environment_last_minute",
                "team_last_hour",
                "requester",
                "team",
                "target",
                "environment",
                "id",
                "kind",
                "labels",
                "time",
                "hour",
                "rfc3339",
                "weekday",
                "param_sources",
            ]
            .map(V::from)
        });
        fn object<const N: usize>(pairs: [(&V, V); N]) -> V {
            V::from(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.clone(), v))
                    .collect::<BTreeMap<V, V>>(),
            )
        }
        fn strings<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> V {
            V::from(
                map.into_iter()
                    .map(|(k, v)| (V::from(k.as_str()), V::from(v.as_str())))
                    .collect::<BTreeMap<V, V>>(),
            )
        }
        let action = object([
            (&k[1], V::from(self.action.name.as_str())),
            (&k[20], strings(&self.action.param_sources)),
            (&k[2], strings(&self.action.params)),
        ]);
        let rate = object([
            (&k[6], V::from(self.rate.environment_last_hour)),
            (&k[7], V::from(self.rate.environment_last_minute)),
            (&k[8], V::from(self.rate.team_last_hour)),
        ]);
        let requester = object([
            (&k[1], V::from(self.requester.name.as_str())),
            (&k[10], V::from(self.requester.team.as_str())),
        ]);
        let target = object([
            (&k[12], V::from(self.target.environment.as_str())),
            (&k[13], V::from(self.target.id.as_str())),
            (&k[14], V::from(self.target.kind.as_str())),
            (&k[15], strings(&self.target.labels)),
            (&k[10], V::from(self.target.team.as_str())),
        ]);
        let time = object([
            (&k[17], V::from(self.time.hour)),
            (&k[18], V::from(self.time.rfc3339.as_str())),
            (&k[19], V::from(self.time.weekday.as_str())),
        ]);
        object([
            (&k[0], action),
            (&k[3], V::from(self.affected_resources)),
            (&k[4], V::from(self.freeze_override)),
            (&k[5], rate),
            (&k[9], requester),
            (&k[11], target),
            (&k[16], time),
        ])
    }
}

/// How many resources `action` touches, read from live state (never from a
/// parameter a proposer could set): a drain, the node and every pod the fleet
/// places on it (`on_connector`: the resources of the target's connector); a
/// scale, the change in replicas (1 at least: the workload itself); a rollout
/// restart, every replica it replaces; any other action (a service, a host, a
/// pod, a secret), the one thing it targets. Where the live count is unknown
/// (no recorded replicas), the largest the action could touch is used.
pub fn affected_resources(
    action: &Action,
    target: Option<&Resource>,
    on_connector: &[&Resource],
) -> u32 {
    let attr = |key: &str| -> Option<u32> {
        target
            .and_then(|t| t.attributes.get(key))
            .and_then(|v| v.trim().parse().ok())
    };
    let param =
        |key: &str| -> Option<u32> { action.params.get(key).and_then(|v| v.trim().parse().ok()) };
    let n = match action.name.as_str() {
        "drain" | "drain_node" => {
            let node = target.map(|t| t.name.as_str()).unwrap_or_default();
            let pods = on_connector
                .iter()
                .filter(|r| r.kind == "pod" && !node.is_empty())
                .filter(|r| r.attributes.get("node").map(String::as_str) == Some(node))
                .count();
            1 + u32::try_from(pods).unwrap_or(u32::MAX)
        }
        "scale" | "set_desired_count" => {
            let key = if action.name == "scale" {
                "replicas"
            } else {
                "desired_count"
            };
            let current = attr(if action.name == "scale" {
                "replicas"
            } else {
                "desired_count"
            });
            match (param(key), current) {
                (Some(new), Some(now)) => new.abs_diff(now),
                // Unknown current size: the whole new size may be new.
                (Some(new), None) => new,
                (None, Some(now)) => now,
                (None, None) => 1,
            }
        }
        "rollout_restart" | "force_new_deployment" => attr("replicas")
            .or_else(|| attr("desired_count"))
            .unwrap_or(1),
        _ => 1,
    };
    n.max(1)
}

fn freeze_override(action: &Action) -> bool {
    action
        .params
        .get(FREEZE_OVERRIDE_PARAM)
        .is_some_and(|v| v == "true")
}

/// Counts the remediations other than `except` that were approved or are
/// under way in the windows ending at `now` (inclusive): one cleared to run
/// (approved, executing, validating, restoring) counts as of now, whenever it
/// was approved, so a burst approved together is seen before any of it runs;
/// a finished one counts by when it was approved or executed. Events stamped
/// after `now` are ignored, so the count is a function of the log and `now`.
pub fn rate_counts(
    state: &State,
    except: u64,
    environment: Environment,
    team: &str,
    now: DateTime<Utc>,
) -> RateInput {
    use crate::state::Stage;
    let minute_ago = now - Duration::minutes(1);
    let hour_ago = now - Duration::hours(1);
    let mut rate = RateInput::default();
    for rem in state.remediations.values() {
        if rem.id == except || rem.proposed_at > now {
            continue;
        }
        let in_flight = matches!(
            rem.stage,
            Stage::Approved | Stage::Executing | Stage::Validating | Stage::Restoring
        );
        let at = if in_flight {
            now
        } else {
            let stamps = [rem.approved_at, rem.executed_at];
            match stamps.into_iter().flatten().filter(|t| *t <= now).max() {
                Some(t) => t,
                None => continue,
            }
        };
        if at <= hour_ago {
            continue;
        }
        if rem.environment == environment {
            rate.environment_last_hour += 1;
            if at > minute_ago {
                rate.environment_last_minute += 1;
            }
        }
        if rem.team == team {
            rate.team_last_hour += 1;
        }
    }
    rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn serde_encoding_is_canonical() {
        let input = PolicyInput {
            action: ActionInput {
                name: "scale".into(),
                param_sources: BTreeMap::from([("z".into(), "alert".into())]),
                params: BTreeMap::from([("z".into(), "1".into()), ("a".into(), "\"q\"".into())]),
            },
            affected_resources: 2,
            freeze_override: true,
            rate: RateInput {
                environment_last_hour: 1,
                environment_last_minute: 2,
                team_last_hour: 3,
            },
            requester: RequesterInput {
                name: "n".into(),
                team: "t".into(),
            },
            target: TargetInput {
                environment: Environment::Staging,
                id: "i".into(),
                kind: "k".into(),
                labels: StringMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
                team: "t".into(),
            },
            time: TimeInput::at(Utc.with_ymd_and_hms(2025, 1, 18, 9, 30, 0).unwrap()),
        };
        let direct = serde_json::to_string(&input).unwrap();
        let canonical = crate::policy::canonical_json(&serde_json::to_value(&input).unwrap());
        assert_eq!(direct, canonical);
        assert_eq!(
            input.to_rego_value(),
            regorus::Value::from_json_str(&direct).unwrap()
        );
        assert_eq!(input.time.weekday, "Saturday");
        assert_eq!(input.time.hour, 9);
    }
}
