//! One line per measured goal, in the form `scripts/bench.sh` collects:
//! `goal: WHAT | MEASURED | GOAL | met` (or `NOT MET`).

/// Prints a goal line for a figure where lower is better.
#[allow(dead_code)]
pub fn at_most(what: &str, measured: f64, limit: f64, unit: &str) {
    line(
        what,
        measured,
        unit,
        &format!("≤ {limit} {unit}"),
        measured <= limit,
    );
}

/// Prints a goal line for a figure where higher is better.
#[allow(dead_code)]
pub fn at_least(what: &str, measured: f64, limit: f64, unit: &str) {
    line(
        what,
        measured,
        unit,
        &format!("≥ {limit} {unit}"),
        measured >= limit,
    );
}

fn line(what: &str, measured: f64, unit: &str, goal: &str, met: bool) {
    let verdict = if met { "met" } else { "NOT MET" };
    println!("goal: {what} | {measured:.2} {unit} | {goal} | {verdict}");
}
