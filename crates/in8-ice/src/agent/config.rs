//! Agent configuration: every timer and bound, with the RFC defaults.

use core::time::Duration;

/// Configuration of an [`Agent`](crate::Agent). Every queue and table is bounded by a field
/// here.
#[derive(Clone, Debug)]
pub struct Config {
    /// RFC 8445 §14.2 pacing interval Ta (one new check per Ta): "ICE agents SHOULD use a
    /// default Ta value, 50 ms, but MAY use another value based on the characteristics of
    /// the associated data."
    pub ta: Duration,
    /// Minimum retransmission timeout. RFC 8445 §14.3: "RTO = MAX (500ms, Ta * N *
    /// (Num-Waiting + Num-In-Progress))" and "Agents MUST NOT use an RTO value smaller than
    /// 500 ms."
    pub rto_min: Duration,
    /// Requests sent per transaction, RFC 8489 §6.2.1 Rc: "Rc SHOULD be configurable and
    /// SHOULD have a default of 7".
    pub rc: u32,
    /// RFC 8489 §6.2.1 Rm: after the last request the client waits "Rm times the RTO"
    /// ("Rm SHOULD be configurable and SHOULD have a default of 16").
    pub rm: u32,
    /// Bound on candidate pairs. RFC 8445 §6.1.2.5: "The default limit of candidate pairs for
    /// the checklist set is 100, but the value MUST be configurable."
    pub max_pairs: usize,
    /// Bound on remote candidates (signalled plus peer-reflexive).
    pub max_remote_candidates: usize,
    /// Bound on local candidates (given plus peer-reflexive learned from responses).
    pub max_local_candidates: usize,
    /// Bound on outstanding check transactions (connectivity checks, nominations, consent).
    pub max_transactions: usize,
    /// Bound on outstanding one-shot probes ([`Agent::send_probe`](crate::Agent::send_probe):
    /// port prediction, birthday probing), counted apart from `max_transactions` so a probe
    /// burst never holds back the session's own checks. A probe is forgotten `2 × rto_min`
    /// after it was sent, so this also caps the probe rate (1024 and 500 ms: about 1,000
    /// probes per second).
    pub max_probes: usize,
    /// Bound on queued transmits and events each (beyond it the oldest is dropped).
    pub max_queue: usize,
    /// The controlling agent nominates the best valid pair once no better pair is pending,
    /// or this long after the first pair became valid, whichever is first.
    pub nomination_delay: Duration,
    /// Overall time to reach a nominated pair; past it the agent fails with a named reason.
    pub connect_timeout: Duration,
    /// RFC 7675 §5.1: consent checks are sent every this long, randomized between 0.8 and
    /// 1.2 times ("To prevent synchronization of consent checks, each interval MUST be
    /// randomized from between 0.8 and 1.2 times the basic period. Implementations SHOULD
    /// set a default interval of 5 seconds").
    pub consent_interval: Duration,
    /// RFC 7675 §5.1: "Consent expires after 30 seconds. That is, if a valid STUN Binding
    /// Response corresponding to one of the STUN requests sent in the last 30 seconds has
    /// not been received from the remote peer, the endpoint MUST cease transmission on that
    /// 5-tuple."
    pub consent_timeout: Duration,
    /// A SOFTWARE attribute for requests and responses (RFC 8489 §14.14), or none.
    pub software: Option<&'static str>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ta: Duration::from_millis(50),
            rto_min: Duration::from_millis(500),
            rc: 7,
            rm: 16,
            max_pairs: 100,
            max_remote_candidates: 32,
            max_local_candidates: 32,
            max_transactions: 128,
            max_probes: 1024,
            max_queue: 256,
            nomination_delay: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            software: None,
        }
    }
}

/// How an agent keeps its NAT mappings and filters open after a failed phase 1, while the
/// RSVP travels (DESIGN §5): one paced round of checks to every remote candidate each
/// `interval`, until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepOpen {
    /// Time between rounds; clamped to 1..=25 s so every round lands inside the 30 s
    /// unreplied-UDP timeout of common NATs (conntrack's default, measured in the NAT lab).
    pub interval: Duration,
    /// Total duration, from the moment keep-open starts; clamped to [`KeepOpen::MAX_DURATION`].
    pub duration: Duration,
}

impl KeepOpen {
    /// Longest keep-open period (a bound on total packets: 1 h at 15 s is 240 rounds).
    pub const MAX_DURATION: Duration = Duration::from_secs(6 * 3600);
    /// The default: a round every 15 s for up to an hour.
    pub const DEFAULT: KeepOpen = KeepOpen {
        interval: Duration::from_secs(15),
        duration: Duration::from_secs(3600),
    };

    pub(crate) fn clamped(self) -> Self {
        Self {
            interval: self
                .interval
                .clamp(Duration::from_secs(1), Duration::from_secs(25)),
            duration: self.duration.min(Self::MAX_DURATION),
        }
    }
}
