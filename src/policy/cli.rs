//! `shieldops policy test` and `shieldops policy eval`: the command-line
//! front of the gate, printing like `opa test -v` and `opa eval`.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use super::{Bundle, Gate, GateOptions};

/// A test rule found in a module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestRule {
    file: String,
    package: String,
    rule: String,
}

/// How long one test may run before it counts as an error.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Runs every `test_*` rule of the `.rego` files under `dir` (with its
/// `data.json`), prints one line per test and a summary, and returns the exit
/// code: 0 when all pass, 1 when any fails or errors, 2 when there are none.
pub fn policy_test(dir: &Path, coverage: bool, out: &mut dyn Write) -> anyhow::Result<i32> {
    let bundle = Bundle::from_dir(dir, true)?;
    let mut engine = bundle.engine()?;
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: TEST_TIME_LIMIT,
        check_interval: NonZeroU32::new(32).unwrap_or(NonZeroU32::MIN),
    });
    engine.set_enable_coverage(coverage);
    let tests = test_rules(&mut engine);
    if tests.is_empty() {
        writeln!(out, "no test_* rules found under {}", dir.display())?;
        return Ok(2);
    }

    let (mut passed, mut failed, mut errored) = (0usize, 0usize, 0usize);
    let mut current_file = None;
    for test in &tests {
        if current_file.as_ref() != Some(&test.file) {
            if current_file.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "{}:", test.file)?;
            current_file = Some(test.file.clone());
        }
        let started = Instant::now();
        let result = engine.eval_rule(format!("data.{}.{}", test.package, test.rule));
        let took = format_duration(started.elapsed());
        let name = format!("data.{}.{}", test.package, test.rule);
        match result {
            Ok(Value::Bool(true)) => {
                passed += 1;
                writeln!(out, "{name}: PASS ({took})")?;
            }
            Ok(_) => {
                failed += 1;
                writeln!(out, "{name}: FAIL ({took})")?;
            }
            Err(e) => {
                errored += 1;
                writeln!(out, "{name}: ERROR ({took})")?;
                for line in format!("{e:#}").lines() {
                    writeln!(out, "  {line}")?;
                }
            }
        }
    }

    let total = tests.len();
    writeln!(out, "{}", "-".repeat(80))?;
    if passed > 0 {
        writeln!(out, "PASS: {passed}/{total}")?;
    }
    if failed > 0 {
        writeln!(out, "FAIL: {failed}/{total}")?;
    }
    if errored > 0 {
        writeln!(out, "ERROR: {errored}/{total}")?;
    }
    if coverage {
        print_coverage(&engine, out)?;
    }
    Ok(if failed + errored == 0 { 0 } else { 1 })
}

/// Evaluates the decision for the input document in `input` (JSON) with the
/// embedded bundle, overridden by `dir` and then by the data document `data`,
/// and prints it as JSON. Returns 0 whenever a decision was printed (an
/// evaluation failure prints a fail-closed deny, as the gate would decide).
pub fn policy_eval(
    input: &Path,
    data: Option<&Path>,
    dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read input {}", input.display()))?;
    let input_doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", input.display(), e.line(), e.column()))?;
    let mut bundle = Bundle::load(dir)?;
    if let Some(path) = data {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read data {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
        anyhow::ensure!(
            doc.is_object(),
            "{}: the data document must be a JSON object",
            path.display()
        );
        bundle.merge_data(doc);
    }
    let gate = Gate::new(&bundle, GateOptions::default())?;
    let decision = gate.decide_value(&input_doc);
    writeln!(out, "{}", serde_json::to_string_pretty(&decision)?)?;
    Ok(0)
}

/// Every `test_*` rule, in file order then source order, once per name.
fn test_rules(engine: &mut regorus::Engine) -> Vec<TestRule> {
    use regorus::unstable::{Rule, RuleHead};
    let mut tests: Vec<TestRule> = Vec::new();
    let mut modules: Vec<_> = engine.get_modules().to_vec();
    modules.sort_by(|a, b| {
        a.package
            .span
            .source
            .get_path()
            .cmp(b.package.span.source.get_path())
    });
    for module in modules {
        let file = module.package.span.source.get_path().clone();
        let package = module.package.refr.span().text().to_string();
        for rule in &module.policy {
            // Only plain `test_x if { … }` rules are tests (as in OPA), not functions.
            let Rule::Spec {
                head: RuleHead::Compr { refr, .. },
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            let name = refr.span().text();
            let is_ident = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name.starts_with("test_") || !is_ident {
                continue;
            }
            let test = TestRule {
                file: file.clone(),
                package: package.clone(),
                rule: name.to_string(),
            };
            if !tests.contains(&test) {
                tests.push(test);
            }
        }
    }
    tests
}

fn print_coverage(engine: &regorus::Engine, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = engine
        .get_coverage_report()
        .context("coverage report unavailable")?;
    writeln!(out, "{}", "-".repeat(80))?;
    writeln!(out, "COVERAGE:")?;
    let (mut all_covered, mut all_total) = (0usize, 0usize);
    let mut files = report.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in &files {
        let covered = file.covered.len();
        let total = covered + file.not_covered.len();
        all_covered += covered;
        all_total += total;
        let pct = percent(covered, total);
        write!(
            out,
            "{:>6.1}%  {}  ({covered}/{total} lines)",
            pct, file.path
        )?;
        if !file.not_covered.is_empty() {
            let lines: Vec<String> = ranges(&file.not_covered);
            write!(out, "  not covered: {}", lines.join(","))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{:>6.1}%  total  ({all_covered}/{all_total} lines)",
        percent(all_covered, all_total)
    )?;
    Ok(())
}

fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

/// `{3,4,5,9}` → `["3-5", "9"]`.
fn ranges(lines: &std::collections::BTreeSet<u32>) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = lines.iter().copied();
    let Some(mut start) = iter.next() else {
        return out;
    };
    let mut end = start;
    for line in iter {
        if line == end + 1 {
            end = line;
            continue;
        }
        out.push(range(start, end));
        start = line;
        end = line;
    }
    out.push(range(start, end));
    out
}

fn range(start: u32, end: u32) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1}µs")
    } else if micros < 1e6 {
        format!("{:.2}ms", micros / 1000.0)
    } else {
        format!("{:.2}s", micros / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_runs() {
        let set = [1, 2, 3, 7, 9, 10].into_iter().collect();
        assert_eq!(ranges(&set), vec!["1-3", "7", "9-10"]);
    }
}
