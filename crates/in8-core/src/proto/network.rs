//! The network a node belongs to (docs/network.md): its membership credential, the gossip
//! instance, the member directory, the topology policy, and what every link carries on its
//! network channel. A link joins the overlay once its peer's HELLO (a signed record whose
//! credential chains to the creator) verifies; an invitee becomes a member when its
//! inviter's WELCOME (the credential it issued) arrives.

pub(crate) mod api;
mod overlay;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use in8_artifact::{
    Capabilities, InviteId, Membership, NetworkId, NodeId, PairSecret, RevocationSet, Revocations,
    SignedMembership,
};
use in8_gossip::{Gossip, SignedPeerRecord};

use super::directory::Directory;
use super::links::LinkKind;
use super::topology::TopologyState;
use super::wire::{NetFrame, WireError};
use super::{Action, CloseCause, Core, Event, LinkId, NetEvent, Store};

pub use api::{MemberInfo, NetStats, PunchCount, Views};

/// How often the last-known members are looked at, and stored when they changed.
pub(crate) const PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// How long a link may stay up without its peer's HELLO (or an invitee without the
/// WELCOME) before it is treated as a plain session outside the overlay.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Redemptions remembered to recognise a repeated announcement.
const REDEMPTIONS: usize = 1024;
/// How long a member that flooded or misbehaved stays refused.
const BAN: Duration = Duration::from_secs(60);
/// Most members refused at once.
const MAX_BANNED: usize = 256;
/// How long an admitted link may go without a reason (a gossip neighbour, a pinned or
/// wanted peer, a held connection) before it closes: links made for one frame (a shuffle
/// reply, a request that was refused) do not linger.
pub(crate) const IDLE_LINK: Duration = Duration::from_secs(8);
/// How long after joining a newcomer asks new neighbours for members, and how many.
const ASK_WINDOW: Duration = Duration::from_secs(60);
const ASK_NEIGHBOURS: usize = 4;
/// Most member records a newcomer is handed on joining (the rest it learns from their
/// announcements).
const WELCOME_MEMBERS: usize = 256;

/// A per-link token bucket: frames per second with a burst.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    pub(crate) dropped: u32,
}

impl Bucket {
    fn new(now: Instant, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            last: now,
            dropped: 0,
        }
    }

    /// Takes one token; `false` when the link is over its rate.
    fn take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * f64::from(rate)).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// A dial in progress towards a member (frames wait for its link).
#[derive(Debug)]
pub(crate) struct Dial {
    /// Attempts running (direct and introduced).
    pub(crate) attempts: u32,
    /// Gossip was told a direct link will not do (it asks an introducer).
    pub(crate) told_gossip: bool,
    /// A direct attempt deferred until then (the peer's NAT filters: an introduction
    /// goes first; the direct attempt still finds a shared LAN).
    pub(crate) direct_at: Option<Instant>,
}

/// An introduction's simultaneous open, due at `at`.
#[derive(Clone, Debug)]
pub(crate) struct Punch {
    pub(crate) at: Instant,
    pub(crate) record: SignedPeerRecord,
    pub(crate) introducer: NodeId,
    pub(crate) token: u64,
}

/// A link that is up but not (yet) part of the overlay.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unadmitted {
    pub(crate) since: Instant,
    /// The link came from this node's join: the inviter's WELCOME is awaited.
    pub(crate) welcome: bool,
}

