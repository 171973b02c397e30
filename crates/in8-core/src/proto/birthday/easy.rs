//! The easy side of birthday probing: bursts of one-shot probes (`Agent::send_probe`) from
//! the session's own socket to random ports of the hard side's public IP, paced and bounded
//! by `in8_ice::punch::BirthdayProber`, over `Birthday::port_min..=port_max`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use in8_ice::punch::{BirthdayConfig, BirthdayProber};
use in8_ice::{Agent, Transmit};

use crate::config::Birthday;

/// When the session agent has `max_probes` probes outstanding, the next probe waits
/// this long (its earlier probes are forgotten after `2 × rto_min`).
const RETRY: Duration = Duration::from_millis(20);

/// The easy side: random-port probes towards the hard side's public IP.
pub(crate) struct Easy {
    pub(crate) ip: IpAddr,
    pub(crate) base: SocketAddr,
    pub(crate) config: BirthdayConfig,
    /// `Birthday::port_min` minus the prober's shifted `port_min` (see [`Easy::map`]).
    low: u16,
    prober: BirthdayProber,
    pending: Option<(SocketAddr, Instant)>,
    bursts_left: u32,
    burst_start: Instant,
    next_burst: Option<Instant>,
    seed: u64,
    pub(crate) stopped: bool,
    /// Probes sent, all bursts.
    pub(crate) sent: u32,
}

impl Easy {
    /// A prober towards `ip` from socket `base`, with `cfg`'s bounds. `inviter_window`:
    /// this side is an inviter, whose phase-2 session lives that long — one burst, sped up
    /// (to at most `Birthday::MAX_RATE`) to fit; otherwise one burst per round, `rounds`.
    pub(crate) fn new(
        ip: IpAddr,
        base: SocketAddr,
        cfg: Birthday,
        inviter_window: Option<Duration>,
        seed: u64,
        now: Instant,
    ) -> Self {
        let cfg = cfg.clamped();
        let span = cfg.port_span();
        let probes = cfg.probes.min(span);
        let (rate, bursts) = match inviter_window {
            Some(w) => {
                let need = f64::from(probes) / w.as_secs_f64().max(0.1);
                let need = u32::try_from(need.ceil() as u64).unwrap_or(u32::MAX);
                (cfg.rate.max(need).min(Birthday::MAX_RATE), 0)
            }
            None => (cfg.rate, cfg.rounds - 1),
        };
        let config = BirthdayConfig {
            sockets: cfg.sockets,
            max_probes: probes,
            rate,
            // The top `span` ports, shifted down to `port_min..` by `Easy::map`.
            port_min: u16::try_from(65_536 - span).unwrap_or(1),
        };
        Self {
            ip,
            base,
            config,
            low: cfg.port_min,
            prober: BirthdayProber::new(config, ip, seed),
            pending: None,
            bursts_left: bursts,
            burst_start: now,
            next_burst: None,
            seed,
            stopped: false,
            sent: 0,
        }
    }

    /// `BirthdayProber` draws from `port_min..=65535`; a narrower range is drawn as the
    /// top `span` ports and shifted down, which keeps it uniform and duplicate-free.
    fn map(&self, target: SocketAddr) -> SocketAddr {
        let shifted = target.port().saturating_sub(self.config.port_min);
        SocketAddr::new(self.ip, self.low.saturating_add(shifted))
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        agent: &mut Agent,
        out: &mut Vec<Transmit>,
    ) {
        if agent.is_failed() {
            // The session gave up (its connect timeout): nothing would answer for it.
            self.stopped = true;
        }
        if self.stopped {
            return;
        }
        if let Some(t) = self.next_burst
            && t <= now
            && self.bursts_left > 0
        {
            self.bursts_left -= 1;
            self.seed = self.seed.wrapping_add(1);
            self.prober = BirthdayProber::new(self.config, self.ip, self.seed);
            self.burst_start = now;
            self.next_burst = None;
        }
        loop {
            let target = match self.pending.take() {
                Some((t, at)) if at <= now => t,
                Some(p) => {
                    self.pending = Some(p);
                    break;
                }
                None => match self.prober.poll(now) {
                    Some(t) => self.map(t),
                    None => break,
                },
            };
            match agent.send_probe(now, self.base, target) {
                Ok(()) => self.sent += 1,
                Err(in8_ice::Error::Limit { .. }) => {
                    self.pending = Some((target, now + RETRY));
                    break;
                }
                Err(e) => tracing::trace!(%target, "birthday probe not sent: {e}"),
            }
        }
        while let Some(t) = agent.poll_transmit() {
            out.push(t);
        }
        if self.pending.is_none()
            && self.prober.poll_timeout().is_none()
            && self.next_burst.is_none()
            && self.bursts_left > 0
        {
            self.next_burst = Some(self.burst_start + Birthday::ROUND);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        // A waiting probe goes first: the prober is not asked until it is sent.
        if let Some((_, at)) = self.pending {
            return Some(at);
        }
        [self.prober.poll_timeout(), self.next_burst]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use in8_ice::{Config, Credentials, LocalCandidate, Role};

    use super::*;

    fn agent(max_probes: usize) -> Agent {
        let creds = |u: &str| Credentials {
            ufrag: u.into(),
            password: "a-password-of-22-chars".into(),
        };
        let config = Config {
            max_probes,
            connect_timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let mut a = Agent::new(config, Role::Controlling, creds("easy"), 7);
        a.set_remote_credentials(creds("hard"));
        a.add_local_candidate(LocalCandidate::host(base(), 0))
            .unwrap_or_else(|e| panic!("{e}"));
        a
    }

    fn base() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 5000))
    }

