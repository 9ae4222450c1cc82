//! The rules that stand between a proposal and its execution: who may approve
//! or deny, and when a remediation is cleared to run. Pure functions over the
//! projected state, so the supervisor and the property tests use the same code.

use chrono::{DateTime, Utc};

use super::command::Identity;
use super::policy::PolicyGate;
use crate::event::{Authentication, PolicyDecision};
use crate::state::{Remediation, Stage, State, same_person};

/// Whether `by` may approve remediation `id` now. Only an authenticated
/// principal (an OS account or a token's principal) counts, unless
/// `declared_ok` (the target is on the demo's simulated fleet); one principal
/// counts once however many consoles it uses; whoever asked for the
/// remediation, or posted an alert it answers, never counts.
pub fn check_approval(
    state: &State,
    id: u64,
    by: &Identity,
    declared_ok: bool,
    read_only: bool,
) -> Result<(), String> {
    if read_only {
        return Err("read-only mode: approvals are disabled".into());
    }
    let rem = awaiting(state, id)?;
    let name = by.name.as_str();
    if name.trim().is_empty() {
        return Err("an approval needs a principal".into());
    }
    if by.auth == Authentication::Declared && !declared_ok {
        return Err(format!(
            "\"{name}\" is a declared name, not an authenticated principal: on real \
             connectors an approval counts only from an OS account or a token's principal"
        ));
    }
    if same_person(&rem.requested_by, name) {
        return Err("the requester cannot approve their own remediation".into());
    }
    if rem.alert_posters.iter().any(|p| same_person(p, name)) {
        return Err(format!(
            "{name} posted an alert this remediation answers, so counts as its requester"
        ));
    }
    if rem.approvals.iter().any(|a| same_person(&a.by, name)) {
        return Err(format!("{name} has already approved #{id}"));
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

/// What the policy says, asked again, about a remediation cleared to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Recheck {
    /// Still allowed with no more approvals than it has: start it.
    Start,
    /// Denied now (a freeze began, a rate limit filled while approvals came
    /// in) or it now needs more approvals: the new decision and why.
    Stop {
        decision: PolicyDecision,
        why: String,
    },
}

/// Asks `gate` again, at `now`, about remediation `id` just before it would
/// start: an allow and approvals from as many distinct principals (not its
/// requesters) as the decision now requires let it start.
pub fn recheck(
    state: &State,
    id: u64,
    gate: &dyn PolicyGate,
    requester_team: &str,
    now: DateTime<Utc>,
) -> Recheck {
    let counted = state
        .remediations
        .get(&id)
        .map_or(0, |r| r.counted_approvers().len() as u32);
    let decision = gate.decide(state, id, requester_team, now);
    let allowed = decision.allow && decision.deny.is_empty();
    if allowed && decision.required_approvals <= counted {
        return Recheck::Start;
    }
    let why = if allowed {
        format!(
            "the policy now requires {} approval(s); {counted} given",
            decision.required_approvals
        )
    } else {
        format!("the policy now denies it: {}", decision.deny.join("; "))
    };
    Recheck::Stop { decision, why }
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
mod tests;