/// The network state.
pub(crate) struct NetState {
    pub(crate) credential: SignedMembership,
    pub(crate) gossip: Option<Gossip>,
    pub(crate) directory: Directory,
    pub(crate) topology: TopologyState,
    pub(crate) started: Instant,
    /// The link of each peer in the overlay.
    pub(crate) admitted: HashMap<NodeId, LinkId>,
    /// When each admitted link last had a reason to exist (admission, or being a gossip
    /// neighbour, pinned or wanted): an idle one closes after [`IDLE_LINK`].
    pub(crate) used: HashMap<LinkId, Instant>,
    pub(crate) next_sweep: Instant,
    pub(crate) unadmitted: HashMap<LinkId, Unadmitted>,
    /// Gossip frames waiting for a dial's link, per peer.
    pub(crate) queued: HashMap<NodeId, VecDeque<NetFrame>>,
    pub(crate) dialling: HashMap<NodeId, Dial>,
    pub(crate) punches: Vec<Punch>,
    /// Peers an introduction's attempt runs towards, with the introducer (gossip hears of
    /// the link when the peer is admitted).
    pub(crate) pending_intro: HashMap<NodeId, NodeId>,
    /// Peers dialled only to hand over one frame (a shuffle reply), bounded by the dials.
    pub(crate) ephemeral: std::collections::HashSet<NodeId>,
    pub(crate) pairs: HashMap<NodeId, PairSecret>,
    pub(crate) buckets: HashMap<LinkId, Bucket>,
    banned: HashMap<NodeId, Instant>,
    resolve: (Instant, u32),
    redemptions: VecDeque<(InviteId, NodeId)>,
    pub(crate) next_announce: Instant,
    /// When this node last announced itself, and how often since it became a member.
    pub(crate) last_announce: Option<Instant>,
    pub(crate) announces: u32,
    pub(crate) next_persist: Instant,
    /// The members last stored (id and record sequence, in order), so an unchanged list is not written again.
    pub(crate) persisted: Vec<(NodeId, u64)>,
    /// Introduction counters.
    pub(crate) stats: api::NetStats,
    /// Members every attempt so far failed to link (direct, then introduced), until a link
    /// to them comes up (at most `max_members`).
    pub(crate) unreachable: BTreeSet<NodeId>,
    /// Peers the application wants links to (channels, messages): pinned too.
    pub(crate) app_wanted: BTreeSet<NodeId>,
    /// Last-known members to rejoin through, when restarting from a stored credential.
    pub(crate) rejoin: Vec<SignedPeerRecord>,
    /// The member to send gossip's JOIN to once its HELLO arrives.
    pub(crate) join_via: Option<NodeId>,
    /// When this node last became a member (it asks its first neighbours for the members
    /// they know).
    pub(crate) joined_at: Option<Instant>,
    /// Neighbours asked for members so far since joining.
    pub(crate) asked: usize,
    /// Links whose ASK-MEMBERS was answered.
    pub(crate) answered: std::collections::HashSet<LinkId>,
    /// Gossip has joined (or started as the creator).
    pub(crate) joined: bool,
    /// Restarted from a stored credential and not yet linked to the network.
    pub(crate) rejoining: bool,
    /// This node left for good.
    pub(crate) left: bool,
    empty_revocations: RevocationSet,
}

impl NetState {
    /// A state to be replaced by [`Core::start_network`] (the core is built first).
    pub(crate) fn placeholder(now: Instant) -> Self {
        let id = in8_artifact::Identity::from_seed(&[0; 32]);
        Self {
            credential: Membership::genesis(&id, 0, in8_artifact::Timestamp::from_unix(0)),
            gossip: None,
            directory: Directory::new(1),
            topology: TopologyState::new(
                &crate::config::Topology::Fixed(in8_topology::Policy::Random),
                now,
            ),
            started: now,
            admitted: HashMap::new(),
            used: HashMap::new(),
            next_sweep: now,
            unadmitted: HashMap::new(),
            queued: HashMap::new(),
            dialling: HashMap::new(),
            punches: Vec::new(),
            pending_intro: HashMap::new(),
            ephemeral: std::collections::HashSet::new(),
            pairs: HashMap::new(),
            buckets: HashMap::new(),
            banned: HashMap::new(),
            resolve: (now, 0),
            redemptions: VecDeque::new(),
            next_announce: now,
            last_announce: None,
            announces: 0,
            next_persist: now,
            persisted: Vec::new(),
            stats: api::NetStats::default(),
            unreachable: BTreeSet::new(),
            app_wanted: BTreeSet::new(),
            rejoin: Vec::new(),
            join_via: None,
            joined_at: None,
            asked: 0,
            answered: std::collections::HashSet::new(),
            joined: false,
            rejoining: false,
            left: false,
            empty_revocations: RevocationSet::default(),
        }
    }

    pub(crate) fn network(&self) -> NetworkId {
        self.credential.membership().network
    }

