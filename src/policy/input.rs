//! The input document the policy sees, and how it is built from projected state.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::event::StringMap;
use crate::event::{Action, Environment, Resource};
use crate::state::State;

/// The action being decided: its name and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInput {
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
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

/// Actions already executed, counted from the event log.
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
    /// How many resources the action touches (blast radius).
    pub affected_resources: u32,
    /// The requester asks to act inside a change freeze (costs an extra approval).
    #[serde(default)]
    pub freeze_override: bool,
    pub rate: RateInput,
    pub requester: RequesterInput,
    pub target: TargetInput,
    pub time: TimeInput,
}

/// Action parameter naming how many resources an action touches (default 1).
pub const AFFECTED_RESOURCES_PARAM: &str = "affected_resources";
/// Action parameter that, set to `true`, requests a change-freeze override.
pub const FREEZE_OVERRIDE_PARAM: &str = "freeze_override";

impl PolicyInput {
    /// The input for `action` on `target`, asked by `requester` of `team` at `now`;
    /// rate counts start at zero and the blast radius comes from the action's
    /// `affected_resources` parameter (1 when absent).
    pub fn new(
        action: &Action,
        target: &Resource,
        requester: &str,
        team: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            action: ActionInput {
                name: action.name.clone(),
                params: action.params.clone(),
            },
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
            affected_resources: affected_resources(action),
            time: TimeInput::at(now),
            rate: RateInput::default(),
            freeze_override: freeze_override(action),
        }
    }

    /// Builds the input for a proposed remediation from the projected state.
    ///
    /// Rate counts are the remediations whose action was executed (per the
    /// log, folded into `executed_at`) within the last minute and hour, in the
    /// target's environment and by the requesting team. When the target is no
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
        let rate = rate_counts(state, target.environment, requester_team, now);
        Some(Self {
            action: ActionInput {
                name: rem.action.name.clone(),
                params: rem.action.params.clone(),
            },
            target,
            requester: RequesterInput {
                name: rem.requested_by.clone(),
                team: requester_team.to_string(),
            },
            affected_resources: affected_resources(&rem.action),
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
        static KEYS: std::sync::OnceLock<[V; 20]> = std::sync::OnceLock::new();
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

fn affected_resources(action: &Action) -> u32 {
    action
        .params
        .get(AFFECTED_RESOURCES_PARAM)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

fn freeze_override(action: &Action) -> bool {
    action
        .params
        .get(FREEZE_OVERRIDE_PARAM)
        .is_some_and(|v| v == "true")
}

/// Counts executed actions in the windows ending at `now` (inclusive); events
/// stamped after `now` are ignored, so the count is a function of the log and `now`.
pub fn rate_counts(
    state: &State,
    environment: Environment,
    team: &str,
    now: DateTime<Utc>,
) -> RateInput {
    let minute_ago = now - Duration::minutes(1);
    let hour_ago = now - Duration::hours(1);
    let mut rate = RateInput::default();
    for rem in state.remediations.values() {
        let Some(at) = rem.executed_at else { continue };
        if at > now || at <= hour_ago {
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
