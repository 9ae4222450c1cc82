//! The playbook model: the YAML schema as read, and the validated form the
//! agents use. Validation happens once, at load; a playbook that fails it is
//! rejected whole with the file, line and column of the first problem.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::PlaybookError;
use super::catalogue;
use super::expr::{self, Expr, Template, Val};
use super::facts::Facts;
use crate::event::{
    Action, Alert, AlertStatus, Health, HealthStatus, Provider, ResourceId, Severity,
};

// ------------------------------------------------------------ YAML form --

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: i32,
    /// Absent (with `investigate` and `decide`) in a plan-only playbook: the
    /// validation and failure plan of changes an operator applies.
    trigger: Option<RawTrigger>,
    investigate: Option<Spanned<Vec<RawStep>>>,
    decide: Option<Spanned<Vec<RawBranch>>>,
    validate: Spanned<RawValidation>,
    on_failure: Spanned<RawFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    alerts: Spanned<Vec<String>>,
    #[serde(default)]
    severities: Vec<Spanned<String>>,
    #[serde(default)]
    labels: Vec<Spanned<RawMatcher>>,
    #[serde(default)]
    resources: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatcher {
    label: String,
    equals: Option<String>,
    not_equals: Option<String>,
    one_of: Option<Vec<String>>,
    not_one_of: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    evidence: Spanned<String>,
    #[serde(default)]
    why: String,
    window_mins: Option<u32>,
    #[serde(default)]
    metrics: Vec<String>,
    lines: Option<u32>,
    grep: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBranch {
    id: Spanned<String>,
    when: Spanned<String>,
    #[serde(default)]
    description: String,
    action: Option<RawAction>,
    then: Option<Spanned<Vec<RawBranch>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    name: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidation {
    expect: RawExpect,
    timeout_secs: Spanned<u64>,
    interval_secs: Spanned<u64>,
    #[serde(default = "one")]
    stable_polls: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    health: Spanned<String>,
    #[serde(default)]
    not_reasons: Vec<String>,
    /// A PromQL condition that must hold too (a non-empty answer).
    #[serde(default)]
    promql: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailure {
    #[serde(default = "yes")]
    restore: bool,
    escalate: Vec<String>,
    #[serde(default)]
    message: String,
}

fn yes() -> bool {
    true
}

// ------------------------------------------------------- validated form --

/// Evidence an investigation step gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    Health,
    Events,
    Changes,
    Metrics,
    Logs,
    /// PromQL from `[prometheus]` (the queries for the resource's kind).
    Prometheus,
}

impl Evidence {
    /// The name an `investigate` step uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Health => "health",
            Evidence::Events => "events",
            Evidence::Changes => "changes",
            Evidence::Metrics => "metrics",
            Evidence::Logs => "logs",
            Evidence::Prometheus => "prometheus",
        }
    }
}

/// One investigation step: which evidence to gather, and how much.
#[derive(Debug, Clone, PartialEq)]
pub struct InvestigationStep {
    pub evidence: Evidence,
    /// Why this evidence matters here (added to the evidence's summary).
    pub why: String,
    /// How far back to look (events, changes, metrics, logs).
    pub window: Option<Duration>,
    /// Metric names to fetch (for `metrics`).
    pub metrics: Vec<String>,
    /// How many log lines to read (for `logs`).
    pub lines: Option<u32>,
    /// A substring the log lines must contain (for `logs`).
    pub grep: Option<String>,
}

/// A condition on one alert label.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelMatcher {
    Equals(String, String),
    NotEquals(String, String),
    OneOf(String, Vec<String>),
    NotOneOf(String, Vec<String>),
}

impl LabelMatcher {
    /// Whether the labels satisfy this matcher (an absent label equals nothing).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelMatcher::Equals(k, v) => labels.get(k) == Some(v),
            LabelMatcher::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelMatcher::OneOf(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelMatcher::NotOneOf(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
        }
    }
}

/// A resource kind of one provider, as `trigger.resources` names it
/// (`kubernetes/pod`, `aws/ec2_instance`, `linux/service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKind {
    pub provider: String,
    pub kind: String,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.kind)
    }
}

/// The name `trigger.resources` uses for a provider.
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Kubernetes => "kubernetes",
        Provider::Aws => "aws",
        Provider::Linux => "linux",
        Provider::Gcp => "gcp",
        Provider::Azure => "azure",
        Provider::Vault => "vault",
    }
}

/// When a playbook applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Empty in a plan-only playbook, which no alert matches.
    pub alerts: Vec<String>,
    /// Empty: any severity.
    pub severities: Vec<Severity>,
    pub labels: Vec<LabelMatcher>,
    /// The resources it is written for; empty: any (its facts are then
    /// checked against every connector).
    pub resources: Vec<ResourceKind>,
}

