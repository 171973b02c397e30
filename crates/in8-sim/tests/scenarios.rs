//! The figures the network-growth issue asks for, with fixed seeds, at 100 and 1,000 nodes:
//! each test runs a scenario file from `scenarios/` (optionally resized) and asserts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::path::Path;

use in8_sim::{Report, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    in8_sim::load(&path).unwrap()
}

fn run(sc: Scenario) -> Report {
    let r = in8_sim::run(sc).unwrap();
    println!("{}", r.table());
    r
}

fn resized(name: &str, nodes: u32) -> Scenario {
    let mut sc = scenario(name);
    sc.nodes = nodes;
    sc.join.interval_ms = sc.join.interval_ms.max(20.0);
    sc
}

/// Steady state, one sender: nothing missed; after the first broadcast has pruned the
/// tree, relative message redundancy < 0.2; last delivery hop < 15 at 100 nodes.
#[test]
fn steady_state_100() {
    let r = run(scenario("steady-100"));
    assert_eq!(r.broadcasts.len(), 10);
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0, "broadcast {} missed {}", b.id, b.missed);
        assert_eq!(b.eligible, 100);
        assert!(b.ldh < 15, "LDH {} at 100 nodes", b.ldh);
    }
    for b in &r.broadcasts[1..] {
        assert!(b.rmr < 0.2, "broadcast {}: RMR {}", b.id, b.rmr);
    }
    // The first broadcast floods every link (all eager): redundancy is high until pruned.
    assert!(r.broadcasts[0].rmr > 1.0);
    assert_eq!(r.final_sample.components, 1);
    assert_eq!(r.final_sample.symmetry, 1.0);
}

#[test]
fn steady_state_1000() {
    let mut sc = scenario("steady-100");
    sc.nodes = 1000;
    sc.join.interval_ms = 5.0;
    let r = run(sc);
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0);
        assert_eq!(b.eligible, 1000);
    }
    for b in &r.broadcasts[1..] {
        assert!(b.rmr < 0.2, "broadcast {}: RMR {}", b.id, b.rmr);
    }
}

/// Broadcasts after the kill: the `k`-th one (1-based) and all later ones.
fn after_kill(r: &Report, kill_at: f64) -> Vec<&in8_sim::BroadcastReport> {
    r.broadcasts.iter().filter(|b| b.at_s > kill_at).collect()
}

fn kill_50(sc: Scenario) {
    let r = run(sc);
    let after = after_kill(&r, 40.0);
    assert!(after.len() >= 3);
    // 100 % delivery among the survivors by the third broadcast, on time (within 2 s).
    for b in &after[2..] {
        assert_eq!(b.missed, 0, "broadcast {}", b.id);
        assert_eq!(b.on_time, 1.0, "broadcast {}: on time {}", b.id, b.on_time);
    }
    let d = r.disturbances.iter().find(|d| d.what == "kill").unwrap();
    assert!(d.converged_after_s.is_some(), "overlay did not converge");
}

fn kill_80(sc: Scenario) {
    let r = run(sc);
    let after = after_kill(&r, 40.0);
    assert!(after.len() >= 5);
    // At least 99 % delivery among the survivors by the fifth broadcast, on time.
    for b in &after[4..] {
        assert!(
            b.on_time >= 0.99,
            "broadcast {}: on time {}",
            b.id,
            b.on_time
        );
        assert!(b.reliability >= 0.99);
    }
}

#[test]
fn kill_half_at_once_1000() {
    kill_50(scenario("kill-50-1000"));
}

#[test]
fn kill_half_at_once_100() {
    kill_50(resized("kill-50-1000", 100));
}

#[test]
fn kill_80_percent_at_once_1000() {
    kill_80(scenario("kill-80-1000"));
}

#[test]
fn kill_80_percent_at_once_100() {
    kill_80(resized("kill-80-1000", 100));
}

fn partition(sc: Scenario) {
    let r = run(sc);
    // While split, the overlay has two components.
    let split: Vec<_> = r
        .samples
        .iter()
        .filter(|s| s.t_s > 40.0 && s.t_s < 60.0)
        .collect();
    assert!(split.iter().all(|s| s.components >= 2), "no split seen");
    // After the heal: one component, symmetric views, everyone reached on time.
    let heal = r.disturbances.iter().find(|d| d.what == "heal").unwrap();
    let converged = heal.converged_after_s.expect("overlay did not heal");
    assert!(converged < 60.0, "healed after {converged} s");
    assert_eq!(r.final_sample.components, 1);
    assert_eq!(r.final_sample.symmetry, 1.0);
    assert_eq!(r.final_sample.isolated, 0);
    for b in r.broadcasts.iter().filter(|b| b.at_s > 60.0) {
        assert_eq!(b.missed, 0);
        assert_eq!(b.on_time, 1.0);
    }
    // Messages sent during the split reach the other side once it heals.
    for b in r
        .broadcasts
        .iter()
        .filter(|b| b.at_s > 30.0 && b.at_s < 60.0)
    {
        assert!(b.on_time < 0.9, "the split did not hold");
        assert_eq!(b.missed, 0, "not delivered after the heal");
    }
}

#[test]
fn partition_heals_1000() {
    partition(scenario("partition-1000"));
}

