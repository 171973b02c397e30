//! Link impairment (delay, jitter, loss) for a site's WAN link, without netem.
//!
//! This kernel has no `tc netem` (and no nft `queue` statement), so the site's outer router
//! sends every packet crossing its WAN interface to userspace with iptables' `NFQUEUE`
//! target (via nft_compat): queue 0 for packets leaving the site (`POSTROUTING -o wan`),
//! queue 1 for packets entering it (`PREROUTING -i wan`). A [`Delayer`] decides per packet:
//! drop it (loss), or hold its verdict until its release time. Verdicts are issued by a thread
//! that joined the router's namespace ([`nfqueue::Running`]).
//!
//! Semantics (per site, **each direction**): a packet is lost with probability `loss`;
//! otherwise it is released after `delay` ± uniform `jitter` (never below zero), and never
//! before the packet queued ahead of it in the same direction (no reordering, as on one
//! path). So an impaired site adds `delay` one way and `2 × delay` to a round trip through
//! its WAN link; two impaired sites add `2 × delay` one way.

pub mod nfqueue;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// Per-site link impairment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Added one-way delay per direction.
    pub delay: Duration,
    /// Uniform jitter around `delay` (± this much).
    pub jitter: Duration,
    /// Probability (0.0 ..= 1.0) that a packet is dropped, per direction.
    pub loss: f64,
    /// Seed of the loss / jitter generator (runs are reproducible from it).
    pub seed: u64,
}

impl Impairment {
    /// `delay` with no jitter and no loss.
    pub fn delay(delay: Duration) -> Self {
        Self {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
            seed: 0,
        }
    }

    /// The second matrix run: 50 ms delay and 2 % loss.
    pub fn wan_50ms_2pct(seed: u64) -> Self {
        Self {
            delay: Duration::from_millis(50),
            jitter: Duration::ZERO,
            loss: 0.02,
            seed,
        }
    }

    /// Fails unless `loss` is a probability and the delay is below a minute.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(Error::Config(format!(
                "loss {} is not a probability in 0..=1",
                self.loss
            )));
        }
        if self.delay + self.jitter > Duration::from_secs(60) {
            return Err(Error::Config("delay + jitter above 60 s".into()));
        }
        Ok(())
    }
}

/// Most packets a delayer holds at once (all directions); more are dropped and counted in
/// [`Stats::overflow`]. The kernel queue of each direction has the same bound.
pub const CAPACITY: usize = 4096;

/// Counters of one delayer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets seen.
    pub seen: u64,
    /// Packets dropped as loss.
    pub lost: u64,
    /// Packets dropped because [`CAPACITY`] packets were already held.
    pub overflow: u64,
    /// Packets released (accepted).
    pub released: u64,
}

/// The delayer's decision logic, sans I/O: the caller passes the time in, hands packets
/// (any `T`, e.g. an NFQUEUE message) to [`Delayer::on_packet`] and accepts what
/// [`Delayer::poll_release`] returns. `lane` is the direction (0 or 1).
#[derive(Debug)]
pub struct Delayer<T> {
    cfg: Impairment,
    rng: ChaCha8Rng,
    lanes: [VecDeque<(Instant, T)>; 2],
    capacity: usize,
    stats: Stats,
}

