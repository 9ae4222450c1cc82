//! The rules that stand between a proposal and its execution: who may approve
//! or deny, and when a remediation is cleared to run. Pure functions over the
//! projected state, so the supervisor and the property tests use the same code.

use crate::state::{Remediation, Stage, State, same_person};

/// Whether `by` may approve remediation `id` now.
pub fn check_approval(state: &State, id: u64, by: &str, read_only: bool) -> Result<(), String> {
    if read_only {
        return Err("read-only mode: approvals are disabled".into());
    }
    let rem = awaiting(state, id)?;
    if same_person(&rem.requested_by, by) {
        return Err("the requester cannot approve their own remediation".into());
    }
    if rem.approvals.iter().any(|a| same_person(&a.by, by)) {
        return Err(format!("{by} has already approved #{id}"));
    }
    Ok(())
}

/// Whether remediation `id` may be denied now with `reason`.
pub fn check_denial(state: &State, id: u64, reason: &str, read_only: bool) -> Result<(), String> {
    if read_only {
        return Err("read-only mode: denials are disabled".into());
    }
    if reason.trim().is_empty() {
        return Err("a reason is required to deny".into());
    }
    awaiting(state, id).map(|_| ())
}

/// Whether remediation `id`, denied by a change freeze, may be re-proposed
/// with a freeze override (the policy then requires its extra approval).
pub fn check_freeze_override<'s>(
    state: &'s State,
    id: u64,
    reason: &str,
    read_only: bool,
) -> Result<&'s Remediation, String> {
    if read_only {
        return Err("read-only mode: overrides are disabled".into());
    }
    if reason.trim().is_empty() {
        return Err("a reason is required to override a change freeze".into());
    }
    let rem = state
        .remediations
        .get(&id)
        .ok_or_else(|| format!("no remediation #{id}"))?;
    let frozen = rem
        .decision
        .as_ref()
        .is_some_and(|d| d.deny.iter().any(|r| r.starts_with("freeze")));
    if rem.stage != Stage::Finished(crate::event::RemediationOutcome::Denied) || !frozen {
        return Err(format!(
            "remediation #{id} was not denied by a change freeze"
        ));
    }
    if rem
        .action
        .params
        .get(crate::policy::FREEZE_OVERRIDE_PARAM)
        .map(String::as_str)
        == Some("true")
    {
        return Err(format!("remediation #{id} already overrode the freeze"));
    }
    let incident_busy = rem.incident.is_some_and(|inc| {
        state.remediations.values().any(|r| {
            r.id != id && r.incident == Some(inc) && !matches!(r.stage, Stage::Finished(_))
        })
    });
    if incident_busy {
        return Err("another remediation for this incident is still in flight".into());
    }
    Ok(rem)
}

/// A remediation runs only with a recorded allow, every required approval
/// from distinct people other than the requester, no denial, and not in read-only mode.
pub fn cleared_for_execution(rem: &Remediation, read_only: bool) -> bool {
    !read_only
        && rem.stage == Stage::Approved
        && rem.allowed()
        && rem.approvals_missing() == 0
        && rem.denial.is_none()
}

fn awaiting(state: &State, id: u64) -> Result<&Remediation, String> {
    let rem = state
        .remediations
        .get(&id)
        .ok_or_else(|| format!("no remediation #{id}"))?;
    if rem.stage != Stage::AwaitingApproval {
        return Err(format!(
            "remediation #{id} is {}, not awaiting approval{}",
            rem.stage.label(),
            decided_by(rem)
        ));
    }
    Ok(rem)
}

