//! Every policy's structure over whole networks: each node decides alone from the same
//! member list, and the union of the decisions must have the promised shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use in8_topology::{Auto, AutoConfig, Conditions, Input, Member, Policy, Role, Stage};
use proptest::prelude::*;

fn members(n: u32, reachable: u32) -> Vec<Member<u32>> {
    (0..n)
        .map(|i| Member {
            reachable: i % (n / reachable.max(1)).max(1) == 0
                && i / (n / reachable.max(1)).max(1) < reachable,
            ..Member::new(i)
        })
        .collect()
}

/// The undirected link set when every node applies `policy` on the same members.
fn links(policy: &Policy, ms: &[Member<u32>], rtts: &[(u32, u32, u32)]) -> BTreeSet<(u32, u32)> {
    let mut set = BTreeSet::new();
    for m in ms {
        let input = Input {
            me: m.id,
            members: ms,
            rtts,
        };
        for l in policy.desired(&input).links {
            assert_ne!(l, m.id, "no self links");
            set.insert((m.id.min(l), m.id.max(l)));
        }
    }
    set
}

fn connected(n: u32, edges: &BTreeSet<(u32, u32)>) -> bool {
    let mut adj: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(a, b) in edges {
        adj.entry(a).or_default().push(b);
        adj.entry(b).or_default().push(a);
    }
    let mut seen = BTreeSet::from([0u32]);
    let mut stack = vec![0u32];
    while let Some(x) = stack.pop() {
        for &y in adj.get(&x).into_iter().flatten() {
            if seen.insert(y) {
                stack.push(y);
            }
        }
    }
    seen.len() as u32 == n
}

fn degree(edges: &BTreeSet<(u32, u32)>, v: u32) -> usize {
    edges.iter().filter(|(a, b)| *a == v || *b == v).count()
}

#[test]
fn mesh_links_everyone() {
    let ms = members(12, 0);
    let e = links(&Policy::Mesh { max_links: 64 }, &ms, &[]);
    assert_eq!(e.len(), 12 * 11 / 2);
}

#[test]
fn star_hubs_are_reachable_nodes_and_leaves_attach_to_all_hubs() {
    let ms = members(40, 4);
    let policy = Policy::Star { hubs: 2 };
    let e = links(&policy, &ms, &[]);
    let hubs: Vec<u32> = ms
        .iter()
        .filter(|m| policy.desired(&Input::new(m.id, &ms)).role == Role::Hub)
        .map(|m| m.id)
        .collect();
    assert_eq!(hubs.len(), 2);
    assert!(hubs.iter().all(|h| ms[*h as usize].reachable));
    assert_eq!(e.len(), 1 + 38 * 2);
    for h in &hubs {
        assert_eq!(degree(&e, *h), 39);
    }
}

#[test]
fn tree_is_a_spanning_tree_with_bounded_degree() {
    let ms = members(100, 5);
    let e = links(&Policy::Tree { fanout: 3 }, &ms, &[]);
    assert_eq!(e.len(), 99);
    assert!(connected(100, &e));
    assert!((0..100).all(|v| degree(&e, v) <= 4));
}

#[test]
fn spanning_tree_is_minimal_on_full_measurements() {
    let n = 30u32;
    let ms = members(n, 3);
    let w = |a: u32, b: u32| 1 + (a * 7919 + b * 104_729) % 97;
    let mut rtts = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            rtts.push((a, b, w(a, b)));
        }
    }
    let e = links(&Policy::SpanningTree, &ms, &rtts);
    assert_eq!(e.len() as u32, n - 1);
    assert!(connected(n, &e));
    // Prim's algorithm gives the minimum weight independently.
    let mut in_tree = vec![false; n as usize];
    let mut best = vec![u32::MAX; n as usize];
    best[0] = 0;
    let mut total = 0;
    for _ in 0..n {
        let v = (0..n as usize)
            .filter(|&v| !in_tree[v])
            .min_by_key(|&v| best[v])
            .unwrap();
        in_tree[v] = true;
        total += best[v];
        for u in 0..n as usize {
            if !in_tree[u] {
                best[u] = best[u].min(w(v.min(u) as u32, v.max(u) as u32));
            }
        }
    }
    let got: u32 = e.iter().map(|&(a, b)| w(a, b)).sum();
    assert_eq!(got, total);
}

#[test]
fn dag_has_k_parents_ranked_above_and_no_cycle() {
    let ms = members(60, 6);
    let policy = Policy::Dag { parents: 2 };
    let mut roots = 0;
    // Ranks: the order in which parents are allowed; a parent must have a lower rank, so
    // following parent edges always terminates at the root.
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for m in &ms {
        let d = policy.desired(&Input::new(m.id, &ms));
        if d.role == Role::Root {
            roots += 1;
            assert!(d.links.is_empty());
        } else {
            assert!(!d.links.is_empty() && d.links.len() <= 2);
        }
        parents.insert(m.id, d.links);
    }
    assert_eq!(roots, 1);
    for start in 0..60u32 {
        let mut x = start;
        for _ in 0..=60 {
            match parents[&x].first() {
                Some(&p) => x = p,
                None => break,
            }
        }
        assert!(
            parents[&x].is_empty(),
            "walk from {start} did not reach the root"
        );
    }
    let e = links(&policy, &ms, &[]);
    assert!(connected(60, &e));
}

