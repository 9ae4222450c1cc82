//! Render benchmarks (being written).
fn main() {}