impl Trigger {
    /// Whether a firing alert matches by name, severity and labels.
    pub fn matches(&self, alert: &Alert) -> bool {
        alert.status == AlertStatus::Firing
            && self.alerts.contains(&alert.name)
            && (self.severities.is_empty() || self.severities.contains(&alert.severity))
            && self.labels.iter().all(|m| m.matches(&alert.labels))
    }

    /// Whether the playbook is written for a resource of this provider and kind.
    pub fn applies_to(&self, provider: Provider, kind: &str) -> bool {
        self.resources.is_empty()
            || self
                .resources
                .iter()
                .any(|r| r.provider == provider_name(provider) && r.kind == kind)
    }
}

/// An action with parameters that may refer to facts.
#[derive(Debug, Clone, PartialEq)]
struct ActionTemplate {
    name: String,
    params: BTreeMap<String, Template>,
    /// Each parameter's line, in the order of `params`.
    lines: Vec<u64>,
}

/// A node of the decision tree: a condition, then an action or sub-branches.
#[derive(Debug, Clone, PartialEq)]
struct Branch {
    id: String,
    when: Expr,
    when_src: String,
    line: u64,
    description: String,
    then: BranchThen,
}

#[derive(Debug, Clone, PartialEq)]
enum BranchThen {
    Act(ActionTemplate),
    Branches(Vec<Branch>),
}

/// What validation polls for after the action.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationSpec {
    /// The health status that counts as fixed.
    pub expect: HealthStatus,
    /// Reasons that mean "not fixed" even with the expected status.
    pub not_reasons: Vec<String>,
    pub timeout: Duration,
    pub interval: Duration,
    /// Consecutive passing polls needed.
    pub stable_polls: u32,
    /// A PromQL condition that must also hold: a non-empty answer (PromQL
    /// comparisons filter); placeholders name the target (`{namespace}`, …).
    pub promql: Option<String>,
}

/// What one poll of a validation's PromQL condition found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromqlCheck {
    /// The spec has no PromQL condition.
    NotAsked,
    /// The answer was not empty: the condition holds.
    Holds,
    /// The answer was empty: not (yet) true.
    Empty,
    /// No answer (an error, a timeout, no `[prometheus]`): unknown, so not healthy.
    Unknown(String),
}

impl ValidationSpec {
    /// Whether one health reading passes; the error says why not.
    pub fn check(&self, health: &Health) -> Result<(), String> {
        if health.status != self.expect {
            return Err(format!(
                "health is {} ({}), expected {}",
                health.status.as_str(),
                if health.reason.is_empty() {
                    "no reason"
                } else {
                    &health.reason
                },
                self.expect.as_str()
            ));
        }
        if self.not_reasons.contains(&health.reason) {
            return Err(format!("health reason is still {}", health.reason));
        }
        Ok(())
    }

    /// Starts a validation run at `started` (a time from the caller's clock).
    pub fn start(&self, started: DateTime<Utc>) -> ValidationRun {
        ValidationRun {
            spec: self.clone(),
            started,
            passes: 0,
            polls: 0,
            last: String::from("not polled yet"),
        }
    }
}

/// The verdict after one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Poll again after the spec's interval.
    Pending,
    /// The expected health held for the required number of polls.
    Passed(String),
    /// The timeout passed first; the reason is the last failed check.
    Failed(String),
}

/// A validation in progress: feed it health readings with the time they were taken.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRun {
    spec: ValidationSpec,
    started: DateTime<Utc>,
    passes: u32,
    polls: u32,
    last: String,
}

impl ValidationRun {
    /// Records one poll of real health taken at `now` and says what to do next.
    pub fn observe(&mut self, health: &Health, now: DateTime<Utc>) -> Verdict {
        self.observe_with(health, &PromqlCheck::NotAsked, now)
    }