#[test]
fn hierarchical_core_is_reachable_and_others_attach_twice() {
    let ms = members(200, 10);
    let policy = Policy::Hierarchical { core: 6, attach: 2 };
    let e = links(&policy, &ms, &[]);
    let mut core = 0;
    for m in &ms {
        let d = policy.desired(&Input::new(m.id, &ms));
        if d.role == Role::Hub {
            core += 1;
            assert!(m.reachable);
            assert_eq!(d.links.len(), 5);
        } else {
            assert_eq!(d.links.len(), 2);
        }
    }
    assert_eq!(core, 6);
    assert!(connected(200, &e));
    // Rendezvous hashing spreads the attachments: no core node takes more than half.
    let max = (0..200).map(|v| degree(&e, v)).max().unwrap();
    assert!(max < 120, "max core degree {max}");
}

#[test]
fn hierarchical_prefers_the_nearest_core_nodes() {
    let mut ms = members(50, 5);
    for m in &mut ms {
        m.rtt_ms = Some(if m.id == 40 { 1 } else { 100 + m.id });
    }
    ms[40].reachable = true;
    let d = Policy::Hierarchical { core: 6, attach: 2 }.desired(&Input::new(7, &ms));
    assert!(d.links.contains(&40));
}

#[test]
fn hybrid_is_the_union_and_keeps_random_links() {
    let ms = members(30, 3);
    let p = Policy::Hybrid(
        Box::new(Policy::Hierarchical { core: 3, attach: 2 }),
        Box::new(Policy::Random),
    );
    let d = p.desired(&Input::new(20, &ms));
    assert_eq!(d.links.len(), 2);
    assert!(d.random);
}

#[test]
fn bad_parameters_are_refused() {
    assert!(Policy::Star { hubs: 0 }.validate().is_err());
    assert!(
        Policy::Hierarchical { core: 4, attach: 1 }
            .validate()
            .is_err()
    );
    assert!(Policy::Dag { parents: 9 }.validate().is_err());
    assert!(
        Auto::new(AutoConfig {
            hysteresis: 1.5,
            ..AutoConfig::default()
        })
        .is_err()
    );
}

#[test]
fn auto_does_not_flap_around_a_threshold() {
    let mut a = Auto::new(AutoConfig::default()).unwrap();
    let mut switches = Vec::new();
    // The size wobbles between 11 and 14 around mesh_max = 12 for ten minutes.
    for t in 0..600u64 {
        let size = 11 + (t * 7 % 4);
        if let Some(s) = a.update(
            Duration::from_secs(t),
            &Conditions {
                size,
                reachable_fraction: 0.3,
            },
        ) {
            switches.push((t, s));
        }
    }
    assert!(switches.is_empty(), "{switches:?}");
    assert_eq!(a.stage(), Stage::Mesh);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decisions_do_not_depend_on_member_order(seed in any::<u64>(), n in 2u32..80) {
        let ms = members(n, 4);
        let mut shuffled = ms.clone();
        // A deterministic permutation from the seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (seed.wrapping_mul(i as u64 + 1) >> 7) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        for p in [
            Policy::Star { hubs: 2 },
            Policy::Tree { fanout: 2 },
            Policy::Dag { parents: 2 },
            Policy::Hierarchical { core: 4, attach: 2 },
        ] {
            for m in &ms {
                let a = p.desired(&Input::new(m.id, &ms));
                let b = p.desired(&Input::new(m.id, &shuffled));
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn auto_respects_dwell_and_bands(sizes in proptest::collection::vec(1u64..60_000, 1..200)) {
        let cfg = AutoConfig::default();
        let mut a = Auto::new(cfg.clone()).unwrap();
        let mut last: Option<u64> = None;
        for (t, size) in sizes.iter().enumerate() {
            let t = t as u64 * 5;
            let before = a.stage();
            if let Some(s) = a.update(Duration::from_secs(t), &Conditions { size: *size, reachable_fraction: 0.5 }) {
                if let Some(l) = last {
                    prop_assert!(t - l >= cfg.min_dwell.as_secs());
                }
                last = Some(t);
                // Up-switches need the size beyond the band, down-switches below it.
                let n = *size as f64;
                match (before, s) {
                    (Stage::Mesh, Stage::Hierarchical) => prop_assert!(n > 12.0 * 1.25),
                    (Stage::Hierarchical, Stage::Mesh) | (Stage::Random, Stage::Mesh) => prop_assert!(n < 12.0 * 0.75),
                    (_, Stage::Random) => prop_assert!(n > 20_000.0 * 1.25),
                    (Stage::Random, Stage::Hierarchical) => prop_assert!(n < 20_000.0 * 0.75),
                    _ => {}
                }
            }
        }
    }
}