    fn cfg() -> Birthday {
        Birthday {
            probes: 300,
            rate: 1000,
            rounds: 2,
            port_min: 40_000,
            port_max: 40_999,
            ..Birthday::default()
        }
    }

    /// Runs the prober on a virtual clock until it is done; returns (time, target) of every
    /// probe sent.
    fn run(mut e: Easy, mut a: Agent, t0: Instant) -> Vec<(Instant, SocketAddr)> {
        let mut sent = Vec::new();
        let mut now = t0;
        for _ in 0..100_000 {
            let mut out = Vec::new();
            e.handle_timeout(now, &mut a, &mut out);
            sent.extend(out.iter().map(|t| (now, t.to)));
            a.handle_timeout(now);
            while a.poll_transmit().is_some() {}
            match e.poll_timeout() {
                Some(t) => now = t.max(now),
                None => return sent,
            }
        }
        panic!(
            "the prober never ends: {} sent, pending {:?}, failed {}, {:?}",
            e.sent,
            e.pending,
            a.is_failed(),
            now - t0
        );
    }

    #[test]
    fn bursts_stay_in_the_port_range_without_repeats_and_repeat_each_round() {
        let t0 = Instant::now();
        let hard: IpAddr = [203, 0, 113, 9].into();
        let e = Easy::new(hard, base(), cfg(), None, 1, t0);
        let sent = run(e, agent(4096), t0);
        assert_eq!(sent.len(), 600, "two bursts of 300");
        assert!(sent.iter().all(|(_, a)| a.ip() == hard));
        assert!(
            sent.iter()
                .all(|(_, a)| (40_000..=40_999).contains(&a.port()))
        );
        let first: HashSet<u16> = sent[..300].iter().map(|(_, a)| a.port()).collect();
        assert_eq!(first.len(), 300, "no port twice in a burst");
        // 1000 per second: a burst of 300 takes about 0.3 s; the second starts a round later.
        let burst = sent[299].0 - sent[0].0;
        assert!(burst >= Duration::from_millis(290), "{burst:?}");
        assert!(sent[300].0 - sent[0].0 >= Birthday::ROUND);
    }

    #[test]
    fn an_inviter_sends_one_faster_burst_and_a_full_agent_delays_probes_without_losing_them() {
        let t0 = Instant::now();
        let hard: IpAddr = [203, 0, 113, 9].into();
        let c = Birthday { rate: 10, ..cfg() };
        // 300 probes in 1.5 s: 200 per second, despite `rate: 10`.
        let e = Easy::new(hard, base(), c, Some(Duration::from_millis(1500)), 2, t0);
        assert_eq!(e.config.rate, 200);
        // At most 16 outstanding probes (each lives 2 × rto_min = 1 s).
        let sent = run(e, agent(16), t0);
        assert_eq!(sent.len(), 300, "one burst, every probe sent");
        let ports: HashSet<u16> = sent.iter().map(|(_, a)| a.port()).collect();
        assert_eq!(ports.len(), 300);
        let span = sent[299].0 - sent[0].0;
        assert!(
            span >= Duration::from_secs(15),
            "16 per second at most: {span:?}"
        );
    }
}