    /// Like [`ValidationRun::observe`], with the spec's PromQL condition as
    /// polled at the same time: a poll passes only when both hold.
    pub fn observe_with(
        &mut self,
        health: &Health,
        promql: &PromqlCheck,
        now: DateTime<Utc>,
    ) -> Verdict {
        self.polls += 1;
        let condition = match (&self.spec.promql, promql) {
            (None, _) | (Some(_), PromqlCheck::Holds) => Ok(()),
            (Some(q), PromqlCheck::Empty) => {
                Err(format!("PromQL condition not met (empty answer): {q}"))
            }
            (Some(q), PromqlCheck::Unknown(why)) => {
                Err(format!("PromQL condition unknown ({why}): {q}"))
            }
            (Some(q), PromqlCheck::NotAsked) => Err(format!("PromQL condition not polled: {q}")),
        };
        match self.spec.check(health).and(condition) {
            Ok(()) => {
                self.passes += 1;
                if self.passes >= self.spec.stable_polls {
                    return Verdict::Passed(format!(
                        "{} for {} consecutive poll(s) after {} poll(s)",
                        self.spec.expect.as_str(),
                        self.passes,
                        self.polls
                    ));
                }
            }
            Err(why) => {
                self.passes = 0;
                self.last = why;
            }
        }
        let elapsed = (now - self.started).to_std().unwrap_or(Duration::ZERO);
        if elapsed >= self.spec.timeout {
            Verdict::Failed(format!(
                "not {} within {}s: {}",
                self.spec.expect.as_str(),
                self.spec.timeout.as_secs(),
                self.last
            ))
        } else {
            Verdict::Pending
        }
    }

    /// The interval to wait before the next poll.
    pub fn interval(&self) -> Duration {
        self.spec.interval
    }
}

/// What to do when the action or its validation fails.
#[derive(Debug, Clone, PartialEq)]
pub struct FailurePlan {
    /// Restore the snapshot first.
    pub restore: bool,
    /// Contacts to escalate to, in order.
    pub escalate: Vec<String>,
    pub message: String,
}

/// What walking a decision tree found: the decision, or the branch whose
/// condition the facts could not decide (and which facts it lacked).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// The branch taken and its action; `None` when no branch held or the
    /// walk stopped on an unknown condition.
    pub decision: Option<Decision>,
    /// The branch path whose condition was unknown (the walk stopped there).
    pub undecided: Option<String>,
    /// Its line in the playbook file.
    pub undecided_line: u64,
    /// The facts that condition names which the investigation did not produce.
    pub unknown: Vec<String>,
}

impl Evaluation {
    /// One line for the investigation's conclusion when the playbook did not act.
    pub fn why_not(&self, playbook: &Playbook) -> String {
        match &self.undecided {
            Some(branch) => format!(
                "playbook {} did not act: branch {branch} ({}:{}) depends on facts not observed: {}",
                playbook.name,
                playbook.source,
                self.undecided_line,
                self.unknown.join(", ")
            ),
            None => format!("playbook {}: no branch holds", playbook.name),
        }
    }
}

/// The branch a decision tree chose and the action it rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Path of branch ids from the root, e.g. `oom/limit-too-small`.
    pub branch: String,
    pub description: String,
    pub action: Action,
}

/// A validated playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    /// Higher first when several playbooks match an alert.
    pub priority: i32,
    /// The file it was loaded from.
    pub source: String,
    pub trigger: Trigger,
    /// The evidence to gather; empty in a plan-only playbook.
    pub investigate: Vec<InvestigationStep>,
    tree: Vec<Branch>,
    pub validation: ValidationSpec,
    pub on_failure: FailurePlan,
}

