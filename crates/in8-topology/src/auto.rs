//! The `auto` policy: mesh while the network is small, hierarchical (with random links)
//! as it grows, random partial views when it is very large or has no reachable nodes to
//! form a core. Thresholds have a hysteresis band and a minimum dwell time, so a network
//! hovering around a threshold does not flap between policies.

use core::time::Duration;

use crate::{Error, Policy};

/// The stages [`Auto`] moves between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// [`Policy::Mesh`].
    Mesh,
    /// [`Policy::Hierarchical`] plus the random partial view.
    Hierarchical,
    /// [`Policy::Random`].
    Random,
}

/// What [`Auto`] watches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conditions {
    /// Estimated number of members.
    pub size: u64,
    /// Fraction of members that are publicly reachable (0..=1).
    pub reachable_fraction: f64,
}

/// Thresholds of [`Auto`].
#[derive(Clone, Debug, PartialEq)]
pub struct AutoConfig {
    /// Full mesh up to this many members.
    pub mesh_max: u64,
    /// Hierarchical up to this many members; random partial views above.
    pub hierarchical_max: u64,
    /// Relative width of the hysteresis band around each threshold (0..1): switch up above
    /// `threshold × (1 + h)`, down below `threshold × (1 − h)`.
    pub hysteresis: f64,
    /// Least time between two switches.
    pub min_dwell: Duration,
    /// Hierarchical needs at least this fraction of reachable members (with hysteresis).
    pub min_reachable: f64,
    /// Core size of the hierarchical stage.
    pub core: usize,
    /// Core nodes each other node attaches to.
    pub attach: usize,
}

impl Default for AutoConfig {
    fn default() -> Self {
        Self {
            mesh_max: 12,
            hierarchical_max: 20_000,
            hysteresis: 0.25,
            min_dwell: Duration::from_secs(30),
            min_reachable: 0.02,
            core: 8,
            attach: 2,
        }
    }
}

/// The auto policy's state.
#[derive(Clone, Debug)]
pub struct Auto {
    cfg: AutoConfig,
    stage: Stage,
    since: Option<Duration>,
    switches: u32,
}

impl Auto {
    /// Starts in [`Stage::Mesh`]; the first [`Auto::update`] moves to the right stage at once.
    pub fn new(cfg: AutoConfig) -> Result<Self, Error> {
        if !(0.0..1.0).contains(&cfg.hysteresis) {
            return Err(Error::BadParameter {
                field: "hysteresis",
                range: "0..1",
            });
        }
        if cfg.mesh_max == 0 || cfg.hierarchical_max <= cfg.mesh_max {
            return Err(Error::BadParameter {
                field: "mesh_max / hierarchical_max",
                range: "0 < mesh_max < hierarchical_max",
            });
        }
        Policy::Hierarchical {
            core: cfg.core,
            attach: cfg.attach,
        }
        .validate()?;
        Ok(Self {
            cfg,
            stage: Stage::Mesh,
            since: None,
            switches: 0,
        })
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// How many times the stage changed.
    pub fn switches(&self) -> u32 {
        self.switches
    }

    /// The policy of the current stage.
    pub fn policy(&self) -> Policy {
        let mesh_links = (self.cfg.mesh_max as f64 * (1.0 + self.cfg.hysteresis)).ceil() as usize;
        match self.stage {
            Stage::Mesh => Policy::Mesh {
                max_links: mesh_links.clamp(1, 1024),
            },
            Stage::Hierarchical => Policy::Hybrid(
                Box::new(Policy::Hierarchical {
                    core: self.cfg.core,
                    attach: self.cfg.attach,
                }),
                Box::new(Policy::Random),
            ),
            Stage::Random => Policy::Random,
        }
    }

    /// The stage the conditions call for, seen from the current one (hysteresis applied).
    fn target(&self, c: &Conditions) -> Stage {
        let h = self.cfg.hysteresis;
        let n = c.size as f64;
        let up = |t: u64| n > t as f64 * (1.0 + h);
        let down = |t: u64| n < t as f64 * (1.0 - h);
        let core_ok = match self.stage {
            Stage::Hierarchical => c.reachable_fraction >= self.cfg.min_reachable * (1.0 - h),
            _ => c.reachable_fraction >= self.cfg.min_reachable * (1.0 + h),
        };
        match self.stage {
            Stage::Mesh if up(self.cfg.hierarchical_max) || (up(self.cfg.mesh_max) && !core_ok) => {
                Stage::Random
            }
            Stage::Mesh if up(self.cfg.mesh_max) => Stage::Hierarchical,
            Stage::Hierarchical if down(self.cfg.mesh_max) => Stage::Mesh,
            Stage::Hierarchical if up(self.cfg.hierarchical_max) || !core_ok => Stage::Random,
            Stage::Random if down(self.cfg.mesh_max) => Stage::Mesh,
            Stage::Random if down(self.cfg.hierarchical_max) && core_ok => Stage::Hierarchical,
            s => s,
        }
    }

    /// Feeds the current conditions at `now` (time since the driver's epoch). Returns the
    /// new stage when it switched.
    pub fn update(&mut self, now: Duration, c: &Conditions) -> Option<Stage> {
        let target = self.target(c);
        if target == self.stage {
            if self.since.is_none() {
                self.since = Some(now);
            }
            return None;
        }
        if let Some(since) = self.since
            && now.saturating_sub(since) < self.cfg.min_dwell
        {
            return None;
        }
        self.stage = target;
        self.since = Some(now);
        self.switches += 1;
        Some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(size: u64) -> Conditions {
        Conditions {
            size,
            reachable_fraction: 0.3,
        }
    }

    #[test]
    fn grows_through_the_stages_and_back() {
        let mut a = Auto::new(AutoConfig::default()).unwrap();
        let s = Duration::from_secs;
        assert_eq!(a.update(s(0), &cond(5)), None);
        assert_eq!(a.update(s(40), &cond(100)), Some(Stage::Hierarchical));
        assert_eq!(a.update(s(80), &cond(30_000)), Some(Stage::Random));
        assert_eq!(a.update(s(120), &cond(1_000)), Some(Stage::Hierarchical));
        assert_eq!(a.update(s(160), &cond(3)), Some(Stage::Mesh));
        assert_eq!(a.switches(), 4);
    }

    #[test]
    fn no_core_means_random() {
        let mut a = Auto::new(AutoConfig::default()).unwrap();
        let c = Conditions {
            size: 500,
            reachable_fraction: 0.0,
        };
        assert_eq!(a.update(Duration::ZERO, &c), Some(Stage::Random));
    }
}
