//! Building networks in the deterministic harness.
#![allow(dead_code, unreachable_pub)] // shared by several test crates, each using a part

use in8_core::harness::{Harness, Site};

/// Logs to stderr as `IN8_LOG` says (for debugging a seed).
pub fn trace() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IN8_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub use in8_core::harness::build::{
    Joined, connected, converged, deaths_noticed, mixed_sites, reachable,
};

/// [`in8_core::harness::build::join`], failing with the error's text.
pub fn join(h: &mut Harness, j: usize, inviter: usize, entry: usize) -> Result<Joined, String> {
    in8_core::harness::build::join(h, j, inviter, entry).map_err(|e| e.to_string())
}

/// [`in8_core::harness::build::network`]; panics (failing the test) naming the seed.
pub fn network(seed: u64, sites: &[Site]) -> Harness {
    in8_core::harness::build::network(seed, sites).unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}
