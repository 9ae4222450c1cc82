//! The redactor on log text: ordinary lines (the common case: one pass of the
//! rule set, nothing replaced) and lines that hold secrets (each matching rule
//! replaces), as lines per second. The inputs are the corpora the redactor's
//! tests use (src/redact/corpus/).
//!
//! Run: `cargo bench --bench redact`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use shieldops::redact;

const ORDINARY: &str = include_str!("../src/redact/corpus/ordinary.txt");
const SECRETS: &str = include_str!("../src/redact/corpus/secrets.txt");

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let ordinary: Vec<&str> = ORDINARY.lines().collect();
    let secrets: Vec<&str> = SECRETS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("secret: ") && *l != "---")
        .collect();
    let mut g = c.benchmark_group("redact");
    g.throughput(Throughput::Elements(ordinary.len() as u64));
    g.bench_function("ordinary lines, one at a time", |b| {
        b.iter(|| {
            for l in &ordinary {
                black_box(redact::line(l));
            }
        })
    });
    g.bench_function("ordinary lines, as one text", |b| {
        b.iter(|| black_box(redact::text(ORDINARY)))
    });
    g.throughput(Throughput::Elements(secrets.len() as u64));
    g.bench_function("lines with secrets, one at a time", |b| {
        b.iter(|| {
            for l in &secrets {
                black_box(redact::line(l));
            }
        })
    });
    g.finish();
    c.final_summary();
}
