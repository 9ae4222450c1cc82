//! The gate: a prepared bundle that decides proposals, fail closed.
//!
//! Strategy, chosen by measurement (`cargo bench --bench policy`): the bundle
//! is parsed and prepared once into a template engine; each decision borrows
//! a prepared engine from a small pool (cloning the template only when the
//! pool is empty, i.e. once per concurrent caller), sets the input and
//! evaluates the one entry point. Reusing a prepared engine costs the same as
//! a `CompiledPolicy` evaluation and about half of cloning an engine per
//! decision, and unlike `CompiledPolicy` it carries its own execution time
//! limit instead of relying on regorus's process-wide fallback.

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;
use sha2::{Digest, Sha256};

use super::{Bundle, PolicyError, PolicyInput};
use crate::event::{PolicyDecision, Risk};

/// The rule every bundle must define: the whole decision document.
pub const DECISION_RULE: &str = "data.shieldops.decision";

/// How the gate evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateOptions {
    /// Wall-clock limit for one evaluation; past it the decision is a deny.
    pub time_limit: Duration,
}

impl Default for GateOptions {
    fn default() -> Self {
        // Decisions take tens of microseconds; this only stops a runaway policy.
        Self {
            time_limit: Duration::from_millis(250),
        }
    }
}

/// A prepared policy bundle, shared by every task that needs decisions.
pub struct Gate {
    template: Mutex<regorus::Engine>,
    pool: Mutex<Vec<regorus::Engine>>,
    bundle_hash: String,
    options: GateOptions,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("bundle_hash", &self.bundle_hash)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// The embedded default bundle, overridden and extended by `user_dir` if given.
    pub fn load(user_dir: Option<&Path>) -> Result<Self, PolicyError> {
        Self::new(&Bundle::load(user_dir)?, GateOptions::default())
    }

    /// Parses and prepares `bundle`.
    pub fn new(bundle: &Bundle, options: GateOptions) -> Result<Self, PolicyError> {
        let mut engine = bundle.engine()?;
        if !declares_decision(&mut engine) {
            return Err(PolicyError::NoDecision);
        }
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: options.time_limit,
            // Work units between clock reads: frequent enough to stop a loop
            // within microseconds of the limit, rare enough to cost nothing.
            check_interval: NonZeroU32::new(32).unwrap_or(NonZeroU32::MIN),
        });
        // The first evaluation analyses and schedules the modules; clones of a
        // prepared engine skip that work. Its result does not matter here.
        engine.set_input(Value::new_object());
        let _ = engine.eval_rule(DECISION_RULE.to_string());
        Ok(Self {
            template: Mutex::new(engine),
            pool: Mutex::new(Vec::new()),
            bundle_hash: bundle.hash(),
            options,
        })
    }

    /// SHA-256 of the bundle's sources and data.
    pub fn bundle_hash(&self) -> &str {
        &self.bundle_hash
    }

    /// The options this gate evaluates with.
    pub fn options(&self) -> GateOptions {
        self.options
    }

    /// Decides one proposal. Never fails: anything that goes wrong is a deny saying what.
    pub fn decide(&self, input: &PolicyInput) -> PolicyDecision {
        match serde_json::to_value(input) {
            Ok(value) => self.decide_value(&value),
            Err(e) => self.closed(
                format!("policy input could not be encoded: {e}"),
                String::new(),
            ),
        }
    }

    /// Decides a raw input document (as `policy eval` reads it from a file).
    pub fn decide_value(&self, input: &serde_json::Value) -> PolicyDecision {
        // serde_json's map is ordered by key, so this encoding is canonical.
        let canonical = input.to_string();
        let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
        let value = match Value::from_json_str(&canonical) {
            Ok(v) => v,
            Err(e) => return self.closed(format!("policy input could not be read: {e}"), digest),
        };
        let started = Instant::now();
        let result = self.evaluate(value);
        let elapsed = started.elapsed();
        let mut decision = match result {
            Err(reason) => return self.closed(reason, digest),
            // The engine checks its clock cooperatively; a builtin that ran
            // long between checks is caught here.
            Ok(_) if elapsed > self.options.time_limit => {
                return self.closed(
                    format!(
                        "policy evaluation exceeded its time limit ({} ms)",
                        self.options.time_limit.as_millis()
                    ),
                    digest,
                );
            }
            Ok(value) => match check_decision(&value) {
                Ok(decision) => decision,
                Err(reason) => return self.closed(reason, digest),
            },
        };
        decision.bundle_hash = self.bundle_hash.clone();
        decision.input_digest = digest;
        decision
    }

    /// Runs the entry point on a pooled engine. An engine that failed or
    /// panicked is dropped rather than returned to the pool.
    fn evaluate(&self, input: Value) -> Result<Value, String> {
        let mut engine = match self.pool.lock().ok().and_then(|mut p| p.pop()) {
            Some(engine) => engine,
            None => self
                .template
                .lock()
                .map_err(|_| "policy engine template is poisoned".to_string())?
                .clone(),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            engine.set_input(input);
            engine.eval_rule(DECISION_RULE.to_string())
        }));
        match outcome {
            Ok(Ok(value)) => {
                if let Ok(mut pool) = self.pool.lock() {
                    pool.push(engine);
                }
                Ok(value)
            }
            Ok(Err(e)) => Err(describe_error(&e, self.options.time_limit)),
            Err(_) => Err("policy engine panicked during evaluation".to_string()),
        }
    }

    /// A fail-closed deny.
    fn closed(&self, reason: String, input_digest: String) -> PolicyDecision {
        PolicyDecision {
            allow: false,
            deny: vec![format!("policy gate: {reason}")],
            required_approvals: 0,
            risk: Risk::Critical,
            controls: Vec::new(),
            bundle_hash: self.bundle_hash.clone(),
            input_digest,
        }
    }
}

