//! # in8-topology
//!
//! Overlay policies for in8 networks: given what a node knows about the members (who is
//! publicly reachable, capacity, a role hint, measured round trips), a [`Policy`] decides
//! which links this node should keep. The gossip layer then pins those links
//! (`in8_gossip::State::set_pinned`) on top of, or instead of, its random partial view.
//!
//! Sans-IO and deterministic: no clock (time is an argument), no randomness (ties are
//! broken by the members' ids and a fixed hash), no I/O. Two nodes that know the same
//! members compute consistent decisions: the same hubs, the same core, the same tree.
//!
//! | policy | links of a node | for |
//! |--------|-----------------|-----|
//! | [`Policy::Mesh`] | every member | small groups (≤ a few dozen) |
//! | [`Policy::Star`] | hubs: each other; others: every hub | small groups with a few strong nodes |
//! | [`Policy::Tree`] | parent and children in a `fanout`-ary tree by rank | fan-out of data, low degree |
//! | [`Policy::SpanningTree`] | minimum spanning tree of the measured round trips | latency-aware tree |
//! | [`Policy::Dag`] | `parents` parents among higher-ranked nodes | tree with redundancy |
//! | [`Policy::Hierarchical`] | core: the other core nodes; others: `attach` (≥ 2) core nodes | large networks with reachable super-peers |
//! | [`Policy::Random`] | none pinned: HyParView's random partial view | very large, uniform networks |
//! | [`Policy::Hybrid`] | the union of two policies | e.g. hierarchical core + random links |
//!
//! [`Auto`] chooses among them as the network grows or conditions change, with hysteresis
//! and a minimum dwell time so it does not flap.
//!
//! ```
//! use in8_topology::{Input, Member, Policy};
//!
//! let members: Vec<Member<u32>> = (0..10)
//!     .map(|i| Member { reachable: i < 3, ..Member::new(i) })
//!     .collect();
//! let input = Input::new(7, &members);
//! // Node 7 is behind a NAT: it attaches to two of the three reachable core nodes.
//! let d = Policy::Hierarchical { core: 3, attach: 2 }.desired(&input);
//! assert_eq!(d.links.len(), 2);
//! assert!(d.links.iter().all(|l| *l < 3));
//! ```

mod auto;
mod error;
mod policy;
mod rank;

pub use auto::{Auto, AutoConfig, Conditions, Stage};
pub use error::Error;
pub use policy::{Desired, Input, Member, Policy, Role, RoleHint};