#[test]
fn partition_heals_100() {
    partition(resized("partition-1000", 100));
}

/// Under the NAT mix, links that need hole punching are made through introductions by a
/// common neighbour, and the overlay still reaches everyone.
#[test]
fn introductions_connect_nat_bound_nodes() {
    let r = run(scenario("nat-mix-300"));
    assert!(r.totals.punches_ok > 50, "{:?}", r.totals);
    assert!(r.totals.needed_relay > 0, "the mix has unpunchable pairs");
    assert_eq!(r.final_sample.components, 1);
    assert_eq!(r.final_sample.isolated, 0);
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0);
    }
}

#[test]
fn churn_keeps_delivering() {
    let r = run(scenario("churn-1000"));
    assert!(r.nodes_total > 1050, "joins happened");
    for b in &r.broadcasts {
        assert!(
            b.reliability >= 0.99,
            "broadcast {}: {}",
            b.id,
            b.reliability
        );
    }
    let ends = r
        .disturbances
        .iter()
        .find(|d| d.what == "churn ends")
        .unwrap();
    assert!(ends.converged_after_s.is_some());
}

#[test]
fn runs_are_reproducible_from_the_seed() {
    let a = in8_sim::run(resized("kill-50-1000", 100)).unwrap();
    let b = in8_sim::run(resized("kill-50-1000", 100)).unwrap();
    assert_eq!(a.events, b.events);
    assert_eq!(a.broadcasts, b.broadcasts);
    assert_eq!(a.samples, b.samples);
    let mut sc = resized("kill-50-1000", 100);
    sc.seed += 1;
    let c = in8_sim::run(sc).unwrap();
    assert_ne!(a.events, c.events);
}

/// Star: the two hubs (reachable, best ranked) end up linked to everyone.
#[test]
fn star_policy_makes_hubs() {
    let r = run(scenario("star-60"));
    assert!(r.max_active >= 59, "largest view {}", r.max_active);
    let o = r.overlay.as_ref().unwrap();
    let mut degree = vec![0usize; o.nodes.len()];
    for &(a, b, _, pinned) in &o.edges {
        if pinned {
            degree[a as usize] += 1;
            degree[b as usize] += 1;
        }
    }
    let hubs = degree.iter().filter(|d| **d >= 55).count();
    assert_eq!(hubs, 2, "{degree:?}");
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0);
        assert!(b.ldh <= 6, "a star is shallow: LDH {}", b.ldh);
    }
}

/// Hierarchical: every non-core node keeps two pinned links to reachable core nodes,
/// through introductions where NATs require them.
#[test]
fn hierarchical_policy_attaches_everyone_to_the_core() {
    let mut sim = in8_sim::Sim::new(scenario("hierarchical-500")).unwrap();
    sim.run_until(in8_gossip::Time::from_millis(60_000));
    let o = sim.overlay();
    let mut pinned = vec![0usize; o.nodes.len()];
    for &(a, b, _, p) in &o.edges {
        if p {
            pinned[a as usize] += 1;
            pinned[b as usize] += 1;
        }
    }
    let attached = pinned.iter().filter(|d| **d >= 2).count();
    assert!(
        attached >= 490,
        "{attached} of 500 nodes have two core links"
    );
    let core: Vec<usize> = (0..o.nodes.len()).filter(|&i| pinned[i] > 40).collect();
    assert_eq!(core.len(), 8, "{core:?}");
    assert!(core.iter().all(|&i| o.nodes[i].nat.reachable()));
    let r = sim.run();
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0);
    }
    assert!(
        r.totals.punches_ok > 100,
        "attachments needed introductions"
    );
}

/// Auto: mesh while small, then one switch to hierarchical as the network grows past the
/// threshold (with hysteresis); no flapping.
#[test]
fn auto_policy_switches_once_as_the_network_grows() {
    let r = run(scenario("auto-growth"));
    assert_eq!(
        r.topology_switches
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>(),
        vec!["Hierarchical"],
        "{:?}",
        r.topology_switches
    );
    let (t, _) = r.topology_switches[0];
    assert!(t > 10.0, "switched at {t} s, before the network grew");
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0);
    }
}

/// 2 % of all messages lost, control messages included: every broadcast still reaches
/// everyone once the rewiring has merged the islands that lost JOIN-REPLYs created.
#[test]
fn lossy_links_still_deliver() {
    let r = run(scenario("lossy-300"));
    assert!(r.totals.lost > 1000, "{:?}", r.totals);
    for b in &r.broadcasts {
        assert_eq!(b.missed, 0, "broadcast {}", b.id);
        assert!(b.on_time >= 0.99, "broadcast {}: {}", b.id, b.on_time);
    }
    assert_eq!(r.final_sample.components, 1);
}

/// When the policy allows relays, pairs that cannot punch use one instead of being avoided.
#[test]
fn relays_are_used_only_when_allowed() {
    let mut sc = scenario("nat-mix-300");
    sc.network.relay = true;
    let with = run(sc);
    assert!(with.totals.relayed > 0);
    assert_eq!(with.totals.needed_relay, 0);
    for b in &with.broadcasts {
        assert_eq!(b.missed, 0);
    }
    let without = run(scenario("nat-mix-300"));
    assert_eq!(without.totals.relayed, 0);
}
