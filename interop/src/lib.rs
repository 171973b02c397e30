//! # in8-interop: the NAT lab and interop harness
//!
//! in8 exists to get through NATs; this crate proves it on real Linux NATs. It builds a lab
//! of network namespaces joined by veth pairs: an "internet" router with public TEST-NET
//! addresses, a server running coturn (STUN + TURN, RFC 5780 on two addresses), and sites
//! whose hosts sit behind NAT routers of a selectable type ([`NatType`]: none, full cone,
//! restricted, port-restricted, symmetric, CGNAT), each with optional link impairment
//! ([`Impairment`]: delay, jitter, loss through NFQUEUE and a userspace [`impair::Delayer`]).
//! No veth end is in the machine's own namespace, so lab traffic cannot leave the lab.
//!
//! Everything is torn down by guards: dropping a [`Lab`] stops its delayers, coturn and the
//! processes left in its namespaces and deletes the namespaces (and so every veth), also
//! while a test panics. Leftovers of a killed run are removed by [`clean::stale`] (every
//! [`Lab::start`] calls it) or [`clean::all`] (`cargo xtask interop clean`).
//!
//! ```no_run
//! use in8_interop::{Lab, LabConfig, NatType};
//! # fn main() -> in8_interop::Result<()> {
//! let lab = Lab::start(&LabConfig::pair(NatType::FullCone, NatType::Symmetric))?;
//! let alice = lab.host(0)?;
//! // Run a program on a host and collect its output:
//! let out = alice.output("ip", &["-4", "addr"], std::time::Duration::from_secs(5))?;
//! assert!(out.stdout.contains("10.1.0.2"));
//! // Or use a socket that lives in the host's namespace from this process:
//! let socket = alice.udp_socket(0)?;
//! let stun = lab.coturn().expect("the lab runs coturn").stun_addr();
//! let reflexive = in8_interop::stun::query(&socket, stun, std::time::Duration::from_secs(2))?;
//! # let _ = reflexive;
//! # Ok(()) }
//! ```
//!
//! Needs root and the Debian packages in [`command::TOOLS`]; `cargo xtask interop`
//! installs them and runs [`selftest`]. The lab's tests are `#[ignore]`d so that
//! `cargo test --workspace` passes anywhere; the design is in `docs/lab.md`.

pub mod clean;
pub mod command;
pub mod coturn;
mod error;
pub mod impair;
pub mod lab;
pub mod matrix;
pub mod nat;
pub mod natdiscovery;
pub mod netns;
pub mod network;
pub mod plan;
pub mod process;
pub mod punch;
pub mod selftest;
pub mod stun;
pub mod venv;

pub use error::{Error, Result};
pub use impair::Impairment;
pub use lab::{Host, Lab, LabConfig, Site, SiteConfig};
pub use nat::NatType;
