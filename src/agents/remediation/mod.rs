//! Remediation execution: snapshot → execute → validate → (restore) → finish,
//! each step recorded durably before the next begins. The supervisor decides
//! *whether* to run (a recorded allow, re-checked just before hand-off, and
//! the approvals); this module only runs what it is handed.

use super::AgentContext;
use crate::event::{Action, ActionOutcome, ConnectorId, EventKind, RemediationOutcome, Snapshot};
use crate::playbook::{FailurePlan, PromqlCheck, ValidationSpec, Verdict};

const ACTOR: &str = "agent:remediation";

/// Where a (possibly resumed) execution starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Nothing has happened yet: take the snapshot first.
    Start,
    /// A snapshot was taken but whether the action ran is unknown (crash):
    /// never execute again — validate, and restore if validation fails.
    AfterSnapshot,
    /// The action ran: validate.
    Validate,
    /// Validation failed or the action failed: restore.
    Restore,
}

/// One remediation handed to the executor.
#[derive(Debug, Clone)]
pub struct ExecutionJob {
    pub remediation: u64,
    pub action: Action,
    /// The connector that owns the target (never a default one).
    pub connector: ConnectorId,
    pub resume: Resume,
    /// The recorded snapshot when resuming after it was taken.
    pub snapshot: Option<Snapshot>,
    /// What counts as fixed, and how long to poll for it.
    pub validation: ValidationSpec,
    /// The playbook's plan when validation fails (restore, then escalate).
    pub on_failure: Option<FailurePlan>,
}

/// Runs the job to a `remediation_finished` event.
pub async fn execute(ctx: AgentContext, job: ExecutionJob) {
    let id = job.remediation;
    let result = run(&ctx, job).await;
    if let Err(e) = result {
        ctx.report_error("remediation", format!("remediation #{id}: {e}"))
            .await;
        let _ = ctx
            .record(
                ACTOR,
                EventKind::RemediationFinished {
                    remediation: id,
                    status: RemediationOutcome::Failed,
                    detail: format!("stopped: {e}; a human must check the target"),
                },
            )
            .await;
    }
}

async fn run(ctx: &AgentContext, job: ExecutionJob) -> anyhow::Result<()> {
    let id = job.remediation;
    let connector = ctx
        .registry
        .get(&job.connector)
        .ok_or_else(|| anyhow::anyhow!("connector {} is not configured", job.connector))?;
    let mut snapshot = job.snapshot.clone();
    let mut resume = job.resume;

    if resume == Resume::Start {
        let taken = connector.snapshot(&job.action.target).await?;
        ctx.record(
            ACTOR,
            EventKind::SnapshotTaken {
                remediation: id,
                snapshot: taken.clone(),
            },
        )
        .await?;
        snapshot = Some(taken);
        hold_for_tests("snapshot_taken").await;
        let outcome = match connector.execute(&job.action).await {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome {
                success: false,
                message: e.to_string(),
                steps: vec![],
            },
        };
        let ok = outcome.success;
        ctx.record(
            ACTOR,
            EventKind::ActionExecuted {
                remediation: id,
                outcome,
            },
        )
        .await?;
        resume = if ok {
            Resume::Validate
        } else {
            Resume::Restore
        };
    }

    if matches!(resume, Resume::Validate | Resume::AfterSnapshot) {
        let (passed, detail) = validate(ctx, &*connector, &job, snapshot.as_ref()).await;
        ctx.record(
            ACTOR,
            EventKind::ValidationFinished {
                remediation: id,
                passed,
                detail: detail.clone(),
            },
        )
        .await?;
        if passed {
            ctx.record(
                ACTOR,
                EventKind::RemediationFinished {
                    remediation: id,
                    status: RemediationOutcome::Succeeded,
                    detail,
                },
            )
            .await?;
            return Ok(());
        }
        resume = Resume::Restore;
    }

    debug_assert_eq!(resume, Resume::Restore);
    let plan = job.on_failure.clone();
    if plan.as_ref().is_some_and(|p| !p.restore) {
        escalate(ctx, id, plan.as_ref()).await?;
        ctx.record(
            ACTOR,
            EventKind::RemediationFinished {
                remediation: id,
                status: RemediationOutcome::Failed,
                detail: "validation failed; the playbook says not to restore: escalated".into(),
            },
        )
        .await?;
        return Ok(());
    }
    let Some(snapshot) = snapshot else {
        anyhow::bail!("no snapshot recorded; cannot restore");
    };
    let restored = match connector.restore(&snapshot).await {
        Ok(outcome) => outcome,
        Err(e) => ActionOutcome {
            success: false,
            message: e.to_string(),
            steps: vec![],
        },
    };
    let ok = restored.success;
    ctx.record(
        ACTOR,
        EventKind::RemediationRestored {
            remediation: id,
            outcome: restored,
        },
    )
    .await?;
    escalate(ctx, id, plan.as_ref()).await?;
    ctx.record(
        ACTOR,
        EventKind::RemediationFinished {
            remediation: id,
            status: after_restore(ok),
            detail: if ok {
                "validation failed; the snapshot was restored".into()
            } else {
                "validation failed and the restore failed: a human must act".into()
            },
        },
    )
    .await?;
    Ok(())
}

