//! Runs one scenario file and prints its table (development helper; `cargo xtask sim`
//! is the real entry point).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

fn main() {
    let path = std::env::args().nth(1).expect("scenario path");
    let sc = in8_sim::load(std::path::Path::new(&path)).unwrap();
    let r = in8_sim::run(sc).unwrap();
    println!("{}", r.table());
    for s in r.samples.iter().step_by(5) {
        println!("{:?}", s);
    }
}
