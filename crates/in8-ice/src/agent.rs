//! The ICE agent: one session (one component, one data stream) between two peers.
//!
//! RFC 8445 full agent without SDP: candidates and credentials are handed in, checks are
//! paced by Ta, retransmitted per RFC 8489, triggered by incoming requests; regular
//! nomination by the controlling agent; role conflicts repaired with the tie-breaker;
//! RFC 7675 consent freshness on the selected pair.

mod config;
mod event;
mod incoming;
mod pairs;
mod probe;
mod response;
mod timers;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub use config::{Config, KeepOpen};
pub use event::{Event, FailureReason};
pub(crate) use incoming::unauthenticated_error;
pub(crate) use pairs::{Pair, PairState};

use crate::candidate::{LocalCandidate, RemoteCandidate};
use crate::error::Error;
use crate::stun::{IntegrityKey, Message, TransactionId};
use crate::transmit::Transmit;

/// The ICE role (RFC 8445 §6.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Nominates pairs; includes ICE-CONTROLLING in checks.
    Controlling,
    /// Follows the controlling agent's nomination; includes ICE-CONTROLLED.
    Controlled,
}

/// ICE username fragment and password of one side.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username fragment (RFC 8445 §5.3: at least 24 bits of randomness; `ice-char`s).
    pub ufrag: String,
    /// The password (RFC 8445 §5.3: at least 128 bits of randomness).
    pub password: String,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Credentials({}, ..)", self.ufrag)
    }
}

impl Credentials {
    /// Random credentials: an 8-character ufrag (48 bits) and a 24-character password (144
    /// bits), both from the base64 alphabet's `ice-char` subset.
    pub fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| {
            (0..n)
                .map(|_| ALPHABET[(rng.next_u32() & 63) as usize] as char)
                .collect::<String>()
        };
        let ufrag = pick(8);
        let password = pick(24);
        Self { ufrag, password }
    }
}

/// Counters a driver or a failure reason can use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connectivity-check requests sent (first transmissions).
    pub requests_sent: u32,
    /// Retransmissions.
    pub retransmissions: u32,
    /// Authenticated success responses received.
    pub responses_received: u32,
    /// Authenticated requests received.
    pub requests_received: u32,
    /// Packets dropped because they failed authentication or parsing.
    pub rejected: u32,
}