/// Test-only crash point: with `SHIELDOPS_TEST_HOLD_AFTER` naming `step`,
/// this remediation stops for good right after `step` is durable, so a
/// real-process test can kill the process at exactly that point (a kill
/// timed on the log alone would race the next step, which follows within
/// microseconds). Compiled only with debug assertions: a release build has
/// no such variable, so production cannot hold by accident.
#[cfg(debug_assertions)]
async fn hold_for_tests(step: &str) {
    if std::env::var("SHIELDOPS_TEST_HOLD_AFTER").is_ok_and(|v| v == step) {
        tracing::warn!("SHIELDOPS_TEST_HOLD_AFTER={step}: this remediation holds here");
        std::future::pending::<()>().await;
    }
}

#[cfg(not(debug_assertions))]
async fn hold_for_tests(_step: &str) {}

/// How a remediation ends once its restore ran: rolled back if the restore
/// worked, failed (a human must act) if it did not.
pub fn after_restore(restored: bool) -> RemediationOutcome {
    if restored {
        RemediationOutcome::RolledBack
    } else {
        RemediationOutcome::Failed
    }
}

/// Tells the failure plan's contacts, in order, that a human is needed.
async fn escalate(ctx: &AgentContext, id: u64, plan: Option<&FailurePlan>) -> anyhow::Result<()> {
    let Some(plan) = plan else { return Ok(()) };
    for contact in &plan.escalate {
        ctx.record(
            "notify",
            EventKind::NotificationSent {
                channel: "escalation".into(),
                to: contact.clone(),
                subject: format!("remediation #{id}: {}", plan.message),
                event_seq: None,
                attempt: 0,
            },
        )
        .await?;
    }
    Ok(())
}

/// Polls the target's real health until the spec is met or its timeout passes.
async fn validate(
    ctx: &AgentContext,
    connector: &dyn crate::connectors::InfraConnector,
    job: &ExecutionJob,
    before: Option<&Snapshot>,
) -> (bool, String) {
    let mut run = job.validation.start(ctx.clock.now());
    let prometheus = ctx.registry.prometheus();
    // The target as listed fills the condition's placeholders; read once.
    let target = match &job.validation.promql {
        Some(_) => connector
            .list_resources(&crate::connectors::Scope::default())
            .await
            .ok()
            .and_then(|rs| rs.into_iter().find(|r| r.id == job.action.target)),
        None => None,
    };
    loop {
        let health = match connector
            .validation_health(&job.action.target, before)
            .await
        {
            Ok(h) => h,
            Err(e) => crate::event::Health::new(
                crate::event::HealthStatus::Unknown,
                "HealthCheckFailed",
                e.to_string(),
            ),
        };
        let condition = match (&job.validation.promql, &prometheus) {
            (None, _) => PromqlCheck::NotAsked,
            (Some(_), None) => PromqlCheck::Unknown("no [prometheus] is configured".into()),
            (Some(q), Some(p)) => match p.holds(q, target.as_ref(), ctx.clock.now()).await {
                Ok(true) => PromqlCheck::Holds,
                Ok(false) => PromqlCheck::Empty,
                Err(why) => PromqlCheck::Unknown(why),
            },
        };
        match run.observe_with(&health, &condition, ctx.clock.now()) {
            Verdict::Passed(detail) => return (true, format!("{}: {detail}", job.action.target)),
            Verdict::Failed(detail) => return (false, format!("{}: {detail}", job.action.target)),
            Verdict::Pending => ctx.clock.sleep(run.interval()).await,
        }
    }
}
