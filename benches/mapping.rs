//! Mapping-rule evaluation throughput (placeholder until the benchmark lands).
fn main() {}
