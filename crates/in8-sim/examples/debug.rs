//! Development helper: run to a time, print one node's neighbourhood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let sc = in8_sim::load(std::path::Path::new(&a[1])).unwrap();
    let t: f64 = a[2].parse().unwrap();
    let node: u32 = a[3].parse().unwrap();
    let mut sim = in8_sim::Sim::new(sc).unwrap();
    sim.run_until(in8_gossip::Time::from_micros((t * 1e6) as u64));
    println!("isolated: {:?}", sim.isolated());
    let c = sim.components();
    println!("components: {:?}", c.iter().skip(1).collect::<Vec<_>>());
    println!("{}", sim.describe(node));
}