impl<T> Delayer<T> {
    /// A delayer holding at most `capacity` packets.
    pub fn new(cfg: Impairment, capacity: usize) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            lanes: [VecDeque::new(), VecDeque::new()],
            capacity,
            stats: Stats::default(),
        }
    }

    /// Takes a packet arriving at `now` in direction `lane`. Returns it back if it must be
    /// dropped (lost, or the delayer is full); otherwise holds it.
    pub fn on_packet(&mut self, now: Instant, lane: usize, packet: T) -> Option<T> {
        self.stats.seen += 1;
        let lane = lane.min(1);
        if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
            self.stats.lost += 1;
            return Some(packet);
        }
        if self.held() >= self.capacity {
            self.stats.overflow += 1;
            return Some(packet);
        }
        let mut release = now + self.cfg.delay;
        if !self.cfg.jitter.is_zero() {
            let j = self.cfg.jitter.as_secs_f64();
            let offset = self.rng.random_range(-j..=j);
            release = if offset >= 0.0 {
                release + Duration::from_secs_f64(offset)
            } else {
                release
                    .checked_sub(Duration::from_secs_f64(-offset))
                    .unwrap_or(now)
                    .max(now)
            };
        }
        // No reordering within a direction.
        if let Some((last, _)) = self.lanes[lane].back() {
            release = release.max(*last);
        }
        self.lanes[lane].push_back((release, packet));
        None
    }

    /// The next packet due at `now`, if any (call until `None`).
    pub fn poll_release(&mut self, now: Instant) -> Option<T> {
        for lane in &mut self.lanes {
            if lane.front().is_some_and(|(at, _)| *at <= now) {
                self.stats.released += 1;
                return lane.pop_front().map(|(_, p)| p);
            }
        }
        None
    }

    /// When the next held packet is due.
    pub fn next_release(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|l| l.front().map(|(at, _)| *at))
            .min()
    }

    /// Every held packet, to release at shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        let mut all = Vec::new();
        for lane in &mut self.lanes {
            all.extend(lane.drain(..).map(|(_, p)| p));
        }
        self.stats.released += all.len() as u64;
        all
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn holds_each_packet_for_the_delay() {
        let t0 = Instant::now();
        let mut d = Delayer::new(Impairment::delay(ms(50)), 16);
        assert_eq!(d.on_packet(t0, 0, 1), None);
        assert_eq!(d.on_packet(t0 + ms(10), 1, 2), None);
        assert_eq!(d.next_release(), Some(t0 + ms(50)));
        assert_eq!(d.poll_release(t0 + ms(49)), None);
        assert_eq!(d.poll_release(t0 + ms(50)), Some(1));
        assert_eq!(d.poll_release(t0 + ms(59)), None);
        assert_eq!(d.poll_release(t0 + ms(60)), Some(2));
        assert_eq!(d.stats().released, 2);
    }

    #[test]
    fn loss_rate_follows_the_probability() {
        let cfg = Impairment {
            loss: 0.02,
            ..Impairment::delay(Duration::ZERO)
        };
        let t0 = Instant::now();
        let mut d = Delayer::new(cfg, usize::MAX);
        let lost = (0..100_000)
            .filter(|i| d.on_packet(t0, i % 2, *i).is_some())
            .count();
        // Binomial(100000, 0.02): mean 2000, sd 44; 5 sd either side.
        assert!((1780..=2220).contains(&lost), "{lost} lost");
        assert_eq!(d.stats().lost, lost as u64);
        // Reproducible from the seed.
        let mut again = Delayer::new(cfg, usize::MAX);
        let lost_again = (0..100_000)
            .filter(|i| again.on_packet(t0, i % 2, *i).is_some())
            .count();
        assert_eq!(lost, lost_again);
    }

    #[test]
    fn jitter_stays_in_bounds_and_never_reorders() {
        let cfg = Impairment {
            jitter: ms(20),
            seed: 9,
            ..Impairment::delay(ms(30))
        };
        let t0 = Instant::now();
        let mut d = Delayer::new(cfg, usize::MAX);
        for i in 0..1000u64 {
            d.on_packet(t0 + ms(i), 0, i);
        }
        let mut last = 0;
        let mut now = t0;
        let mut out = Vec::new();
        while out.len() < 1000 {
            now += ms(1);
            while let Some(p) = d.poll_release(now) {
                out.push((p, now));
            }
        }
        let mut spread = (Duration::MAX, Duration::ZERO);
        for (i, (p, at)) in out.iter().enumerate() {
            assert_eq!(*p, i as u64, "reordered");
            assert!(*p >= last);
            last = *p;
            let held = *at - (t0 + ms(*p));
            assert!(held >= ms(10) && held <= ms(51), "{held:?}");
            spread = (spread.0.min(held), spread.1.max(held));
        }
        // The jitter is really applied.
        assert!(spread.1 - spread.0 >= ms(15), "{spread:?}");
    }

    #[test]
    fn capacity_bounds_what_is_held() {
        let t0 = Instant::now();
        let mut d = Delayer::new(Impairment::delay(ms(100)), 3);
        for i in 0..5 {
            let dropped = d.on_packet(t0, 0, i);
            assert_eq!(dropped.is_some(), i >= 3, "{i}");
        }
        assert_eq!(d.held(), 3);
        assert_eq!(d.stats().overflow, 2);
        assert_eq!(d.drain(), vec![0, 1, 2]);
        assert_eq!(d.held(), 0);
    }

    #[test]
    fn validate_rejects_bad_probabilities() {
        let mut i = Impairment::wan_50ms_2pct(1);
        assert!(i.validate().is_ok());
        i.loss = 1.5;
        assert!(i.validate().is_err());
        i.loss = f64::NAN;
        assert!(i.validate().is_err());
    }
}