    /// The revocations gossip enforces.
    pub(crate) fn revocations(&self) -> &RevocationSet {
        match &self.gossip {
            Some(g) => g.revocations(),
            None => &self.empty_revocations,
        }
    }

    pub(crate) fn revoked(&self, id: &NodeId) -> bool {
        self.revocations().member_revoked(&self.network(), id)
    }

    pub(crate) fn is_banned(&self, id: &NodeId, now: Instant) -> bool {
        self.banned.get(id).is_some_and(|t| *t > now)
    }

    fn ban(&mut self, id: NodeId, now: Instant) {
        if self.banned.len() >= MAX_BANNED {
            self.banned.retain(|_, t| *t > now);
        }
        if self.banned.len() < MAX_BANNED {
            self.banned.insert(id, now + BAN);
        }
    }

    /// Takes one of `per_second` member-session resolutions; `false` when spent.
    pub(crate) fn resolve_budget(&mut self, now: Instant, per_second: u32) -> bool {
        if now.saturating_duration_since(self.resolve.0) >= Duration::from_secs(1) {
            self.resolve = (now, 0);
        }
        self.resolve.1 += 1;
        self.resolve.1 <= per_second
    }

    /// Records a redemption announcement; `false` when it was seen before.
    pub(crate) fn note_redemption(&mut self, invite: InviteId, member: NodeId) -> bool {
        if self.redemptions.contains(&(invite, member)) {
            return false;
        }
        if self.redemptions.len() >= REDEMPTIONS {
            self.redemptions.pop_front();
        }
        self.redemptions.push_back((invite, member));
        true
    }
}

impl Core {
    /// Starts the network: from the stored credential (rejoining through `known`), or as
    /// the creator of a new one.
    pub(crate) fn start_network(
        &mut self,
        now: Instant,
        stored: Option<SignedMembership>,
        known: Vec<SignedPeerRecord>,
    ) {
        let wall = self.wall(now);
        let usable = stored.filter(|c| {
            c.membership().member == self.me
                && c.verify(wall, &self.config.verify, &in8_artifact::NoRevocations)
                    .is_ok()
        });
        let (credential, rejoin) = match usable {
            Some(c) => {
                let network = c.membership().network;
                let known = known
                    .into_iter()
                    .filter(|r| r.record().network == network && r.node() != self.me)
                    .collect();
                (c, known)
            }
            None => {
                let nonce = rand::Rng::random(&mut self.rng);
                let c = Membership::genesis(
                    &self.identity,
                    nonce,
                    wall + Duration::from_secs(10 * 365 * 86_400),
                );
                if self.config.state_dir.is_some() {
                    self.push_action(Action::Store(Store::Credential(Box::new(c.clone()))));
                }
                (c, Vec::new())
            }
        };
        let creator = credential.membership().parent.is_none();
        self.net = NetState {
            directory: Directory::new(self.config.network.max_members),
            topology: TopologyState::new(&self.config.network.topology, now),
            started: now,
            next_announce: now + Duration::from_secs(1),
            next_persist: now + PERSIST_INTERVAL,
            ..NetState::placeholder(now)
        };
        self.net.rejoin = rejoin;
        self.use_credential(now, credential);
        if creator || self.net.rejoin.is_empty() {
            self.start_gossip(now);
        } else {
            self.net.rejoining = true;
            self.net.rejoin.reverse(); // tried in order, the best first
            self.rejoin_next(now);
        }
    }

