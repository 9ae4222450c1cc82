//! The compliance entry point: `data.shieldops.compliance.results` evaluated
//! over the inventory document the security agent builds, by the same bundle
//! that decides proposals.
//!
//! It runs on the tree-walking interpreter (a scan is once a minute, not per
//! decision, so the RVM's speed is not needed) with its own time limit, since
//! the inventory of a large fleet takes longer than one decision.

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Duration;

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use crate::event::ControlResult;

/// The rule that yields every control's result.
pub const COMPLIANCE_RULE: &str = "data.shieldops.compliance.results";

/// Wall-clock limit for one compliance evaluation.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// A prepared interpreter holding the bundle, cloned per evaluation.
pub(super) struct ComplianceEngine {
    template: Mutex<regorus::Engine>,
}

impl ComplianceEngine {
    /// Prepares `engine` (the bundle's policies and data).
    pub(super) fn new(mut engine: regorus::Engine) -> Self {
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: TIME_LIMIT,
            check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
        });
        Self {
            template: Mutex::new(engine),
        }
    }

    /// Every control result for `inventory`, or why there are none. A bundle
    /// without compliance rules yields an empty list, not an error.
    pub(super) fn evaluate(
        &self,
        inventory: &serde_json::Value,
    ) -> Result<Vec<ControlResult>, String> {
        let mut engine = self
            .template
            .lock()
            .map_err(|_| "compliance engine template is poisoned".to_string())?
            .clone();
        let input = Value::from_json_str(&inventory.to_string())
            .map_err(|e| format!("inventory could not be read: {e}"))?;
        let outcome = catch_unwind(AssertUnwindSafe(move || {
            engine.set_input(input);
            engine.eval_rule(COMPLIANCE_RULE.to_string())
        }));
        let value = match outcome {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => return Err(format!("compliance evaluation failed: {e:#}")),
            Err(_) => return Err("policy engine panicked during compliance evaluation".into()),
        };
        if value == Value::Undefined {
            return Ok(Vec::new());
        }
        let json = value
            .to_json_str()
            .map_err(|e| format!("compliance results could not be encoded: {e}"))?;
        serde_json::from_str(&json)
            .map_err(|e| format!("{COMPLIANCE_RULE} is not a list of control results: {e}"))
    }
}
