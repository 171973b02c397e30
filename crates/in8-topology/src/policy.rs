//! The policies and what they decide.

use core::hash::Hash;

use crate::Error;
use crate::rank::{rendezvous, sort};

/// The role an application or invitation asks a node to play (mirrors
/// `in8_artifact::TopologyRole`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoleHint {
    /// Let the policy decide.
    #[default]
    Auto,
    /// Never a hub, core node or interior tree node if avoidable.
    Leaf,
    /// Preferred as hub / core node / root.
    Hub,
}

/// What one node knows about one member (itself included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member<P> {
    /// The member.
    pub id: P,
    /// Publicly reachable (no NAT, or a port mapping): can accept links from anyone.
    pub reachable: bool,
    /// Relative capacity (bandwidth, uptime; higher is better).
    pub capacity: u16,
    /// The role it was invited for.
    pub hint: RoleHint,
    /// Measured round trip from the deciding node, in milliseconds.
    pub rtt_ms: Option<u32>,
}

impl<P> Member<P> {
    /// A member with default attributes (not reachable, capacity 1, no hint, no RTT).
    pub fn new(id: P) -> Self {
        Self {
            id,
            reachable: false,
            capacity: 1,
            hint: RoleHint::Auto,
            rtt_ms: None,
        }
    }
}

/// What a node decides from.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a, P> {
    /// The deciding node.
    pub me: P,
    /// The members it knows, normally including itself (if absent, it is ranked with
    /// default attributes).
    pub members: &'a [Member<P>],
    /// Measured round trips between pairs of members, in milliseconds (for
    /// [`Policy::SpanningTree`]); may be empty.
    pub rtts: &'a [(P, P, u32)],
}

impl<'a, P> Input<'a, P> {
    /// An input without pairwise measurements.
    pub fn new(me: P, members: &'a [Member<P>]) -> Self {
        Self {
            me,
            members,
            rtts: &[],
        }
    }
}

/// The part a node plays in the decided overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A full-mesh member.
    Peer,
    /// A hub (star) or a core node (hierarchical).
    Hub,
    /// The root of a tree or DAG.
    Root,
    /// A tree / DAG node with children.
    Interior,
    /// A node others do not attach to.
    Leaf,
    /// No structure: random partial view only.
    Random,
}

/// What a policy decided for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired<P> {
    /// Links this node should open and keep (pinned). Links others open towards it are
    /// accepted by them pinning; they do not appear here.
    pub links: Vec<P>,
    /// This node's role.
    pub role: Role,
    /// Whether the random partial view should stay (hybrids, [`Policy::Random`]).
    pub random: bool,
}

/// An overlay policy. Parameters are checked by [`Policy::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Everyone links to everyone (up to `max_links` links per node; past that, each node
    /// picks its `max_links` by rendezvous hashing, which spreads the load).
    Mesh {
        /// Bound on links per node (1..=1024).
        max_links: usize,
    },
    /// `hubs` best-ranked nodes link to each other; everyone else links to every hub.
    Star {
        /// Number of hubs (1..=16).
        hubs: usize,
    },
    /// A `fanout`-ary tree over the ranked members (heap layout: the best-ranked node is
    /// the root, node `i`'s parent is `(i - 1) / fanout`).
    Tree {
        /// Children per node (1..=64).
        fanout: usize,
    },
    /// The minimum spanning tree of the measured round trips ([`Input::rtts`]); members not
    /// connected by measurements join through a binary tree by rank.
    SpanningTree,
    /// Each node links to `parents` nodes ranked above it (chosen by rendezvous hashing):
    /// a directed acyclic graph towards the root that survives `parents - 1` failures.
    Dag {
        /// Parents per node (1..=8).
        parents: usize,
    },
    /// The `core` best-ranked nodes (publicly reachable first) mesh with each other; every
    /// other node attaches to `attach` (≥ 2) core nodes, the nearest by measured round
    /// trip, ties spread by rendezvous hashing.
    Hierarchical {
        /// Core size (1..=256).
        core: usize,
        /// Core nodes per other node (2..=8).
        attach: usize,
    },
    /// No pinned links: the gossip layer's random partial view (HyParView) is the overlay.
    Random,
    /// The union of two policies' links.
    Hybrid(Box<Policy>, Box<Policy>),
}

impl Policy {
    /// Checks the parameter ranges.
    pub fn validate(&self) -> Result<(), Error> {
        let check = |ok: bool, field, range| {
            if ok {
                Ok(())
            } else {
                Err(Error::BadParameter { field, range })
            }
        };
        match self {
            Policy::Mesh { max_links } => {
                check((1..=1024).contains(max_links), "max_links", "1..=1024")
            }
            Policy::Star { hubs } => check((1..=16).contains(hubs), "hubs", "1..=16"),
            Policy::Tree { fanout } => check((1..=64).contains(fanout), "fanout", "1..=64"),
            Policy::Dag { parents } => check((1..=8).contains(parents), "parents", "1..=8"),
            Policy::Hierarchical { core, attach } => {
                check((1..=256).contains(core), "core", "1..=256")?;
                check((2..=8).contains(attach), "attach", "2..=8")
            }
            Policy::SpanningTree | Policy::Random => Ok(()),
            Policy::Hybrid(a, b) => {
                a.validate()?;
                b.validate()
            }
        }
    }