    /// Makes `credential` this node's membership: a new gossip instance, a fresh directory
    /// when the network changed.
    fn use_credential(&mut self, now: Instant, credential: SignedMembership) {
        let changed = credential.membership().network != self.net.network();
        let issuer = credential.membership().issuer;
        let network = credential.membership().network;
        self.net.credential = credential.clone();
        let setup = in8_gossip::Setup {
            identity: self.identity.clone(),
            credential,
            candidates: self.record_candidates(),
            nat: super::classify::record_class(self.nat.as_ref()),
            record_ttl: self.config.network.record_ttl,
            seed: rand::Rng::random(&mut self.rng),
            wall_epoch: self.wall(self.epoch_instant()),
        };
        let mut gcfg = self.config.network.gossip.clone();
        gcfg.max_pinned = gcfg.max_pinned.max(self.config.network.max_links.min(1024));
        match Gossip::new(gcfg, setup) {
            Ok(g) => self.net.gossip = Some(g),
            Err(e) => {
                tracing::warn!("cannot take part in network {network}: {e}");
                self.net.gossip = None;
            }
        }
        self.net.joined = false;
        // A new membership decides its topology afresh (an `auto` policy moves to the
        // right stage at its first decision) once the members it is handed have arrived.
        self.net.topology =
            TopologyState::new(&self.config.network.topology, now + Duration::from_secs(1));
        self.net.announces = 0;
        self.net.last_announce = None;
        if changed {
            self.net.directory = Directory::new(self.config.network.max_members);
        }
        self.push_event(Event::Network(NetEvent::Member { network, issuer }));
        let _ = now;
    }

    pub(crate) fn epoch_instant(&self) -> Instant {
        self.instant_of(in8_gossip::Time::ZERO)
    }

    /// Gossip starts as the first node, or as a member whose links will bring others.
    fn start_gossip(&mut self, now: Instant) {
        let gt = self.gtime(now);
        if let Some(g) = &mut self.net.gossip {
            g.start(gt);
        }
        self.net.joined = true;
    }

    /// Dials the next last-known member (restart without invitation).
    pub(crate) fn rejoin_next(&mut self, now: Instant) {
        while let Some(r) = self.net.rejoin.pop() {
            let peer = r.node();
            if self.dial_member(now, &r, None) {
                self.net.join_via = Some(peer);
                self.net
                    .dialling
                    .entry(peer)
                    .or_insert(Dial {
                        attempts: 0,
                        told_gossip: true,
                        direct_at: None,
                    })
                    .attempts += 1;
                return;
            }
        }
        if !self.net.joined {
            self.push_event(Event::Network(NetEvent::RejoinFailed));
            self.net.rejoining = false;
            self.start_gossip(now);
        }
    }

    /// The candidates this node's record carries (relayed ones only when the network
    /// allows relays).
    pub(crate) fn record_candidates(&self) -> Vec<in8_artifact::Candidate> {
        self.candidates()
            .into_iter()
            .filter(|c| {
                self.config.network.allow_relay || c.kind != in8_artifact::CandidateKind::Relay
            })
            .take(16)
            .collect()
    }

    /// The NAT class changed: republish the record.
    pub(crate) fn nat_changed(&mut self) {
        let cands = self.record_candidates();
        let nat = super::classify::record_class(self.nat.as_ref());
        let gt = self.gtime(self.last_now);
        if let Some(g) = &mut self.net.gossip {
            let _ = g.update_record(gt, cands, nat);
        }
    }

    /// The verified record of `peer` (from gossip's views or the directory).
    pub(crate) fn record_of(&self, peer: &NodeId) -> Option<&SignedPeerRecord> {
        self.net
            .gossip
            .as_ref()
            .and_then(|g| g.peer_record(peer))
            .or_else(|| self.net.directory.get(peer).map(|e| &e.record))
    }

    /// Peers with a link in the overlay.
    pub(crate) fn admitted_peers(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.net.admitted.keys().copied().collect();
        v.sort();
        v
    }

    /// Sends a frame to a member over its link, if it has one.
    pub(crate) fn send_to_member(&mut self, peer: NodeId, frame: NetFrame) -> bool {
        match self.net.admitted.get(&peer) {
            Some(&link) => {
                self.push_action(Action::Send {
                    link,
                    frame: frame.encode(),
                });
                true
            }
            None => false,
        }
    }

    fn send_on(&mut self, link: LinkId, frame: &NetFrame) {
        self.push_action(Action::Send {
            link,
            frame: frame.encode(),
        });
    }

