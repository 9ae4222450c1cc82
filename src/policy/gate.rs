//! The gate: a prepared bundle that decides proposals, fail closed.
//!
//! Strategy, chosen by measurement (`cargo bench --bench policy`, figures in
//! the bench's header): the bundle is parsed once, compiled for the decision
//! entry point, and lowered to a regorus RVM program. Each decision borrows a
//! VM loaded with that program and the data document from a small pool (a new
//! VM is made only when the pool is empty, i.e. once per concurrent caller),
//! sets the input and runs. On this bundle the VM is about six times faster
//! than the tree-walking interpreter, whichever way the interpreter is
//! prepared (a reused engine, a `CompiledPolicy`, or a clone per decision,
//! which are within 25 % of each other). A bundle the RVM compiler cannot
//! lower (a user policy using a construct it lacks) falls back to pooled
//! interpreter engines, so no valid Rego is refused. Both carry their own
//! execution time limit rather than regorus's process-wide fallback.

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use sha2::{Digest, Sha256};

use super::compliance::ComplianceEngine;
use super::{Bundle, PolicyError, PolicyInput};
use crate::event::{ControlResult, PolicyDecision, Risk};

/// The rule every bundle must define: the whole decision document.
pub const DECISION_RULE: &str = "data.shieldops.decision";

/// How the gate evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateOptions {
    /// Wall-clock limit for one evaluation; past it the decision is a deny.
    pub time_limit: Duration,
    /// Which evaluator runs the bundle.
    pub evaluator: Evaluator,
}

/// Which regorus evaluator decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Evaluator {
    /// The RVM for the shipped policies (whatever the site's data), whose
    /// decisions are checked against the interpreter's by a property test;
    /// the interpreter as soon as the bundle holds Rego of the site's own,
    /// since the RVM does not yet match the interpreter on every construct.
    #[default]
    Auto,
    /// The compiled RVM program (falls back to the interpreter if the bundle
    /// cannot be lowered).
    Rvm,
    /// The tree-walking interpreter.
    Interpreter,
}

impl Default for GateOptions {
    fn default() -> Self {
        // Decisions take tens of microseconds; this only stops a runaway policy.
        Self {
            time_limit: Duration::from_millis(250),
            evaluator: Evaluator::Auto,
        }
    }
}

/// What the bundle was prepared into.
enum Prepared {
    /// An RVM program and the data document each VM is loaded with.
    Vm { program: Arc<Program>, data: Value },
    /// A prepared interpreter engine, cloned once per pooled worker.
    Interpreter(Box<Mutex<regorus::Engine>>),
}

/// One pooled evaluator.
enum Worker {
    Vm(Box<RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

/// A prepared policy bundle, shared by every task that needs decisions.
pub struct Gate {
    prepared: Prepared,
    pool: Mutex<Vec<Worker>>,
    compliance: ComplianceEngine,
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
        let compliance = ComplianceEngine::new(engine.clone());
        engine.set_execution_timer_config(timer(options.time_limit));
        let use_vm = match options.evaluator {
            Evaluator::Auto => bundle.has_embedded_rego(),
            Evaluator::Rvm => true,
            Evaluator::Interpreter => false,
        };
        let program = if !use_vm {
            None
        } else {
            match compile(&mut engine) {
                Ok(program) => Some(program),
                Err(e) => {
                    tracing::warn!(error = %e, "policy bundle does not compile to an RVM program; using the interpreter");
                    None
                }
            }
        };
        let prepared = match program {
            Some(program) => Prepared::Vm {
                program,
                data: engine.get_data(),
            },
            None => {
                // The first evaluation analyses and schedules the modules;
                // clones of a prepared engine skip that work. Its result does
                // not matter here.
                engine.set_input(Value::new_object());
                let _ = engine.eval_rule(DECISION_RULE.to_string());
                Prepared::Interpreter(Box::new(Mutex::new(engine)))
            }
        };
        Ok(Self {
            prepared,
            pool: Mutex::new(Vec::new()),
            compliance,
            bundle_hash: bundle.hash(),
            options,
        })
    }

    /// Which evaluator decides: `rvm` (compiled program) or `interpreter`.
    pub fn evaluator(&self) -> &'static str {
        match self.prepared {
            Prepared::Vm { .. } => "rvm",
            Prepared::Interpreter(_) => "interpreter",
        }
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
        // PolicyInput encodes with sorted keys (see its docs), so serde's
        // output is the canonical form the digest is taken over; the engine
        // gets the same document built directly, without a JSON parse.
        match serde_json::to_string(input) {
            Ok(canonical) => {
                let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
                self.decide_parsed(input.to_rego_value(), digest)
            }
            Err(e) => self.closed(
                format!("policy input could not be encoded: {e}"),
                String::new(),
            ),
        }
    }