impl Playbook {
    /// Parses and validates one playbook; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PlaybookError> {
        let options = serde_saphyr::options! {
            with_snippet: false,
            crop_radius: 0,
            strict_booleans: true,
        };
        let raw: RawPlaybook = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let mut message = e.to_string();
            let (line, column) = match e.location() {
                Some(l) => {
                    let suffix = format!(" at line {}, column {}", l.line(), l.column());
                    if let Some(stripped) = message.strip_suffix(&suffix) {
                        message = stripped.to_string();
                    }
                    (l.line(), l.column())
                }
                // serde's derived errors (unknown or missing fields) carry
                // no position; find the offending key in the text instead.
                None => locate_field(text, &message).unwrap_or((1, 1)),
            };
            PlaybookError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        })?;
        build(file, raw)
    }

    /// The decision of [`Playbook::evaluate`], if any.
    pub fn decide(
        &self,
        facts: &Facts,
        target: &ResourceId,
    ) -> Result<Option<Decision>, PlaybookError> {
        Ok(self.evaluate(facts, target)?.decision)
    }

    /// Walks the decision tree over `facts`, depth first in file order: a
    /// branch whose condition is true is taken (its action rendered for
    /// `target`, or its children walked), one that is false is passed over,
    /// and one that is *unknown* (it depends on facts not observed) stops the
    /// walk: the playbook does not act, and the evaluation names the facts.
    pub fn evaluate(
        &self,
        facts: &Facts,
        target: &ResourceId,
    ) -> Result<Evaluation, PlaybookError> {
        let mut out = Evaluation::default();
        out.decision = self.walk(&self.tree, facts, target, "", &mut out)?;
        Ok(out)
    }

    fn walk(
        &self,
        branches: &[Branch],
        facts: &Facts,
        target: &ResourceId,
        prefix: &str,
        out: &mut Evaluation,
    ) -> Result<Option<Decision>, PlaybookError> {
        for branch in branches {
            let value = branch.when.eval(facts).map_err(|message| {
                self.eval_error(branch, format!("`{}`: {message}", branch.when_src))
            })?;
            let path = if prefix.is_empty() {
                branch.id.clone()
            } else {
                format!("{prefix}/{}", branch.id)
            };
            match value {
                Val::Bool(true) => {}
                Val::Bool(false) => continue,
                Val::Unknown => {
                    out.undecided = Some(path);
                    out.undecided_line = branch.line;
                    out.unknown = branch.when.unknown_because(facts);
                    return Ok(None);
                }
                v => {
                    return Err(self.eval_error(
                        branch,
                        format!(
                            "`{}`: condition is a {}, not a boolean",
                            branch.when_src,
                            v.type_name()
                        ),
                    ));
                }
            }
            match &branch.then {
                BranchThen::Branches(children) => {
                    if let Some(decision) = self.walk(children, facts, target, &path, out)? {
                        return Ok(Some(decision));
                    }
                    if out.undecided.is_some() {
                        return Ok(None);
                    }
                }
                BranchThen::Act(template) => {
                    let mut action = Action::new(template.name.clone(), target.clone());
                    for (key, t) in &template.params {
                        let value = t.render(facts).map_err(|message| {
                            self.eval_error(branch, format!("parameter `{key}`: {message}"))
                        })?;
                        action.params.insert(key.clone(), value);
                        action.param_sources.insert(key.clone(), t.source());
                    }
                    return Ok(Some(Decision {
                        branch: path,
                        description: branch.description.clone(),
                        action,
                    }));
                }
            }
        }
        Ok(None)
    }

    fn eval_error(&self, branch: &Branch, message: String) -> PlaybookError {
        PlaybookError::Eval {
            playbook: self.name.clone(),
            file: self.source.clone(),
            line: branch.line,
            branch: branch.id.clone(),
            message,
        }
    }

    /// Every action name the tree can produce, for checks against policy and connectors.
    pub fn action_names(&self) -> Vec<&str> {
        fn walk<'a>(branches: &'a [Branch], out: &mut Vec<&'a str>) {
            for b in branches {
                match &b.then {
                    BranchThen::Act(a) => out.push(&a.name),
                    BranchThen::Branches(children) => walk(children, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.tree, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// For "unknown field `x`", the line and column of the first `x:` key.
fn locate_field(text: &str, message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("unknown field `")?;
    let key = &rest[..rest.find('`')?];
    text.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let after = trimmed.strip_prefix(key)?;
        after.trim_start().starts_with(':').then(|| {
            let column = line.len() - trimmed.len() + 1;
            (i as u64 + 1, column as u64)
        })
    })
}

fn invalid(file: &str, at: &serde_saphyr::Location, message: impl Into<String>) -> PlaybookError {
    PlaybookError::Invalid {
        file: file.to_string(),
        line: at.line(),
        column: at.column(),
        message: message.into(),
    }
}

fn build(file: &str, raw: RawPlaybook) -> Result<Playbook, PlaybookError> {
    let name = raw.name.value.trim().to_string();
    if name.is_empty() {
        return Err(invalid(file, &raw.name.referenced, "`name` is empty"));
    }
    let (raw_trigger, raw_investigate, raw_decide) = match (
        raw.trigger,
        raw.investigate,
        raw.decide,
    ) {
        (Some(t), Some(i), Some(d)) => (Some(t), i, d),
        // A plan-only playbook: no alert matches it; it holds the
        // validation and failure plan of changes an operator applies.
        (None, None, None) => {
            return plan_only(
                file,
                name,
                raw.description,
                raw.priority,
                raw.validate,
                raw.on_failure,
            );
        }
        _ => {
            return Err(PlaybookError::Invalid {
                    file: file.to_string(),
                    line: raw.name.referenced.line(),
                    column: raw.name.referenced.column(),
                    message: "`trigger`, `investigate` and `decide` come together (all three, or none in a plan-only playbook)".into(),
                });
        }
    };
    let raw_trigger = raw_trigger.expect("matched above");
    if raw_trigger.alerts.value.is_empty()
        || raw_trigger.alerts.value.iter().any(|a| a.trim().is_empty())
    {
        return Err(invalid(
            file,
            &raw_trigger.alerts.referenced,
            "`trigger.alerts` needs at least one non-empty alert name",
        ));
    }
    let mut resources = Vec::new();
    for r in &raw_trigger.resources {
        let parsed = r.value.split_once('/').and_then(|(p, k)| {
            let ok = catalogue::PROVIDERS.contains(&p)
                && !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            ok.then(|| ResourceKind {
                provider: p.to_string(),
                kind: k.to_string(),
            })
        });
        match parsed {
            Some(kind) => resources.push(kind),
            None => {
                return Err(invalid(
                    file,
                    &r.referenced,
                    format!(
                        "`trigger.resources` entry {:?} must be provider/kind with provider one of {}",
                        r.value,
                        catalogue::PROVIDERS.join(", ")
                    ),
                ));
            }
        }
    }
    let mut labels = Vec::new();
    for m in raw_trigger.labels {
        let at = m.referenced;
        let m = m.value;
        let set = [
            m.equals.is_some(),
            m.not_equals.is_some(),
            m.one_of.is_some(),
            m.not_one_of.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if set != 1 {
            return Err(invalid(
                file,
                &at,
                format!(
                    "label matcher for `{}` needs exactly one of equals, not_equals, one_of, not_one_of",
                    m.label
                ),
            ));
        }
        labels.push(if let Some(v) = m.equals {
            LabelMatcher::Equals(m.label, v)
        } else if let Some(v) = m.not_equals {
            LabelMatcher::NotEquals(m.label, v)
        } else if let Some(v) = m.one_of {
            LabelMatcher::OneOf(m.label, v)
        } else {
            LabelMatcher::NotOneOf(m.label, m.not_one_of.unwrap_or_default())
        });
    }
    if raw_investigate.value.is_empty() {
        return Err(invalid(
            file,
            &raw_investigate.referenced,
            "`investigate` needs at least one step",
        ));
    }
    let mut investigate: Vec<InvestigationStep> = Vec::new();
    for s in raw_investigate.value {
        let evidence = match s.evidence.value.as_str() {
            "health" => Evidence::Health,
            "events" => Evidence::Events,
            "changes" => Evidence::Changes,
            "metrics" => Evidence::Metrics,
            "logs" => Evidence::Logs,
            "prometheus" => Evidence::Prometheus,
            other => {
                return Err(invalid(
                    file,
                    &s.evidence.referenced,
                    format!(
                        "unknown evidence `{other}`: expected health, events, changes, metrics, logs or prometheus"
                    ),
                ));
            }
        };
        if investigate.iter().any(|i| i.evidence == evidence) {
            return Err(invalid(
                file,
                &s.evidence.referenced,
                format!(
                    "evidence `{}` is gathered by an earlier step",
                    s.evidence.value
                ),
            ));
        }
        if s.window_mins == Some(0) {
            return Err(invalid(
                file,
                &s.evidence.referenced,
                "`window_mins` must be positive",
            ));
        }
        let misplaced = match evidence {
            Evidence::Metrics => s.lines.is_some() || s.grep.is_some(),
            Evidence::Logs => !s.metrics.is_empty(),
            _ => s.lines.is_some() || s.grep.is_some() || !s.metrics.is_empty(),
        };
        if misplaced {
            return Err(invalid(
                file,
                &s.evidence.referenced,
                format!(
                    "`metrics` belongs to a metrics step, `lines` and `grep` to a logs step; the `{}` step would ignore them",
                    s.evidence.value
                ),
            ));
        }
        investigate.push(InvestigationStep {
            evidence,
            why: s.why,
            window: s
                .window_mins
                .map(|m| Duration::from_secs(u64::from(m) * 60)),
            metrics: s.metrics,
            lines: s.lines,
            grep: s.grep,
        });
    }
    let mut severities = Vec::new();
    for sev in raw_trigger.severities {
        severities.push(match sev.value.as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => {
                return Err(invalid(
                    file,
                    &sev.referenced,
                    format!(
                        "unknown severity `{other}`: expected info, low, medium, high or critical"
                    ),
                ));
            }
        });
    }
    if raw_decide.value.is_empty() {
        return Err(invalid(
            file,
            &raw_decide.referenced,
            "`decide` needs at least one branch",
        ));
    }
    let mut ids = Vec::new();
    let tree = branches(file, raw_decide.value, &mut ids)?;
    check_facts(file, &tree, &investigate, &resources)?;
    let (validation, on_failure) = plans(file, raw.validate, raw.on_failure)?;
    Ok(Playbook {
        name,
        description: raw.description,
        priority: raw.priority,
        source: file.to_string(),
        trigger: Trigger {
            alerts: raw_trigger.alerts.value,
            severities,
            labels,
            resources,
        },
        investigate,
        tree,
        validation,
        on_failure,
    })
}

/// A playbook with only a validation and a failure plan.
fn plan_only(
    file: &str,
    name: String,
    description: String,
    priority: i32,
    validate: Spanned<RawValidation>,
    on_failure: Spanned<RawFailure>,
) -> Result<Playbook, PlaybookError> {
    let (validation, on_failure) = plans(file, validate, on_failure)?;
    Ok(Playbook {
        name,
        description,
        priority,
        source: file.to_string(),
        trigger: Trigger {
            alerts: Vec::new(),
            severities: Vec::new(),
            labels: Vec::new(),
            resources: Vec::new(),
        },
        investigate: Vec::new(),
        tree: Vec::new(),
        validation,
        on_failure,
    })
}

/// Checks every fact a condition or parameter names against the catalogue:
/// it must exist, be produced for one of `resources` (any resource when
/// empty), come from evidence a step gathers, and, for a metrics step with a
/// `metrics` list, be in the list.
fn check_facts(
    file: &str,
    tree: &[Branch],
    investigate: &[InvestigationStep],
    resources: &[ResourceKind],
) -> Result<(), PlaybookError> {
    let mut uses: Vec<(String, u64)> = Vec::new();
    fn collect(branches: &[Branch], uses: &mut Vec<(String, u64)>) {
        for b in branches {
            uses.extend(b.when.names().into_iter().map(|n| (n, b.line)));
            match &b.then {
                BranchThen::Act(a) => {
                    for (t, line) in a.params.values().zip(&a.lines) {
                        uses.extend(t.names().into_iter().map(|n| (n, *line)));
                    }
                }
                BranchThen::Branches(children) => collect(children, uses),
            }
        }
    }
    collect(tree, &mut uses);
    let at = |line: u64, message: String| PlaybookError::Invalid {
        file: file.to_string(),
        line,
        column: 1,
        message,
    };
    fn conditions<'a>(branches: &'a [Branch], out: &mut Vec<&'a Branch>) {
        for b in branches {
            out.push(b);
            if let BranchThen::Branches(children) = &b.then {
                conditions(children, out);
            }
        }
    }
    let mut all = Vec::new();
    conditions(tree, &mut all);
    for b in all {
        if let Some(why) = mistyped(&b.when, true) {
            return Err(at(b.line, format!("in `when`: {why}")));
        }
    }
    for (name, line) in uses {
        let Some(spec) = catalogue::lookup(&name) else {
            return Err(at(
                line,
                format!(
                    "unknown fact `{name}`: no connector produces it (the facts catalogue is in the playbooks README)"
                ),
            ));
        };
        if !resources.is_empty()
            && !resources
                .iter()
                .any(|r| spec.produced_for(&r.provider, &r.kind))
        {
            let list: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
            return Err(at(
                line,
                format!(
                    "fact `{name}` is produced by no connector for {} (it comes from: {})",
                    list.join(", "),
                    spec.source
                ),
            ));
        }
        if let Some(evidence) = spec.evidence {
            let Some(step) = investigate.iter().find(|s| s.evidence == evidence) else {
                return Err(at(
                    line,
                    format!(
                        "fact `{name}` comes from `{}` evidence, which `investigate` does not gather",
                        evidence.as_str()
                    ),
                ));
            };
            if let Some(metric) = name.strip_prefix("metrics.")
                && !step.metrics.is_empty()
                && !step.metrics.iter().any(|m| m == metric)
            {
                return Err(at(
                    line,
                    format!("fact `{name}` is not in the metrics step's `metrics` list"),
                ));
            }
        }
    }
    Ok(())
}

/// A catalogued fact compared with a literal of another type, or a fact
/// that is not a boolean used as a condition: caught when the playbook
/// loads rather than when it is evaluated during an incident.
fn mistyped(e: &Expr, as_condition: bool) -> Option<String> {
    use catalogue::FactType;
    use expr::BinOp;
    let fact = |e: &Expr| match e {
        Expr::Name(n) => catalogue::lookup(n).map(|s| (n.clone(), s.ty)),
        _ => None,
    };
    let literal = |e: &Expr| match e {
        Expr::Num(_) => Some(FactType::Number),
        Expr::Str(_) => Some(FactType::Text),
        Expr::Bool(_) => Some(FactType::Bool),
        _ => None,
    };
    let clash = |f: FactType, l: FactType| f != FactType::Scalar && f != l;
    let compared = |n: &str, f: FactType, l: FactType| {
        format!(
            "`{n}` is a {} fact, compared with a {}",
            f.as_str(),
            l.as_str()
        )
    };
    match e {
        Expr::Binary(BinOp::And | BinOp::Or, l, r) => {
            mistyped(l, true).or_else(|| mistyped(r, true))
        }
        Expr::Binary(
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge,
            l,
            r,
        ) => {
            for (a, b) in [(l, r), (r, l)] {
                if let (Some((n, f)), Some(lit)) = (fact(a), literal(b))
                    && clash(f, lit)
                {
                    return Some(compared(&n, f, lit));
                }
            }
            mistyped(l, false).or_else(|| mistyped(r, false))
        }
        Expr::Binary(_, l, r) => mistyped(l, false).or_else(|| mistyped(r, false)),
        Expr::In(l, r) => {
            if let (Some((n, f)), Expr::List(items)) = (fact(l), r.as_ref()) {
                for lit in items.iter().filter_map(literal) {
                    if clash(f, lit) {
                        return Some(compared(&n, f, lit));
                    }
                }
            }
            None
        }
        Expr::Not(a) => mistyped(a, true),
        Expr::Neg(a) => mistyped(a, false),
        Expr::Call(_, args) | Expr::List(args) => args.iter().find_map(|a| mistyped(a, false)),
        Expr::Name(n) if as_condition => match catalogue::lookup(n) {
            Some(s) if s.ty != FactType::Bool && s.ty != FactType::Scalar => Some(format!(
                "`{n}` is a {} fact, not a condition (compare it with something)",
                s.ty.as_str()
            )),
            _ => None,
        },
        _ => None,
    }
}

/// The validation and failure plan, checked.
fn plans(
    file: &str,
    validate: Spanned<RawValidation>,
    on_failure: Spanned<RawFailure>,
) -> Result<(ValidationSpec, FailurePlan), PlaybookError> {
    let v = validate.value;
    let at = validate.referenced;
    let (timeout_secs, interval_secs) = (v.timeout_secs.value, v.interval_secs.value);
    if timeout_secs == 0 {
        return Err(invalid(
            file,
            &v.timeout_secs.referenced,
            "`timeout_secs` must be positive",
        ));
    }
    if interval_secs == 0 {
        return Err(invalid(
            file,
            &v.interval_secs.referenced,
            "`interval_secs` must be positive",
        ));
    }
    if interval_secs > timeout_secs {
        return Err(invalid(
            file,
            &v.interval_secs.referenced,
            "`interval_secs` is longer than `timeout_secs`",
        ));
    }
    if v.stable_polls == 0 {
        return Err(invalid(file, &at, "`stable_polls` must be at least 1"));
    }
    let expect = match v.expect.health.value.as_str() {
        "healthy" => HealthStatus::Healthy,
        "degraded" => HealthStatus::Degraded,
        "unhealthy" => HealthStatus::Unhealthy,
        other => {
            return Err(invalid(
                file,
                &v.expect.health.referenced,
                format!("`expect.health` is `{other}`: expected healthy, degraded or unhealthy"),
            ));
        }
    };
    let promql = match v.expect.promql {
        Some(q) => {
            let known = ["namespace", "pod", "service", "host"];
            let checked = crate::connectors::prometheus::promql::check(&q.value).and_then(|()| {
                match crate::connectors::prometheus::promql::placeholders(&q.value)
                    .into_iter()
                    .find(|p| !known.contains(&p.as_str()))
                {
                    Some(p) => Err(format!(
                        "placeholder `{{{p}}}` is not known; known: {}",
                        known.join(", ")
                    )),
                    None => Ok(()),
                }
            });
            if let Err(why) = checked {
                return Err(invalid(
                    file,
                    &q.referenced,
                    format!("`expect.promql`: {why}"),
                ));
            }
            Some(q.value)
        }
        None => None,
    };
    let validation = ValidationSpec {
        expect,
        promql,
        not_reasons: v.expect.not_reasons,
        timeout: Duration::from_secs(timeout_secs),
        interval: Duration::from_secs(interval_secs),
        stable_polls: v.stable_polls,
    };

    let f = on_failure.value;
    if f.escalate.is_empty() || f.escalate.iter().any(|c| c.trim().is_empty()) {
        return Err(invalid(
            file,
            &on_failure.referenced,
            "`on_failure.escalate` needs at least one contact",
        ));
    }
    Ok((
        validation,
        FailurePlan {
            restore: f.restore,
            escalate: f.escalate,
            message: f.message,
        },
    ))
}

fn branches(
    file: &str,
    raw: Vec<RawBranch>,
    ids: &mut Vec<String>,
) -> Result<Vec<Branch>, PlaybookError> {
    let mut out = Vec::new();
    for b in raw {
        let id = b.id.value.trim().to_string();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                file,
                &b.id.referenced,
                format!("branch id {id:?} must be letters, digits, `-` or `_`"),
            ));
        }
        if ids.contains(&id) {
            return Err(invalid(
                file,
                &b.id.referenced,
                format!("branch id `{id}` is used twice"),
            ));
        }
        ids.push(id.clone());
        let when = expr::parse(&b.when.value)
            .map_err(|e| invalid(file, &b.when.referenced, format!("in `when`: {e}")))?;
        let then = match (b.action, b.then) {
            (Some(action), None) => {
                let name = action.name.value.trim().to_string();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(invalid(
                        file,
                        &action.name.referenced,
                        format!("action name {name:?} must be snake_case"),
                    ));
                }
                let mut params = BTreeMap::new();
                let mut lines = BTreeMap::new();
                for (key, value) in action.params {
                    let t = Template::parse(&value.value).map_err(|e| {
                        invalid(file, &value.referenced, format!("parameter `{key}`: {e}"))
                    })?;
                    lines.insert(key.clone(), value.referenced.line());
                    params.insert(key, t);
                }
                BranchThen::Act(ActionTemplate {
                    name,
                    params,
                    lines: lines.into_values().collect(),
                })
            }
            (None, Some(children)) => {
                if children.value.is_empty() {
                    return Err(invalid(
                        file,
                        &children.referenced,
                        format!("branch `{id}` has an empty `then`"),
                    ));
                }
                BranchThen::Branches(branches(file, children.value, ids)?)
            }
            _ => {
                return Err(invalid(
                    file,
                    &b.id.referenced,
                    format!("branch `{id}` needs exactly one of `action` or `then`"),
                ));
            }
        };
        out.push(Branch {
            id,
            when,
            when_src: b.when.value,
            line: b.when.referenced.line(),
            description: b.description,
            then,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod promql_tests {
    use super::*;

    const WITH_PROMQL: &str = r#"name: custom
description: test playbook
trigger:
  alerts: [CustomAlert]
investigate:
  - evidence: prometheus
    window_mins: 5
decide:
  - id: scale
    when: 'prometheus.latency_p99_seconds > 0.5'
    action:
      name: scale
validate:
  expect:
    health: healthy
    promql: 'histogram_quantile(0.99, sum by (le) (rate(x{service="{service}"}[5m]))) < 0.5'
  timeout_secs: 60
  interval_secs: 10
on_failure:
  escalate: [team-oncall]
"#;

    #[test]
    fn the_promql_condition_is_read_and_checked_with_its_line() {
        let p = Playbook::parse("p.yaml", WITH_PROMQL).unwrap();
        assert!(
            p.validation
                .promql
                .as_deref()
                .unwrap()
                .contains(r#"service="{service}""#)
        );
        assert_eq!(p.investigate[0].evidence, Evidence::Prometheus);
        for (bad, why) in [
            ("rate(x[5m]) < 0.01)", "closes nothing"),
            ("up{pod=\"{podname}\"}", "{podname}"),
            ("", "empty"),
        ] {
            let text = WITH_PROMQL.replace(
                r#"'histogram_quantile(0.99, sum by (le) (rate(x{service="{service}"}[5m]))) < 0.5'"#,
                &format!("'{}'", bad.replace('\'', "''")),
            );
            let e = Playbook::parse("p.yaml", &text).unwrap_err().to_string();
            assert!(e.starts_with("p.yaml:16:"), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_prometheus_fact_needs_the_prometheus_step() {
        let text = WITH_PROMQL.replace(
            "  - evidence: prometheus\n    window_mins: 5",
            "  - evidence: health",
        );
        let e = Playbook::parse("p.yaml", &text).unwrap_err().to_string();
        assert!(e.contains("prometheus.latency_p99_seconds"), "{e}");
    }

    #[test]
    fn a_poll_passes_only_when_health_and_the_condition_both_hold() {
        let spec = Playbook::parse("p.yaml", WITH_PROMQL).unwrap().validation;
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let healthy = Health::healthy();
        let mut run = spec.start(t0);
        assert_eq!(
            run.observe_with(&healthy, &PromqlCheck::Empty, t0),
            Verdict::Pending
        );
        assert_eq!(
            run.observe_with(
                &healthy,
                &PromqlCheck::Unknown("no answer".into()),
                t0 + chrono::Duration::seconds(10)
            ),
            Verdict::Pending
        );
        // Unknown until the deadline: failed, saying why.
        match run.observe_with(
            &healthy,
            &PromqlCheck::Unknown("no answer within 1s".into()),
            t0 + chrono::Duration::seconds(60),
        ) {
            Verdict::Failed(why) => assert!(why.contains("unknown (no answer within 1s)"), "{why}"),
            v => panic!("{v:?}"),
        }
        let mut run = spec.start(t0);
        assert!(matches!(
            run.observe_with(&healthy, &PromqlCheck::Holds, t0),
            Verdict::Passed(_)
        ));
        // A spec with a condition is never passed by health alone.
        let mut run = spec.start(t0);
        assert_eq!(run.observe(&healthy, t0), Verdict::Pending);
    }
}