/// Who settled a remediation's approval, for the console that came second
/// (two consoles acting at once: one wins, the other is told by whom).
fn decided_by(rem: &Remediation) -> String {
    if let Some(d) = &rem.denial {
        return format!(" (denied by {} at {})", d.by, crate::event::rfc3339(&d.at));
    }
    let names: Vec<&str> = rem.approvals.iter().map(|a| a.by.as_str()).collect();
    match rem.approvals.last() {
        Some(last) => format!(
            " (approved by {} at {})",
            names.join(", "),
            crate::event::rfc3339(&last.at)
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Duration, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::event::*;

    #[derive(Debug, Clone)]
    enum Attempt {
        Approve(String),
        Deny(String, String),
    }

    fn attempt() -> impl Strategy<Value = Attempt> {
        // "req" is the requester; names repeat so duplicates are common.
        let name = prop_oneof![
            Just("req".to_string()),
            Just("ana".to_string()),
            Just("bo".to_string()),
            Just("cy".to_string()),
            Just("di".to_string()),
        ];
        prop_oneof![
            8 => name.clone().prop_map(Attempt::Approve),
            1 => (name, prop_oneof![Just(String::new()), Just("no".to_string())])
                .prop_map(|(n, r)| Attempt::Deny(n, r)),
        ]
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-02-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    proptest! {
        /// Whatever the decision and however approvals arrive, a remediation is
        /// cleared only with an allow and enough distinct non-requester
        /// approvers, and never after a denial or a deny decision.
        #[test]
        fn never_cleared_without_allow_and_distinct_approvals(
            env in prop_oneof![Just(Environment::Development), Just(Environment::Staging), Just(Environment::Production)],
            allow in any::<bool>(),
            deny_reasons in prop::collection::vec("[a-z]{3}", 0..2),
            required in 0u32..4,
            read_only in any::<bool>(),
            attempts in prop::collection::vec(attempt(), 0..12),
        ) {
            let mut events = vec![
                EventKind::RemediationProposed {
                    playbook: None,
                    incident: None,
                    investigation: None,
                    action: Action::new("restart_pod", ResourceId::new("r")),
                    environment: env,
                    team: "t".into(),
                    reason: "r".into(),
                    requested_by: "req".into(),
                },
                EventKind::PolicyDecided {
                    remediation: 1,
                    decision: PolicyDecision {
                        // The gate enforces "deny wins"; the fold must hold even if it did not.
                        allow,
                        deny: deny_reasons.clone(),
                        required_approvals: required,
                        risk: Risk::High,
                        controls: vec![],
                        bundle_hash: String::new(),
                        input_digest: String::new(),
                    },
                },
            ];
            if allow && required > 0 {
                events.push(EventKind::ApprovalRequested { remediation: 1, required, expires_at: t0() });
            }
            let mut state = State::new();
            let mut seq = 0;
            let mut prev = ChainHash::GENESIS;
            let mut fold = |state: &mut State, kind: EventKind| {
                seq += 1;
                let (e, _) = Event::seal(seq, prev, NewEvent::new(t0() + Duration::seconds(seq as i64), "t", kind));
                prev = e.hash;
                state.apply(&e);
            };
            for k in events { fold(&mut state, k); }
            let mut approvers: BTreeSet<String> = BTreeSet::new();
            let mut denied = false;
            for a in attempts {
                match a {
                    Attempt::Approve(by) => {
                        if check_approval(&state, 1, &by, read_only).is_ok() {
                            prop_assert!(by != "req" && !approvers.contains(&by));
                            approvers.insert(by.clone());
                            fold(&mut state, EventKind::ApprovalGranted { remediation: 1, by, comment: String::new(), source: None });
                        }
                    }
                    Attempt::Deny(by, reason) => {
                        if check_denial(&state, 1, &reason, read_only).is_ok() {
                            prop_assert!(!reason.trim().is_empty());
                            denied = true;
                            fold(&mut state, EventKind::ApprovalDenied { remediation: 1, by, reason, source: None });
                        }
                    }
                }
                let rem = &state.remediations[&1];
                if cleared_for_execution(rem, read_only) {
                    prop_assert!(!read_only);
                    prop_assert!(allow);
                    prop_assert!(deny_reasons.is_empty(), "deny wins");
                    prop_assert!(!denied);
                    prop_assert!(approvers.len() as u32 >= required);
                }
            }
            if read_only {
                prop_assert!(approvers.is_empty());
            }
        }
    }
}