    /// A short name (`mesh`, `star`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Mesh { .. } => "mesh",
            Policy::Star { .. } => "star",
            Policy::Tree { .. } => "tree",
            Policy::SpanningTree => "spanning-tree",
            Policy::Dag { .. } => "dag",
            Policy::Hierarchical { .. } => "hierarchical",
            Policy::Random => "random",
            Policy::Hybrid(..) => "hybrid",
        }
    }

    /// Decides `input.me`'s links. Deterministic: the same input gives the same output.
    pub fn desired<P: Copy + Ord + Hash>(&self, input: &Input<'_, P>) -> Desired<P> {
        let me_default = Member::new(input.me);
        let mut ranked: Vec<&Member<P>> = input.members.iter().collect();
        if !ranked.iter().any(|m| m.id == input.me) {
            ranked.push(&me_default);
        }
        sort(&mut ranked);
        ranked.dedup_by(|a, b| a.id == b.id);
        let ids: Vec<P> = ranked.iter().map(|m| m.id).collect();
        let i = ids.iter().position(|p| *p == input.me).unwrap_or(0);
        let n = ids.len();
        let others = |v: &[P]| -> Vec<P> { v.iter().copied().filter(|p| *p != input.me).collect() };
        match self {
            Policy::Mesh { max_links } => {
                let mut links = others(&ids);
                if links.len() > *max_links {
                    // More members than links: each node picks its own subset by
                    // rendezvous hashing, so no member is everyone's choice.
                    links.sort_by_key(|c| core::cmp::Reverse(rendezvous(&input.me, c)));
                    links.truncate(*max_links);
                }
                Desired {
                    links,
                    role: Role::Peer,
                    random: false,
                }
            }
            Policy::Star { hubs } => {
                let h = (*hubs).min(n);
                Desired {
                    links: others(&ids[..h]),
                    role: if i < h { Role::Hub } else { Role::Leaf },
                    random: false,
                }
            }
            Policy::Tree { fanout } => {
                let f = (*fanout).max(1);
                let mut links = Vec::new();
                if i > 0 {
                    links.push(ids[(i - 1) / f]);
                }
                let first = i * f + 1;
                links.extend(ids.iter().skip(first).take(f).copied());
                let role = if i == 0 {
                    Role::Root
                } else if first < n {
                    Role::Interior
                } else {
                    Role::Leaf
                };
                Desired {
                    links,
                    role,
                    random: false,
                }
            }
            Policy::SpanningTree => spanning_tree(&ids, input),
            Policy::Dag { parents } => {
                let mut cands: Vec<P> = ids[..i].to_vec();
                cands.sort_by_key(|c| core::cmp::Reverse(rendezvous(&input.me, c)));
                cands.truncate(*parents);
                let has_children = i + 1 < n;
                Desired {
                    links: cands,
                    role: if i == 0 {
                        Role::Root
                    } else if has_children {
                        Role::Interior
                    } else {
                        Role::Leaf
                    },
                    random: false,
                }
            }
            Policy::Hierarchical { core, attach } => {
                let c = (*core).min(n);
                if i < c {
                    return Desired {
                        links: others(&ids[..c]),
                        role: Role::Hub,
                        random: false,
                    };
                }
                let mut cands: Vec<&Member<P>> = ranked[..c].to_vec();
                cands.sort_by_key(|m| {
                    (
                        m.rtt_ms.unwrap_or(u32::MAX),
                        core::cmp::Reverse(rendezvous(&input.me, &m.id)),
                    )
                });
                Desired {
                    links: cands.iter().take(*attach).map(|m| m.id).collect(),
                    role: Role::Leaf,
                    random: false,
                }
            }
            Policy::Random => Desired {
                links: Vec::new(),
                role: Role::Random,
                random: true,
            },
            Policy::Hybrid(a, b) => {
                let (da, db) = (a.desired(input), b.desired(input));
                let mut links = da.links;
                for l in db.links {
                    if !links.contains(&l) {
                        links.push(l);
                    }
                }
                Desired {
                    links,
                    role: da.role,
                    random: da.random || db.random,
                }
            }
        }
    }
}

/// Kruskal over the measured pairs, then a binary tree by rank joins what is left.
fn spanning_tree<P: Copy + Ord + Hash>(ids: &[P], input: &Input<'_, P>) -> Desired<P> {
    let n = ids.len();
    let index = |p: &P| ids.iter().position(|q| q == p);
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut edges: Vec<(u32, usize, usize)> = input
        .rtts
        .iter()
        .filter_map(|(a, b, r)| Some((*r, index(a)?, index(b)?)))
        .filter(|(_, a, b)| a != b)
        .map(|(r, a, b)| (r, a.min(b), a.max(b)))
        .collect();
    edges.sort_unstable();
    let mut tree: Vec<(usize, usize)> = Vec::new();
    for (_, a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
            tree.push((a, b));
        }
    }
    for v in 1..n {
        let p = (v - 1) / 2;
        let (rv, rp) = (find(&mut parent, v), find(&mut parent, p));
        if rv != rp {
            parent[rv.max(rp)] = rv.min(rp);
            tree.push((p, v));
        }
    }
    let me = index(&input.me).unwrap_or(0);
    let links: Vec<P> = tree
        .iter()
        .filter_map(|&(a, b)| {
            if a == me {
                Some(ids[b])
            } else if b == me {
                Some(ids[a])
            } else {
                None
            }
        })
        .collect();
    let role = match (me, links.len()) {
        (0, _) => Role::Root,
        (_, 0 | 1) => Role::Leaf,
        _ => Role::Interior,
    };
    Desired {
        links,
        role,
        random: false,
    }
}
