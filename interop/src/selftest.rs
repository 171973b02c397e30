//! The lab's self-test: does every NAT type behave as its name says, does a raw
//! simultaneous open get through exactly where it should, and does impairment add the
//! configured delay and loss? `cargo xtask interop selftest` runs [`run`] and prints
//! [`Report::markdown`]; the lab's ignored tests run the same checks.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::impair::Impairment;
use crate::nat::{Behaviour, NatType};
use crate::natdiscovery::{self, Discovery};
use crate::process::ChildGuard;
use crate::punch::{self, Punch};
use crate::{Error, Lab, LabConfig, Result, SiteConfig, stun};

/// One RFC 5780 discovery from a site's first host.
#[derive(Debug, Clone)]
pub struct NatCheck {
    /// The site's NAT type.
    pub nat: NatType,
    /// The site's public address.
    pub public: Ipv4Addr,
    /// What RFC 5780 must find.
    pub expected: Behaviour,
    /// What `turnutils_natdiscovery` found.
    pub found: Discovery,
    /// Its full output.
    pub output: String,
}

impl NatCheck {
    /// Behaviour as expected, and a NAT's reflexive address is the site's public address.
    pub fn passed(&self) -> bool {
        self.found.behaviour == self.expected
            && (!self.expected.translated || self.found.reflexive.ip() == IpAddr::V4(self.public))
    }
}

/// Runs RFC 5780 discovery from the first host of every site of `lab` at once.
pub fn check_nat_types(lab: &Lab) -> Result<Vec<NatCheck>> {
    let server = lab
        .coturn()
        .ok_or_else(|| Error::Config("the self-test needs the lab's server".into()))?
        .stun_addr();
    let mut running = Vec::new();
    for site in lab.sites() {
        let host = site.host(0)?;
        let mut cmd = host.command("turnutils_natdiscovery");
        cmd.args(["-m", "-f", "-L", &host.addr().to_string()])
            .args(["-p", &server.port().to_string(), &server.ip().to_string()]);
        running.push((site, host.addr(), ChildGuard::spawn(&mut cmd)?));
    }
    let mut checks = Vec::new();
    for (site, local, child) in running {
        let out = child.wait(natdiscovery::TIMEOUT)?;
        let output = out.combined();
        let found = natdiscovery::parse(&output, local.into())?;
        checks.push(NatCheck {
            nat: site.nat(),
            public: site.public_addr(),
            expected: site.nat().expected(),
            found,
            output,
        });
    }
    Ok(checks)
}

/// One cell of the raw punch baseline.
#[derive(Debug, Clone)]
pub struct PunchCheck {
    /// NAT of side A.
    pub a: NatType,
    /// NAT of side B.
    pub b: NatType,
    /// Whether it must connect.
    pub expected: bool,
    /// What happened.
    pub punch: Punch,
}

impl PunchCheck {
    /// Connected exactly when expected.
    pub fn passed(&self) -> bool {
        self.punch.connected() == self.expected
    }
}

/// How long each punch probe runs.
pub const PUNCH_DURATION: Duration = Duration::from_secs(2);

/// A lab with two sites of every NAT type (sites `t` and `6 + t` for type index `t`).
pub fn two_of_each() -> LabConfig {
    NatType::ALL
        .into_iter()
        .chain(NatType::ALL)
        .fold(LabConfig::new(), LabConfig::site)
}