/// Where the agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Checks running (also before the first `handle_timeout`).
    Checking,
    /// Phase 1 failed; answering and sending paced checks until `until`.
    KeepOpen { until: Instant, next_round: Instant },
    /// A pair is nominated.
    Connected,
    /// Terminal.
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnKind {
    Check {
        nominate: bool,
    },
    Consent,
    KeepOpen,
    /// A one-shot probe from local candidate `local` to a target with no pair yet.
    Probe {
        local: usize,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Txn {
    pub(crate) id: TransactionId,
    pub(crate) pair: usize,
    pub(crate) kind: TxnKind,
    pub(crate) from: SocketAddr,
    pub(crate) to: SocketAddr,
    pub(crate) bytes: Vec<u8>,
    pub(crate) sends: u32,
    pub(crate) max_sends: u32,
    pub(crate) interval: Duration,
    pub(crate) rto: Duration,
    pub(crate) next: Instant,
    /// Cancelled transactions are not retransmitted (RFC 8445 §7.3.1.4) but a late
    /// response is still accepted until `next`.
    pub(crate) cancelled: bool,
    /// Whether the request carried ICE-CONTROLLING (else ICE-CONTROLLED).
    pub(crate) sent_controlling: bool,
    pub(crate) priority_sent: u32,
    /// When the request was first sent (round-trip time of unretransmitted checks).
    pub(crate) sent_at: Instant,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Consent {
    pub(crate) last_ok: Instant,
    pub(crate) next_check: Instant,
}

/// A sans-IO ICE agent.
///
/// Drive it as the crate docs say: after every `handle_*` call and at every
/// [`Agent::poll_timeout`] deadline, drain [`Agent::poll_transmit`] and
/// [`Agent::poll_event`].
#[derive(Debug)]
pub struct Agent {
    pub(crate) config: Config,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) role: Role,
    pub(crate) tie_breaker: u64,
    pub(crate) local: Credentials,
    pub(crate) local_key: IntegrityKey,
    pub(crate) remote: Option<(Credentials, IntegrityKey)>,
    /// USERNAME of our requests: "remote:local".
    pub(crate) username_out: Vec<u8>,
    pub(crate) locals: Vec<LocalCandidate>,
    pub(crate) remotes: Vec<RemoteCandidate>,
    pub(crate) pairs: Vec<Pair>,
    pub(crate) triggered: VecDeque<usize>,
    pub(crate) txns: Vec<Txn>,
    pub(crate) next_check: Option<Instant>,
    pub(crate) state: State,
    pub(crate) selected: Option<usize>,
    pub(crate) nominating: Option<usize>,
    pub(crate) started: Option<Instant>,
    pub(crate) first_valid: Option<Instant>,
    pub(crate) stats: Stats,
    pub(crate) consent: Option<Consent>,
    pub(crate) keep_open: Option<KeepOpen>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) transmits: VecDeque<Transmit>,
    /// The latest time any input carried.
    pub(crate) now_hint: Option<Instant>,
    /// The pair of the previous ICE session, usable until a new one is selected (restart).
    pub(crate) fallback: Option<(SocketAddr, SocketAddr)>,
}

impl Agent {
    /// A new agent with its role, local credentials and a seed for its randomness
    /// (tie-breaker, transaction ids, consent jitter). Same seed, same inputs: same outputs.
    pub fn new(config: Config, role: Role, local: Credentials, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        // RFC 8445 §16.1: the tie-breaker is "a 64-bit unsigned integer" chosen randomly.
        let tie_breaker = rng.next_u64();
        let local_key = IntegrityKey::short_term(&local.password);
        Self {
            config,
            rng,
            role,
            tie_breaker,
            local,
            local_key,
            remote: None,
            username_out: Vec::new(),
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            txns: Vec::new(),
            next_check: None,
            state: State::Checking,
            selected: None,
            nominating: None,
            started: None,
            first_valid: None,
            stats: Stats::default(),
            consent: None,
            keep_open: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            now_hint: None,
            fallback: None,
        }
    }

    /// Overrides the random tie-breaker (tests of role conflicts).
    pub fn set_tie_breaker(&mut self, tie_breaker: u64) {
        self.tie_breaker = tie_breaker;
    }

    /// The tie-breaker.
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The local credentials.
    pub fn local_credentials(&self) -> &Credentials {
        &self.local
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sets the peer's credentials (from the invitation, the RSVP, or signalling).
    pub fn set_remote_credentials(&mut self, remote: Credentials) {
        let mut u = Vec::with_capacity(remote.ufrag.len() + 1 + self.local.ufrag.len());
        u.extend_from_slice(remote.ufrag.as_bytes());
        u.push(b':');
        u.extend_from_slice(self.local.ufrag.as_bytes());
        self.username_out = u;
        let key = IntegrityKey::short_term(&remote.password);
        self.remote = Some((remote, key));
    }

    /// The peer's username fragment, when known.
    pub fn remote_ufrag(&self) -> Option<&str> {
        self.remote.as_ref().map(|(c, _)| c.ufrag.as_str())
    }

    /// Keep mappings open after a failed establishment (the invitee while its RSVP
    /// travels): instead of going quiet, the agent keeps answering checks and sends one
    /// paced round of checks per `keep_open.interval`.
    pub fn set_keep_open(&mut self, keep_open: Option<KeepOpen>) {
        self.keep_open = keep_open.map(KeepOpen::clamped);
    }

    /// The pair data may use now: (local base, remote address). `None` before a pair is
    /// valid and after consent is lost — RFC 7675 §5.1: the endpoint "MUST cease
    /// transmission on that 5-tuple".
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        let Some(pi) = self.selected else {
            return self.fallback;
        };
        let p = &self.pairs[pi];
        Some((
            self.locals[p.local].base,
            self.remotes[p.remote].candidate.addr,
        ))
    }

    /// Whether a check of ours to `remote` succeeded, i.e. a valid pair leads there (RFC
    /// 8445 §7.2.5.3.2, the pair built from a successful check: "This is called a valid
    /// pair."). Unlike an incoming check, which a spoofed source address can fake, this
    /// shows that `remote` receives what is sent to it.
    pub fn has_valid_pair_to(&self, remote: SocketAddr) -> bool {
        self.pairs
            .iter()
            .any(|p| p.valid && self.remotes[p.remote].candidate.addr == remote)
    }

    /// ICE restart (RFC 8445 §9): "To restart ICE, an agent MUST change both the password
    /// and the username fragment"; "An ICE restart causes all previous states of the data
    /// streams, excluding the roles of the agents, to be flushed." Remote credentials and
    /// candidates must be set again; data may continue on the previous pair until a new one
    /// is selected.
    pub fn restart(&mut self, now: Instant, local: Credentials) {
        self.fallback = self.selected_pair();
        self.local_key = IntegrityKey::short_term(&local.password);
        self.local = local;
        self.remote = None;
        self.username_out.clear();
        self.remotes.clear();
        self.pairs.clear();
        self.triggered.clear();
        self.txns.clear();
        self.locals
            .retain(|l| l.candidate.kind != crate::candidate::CandidateKind::PeerReflexive);
        self.state = State::Checking;
        self.selected = None;
        self.nominating = None;
        self.started = Some(now);
        self.first_valid = None;
        self.consent = None;
        self.next_check = Some(now);
        self.now_hint = Some(now);
    }

    /// Round-trip time measured by the latest unretransmitted check on the selected pair.
    pub fn selected_rtt(&self) -> Option<Duration> {
        self.selected
            .and_then(|i| self.pairs.get(i))
            .and_then(|p| p.rtt)
    }

    /// Whether the selected pair is nominated (ICE completed).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the agent has failed for good (no keep-open, or keep-open ended).
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Whether this transaction id belongs to one of the agent's outstanding requests.
    pub fn owns_transaction(&self, id: &TransactionId) -> bool {
        self.txns.iter().any(|t| t.id == *id)
    }

    /// Handles one datagram that arrived on the local socket `to` from `from`. STUN Binding
    /// requests, responses and indications are consumed; anything else is an error the
    /// driver can log (it should have demultiplexed it elsewhere, RFC 7983).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.now_hint = Some(now);
        let msg = Message::parse(bytes).map_err(|e| {
            self.stats.rejected += 1;
            Error::Stun(e)
        })?;
        self.handle_message(now, from, to, &msg)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        if self.events.len() >= self.config.max_queue {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    pub(crate) fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() >= self.config.max_queue {
            self.transmits.pop_front();
        }
        self.transmits.push_back(t);
    }

    /// A uniformly random value in `[0.8, 1.2) * d` (RFC 7675 §5.1 jitter).
    pub(crate) fn jitter(&mut self, d: Duration) -> Duration {
        let f = 0.8 + 0.4 * (self.rng.next_u32() as f64 / (u32::MAX as f64 + 1.0));
        d.mul_f64(f)
    }
}

#[cfg(test)]
mod tests;