    /// Every compliance control's result over `inventory` (see
    /// [`super::COMPLIANCE_RULE`]); an error says why nothing could be decided,
    /// and the caller must then treat every control as unknown.
    pub fn evaluate_compliance(
        &self,
        inventory: &serde_json::Value,
    ) -> Result<Vec<ControlResult>, String> {
        self.compliance.evaluate(inventory)
    }

    /// Decides a raw input document (as `policy eval` reads it from a file).
    pub fn decide_value(&self, input: &serde_json::Value) -> PolicyDecision {
        self.decide_canonical(&super::canonical_json(input))
    }

    /// Decides the canonical JSON encoding of an input document.
    fn decide_canonical(&self, canonical: &str) -> PolicyDecision {
        let digest = hex::encode(Sha256::digest(canonical.as_bytes()));
        match Value::from_json_str(canonical) {
            Ok(value) => self.decide_parsed(value, digest),
            Err(e) => self.closed(format!("policy input could not be read: {e}"), digest),
        }
    }

    /// Evaluates an input value whose digest is already known, and checks the result.
    fn decide_parsed(&self, value: Value, digest: String) -> PolicyDecision {
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

    /// Runs the entry point on a pooled worker. A worker that failed or
    /// panicked is dropped rather than returned to the pool.
    fn evaluate(&self, input: Value) -> Result<Value, String> {
        let mut worker = match self.pool.lock().ok().and_then(|mut p| p.pop()) {
            Some(worker) => worker,
            None => self.worker()?,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| match &mut worker {
            Worker::Vm(vm) => {
                vm.set_input(input);
                vm.execute().map_err(|e| {
                    let e = anyhow::Error::new(e);
                    describe_error(&e, self.options.time_limit)
                })
            }
            Worker::Interpreter(engine) => {
                engine.set_input(input);
                engine
                    .eval_rule(DECISION_RULE.to_string())
                    .map_err(|e| describe_error(&e, self.options.time_limit))
            }
        }));
        match outcome {
            Ok(Ok(value)) => {
                if let Ok(mut pool) = self.pool.lock() {
                    pool.push(worker);
                }
                Ok(value)
            }
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err("policy engine panicked during evaluation".to_string()),
        }
    }

    /// A fresh worker for the pool.
    fn worker(&self) -> Result<Worker, String> {
        match &self.prepared {
            Prepared::Vm { program, data } => {
                let mut vm = RegoVM::new();
                vm.load_program(program.clone());
                vm.set_data(data.clone())
                    .map_err(|e| format!("policy data could not be loaded: {e}"))?;
                vm.set_execution_timer_config(Some(timer(self.options.time_limit)));
                // The time limit is the real bound; the RVM's default
                // instruction budget (25,000) is too tight for larger inputs.
                vm.set_max_instructions(MAX_INSTRUCTIONS);
                Ok(Worker::Vm(Box::new(vm)))
            }
            Prepared::Interpreter(template) => Ok(Worker::Interpreter(Box::new(
                template
                    .lock()
                    .map_err(|_| "policy engine template is poisoned".to_string())?
                    .clone(),
            ))),
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

/// Instruction budget per decision: far above the shipped bundle's needs.
const MAX_INSTRUCTIONS: usize = 10_000_000;

/// The execution time limit, with the clock read every 1,024 work units:
/// a few microseconds of work between reads, so a runaway policy stops within
/// a hair of the limit, while a normal decision reads the clock a handful of
/// times (reading it every 32 units cost about 4 µs per decision, measured).
fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN),
    }
}

/// Lowers the decision entry point to an RVM program.
fn compile(engine: &mut regorus::Engine) -> anyhow::Result<Arc<Program>> {
    let compiled = engine.compile_with_entrypoint(&DECISION_RULE.into())?;
    Compiler::compile_from_policy(&compiled, &[DECISION_RULE]).map_err(|e| anyhow::anyhow!("{e}"))
}

fn describe_error(e: &anyhow::Error, limit: Duration) -> String {
    let text = format!("{e:#}");
    let timed_out = matches!(
        e.downcast_ref::<regorus::LimitError>(),
        Some(regorus::LimitError::TimeLimitExceeded { .. })
    ) || text.contains("time limit");
    if text.contains("instruction limit") {
        format!("policy evaluation exceeded its instruction budget: {text}")
    } else if timed_out {
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