/// Runs the raw punch probe for all 21 unordered pairs of NAT types at once, on a lab built
/// by [`two_of_each`] (A on the first site of its type, B on the second).
pub fn check_punch_matrix(lab: &Lab) -> Result<Vec<PunchCheck>> {
    let server = lab
        .coturn()
        .ok_or_else(|| Error::Config("the punch check needs the lab's server".into()))?
        .stun_addr();
    let n = NatType::ALL.len();
    if lab.sites().len() < 2 * n {
        return Err(Error::Config(
            "the punch check needs two sites per NAT type".into(),
        ));
    }
    let cells: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = cells
            .iter()
            .map(|&(i, j)| {
                s.spawn(move || -> Result<PunchCheck> {
                    let a = lab.site(i)?;
                    let b = lab.site(n + j)?;
                    let punch = punch::punch(a.host(0)?, b.host(0)?, server, PUNCH_DURATION)?;
                    Ok(PunchCheck {
                        a: a.nat(),
                        b: b.nat(),
                        expected: punch::expected_direct(a.nat(), b.nat()),
                        punch,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::Config("a punch thread panicked".into()))?
            })
            .collect()
    })
}

/// Round trips measured through an impaired site.
#[derive(Debug, Clone)]
pub struct ImpairCheck {
    /// The impairment configured.
    pub impairment: Option<Impairment>,
    /// STUN round trips sent.
    pub sent: usize,
    /// Round-trip times of those answered, sorted.
    pub rtts: Vec<Duration>,
}

/// STUN round trips per impairment check.
pub const IMPAIR_PROBES: usize = 100;
/// How long one probe waits for its answer.
pub const IMPAIR_PROBE_TIMEOUT: Duration = Duration::from_millis(400);

impl ImpairCheck {
    /// The fraction of round trips lost.
    pub fn loss(&self) -> f64 {
        1.0 - self.rtts.len() as f64 / self.sent.max(1) as f64
    }

    /// The median round trip.
    pub fn median(&self) -> Option<Duration> {
        self.rtts.get(self.rtts.len() / 2).copied()
    }

    /// Round trips within the configured delay (twice: the WAN link is crossed both ways)
    /// ± jitter plus 25 ms of slack (the delayer polls every millisecond; a busy machine
    /// adds scheduling delay), and the loss within 3.5 standard deviations of
    /// 1 - (1 - loss)², the round-trip loss of two independent crossings.
    pub fn passed(&self) -> bool {
        let cfg = self.impairment.unwrap_or(Impairment::delay(Duration::ZERO));
        let lo = (cfg.delay.saturating_sub(cfg.jitter)) * 2;
        let hi = (cfg.delay + cfg.jitter) * 2 + Duration::from_millis(25);
        let in_range = self.rtts.iter().all(|r| *r >= lo && *r <= hi);
        let p = 1.0 - (1.0 - cfg.loss).powi(2);
        let sd = (p * (1.0 - p) / self.sent.max(1) as f64).sqrt();
        in_range && !self.rtts.is_empty() && (self.loss() - p).abs() <= 3.5 * sd + 1e-9
    }
}

/// Impairments the self-test checks (plus one unimpaired site as the baseline).
pub fn impairment_cases() -> Vec<Option<Impairment>> {
    vec![
        None,
        Some(Impairment::delay(Duration::from_millis(50))),
        Some(Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            loss: 0.1,
            seed: 7,
        }),
    ]
}

