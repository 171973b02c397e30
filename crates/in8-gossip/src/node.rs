//! [`Gossip`]: the authenticated node a driver runs. It decodes and verifies frames, admits
//! only peers with a valid signed record and membership credential, enforces revocations,
//! runs the generic [`State`] core on [`NodeId`]s, and encodes its output.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use in8_artifact::{
    Candidate, Capabilities, Identity, InviteId, NetworkId, NodeId, RevocationSet,
    RevocationTarget, Revocations, SignedMembership, SignedRevocation, Timestamp, VerifyPolicy,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::error::{Error, Result};
use crate::proto::{LinkFailure, OutEvent, State, Timer};
use crate::record::{NatClass, PeerRecord, SignedPeerRecord};
use crate::{Config, Time};

mod admit;
mod emit;

/// Most transmits or events queued between two drains; beyond it the oldest are dropped
/// (a driver that drains after every call never gets near it).
pub const MAX_QUEUED: usize = 4096;
/// Revocation records remembered to hand to new neighbours.
pub const RECENT_REVOCATIONS: usize = crate::MAX_LIST;

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The recipient (dial it if there is no link).
    pub to: NodeId,
    /// One frame.
    pub bytes: Vec<u8>,
}

/// What the application or the driver learns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer became an overlay neighbour.
    NeighborUp(NodeId),
    /// A peer stopped being an overlay neighbour (the link may be closed).
    NeighborDown(NodeId),
    /// An application broadcast arrived (first copy), with a verified origin signature.
    Received {
        /// Who broadcast it.
        origin: NodeId,
        /// The origin's sequence number.
        seq: u64,
        /// The payload.
        payload: Vec<u8>,
        /// The neighbour it came from.
        from: NodeId,
        /// Hops from the origin.
        hops: u16,
    },
    /// An introducer arranged a simultaneous open: punch towards `peer` (its signed
    /// candidates are in `offer`) after `delay`, then call [`Gossip::link_up`] or
    /// [`Gossip::link_failed`].
    PunchNow {
        /// The other side.
        peer: NodeId,
        /// Its signed record (the candidate offer).
        offer: SignedPeerRecord,
        /// When to start.
        delay: Duration,
        /// The common neighbour.
        introducer: NodeId,
        /// The attempt's token, the same on both sides (in8-core derives the attempt's
        /// ICE credentials from it).
        token: u64,
    },
    /// A member's credential was revoked; it was removed from every view.
    PeerRevoked(NodeId),
    /// An invitation was revoked (check it before redeeming).
    InvitationRevoked {
        /// Its id.
        invite: InviteId,
        /// Its issuer.
        issuer: NodeId,
    },
    /// This node's own credential was revoked: it left the network.
    SelfRevoked,
    /// A peer's record or credential expired; it was removed from every view (it comes
    /// back when it presents a fresh one).
    PeerExpired(NodeId),
    /// This node's own credential expired: it left the network (obtain a new one).
    CredentialExpired,
    /// The JOIN through this contact failed; try another entry peer.
    JoinFailed {
        /// The contact.
        contact: NodeId,
    },
}

/// What a node needs to take part.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The node's identity.
    pub identity: Identity,
    /// Its membership credential (chained to the network's creator).
    pub credential: SignedMembership,
    /// Where it can be reached (published in its signed record).
    pub candidates: Vec<Candidate>,
    /// Its NAT class, if measured.
    pub nat: NatClass,
    /// How long its records stay valid (re-signed at half-life).
    pub record_ttl: Duration,
    /// Seed of the protocol's randomness.
    pub seed: [u8; 32],
    /// Wall-clock time at the driver's epoch (`Time::ZERO`), for expiry checks.
    pub wall_epoch: Timestamp,
}

