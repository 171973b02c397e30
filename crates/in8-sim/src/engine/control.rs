//! Scenario actions: turning the timeline into queued events, and carrying them out.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Kind, Sim, secs};
use crate::metrics::Disturbance;
use crate::scenario::Action;

/// A queued scenario action.
#[derive(Clone, Debug)]
pub(crate) enum Control {
    Broadcast { fixed: bool, payload_bytes: usize },
    Kill(f64),
    Leave(f64),
    Partition(u8),
    Heal,
    CrashOne,
    LeaveOne,
}

/// Exponential inter-arrival time with `rate` per second.
fn next_arrival(rng: &mut ChaCha8Rng, rate: f64) -> f64 {
    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    -u.ln() / rate
}

pub(super) fn schedule(sim: &mut Sim, a: &Action, rng: &mut ChaCha8Rng) {
    match a {
        Action::Broadcast {
            at_s,
            count,
            interval_s,
            from,
            payload_bytes,
        } => {
            for k in 0..*count {
                let at = secs(at_s + f64::from(k) * interval_s);
                sim.push_control(
                    at,
                    Control::Broadcast {
                        fixed: from == "fixed",
                        payload_bytes: *payload_bytes,
                    },
                );
            }
        }
        Action::Kill { at_s, fraction } => {
            sim.push_control(secs(*at_s), Control::Kill(*fraction));
            sim.disturbances.push(Disturbance::new("kill", secs(*at_s)));
        }
        Action::Leave { at_s, fraction } => {
            sim.push_control(secs(*at_s), Control::Leave(*fraction));
            sim.disturbances
                .push(Disturbance::new("leave", secs(*at_s)));
        }
        Action::Partition { at_s, groups } => {
            sim.push_control(secs(*at_s), Control::Partition(*groups));
        }
        Action::Heal { at_s } => {
            sim.push_control(secs(*at_s), Control::Heal);
            sim.disturbances.push(Disturbance::new("heal", secs(*at_s)));
        }
        Action::Churn {
            at_s,
            until_s,
            joins_per_s,
            leaves_per_s,
            crashes_per_s,
        } => {
            if *joins_per_s > 0.0 {
                let mut t = *at_s + next_arrival(rng, *joins_per_s);
                while t < *until_s {
                    let n = sim.add_node(rng);
                    sim.push(secs(t), n, Kind::Join);
                    t += next_arrival(rng, *joins_per_s);
                }
            }
            for (rate, c) in [
                (*leaves_per_s, Control::LeaveOne),
                (*crashes_per_s, Control::CrashOne),
            ] {
                if rate > 0.0 {
                    let mut t = *at_s + next_arrival(rng, rate);
                    while t < *until_s {
                        sim.push_control(secs(t), c.clone());
                        t += next_arrival(rng, rate);
                    }
                }
            }
            sim.disturbances
                .push(Disturbance::new("churn ends", secs(*until_s)));
        }
    }
}

impl Sim {
    pub(super) fn control(&mut self, i: u32) {
        let Some(c) = self.controls.get(i as usize).cloned() else {
            return;
        };
        match c {
            Control::Broadcast {
                fixed,
                payload_bytes,
            } => self.broadcast(fixed, payload_bytes),
            Control::Kill(f) => {
                self.kill(f, false);
            }
            Control::Leave(f) => {
                self.kill(f, true);
            }
            Control::Partition(g) => self.partition(g),
            Control::Heal => self.heal(),
            Control::CrashOne => {
                self.kill_one(false);
            }
            Control::LeaveOne => {
                self.kill_one(true);
            }
        }
    }

    fn kill_one(&mut self, graceful: bool) {
        let live = self.live();
        if live.len() <= 1 {
            return;
        }
        let i = live[self.rng.random_range(0..live.len())];
        if Some(i) == self.fixed_sender {
            return;
        }
        if graceful {
            self.nodes[i as usize].state.leave(&mut self.out);
            self.flush(i);
        } else {
            self.detect_links_of(i);
        }
        let node = &mut self.nodes[i as usize];
        node.alive = false;
        node.state = in8_gossip::State::new(i, self.cfg.clone());
    }
}