/// Measures STUN round trips from every site's first host to coturn, concurrently.
pub fn check_impairment(lab: &Lab, cases: &[Option<Impairment>]) -> Result<Vec<ImpairCheck>> {
    let server: SocketAddr = lab
        .coturn()
        .ok_or_else(|| Error::Config("the impairment check needs the lab's server".into()))?
        .stun_addr();
    std::thread::scope(|s| {
        let handles: Vec<_> = lab
            .sites()
            .iter()
            .zip(cases)
            .map(|(site, case)| {
                s.spawn(move || -> Result<ImpairCheck> {
                    let socket = site.host(0)?.udp_socket(0)?;
                    let mut rtts = Vec::new();
                    for _ in 0..IMPAIR_PROBES {
                        if let Some(rtt) = stun::round_trip(&socket, server, IMPAIR_PROBE_TIMEOUT)?
                        {
                            rtts.push(rtt);
                        }
                    }
                    rtts.sort();
                    Ok(ImpairCheck {
                        impairment: *case,
                        sent: IMPAIR_PROBES,
                        rtts,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Error::Config("a probe thread panicked".into()))?
            })
            .collect()
    })
}

/// TURN through the lab's coturn with the static long-term user, by coturn's own client.
#[derive(Debug, Clone)]
pub struct TurnCheck {
    /// The NAT of the site the client ran in.
    pub nat: NatType,
    /// Messages sent through the two relayed allocations.
    pub sent: u64,
    /// Messages received back.
    pub received: u64,
    /// Whether the same run with a wrong password was refused.
    pub wrong_password_refused: bool,
    /// The client's output.
    pub output: String,
}

impl TurnCheck {
    /// Every message relayed, and the server enforced the credential.
    pub fn passed(&self) -> bool {
        self.sent > 0 && self.received == self.sent && self.wrong_password_refused
    }
}

/// Messages `turnutils_uclient` sends per client.
pub const TURN_MESSAGES: u32 = 20;

/// Runs `turnutils_uclient -y` (two clients talking to each other through their relayed
/// addresses) from the first host of site `site` with the static user, then again with a
/// wrong password, which must be refused.
pub fn check_turn(lab: &Lab, site: usize) -> Result<TurnCheck> {
    let coturn = lab
        .coturn()
        .ok_or_else(|| Error::Config("the TURN check needs the lab's server".into()))?;
    let server = coturn.stun_addr();
    let (user, password, _) = coturn.credentials();
    let s = lab.site(site)?;
    let host = s.host(0)?;
    let local = host.addr().to_string();
    let n = TURN_MESSAGES.to_string();
    let port = server.port().to_string();
    let ip = server.ip().to_string();
    let run = |pw: &str| {
        host.output(
            "turnutils_uclient",
            &[
                "-y", "-c", "-n", &n, "-m", "1", "-u", user, "-w", pw, "-p", &port, "-L", &local,
                &ip,
            ],
            Duration::from_secs(60),
        )
    };
    let good = run(password)?;
    let bad = run("not-the-password")?;
    let output = good.combined();
    // "start_mclient: tot_send_msgs=40, tot_recv_msgs=40"
    let count = |key: &str| -> u64 {
        output
            .lines()
            .filter_map(|l| l.split(key).nth(1))
            .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .next_back()
            .unwrap_or(0)
    };
    Ok(TurnCheck {
        nat: s.nat(),
        sent: if good.status.success() {
            count("tot_send_msgs=")
        } else {
            0
        },
        received: count("tot_recv_msgs="),
        wrong_password_refused: !bad.status.success(),
        output,
    })
}

/// Everything the self-test found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// RFC 5780 discovery per site.
    pub nat: Vec<NatCheck>,
    /// The raw punch baseline per cell.
    pub punch: Vec<PunchCheck>,
    /// Impairment measurements.
    pub impairment: Vec<ImpairCheck>,
    /// TURN allocations and relaying.
    pub turn: Vec<TurnCheck>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Report {
    /// Whether every check passed (and there was at least one of each kind that ran).
    pub fn passed(&self) -> bool {
        !self.nat.is_empty()
            && self.nat.iter().all(NatCheck::passed)
            && self.punch.iter().all(PunchCheck::passed)
            && self.impairment.iter().all(ImpairCheck::passed)
            && self.turn.iter().all(TurnCheck::passed)
    }

    /// The report as markdown tables.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let ok = |b: bool| if b { "pass" } else { "**FAIL**" };
        m += "### RFC 5780 behaviour (turnutils_natdiscovery -m -f against the lab's coturn)\n\n";
        m +=
            "| NAT type | expected | found | reflexive address | result |\n|---|---|---|---|---|\n";
        for c in &self.nat {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                c.nat,
                c.expected,
                c.found.behaviour,
                c.found.reflexive,
                ok(c.passed())
            );
        }
        if !self.punch.is_empty() {
            m += "\n### Raw UDP simultaneous open (lab baseline, not in8)\n\n";
            m += "| A | B | expected | connected | path | result |\n|---|---|---|---|---|---|\n";
            for c in &self.punch {
                let path = c.punch.path();
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {} | {} |",
                    c.a,
                    c.b,
                    if c.expected { "connects" } else { "fails" },
                    if c.punch.connected() { "yes" } else { "no" },
                    path,
                    ok(c.passed())
                );
            }
        }
        if !self.impairment.is_empty() {
            m += "\n### Impairment (STUN round trips through the site's WAN link)\n\n";
            m += "| delay | jitter | loss / direction | probes | lost | min RTT | median RTT | max RTT | result |\n|---|---|---|---|---|---|---|---|---|\n";
            for c in &self.impairment {
                let i = c.impairment.unwrap_or(Impairment::delay(Duration::ZERO));
                let ms = |d: Option<&Duration>| {
                    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
                        .unwrap_or_else(|| "-".into())
                };
                let _ = writeln!(
                    m,
                    "| {} ms | {} ms | {:.0} % | {} | {:.0} % | {} | {} | {} | {} |",
                    i.delay.as_millis(),
                    i.jitter.as_millis(),
                    i.loss * 100.0,
                    c.sent,
                    c.loss() * 100.0,
                    ms(c.rtts.first()),
                    ms(c.median().as_ref()),
                    ms(c.rtts.last()),
                    ok(c.passed())
                );
            }
        }
        if !self.turn.is_empty() {
            m += "\n### TURN (turnutils_uclient -y, static long-term user)\n\n";
            m += "| client behind | messages sent | received | wrong password refused | result |\n|---|---|---|---|---|\n";
            for c in &self.turn {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {} |",
                    c.nat,
                    c.sent,
                    c.received,
                    if c.wrong_password_refused {
                        "yes"
                    } else {
                        "no"
                    },
                    ok(c.passed())
                );
            }
        }
        let _ = writeln!(m, "\nself-test took {:.1} s", self.elapsed.as_secs_f64());
        m
    }
}

/// What [`run`] checks.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Run the raw punch baseline (21 cells).
    pub punch: bool,
    /// Run the impairment measurements.
    pub impairment: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            punch: true,
            impairment: true,
        }
    }
}

/// Builds the labs and runs the checks: RFC 5780 discovery on two sites of every NAT type,
/// the punch baseline on the same lab, then impairment on a second lab.
pub fn run(opts: Options) -> Result<Report> {
    let start = Instant::now();
    let mut report = Report::default();
    {
        let lab = Lab::start(&two_of_each())?;
        report.nat = check_nat_types(&lab)?;
        if opts.punch {
            report.punch = check_punch_matrix(&lab)?;
        }
        // TURN from behind the hardest NAT types.
        for nat in [NatType::Symmetric, NatType::Cgnat] {
            if let Some(i) = lab.sites().iter().position(|s| s.nat() == nat) {
                report.turn.push(check_turn(&lab, i)?);
            }
        }
    }
    if opts.impairment {
        let cases = impairment_cases();
        let config = cases.iter().fold(LabConfig::new(), |c, i| {
            c.site_with(SiteConfig {
                impairment: *i,
                ..SiteConfig::new(NatType::None)
            })
        });
        let lab = Lab::start(&config)?;
        report.impairment = check_impairment(&lab, &cases)?;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}