/// One authenticated gossip node. See the crate docs for the drive contract.
#[derive(Debug)]
pub struct Gossip {
    identity: Identity,
    me: NodeId,
    network: NetworkId,
    policy: VerifyPolicy,
    record: SignedPeerRecord,
    record_ttl: Duration,
    core: State<NodeId>,
    records: HashMap<NodeId, SignedPeerRecord>,
    revocations: RevocationSet,
    recent: VecDeque<SignedRevocation>,
    out: Vec<OutEvent<NodeId>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    timers: Vec<(Time, Timer<NodeId>)>,
    wall_epoch: Timestamp,
    seq: u64,
    rng: ChaCha20Rng,
    dropped: u64,
}

impl Gossip {
    /// Creates a node; fails if the config is out of range or the node's own credential
    /// does not verify.
    pub fn new(config: Config, setup: Setup) -> Result<Self> {
        config.validate()?;
        let me = setup.identity.node_id();
        let m = setup.credential.membership();
        if m.member != me {
            return Err(Error::Mismatch {
                what: "credential",
                reason: "it is not this node's",
            });
        }
        let network = m.network;
        let policy = VerifyPolicy::default();
        setup
            .credential
            .verify(setup.wall_epoch, &policy, &in8_artifact::NoRevocations)
            .map_err(|source| Error::Rejected {
                what: "own credential",
                source,
            })?;
        let record = Self::make_record(&setup, 1, setup.wall_epoch)?;
        Ok(Self {
            core: State::new(me, Arc::new(config)),
            identity: setup.identity,
            me,
            network,
            policy,
            record,
            record_ttl: setup.record_ttl,
            records: HashMap::new(),
            revocations: RevocationSet::default(),
            recent: VecDeque::new(),
            out: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timers: Vec::new(),
            wall_epoch: setup.wall_epoch,
            seq: 0,
            rng: ChaCha20Rng::from_seed(setup.seed),
            dropped: 0,
        })
    }

    fn make_record(setup: &Setup, seq: u64, wall: Timestamp) -> Result<SignedPeerRecord> {
        let caps = setup.credential.membership().capabilities;
        PeerRecord {
            network: setup.credential.membership().network,
            node: setup.identity.node_id(),
            seq,
            nat: setup.nat,
            capabilities: caps.without(Capabilities(!Capabilities::ALL_KNOWN.0)),
            expires: (wall + setup.record_ttl).min(setup.credential.membership().expires),
            candidates: setup.candidates.clone(),
            credential: setup.credential.clone(),
        }
        .sign(&setup.identity)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// The network.
    pub fn network(&self) -> NetworkId {
        self.network
    }

    /// This node's current signed record.
    pub fn record(&self) -> &SignedPeerRecord {
        &self.record
    }

    /// The verified record of a known peer.
    pub fn peer_record(&self, peer: &NodeId) -> Option<&SignedPeerRecord> {
        self.records.get(peer)
    }

    /// The revocations this node enforces (for checking invitations before redeeming).
    pub fn revocations(&self) -> &RevocationSet {
        &self.revocations
    }

    /// The protocol core (views, eager links).
    pub fn core(&self) -> &State<NodeId> {
        &self.core
    }

    /// Outputs dropped because the driver did not drain them (should stay 0).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn wall(&self, now: Time) -> Timestamp {
        self.wall_epoch + now.as_duration()
    }

    /// Starts as the first node of a network (it joins nobody).
    pub fn start(&mut self, now: Time) {
        self.core.start(now, &mut self.rng, &mut self.out);
        self.drain(now);
    }

    /// Joins through `contact`, a member the driver has a link to (for example the inviter
    /// after the join proof). The contact is admitted when its JOIN-REPLY, carrying its
    /// signed record, arrives.
    pub fn join(&mut self, now: Time, contact: NodeId) {
        self.core.join(now, contact, &mut self.rng, &mut self.out);
        self.drain(now);
    }

