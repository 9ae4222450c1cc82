//! Where a proposal's parameters come from. The runtime, not the proposer,
//! records each parameter's source, and fills the parameters it can read from
//! live state itself (an EC2 resize's current type), so a value an alert
//! chose is always marked as the alert's and the policy can bound it.

use crate::event::{Action, ParamSource};
use crate::state::State;

/// Parameter of `resize_instance`: the type the instance has now.
pub const FROM_INSTANCE_TYPE_PARAM: &str = "from_instance_type";

/// Who drew up a proposal's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposer {
    /// A playbook branch: its engine marked each rendered parameter.
    Playbook,
    /// An analyzer's or the cost agent's recommendation, computed from facts.
    Computed,
}

/// `action` as it is proposed: every parameter has a source; parameters the
/// proposer did not mark get the proposer's (for a playbook, which marks
/// every parameter it renders, an unmarked one is taken to be the alert's:
/// the weakest source, so the policy's bounds apply); a change-freeze
/// override is dropped (only an operator asks for one, through its own
/// command); a resize's `from_instance_type` is read from the fleet's
/// record of the target, overwriting whatever was proposed, and is absent
/// when the fleet does not record it (unknown, not guessed).
pub fn prepare(mut action: Action, proposer: Proposer, state: &State) -> Action {
    action.params.remove(crate::policy::FREEZE_OVERRIDE_PARAM);
    action.params.remove(FROM_INSTANCE_TYPE_PARAM);
    let fallback = match proposer {
        Proposer::Playbook => ParamSource::Alert,
        Proposer::Computed => ParamSource::Facts,
    };
    let mut sources = std::mem::take(&mut action.param_sources);
    sources.retain(|k, _| action.params.contains_key(k));
    for key in action.params.keys() {
        sources.entry(key.clone()).or_insert(fallback);
    }
    // A proposer never claims a value is live or the operator's: only the
    // runtime reads live state, and only an operator's command speaks for one.
    for source in sources.values_mut() {
        if matches!(source, ParamSource::Live | ParamSource::Operator) {
            *source = fallback;
        }
    }
    action.param_sources = sources;
    if action.name == "resize_instance"
        && let Some(current) = state
            .fleet
            .get(&action.target)
            .and_then(|v| v.resource.attributes.get("instance_type"))
            .filter(|t| !t.trim().is_empty())
    {
        action
            .params
            .insert(FROM_INSTANCE_TYPE_PARAM.into(), current.clone());
        action
            .param_sources
            .insert(FROM_INSTANCE_TYPE_PARAM.into(), ParamSource::Live);
    }
    action
}

/// `action` with a parameter an operator chose, marked as the operator's.
pub fn with_operator_param(mut action: Action, key: &str, value: &str) -> Action {
    action.params.insert(key.to_string(), value.to_string());
    action
        .param_sources
        .insert(key.to_string(), ParamSource::Operator);
    action
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Environment, Event, EventKind, NewEvent, Provider, Resource, ResourceId, StringMap,
    };

    fn state_with(instance_type: Option<&str>) -> State {
        let mut attributes = StringMap::new();
        if let Some(t) = instance_type {
            attributes.insert("instance_type".into(), t.into());
        }
        let resource = Resource {
            id: ResourceId::new("aws/acct/us-east-1/ec2/i-1"),
            name: "i-1".into(),
            kind: "ec2_instance".into(),
            provider: Provider::Aws,
            connector: crate::event::ConnectorId::new("aws:default/us-east-1"),
            environment: Environment::Production,
            team: "payments".into(),
            labels: StringMap::new(),
            attributes,
            health: crate::event::Health::healthy(),
            created_at: chrono::Utc::now(),
        };
        let mut state = State::new();
        let (event, _) = Event::seal(
            1,
            crate::event::ChainHash::GENESIS,
            NewEvent::new(
                chrono::Utc::now(),
                "discovery",
                EventKind::ResourceDiscovered { resource },
            ),
        );
        state.apply(&event);
        state
    }

    #[test]
    fn a_resize_takes_its_current_type_from_live_state_not_the_proposer() {
        let mut proposed = Action::new(
            "resize_instance",
            ResourceId::new("aws/acct/us-east-1/ec2/i-1"),
        )
        .with("instance_type", "x2iedn.32xlarge")
        .with(FROM_INSTANCE_TYPE_PARAM, "x2iedn.24xlarge")
        .with(crate::policy::FREEZE_OVERRIDE_PARAM, "true");
        proposed
            .param_sources
            .insert("instance_type".into(), ParamSource::Alert);
        proposed
            .param_sources
            .insert(FROM_INSTANCE_TYPE_PARAM.into(), ParamSource::Live);
        let action = prepare(
            proposed.clone(),
            Proposer::Playbook,
            &state_with(Some("m5.large")),
        );
        assert_eq!(action.params[FROM_INSTANCE_TYPE_PARAM], "m5.large");
        assert_eq!(
            action.param_sources[FROM_INSTANCE_TYPE_PARAM],
            ParamSource::Live
        );
        assert_eq!(action.param_sources["instance_type"], ParamSource::Alert);
        assert!(
            !action
                .params
                .contains_key(crate::policy::FREEZE_OVERRIDE_PARAM)
        );

        // The fleet does not know the type: the proposer's value is not kept.
        let action = prepare(proposed, Proposer::Playbook, &state_with(None));
        assert!(!action.params.contains_key(FROM_INSTANCE_TYPE_PARAM));
        assert!(!action.param_sources.contains_key(FROM_INSTANCE_TYPE_PARAM));
    }

    #[test]
    fn unmarked_or_overclaimed_parameters_get_the_proposers_source() {
        let target = ResourceId::new("k8s/x/deployment/web");
        let mut action = Action::new("scale", target)
            .with("replicas", "40")
            .with("why", "x");
        action
            .param_sources
            .insert("why".into(), ParamSource::Operator);
        let played = prepare(action.clone(), Proposer::Playbook, &State::new());
        assert_eq!(played.param_sources["replicas"], ParamSource::Alert);
        assert_eq!(played.param_sources["why"], ParamSource::Alert);
        let computed = prepare(action, Proposer::Computed, &State::new());
        assert_eq!(computed.param_sources["replicas"], ParamSource::Facts);
        assert_eq!(computed.param_sources["why"], ParamSource::Facts);
    }
}
