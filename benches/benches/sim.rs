//! Simulator benchmarks: whole scenario runs (events per second in the release profile).
//! Scale runs (10^5, 10^6 nodes) are not benchmarks: `cargo xtask sim scale-100k` /
//! `scale-1m`. Results: docs/results/sim.md.

#![allow(clippy::panic)] // benchmark fixtures may panic

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

fn scenario(name: &str) -> in8_sim::Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/in8-sim/scenarios")
        .join(format!("{name}.toml"));
    in8_sim::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sim(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for name in ["steady-100", "kill-50-1000", "nat-mix-300"] {
        let sc = scenario(name);
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = in8_sim::run(sc.clone()).unwrap_or_else(|e| panic!("{e}"));
                black_box(r.events)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sim);
criterion_main!(benches);