    /// A link came up: what it carries for the network.
    pub(crate) fn net_link_up(&mut self, now: Instant, link: LinkId, peer: NodeId, kind: LinkKind) {
        let burst = self.config.network.frame_burst;
        self.net.buckets.insert(link, Bucket::new(now, burst));
        let record = self.net.gossip.as_ref().map(|g| g.record().clone());
        match kind {
            LinkKind::Join(_) => {
                self.net.unadmitted.insert(
                    link,
                    Unadmitted {
                        since: now,
                        welcome: true,
                    },
                );
            }
            LinkKind::Accept(invite) => {
                self.net.unadmitted.insert(
                    link,
                    Unadmitted {
                        since: now,
                        welcome: false,
                    },
                );
                self.welcome(now, link, peer, invite);
                if let Some(r) = record {
                    self.send_on(link, &NetFrame::Hello(Box::new(r)));
                }
                self.send_members(link, peer);
                self.announce_redemption(invite, peer);
            }
            LinkKind::Member => {
                self.net.unadmitted.insert(
                    link,
                    Unadmitted {
                        since: now,
                        welcome: false,
                    },
                );
                if let Some(r) = record {
                    self.send_on(link, &NetFrame::Hello(Box::new(r)));
                }
            }
        }
    }

    /// Issues the newcomer's credential, chained through this node, with what the
    /// invitation grants (never more than this node holds, never longer).
    fn welcome(&mut self, now: Instant, link: LinkId, peer: NodeId, invite: InviteId) {
        let wall = self.wall(now);
        let Some(o) = self.invites.get(&invite) else {
            return;
        };
        let inv = o.signed.invitation();
        if inv.network != self.net.network() {
            // The invitation names another network (issued before this node changed
            // networks): the session stands, but no membership comes with it.
            return;
        }
        let own = self.net.credential.membership();
        let mut caps = Capabilities(inv.capabilities.0 & own.capabilities.0);
        if self.net.credential.depth() + 1 >= in8_artifact::MAX_CHAIN_DEPTH {
            // A credential at the depth limit could not issue any: it does not claim to.
            caps = caps.without(Capabilities::INVITE);
        }
        let expires = own.expires.min(wall + self.config.network.credential_ttl);
        match Membership::issue(&self.identity, &self.net.credential, peer, caps, expires) {
            Ok(c) => self.send_on(link, &NetFrame::Welcome(Box::new(c))),
            Err(e) => tracing::warn!(peer = %peer.short(), "cannot issue a credential: {e}"),
        }
    }

    /// Hands a newcomer the members this node knows (at most [`WELCOME_MEMBERS`], in
    /// MEMBERS frames of up to 32).
    fn send_members(&mut self, link: LinkId, peer: NodeId) {
        let list: Vec<SignedPeerRecord> = self
            .net
            .directory
            .online()
            .filter(|(id, _)| **id != peer)
            .map(|(_, e)| e.record.clone())
            .take(WELCOME_MEMBERS)
            .collect();
        for chunk in list.chunks(super::wire::MAX_MEMBERS_FRAME) {
            self.send_on(link, &NetFrame::Members(chunk.to_vec()));
        }
    }

    /// Tells the invitation's issuer and other entry peers (those with a link, and the
    /// rest by broadcast) that it was redeemed here.
    fn announce_redemption(&mut self, invite: InviteId, member: NodeId) {
        let Some(o) = self.invites.get(&invite) else {
            return;
        };
        let inv = o.signed.invitation();
        let mut others: Vec<NodeId> = inv.entry_peers.iter().map(|e| e.id).collect();
        others.push(inv.issuer);
        others.retain(|p| *p != self.me);
        if others.is_empty() {
            return;
        }
        self.net.note_redemption(invite, member);
        for p in others {
            self.send_to_member(p, NetFrame::Redeemed { invite, member });
        }
        let payload = super::wire::Broadcast::Redeemed { invite, member }.encode();
        self.gossip_broadcast(payload);
    }

    /// An admitted (or not yet admitted) link is gone.
    pub(crate) fn net_link_gone(&mut self, link: LinkId, peer: NodeId) {
        self.net.unadmitted.remove(&link);
        self.net.buckets.remove(&link);
        self.net.used.remove(&link);
        if self.net.admitted.get(&peer) == Some(&link) {
            self.net.admitted.remove(&peer);
            self.push_event(Event::Network(NetEvent::LinkDown { peer, link }));
            let gt = self.gtime(self.last_now);
            if let Some(g) = &mut self.net.gossip {
                g.link_failed(gt, peer, in8_gossip::LinkFailure::Closed);
            }
        }
    }