fn describe_error(e: &anyhow::Error, limit: Duration) -> String {
    let text = format!("{e:#}");
    if e.downcast_ref::<regorus::LimitError>().is_some()
        || text.contains("time limit")
        || text.contains("execution exceeded")
    {
        format!(
            "policy evaluation exceeded its time limit ({} ms): {text}",
            limit.as_millis()
        )
    } else {
        format!("policy evaluation failed: {text}")
    }
}

/// Checks a decision document's shape and turns it into a [`PolicyDecision`].
/// Deny wins here too: any deny reason forces `allow` to false, and a denial
/// without a reason gets one.
pub fn check_decision(value: &Value) -> Result<PolicyDecision, String> {
    if *value == Value::Undefined {
        return Err(format!("{DECISION_RULE} is undefined for this input"));
    }
    if value.as_object().is_err() {
        return Err(format!("{DECISION_RULE} is not an object"));
    }
    let field = |name: &str| -> Result<&Value, String> {
        match &value[name] {
            Value::Undefined => Err(format!("decision has no `{name}` field")),
            v => Ok(v),
        }
    };
    let allow = *field("allow")?
        .as_bool()
        .map_err(|_| "decision field `allow` is not a boolean".to_string())?;
    let deny = strings(field("deny")?, "deny")?;
    let required_approvals = field("required_approvals")?.as_u32().map_err(|_| {
        "decision field `required_approvals` is not a non-negative integer".to_string()
    })?;
    let risk = match field("risk")?.as_string().map(|s| s.as_ref()) {
        Ok("low") => Risk::Low,
        Ok("medium") => Risk::Medium,
        Ok("high") => Risk::High,
        Ok("critical") => Risk::Critical,
        Ok(other) => {
            return Err(format!(
                "decision field `risk` is {other:?}, not one of low, medium, high, critical"
            ));
        }
        Err(_) => return Err("decision field `risk` is not a string".to_string()),
    };
    let controls = strings(field("controls")?, "controls")?;
    let mut deny = deny;
    let allow = allow && deny.is_empty();
    if !allow && deny.is_empty() {
        deny.push("policy denied without giving a reason".to_string());
    }
    Ok(PolicyDecision {
        allow,
        deny,
        required_approvals,
        risk,
        controls,
        bundle_hash: String::new(),
        input_digest: String::new(),
    })
}

/// An array or set of strings.
fn strings(value: &Value, name: &str) -> Result<Vec<String>, String> {
    let items: Vec<&Value> = if let Ok(a) = value.as_array() {
        a.iter().collect()
    } else if let Ok(s) = value.as_set() {
        s.iter().collect()
    } else {
        return Err(format!("decision field `{name}` is not an array"));
    };
    items
        .into_iter()
        .map(|v| {
            v.as_string()
                .map(|s| s.to_string())
                .map_err(|_| format!("decision field `{name}` holds a non-string item"))
        })
        .collect()
}

/// Whether some module of package `shieldops` declares a `decision` rule.
fn declares_decision(engine: &mut regorus::Engine) -> bool {
    use regorus::unstable::{Rule, RuleHead};
    engine.get_modules().iter().any(|module| {
        module.package.refr.span().text() == "shieldops"
            && module.policy.iter().any(|rule| {
                let head = match rule.as_ref() {
                    Rule::Spec { head, .. } => match head {
                        RuleHead::Compr { refr, .. }
                        | RuleHead::Set { refr, .. }
                        | RuleHead::Func { refr, .. } => refr,
                    },
                    Rule::Default { refr, .. } => refr,
                };
                head.span().text() == "decision"
            })
    })
}

// The gate is shared by tokio tasks.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Gate>();
};