    /// Broadcasts an application payload, signed by this node. Returns its message id.
    pub fn broadcast(&mut self, now: Time, payload: &[u8]) -> Result<u64> {
        if payload.len() > self.core.config().max_payload {
            return Err(Error::TooLong {
                what: "broadcast payload",
                len: payload.len(),
                max: self.core.config().max_payload,
            });
        }
        self.seq += 1;
        let signature = self.identity.sign(
            crate::wire::BROADCAST_PURPOSE,
            &[self.network.as_bytes(), &self.seq.to_be_bytes(), payload],
        );
        let env = crate::wire::Envelope::App {
            origin: self.me,
            seq: self.seq,
            payload: payload.to_vec(),
            signature,
        }
        .encode();
        let id = crate::wire::message_id(&env);
        self.core.broadcast(now, id, env.into(), &mut self.out);
        self.drain(now);
        Ok(id)
    }

    /// Verifies and enforces a revocation issued here or received out of band, and spreads
    /// it through the network.
    pub fn revoke(&mut self, now: Time, record: SignedRevocation) -> Result<()> {
        self.apply_revocation(now, &record)?;
        let env = crate::wire::Envelope::Revocation(record).encode();
        let id = crate::wire::message_id(&env);
        self.core.broadcast(now, id, env.into(), &mut self.out);
        self.drain(now);
        Ok(())
    }

    /// Inserts a revocation; returns whether it was new. Enforces member revocations.
    fn apply_revocation(&mut self, now: Time, record: &SignedRevocation) -> Result<bool> {
        let wall = self.wall(now);
        let rv = record
            .verify(wall, &self.policy)
            .map_err(|source| Error::Rejected {
                what: "revocation",
                source,
            })?;
        if rv.network != self.network {
            return Err(Error::Mismatch {
                what: "revocation",
                reason: "it is for another network",
            });
        }
        let target = rv.target;
        let new = self
            .revocations
            .insert(record, wall, &self.policy)
            .map_err(|source| Error::Rejected {
                what: "revocation",
                source,
            })?;
        if !new {
            return Ok(false);
        }
        if self.recent.len() >= RECENT_REVOCATIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(record.clone());
        match target {
            RevocationTarget::Member(m) if m == self.me => {
                self.core.leave(&mut self.out);
                self.push_event(Event::SelfRevoked);
            }
            RevocationTarget::Member(m) => {
                if self.core.is_active(m) {
                    // Tell the revoked neighbour before dropping the link, so that it
                    // learns why (it will not be admitted anywhere any more).
                    let records = vec![record.clone()];
                    self.push_transmit(m, crate::wire::Frame::Revocations { records }.encode());
                }
                self.core.forget(m, &mut self.out);
                self.records.remove(&m);
                self.push_event(Event::PeerRevoked(m));
            }
            RevocationTarget::Invitation(invite) => {
                let issuer = record.revocation().issuer;
                self.push_event(Event::InvitationRevoked { invite, issuer });
            }
        }
        // Credentials further down a revoked member's chain are revoked with it.
        let revoked: Vec<NodeId> = self
            .records
            .iter()
            .filter(|(_, r)| chain_revoked(r, &self.network, &self.revocations))
            .map(|(id, _)| *id)
            .collect();
        for id in revoked {
            self.core.forget(id, &mut self.out);
            self.records.remove(&id);
            self.push_event(Event::PeerRevoked(id));
        }
        Ok(true)
    }

    /// The driver could not reach `peer`, or lost the link to it.
    pub fn link_failed(&mut self, now: Time, peer: NodeId, reason: LinkFailure) {
        self.core
            .link_failed(now, peer, reason, &mut self.rng, &mut self.out);
        self.drain(now);
    }

    /// The driver established a link to `peer` after [`Event::PunchNow`].
    pub fn link_up(&mut self, now: Time, peer: NodeId) {
        self.core.link_up(now, peer, &mut self.out);
        self.drain(now);
    }

    /// Records a measured round trip (used to time introductions).
    pub fn set_rtt(&mut self, peer: NodeId, rtt: Duration) {
        self.core.set_rtt(peer, rtt);
    }

    /// Limits the random links (see [`State::set_random_limit`]).
    pub fn set_random_limit(&mut self, now: Time, limit: usize) {
        self.core.set_random_limit(now, limit, &mut self.out);
        self.drain(now);
    }