    /// A frame on a link's network channel.
    pub(crate) fn net_frame(&mut self, now: Instant, link: LinkId, bytes: &[u8]) {
        let Some(peer) = self.links.get(&link).filter(|l| l.up).and_then(|l| l.peer) else {
            return;
        };
        let (rate, burst) = (
            self.config.network.frame_rate,
            self.config.network.frame_burst,
        );
        let over = match self.net.buckets.get_mut(&link) {
            Some(b) => {
                if b.take(now, rate, burst) {
                    None
                } else {
                    Some(b.dropped)
                }
            }
            None => None,
        };
        if let Some(dropped) = over {
            // Rate-limited; a member that keeps flooding is disconnected and refused.
            if dropped > burst {
                tracing::warn!(peer = %peer.short(), "member floods its link: disconnected");
                self.net.ban(peer, now);
                self.send_on(link, &NetFrame::Bye(CloseCause::Misbehaved));
                self.drop_link(link, CloseCause::Misbehaved);
            }
            return;
        }
        let frame = match NetFrame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.bad_frame(now, link, peer, e);
                return;
            }
        };
        let admitted = self.net.admitted.get(&peer) == Some(&link);
        self.net.directory.heard(now, &peer);
        match frame {
            NetFrame::Hello(record) => self.hello(now, link, peer, *record),
            NetFrame::Welcome(c) => self.welcomed(now, link, peer, *c),
            NetFrame::Bye(cause) => {
                tracing::debug!(peer = %peer.short(), ?cause, "peer closes the link");
                self.drop_link(link, CloseCause::NotNeeded);
            }
            _ if !admitted => {
                tracing::debug!(
                    peer = %peer.short(),
                    ?link,
                    kind = ?self.links.get(&link).map(|l| l.kind),
                    waiting = self.net.unadmitted.contains_key(&link),
                    other = ?self.net.admitted.get(&peer),
                    "frame from a link not in the overlay dropped"
                );
            }
            NetFrame::Gossip(g) => {
                let gt = self.gtime(now);
                // Gossip keeps records only for the peers in its views; the link's peer
                // proved its record with its HELLO, so gossip admits its frames (and
                // answers a stale one with DISCONNECT, restoring view symmetry).
                let known = self
                    .net
                    .gossip
                    .as_ref()
                    .and_then(|g| g.peer_record(&peer))
                    .is_some();
                if !known
                    && let Some(r) = self.net.directory.get(&peer).map(|e| e.record.clone())
                    && let Some(gs) = &mut self.net.gossip
                {
                    let _ = gs.learn(gt, r);
                }
                if let Some(gs) = &mut self.net.gossip
                    && let Err(e) = gs.handle_message(gt, peer, &g)
                {
                    tracing::debug!(peer = %peer.short(), "gossip frame refused: {e}");
                }
            }
            NetFrame::Host(inv) => self.host_request(now, peer, *inv),
            NetFrame::Redeemed { invite, member } => {
                self.redeemed_elsewhere(now, peer, invite, member)
            }
            NetFrame::Members(list) => {
                for r in list {
                    self.learn_record(now, &r, None);
                }
            }
            NetFrame::AskMembers => {
                if self.net.answered.len() < 4096 && self.net.answered.insert(link) {
                    self.send_members(link, peer);
                }
            }
            NetFrame::Message(payload) => {
                if payload.len() <= self.config.network.max_message {
                    self.push_event(Event::Network(NetEvent::Message {
                        from: peer,
                        payload,
                    }));
                }
            }
        }
    }

    fn bad_frame(&mut self, now: Instant, link: LinkId, peer: NodeId, e: WireError) {
        tracing::info!(peer = %peer.short(), "malformed network frame: {e}");
        self.net.ban(peer, now);
        self.send_on(link, &NetFrame::Bye(CloseCause::Misbehaved));
        self.close_later(now, link, CloseCause::Misbehaved);
    }

    /// Verifies a record for this network: signature, chain to the creator, expiry,
    /// revocations.
    pub(crate) fn verify_record(&self, now: Instant, r: &SignedPeerRecord) -> bool {
        r.verify(
            &self.net.network(),
            self.wall(now),
            &self.config.verify,
            self.net.revocations(),
        )
        .is_ok()
    }

    /// Stores a verified record in the directory.
    pub(crate) fn learn_record(
        &mut self,
        now: Instant,
        r: &SignedPeerRecord,
        neighbours: Option<Vec<NodeId>>,
    ) {
        if r.node() == self.me {
            return;
        }
        // A record already held byte for byte was verified when it came (revocations and
        // expiry remove entries): only refresh it.
        let same = self
            .net
            .directory
            .get(&r.node())
            .is_some_and(|e| e.record == *r);
        if !same && !self.verify_record(now, r) {
            tracing::debug!(
                member = %r.node().short(),
                error = ?r.verify(&self.net.network(), self.wall(now), &self.config.verify, self.net.revocations()).err(),
                "record refused"
            );
            return;
        }
        let change = self.net.directory.upsert(now, r, neighbours);
        if self.net.directory.changed {
            self.topology_soon(now);
        }
        if matches!(
            change,
            super::directory::Change::New | super::directory::Change::Back
        ) {
            self.push_event(Event::Network(NetEvent::MemberUp(r.node())));
        }
    }

    /// The peer's HELLO: its record admits the link to the overlay, or the link closes.
    fn hello(&mut self, now: Instant, link: LinkId, peer: NodeId, record: SignedPeerRecord) {
        if record.node() != peer || !self.verify_record(now, &record) {
            tracing::info!(peer = %peer.short(), "HELLO refused: not a member of this network");
            self.net.unadmitted.remove(&link);
            self.send_on(link, &NetFrame::Bye(CloseCause::NotAMember));
            // A session from a join stays for the application; a member link closes.
            if self.closable(link) {
                self.close_later(now, link, CloseCause::NotAMember);
            }
            return;
        }
        self.learn_record(now, &record, None);
        if let Some(&other) = self.net.admitted.get(&peer)
            && other != link
        {
            // Two links to the same member: both sides keep the same one.
            let keep = self.preferred_link(other, link);
            let drop = if keep == link { other } else { link };
            tracing::debug!(peer = %peer.short(), ?keep, ?drop, "two links to one member");
            self.net.admitted.insert(peer, keep);
            self.net.unadmitted.remove(&link);
            if self.closable(drop) {
                self.send_on(drop, &NetFrame::Bye(CloseCause::Duplicate));
                self.close_later(now, drop, CloseCause::Duplicate);
            }
            return;
        }
        self.net.unadmitted.remove(&link);
        self.net.admitted.insert(peer, link);
        self.net.used.insert(link, now);
        tracing::debug!(peer = %peer.short(), ?link, "admitted");
        self.admitted(now, link, peer);
    }

    /// Of two links to one peer, the one both sides keep: a join's or an invitee's
    /// session first (the application holds it), else the smaller (caller, token).
    fn preferred_link(&self, a: LinkId, b: LinkId) -> LinkId {
        let key = |l: LinkId| {
            let ctx = self.links.get(&l);
            let app = ctx.is_some_and(|c| c.kind != LinkKind::Member);
            let member = ctx
                .and_then(|c| self.sessions.get(&c.session))
                .and_then(|s| match &s.purpose {
                    super::ice_events::Purpose::Member(m) => Some((m.caller, m.token)),
                    _ => None,
                });
            (!app, member)
        };
        if key(a) <= key(b) { a } else { b }
    }

    /// The inviter's WELCOME: the credential it issued for this node.
    fn welcomed(&mut self, now: Instant, link: LinkId, peer: NodeId, c: SignedMembership) {
        let Some(u) = self.net.unadmitted.get(&link).copied() else {
            return;
        };
        if !u.welcome {
            return;
        }
        let m = c.membership();
        let ok = m.member == self.me
            && m.issuer == peer
            && c.verify(
                self.wall(now),
                &self.config.verify,
                &in8_artifact::NoRevocations,
            )
            .is_ok();
        if !ok {
            tracing::warn!(peer = %peer.short(), "WELCOME with an unusable credential ignored");
            return;
        }
        if let Some(u) = self.net.unadmitted.get_mut(&link) {
            u.welcome = false;
        }
        if self.config.state_dir.is_some() {
            self.push_action(Action::Store(Store::Credential(Box::new(c.clone()))));
        }
        let changed = m.network != self.net.network();
        if changed {
            // Links into the old network mean nothing now.
            let old: Vec<LinkId> = self
                .net
                .admitted
                .values()
                .copied()
                .filter(|l| *l != link)
                .collect();
            for l in old {
                if self.closable(l) {
                    self.send_on(l, &NetFrame::Bye(CloseCause::NotAMember));
                    self.close_later(now, l, CloseCause::NotAMember);
                }
            }
            self.net.admitted.clear();
        }
        self.use_credential(now, c);
        self.net.join_via = Some(peer);
        self.net.joined_at = Some(now);
        self.net.asked = 1; // the inviter hands its members over unasked
        if let Some(r) = self.net.gossip.as_ref().map(|g| g.record().clone()) {
            self.send_on(link, &NetFrame::Hello(Box::new(r)));
        }
    }

    /// A link joined the overlay.
    fn admitted(&mut self, now: Instant, link: LinkId, peer: NodeId) {
        let gt = self.gtime(now);
        // The first link into the network carries gossip's JOIN: the inviter's after a
        // join, or any member's after a restart (the last-known member dialled, or one
        // that dialled this node back).
        let joining = !self.net.joined && (self.net.join_via == Some(peer) || self.net.rejoining);
        if joining {
            if let Some(g) = &mut self.net.gossip {
                g.join(gt, peer);
            }
            self.net.joined = true;
            self.net.rejoining = false;
            self.net.join_via = None;
        }
        self.net.unreachable.remove(&peer);
        if self.net.pending_intro.contains_key(&peer) {
            let i = api::class_index(self.nat_of_member(&peer));
            self.net.stats.punches[i].linked += 1;
        }
        if let Some(introducer) = self.net.pending_intro.remove(&peer)
            && let Some(g) = &mut self.net.gossip
        {
            tracing::debug!(peer = %peer.short(), introducer = %introducer.short(), "introduced link up");
            g.link_up(gt, peer);
        }
        self.net.dialling.remove(&peer);
        // A newcomer asks its first few neighbours for the members they know: the
        // inviter's list alone may be short, and announcements come only every
        // `announce_interval`.
        if self
            .net
            .joined_at
            .is_some_and(|t| now.saturating_duration_since(t) < ASK_WINDOW)
            && self.net.asked < ASK_NEIGHBOURS
            && self
                .links
                .get(&link)
                .is_some_and(|l| l.kind == LinkKind::Member)
        {
            self.net.asked += 1;
            self.send_on(link, &NetFrame::AskMembers);
        }
        if let Some(q) = self.net.queued.remove(&peer) {
            for f in q {
                self.send_on(link, &f);
            }
        }
        if self.net.ephemeral.remove(&peer) {
            // Made for one frame: it closes once that is out, unless something wants it.
            self.net
                .used
                .insert(link, now.checked_sub(IDLE_LINK).unwrap_or(now));
        }
    }

    /// Links up but never admitted within the timeout: member links close; a join's or
    /// an invitee's session stays, outside the overlay.
    pub(crate) fn admission_timeout(&mut self, now: Instant) {
        let due: Vec<(LinkId, Unadmitted)> = self
            .net
            .unadmitted
            .iter()
            .filter(|(_, u)| now.saturating_duration_since(u.since) >= ADMISSION_TIMEOUT)
            .map(|(l, u)| (*l, *u))
            .collect();
        for (link, _) in due {
            self.net.unadmitted.remove(&link);
            if self.closable(link) {
                self.drop_link(link, CloseCause::NotAMember);
            }
        }
    }

    pub(crate) fn admission_deadline(&self) -> Option<Instant> {
        self.net
            .unadmitted
            .values()
            .map(|u| u.since + ADMISSION_TIMEOUT)
            .min()
    }
}