    /// Tells the core that `peer` is linked to `via` (see [`State::hint_via`]).
    pub fn hint_via(&mut self, peer: NodeId, via: NodeId) {
        self.core.hint_via(peer, via);
    }

    /// Verifies and keeps `record` (a member the driver learned of outside gossip, e.g.
    /// on a link whose peer presented it): frames from that member are then admitted.
    pub fn learn(&mut self, now: Time, record: SignedPeerRecord) -> Result<()> {
        self.admit_record(now, record).map(|_| ())
    }

    /// The verified records of every peer in the views.
    pub fn peer_records(&self) -> impl Iterator<Item = &SignedPeerRecord> + '_ {
        self.records.values()
    }

    /// The links the topology policy wants (see `in8-topology`).
    pub fn set_pinned(&mut self, now: Time, peers: &[NodeId]) {
        self.core.set_pinned(now, peers, &mut self.out);
        self.drain(now);
    }

    /// Republishes this node's record with new candidates or NAT class (sequence + 1).
    pub fn update_record(
        &mut self,
        now: Time,
        candidates: Vec<Candidate>,
        nat: NatClass,
    ) -> Result<()> {
        let r = self.record.record();
        let setup = Setup {
            identity: self.identity.clone(),
            credential: r.credential.clone(),
            candidates,
            nat,
            record_ttl: self.record_ttl,
            seed: [0; 32],
            wall_epoch: self.wall_epoch,
        };
        self.record = Self::make_record(&setup, r.seq + 1, self.wall(now))?;
        Ok(())
    }

    /// Leaves the network (DISCONNECT to every neighbour).
    pub fn leave(&mut self, now: Time) {
        self.core.leave(&mut self.out);
        self.drain(now);
    }

    /// Runs every timer that is due at `now`, and re-signs this node's record at half-life.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.core.has_left() {
            self.timers.clear();
            return;
        }
        let wall = self.wall(now);
        let r = self.record.record();
        let own_expiry = r.credential.membership().expires;
        if wall >= own_expiry + self.policy.skew() {
            // Our membership ran out: we may no longer take part.
            self.core.leave(&mut self.out);
            self.push_event(Event::CredentialExpired);
            self.drain(now);
            return;
        }
        if wall + self.record_ttl / 2 >= r.expires && r.expires < own_expiry {
            let (cands, nat) = (r.candidates.clone(), r.nat);
            let _ = self.update_record(now, cands, nat);
        }
        // Membership changes over time: forget peers whose record or credential expired.
        let skew = self.policy.skew();
        let expired: Vec<NodeId> = self
            .records
            .iter()
            .filter(|(_, r)| {
                let rec = r.record();
                wall >= rec.expires.min(rec.credential.membership().expires) + skew
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.core.forget(id, &mut self.out);
            self.records.remove(&id);
            self.push_event(Event::PeerExpired(id));
        }
        while let Some(i) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (at, _))| *at <= now)
            .min_by_key(|(_, (at, _))| *at)
            .map(|(i, _)| i)
        {
            let (_, t) = self.timers.swap_remove(i);
            self.core.handle_timer(now, t, &mut self.rng, &mut self.out);
            self.drain(now);
        }
    }

    /// When [`Gossip::handle_timeout`] should next be called (`None` after leaving).
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.core.has_left() {
            return None;
        }
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(e);
    }

    fn push_transmit(&mut self, to: NodeId, bytes: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED {
            self.transmits.pop_front();
            self.dropped += 1;
        }
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Drops records of peers the core no longer knows: the record store is bounded by
    /// the views.
    fn gc_records(&mut self) {
        let core = &self.core;
        self.records.retain(|id, _| core.knows(*id));
    }
}

/// Whether any credential in `r`'s chain has been revoked.
fn chain_revoked(r: &SignedPeerRecord, network: &NetworkId, revs: &RevocationSet) -> bool {
    let mut c = Some(&r.record().credential);
    while let Some(cred) = c {
        let m = cred.membership();
        if revs.member_revoked(network, &m.member) {
            return true;
        }
        c = m.parent.as_deref();
    }
    false
}
