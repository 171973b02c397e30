//! The [`Node`]: a running in8 peer, as an async handle to its driver task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use in8_artifact::{
    Candidate, InviteId, Ledger, MemoryLedger, NetworkId, NodeId, SignedInvitation,
    SignedMembership, SignedRsvp, Timestamp,
};
use in8_ice::nat::NatClass;
use in8_transport::{Channel, Endpoint};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::{Config, Topology};
use crate::connection::MemberLink;
use crate::driver::{self, Call, Driver, Inputs, Outlets, Socket};
use crate::error::{Error, Result};
use crate::events::{Invite, InviteOptions, Join, JoinEvent};
use crate::gather;
use crate::proto::{Core, NetEvent, Setup};

/// Calls queued towards the driver (bounded; callers wait when it is full).
const CALL_QUEUE: usize = 256;
/// STUN / TURN-channel datagrams queued from all sockets towards the driver.
const INCOMING_QUEUE: usize = 1024;

struct Inner {
    calls: mpsc::Sender<Call>,
    node_id: NodeId,
    candidates: Vec<Candidate>,
    config: Arc<Config>,
    restored: std::sync::Mutex<Vec<Invite>>,
    stopped: watch::Receiver<bool>,
    /// (classification over, class).
    nat: watch::Receiver<(bool, Option<NatClass>)>,
    net: broadcast::Sender<NetEvent>,
    member_channels: tokio::sync::Mutex<mpsc::Receiver<(NodeId, Channel)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self
            .calls
            .try_send(Box::new(|d: &mut Driver, _| d.shutdown = true));
    }
}

/// A running in8 node: one UDP socket per host address, an ICE endpoint answering checks
/// for its invitations and its network's members, DTLS / SCTP sessions, and its membership
/// in a network (gossip, topology, introductions). Cheap to clone; the node shuts down
/// when the last clone is dropped or [`Node::close`] is called.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.node_id)
            .field("candidates", &self.inner.candidates)
            .finish()
    }
}

pub(crate) fn now_unix() -> Timestamp {
    Timestamp::from_system(std::time::SystemTime::now())
}

fn io(action: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        action: action.into(),
        source,
    }
}

impl Node {
    /// Starts a node: binds its sockets, gathers candidates (host addresses, plus
    /// server-reflexive ones when STUN servers are configured), opens the ledger, restores
    /// its network membership from the state directory (or creates a network of its own)
    /// and starts the driver task. Must run inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Self> {
        Self::start_in(config, None).await
    }

    /// Like [`Node::start`], as a member of the network `credential` admits it to
    /// (overriding a stored one).
    pub async fn start_in(
        mut config: Config,
        credential: Option<SignedMembership>,
    ) -> Result<Self> {
        let me = config.identity.node_id();
        if let Some(c) = &credential
            && c.membership().member != me
        {
            return Err(Error::Artifact(in8_artifact::Error::BadChain {
                reason: "the network credential belongs to another node",
            }));
        }
        if config.seed.is_none() {
            config.seed = Some(rand::random());
        }
        let (ledger, stored, known): (Arc<dyn Ledger>, _, _) = match &config.state_dir {
            Some(dir) => {
                crate::persist::make_dir(dir)?;
                let ledger = in8_artifact::FileLedger::open(
                    dir.join("ledger"),
                    in8_artifact::DEFAULT_LEDGER_CAPACITY,
                    now_unix(),
                )?;
                let stored = crate::persist::load_credential(dir, me)?;
                (Arc::new(ledger), stored, crate::persist::load_members(dir))
            }
            None => (Arc::new(MemoryLedger::default()), None, Vec::new()),
        };
        let credential = credential.or(stored);
        let udp = gather::bind_sockets(&config).await?;
        let reflexive =
            gather::server_reflexive(&udp, &config.stun_servers, config.gather_timeout).await;
        let (merged_tx, merged_rx) = mpsc::channel(INCOMING_QUEUE);
        let mut sockets = Vec::new();
        for sock in udp {
            let base = sock.local_addr().map_err(io("reading a socket address"))?;
            let (transport, mut link) =
                Endpoint::from_socket(sock, config.identity.clone(), config.transport.clone())?;
            let sender = link.sender();
            let tx = merged_tx.clone();
            tokio::spawn(async move {
                while let Some(d) = link.recv().await {
                    if tx.send((base, d)).await.is_err() {
                        break;
                    }
                }
            });
            sockets.push(Socket {
                base,
                transport,
                sender,
            });
        }
        drop(merged_tx);
        let bases: Vec<_> = sockets.iter().map(|s| s.base).collect();
        let locals = gather::local_candidates(&bases, &reflexive.srflx);
        let config = Arc::new(config);
        let core = Core::new(
            (*config).clone(),
            Setup {
                now: Instant::now(),
                wall: now_unix(),
                sockets: bases,
                locals,
                first: reflexive.first,
                ledger: ledger.clone(),
                credential,
                known,
            },
        );
        let (calls, calls_rx) = mpsc::channel(CALL_QUEUE);
        let (reports_tx, reports_rx) = mpsc::channel(driver::REPORT_QUEUE);
        let (punch_tx, punch_rx) = mpsc::channel(driver::PUNCH_QUEUE);
        let (relay_tx, relay_rx) = mpsc::channel(driver::RELAY_QUEUE);
        let (gathered_tx, mut gathered) = watch::channel(false);
        let (nat_tx, nat) = watch::channel((false, config.assume_nat));
        let (net, _) = broadcast::channel(driver::NET_EVENTS);
        let (member_tx, member_rx) = mpsc::channel(driver::MEMBER_CHANNELS);
        let d = Driver {
            core,
            config: config.clone(),
            sockets,
            promoted: HashMap::new(),
            groups: HashMap::new(),
            links: HashMap::new(),
            ledger,
            reports: reports_tx,
            punch_tx,
            relay_tx,
            joins: HashMap::new(),
            invites: HashMap::new(),
            outlets: Outlets {
                nat: nat_tx,
                gathered: gathered_tx,
                net: net.clone(),
                member_channels: member_tx,
            },
            waiting: Vec::new(),
            shutdown: false,
            dropped_frames: 0,
            holds: Vec::new(),
        };
        let (stopped_tx, stopped) = watch::channel(false);
        let inputs = Inputs {
            calls: calls_rx,
            incoming: merged_rx,
            punched: punch_rx,
            reports: reports_rx,
            relayed: relay_rx,
        };
        {
            use tracing::Instrument as _;
            let span = tracing::info_span!("node", id = %me.short());
            tokio::spawn(d.run(inputs, stopped_tx).instrument(span));
        }
        // Wait for the relay allocation (bounded by the gather timeout in the core).
        let _ = gathered.wait_for(|g| *g).await;
        let inner = Arc::new(Inner {
            calls,
            node_id: me,
            candidates: Vec::new(),
            config,
            restored: std::sync::Mutex::new(Vec::new()),
            stopped,
            nat,
            net,
            member_channels: tokio::sync::Mutex::new(member_rx),
        });
        let mut node = Self { inner };
        let candidates = node.call(|d, _| d.core.candidates()).await?;
        if let Some(i) = Arc::get_mut(&mut node.inner) {
            i.candidates = candidates;
        }
        tracing::info!(node = %me.short(), candidates = ?node.inner.candidates, "node started");
        if let Some(dir) = &node.inner.config.state_dir {
            for signed in crate::persist::load_invitations(dir, me, now_unix()) {
                let invite = node.listen(signed).await?;
                node.restored().push(invite);
            }
        }
        Ok(node)
    }

    /// Runs `f` on the driver task with the core and the time, and returns what it
    /// returns.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver, Instant) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let call: Call = Box::new(move |d, now| {
            let _ = tx.send(f(d, now));
        });
        self.inner
            .calls
            .send(call)
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    fn restored(&self) -> std::sync::MutexGuard<'_, Vec<Invite>> {
        self.inner
            .restored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The transport's datagram counters, summed over the node's sockets: how many
    /// datagrams went to ICE and to DTLS sessions, and how many were dropped and why
    /// (e.g. `dropped_unrouted`: DTLS from an address with no session).
    pub async fn transport_stats(&self) -> Result<in8_transport::EndpointStats> {
        self.call(|d, _| {
            d.sockets
                .iter()
                .fold(in8_transport::EndpointStats::default(), |acc, s| {
                    acc + s.transport.stats()
                })
        })
        .await
    }

    /// Invitations issued before a restart (from the state directory) that are listened for
    /// again; each handle is handed out once.
    pub fn restored_invitations(&self) -> Vec<Invite> {
        std::mem::take(&mut *self.restored())
    }

    async fn listen(&self, signed: SignedInvitation) -> Result<Invite> {
        let (tx, rx) = mpsc::unbounded_channel();
        let s = signed.clone();
        self.call(move |d, now| {
            let id = s.invitation().invite_id();
            d.core.listen(now, s, false)?;
            d.invites.insert(id, tx);
            Ok::<_, Error>(())
        })
        .await??;
        Ok(Invite {
            invitation: signed,
            events: rx,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// This node's credential in its network (it changes when the node joins another).
    pub async fn credential(&self) -> Result<SignedMembership> {
        self.call(|d, _| d.core.credential().clone()).await
    }

    /// The network this node belongs to.
    pub async fn network_id(&self) -> Result<NetworkId> {
        self.call(|d, _| d.core.network_id()).await
    }

    /// This node's NAT behaviour: [`Config::assume_nat`], or what RFC 5780 classification
    /// against the configured STUN servers found (it runs in the background after start;
    /// `None` until it is done, and when the servers cannot classify). Every invitation and
    /// RSVP this node issues carries it; birthday probing needs it on both sides.
    pub fn nat(&self) -> Option<NatClass> {
        self.inner.nat.borrow().1
    }

    /// Waits until classification is over and returns [`Node::nat`].
    pub async fn nat_classified(&self) -> Option<NatClass> {
        let mut rx = self.inner.nat.clone();
        let done = rx.wait_for(|(done, _)| *done).await.map(|n| n.1);
        done.unwrap_or_else(|_| self.nat())
    }

    /// The candidates this node advertises (in invitations, RSVPs and its peer record).
    pub fn candidates(&self) -> &[Candidate] {
        &self.inner.candidates
    }

    /// Issues an invitation into this node's network and listens for it until it expires,
    /// is used up or revoked. Progress and joins arrive on the returned handle.
    pub async fn invite(&self, options: InviteOptions) -> Result<Invite> {
        let (tx, rx) = mpsc::unbounded_channel();
        let signed = self
            .call(move |d, now| {
                let s = d.core.invite(now, &options)?;
                d.invites.insert(s.invitation().invite_id(), tx);
                Ok::<_, Error>(s)
            })
            .await??;
        Ok(Invite {
            invitation: signed,
            events: rx,
        })
    }

    /// Joins from an invitation: verifies it, then connects (phase 1, to the issuer and
    /// every entry peer); if that fails the handle yields
    /// [`crate::JoinEvent::Phase1Failed`] with the RSVP to send back and keeps trying
    /// until the inviter accepts it or it expires. Joined, this node is a member of the
    /// invitation's network.
    pub async fn join(&self, invitation: &SignedInvitation) -> Result<Join> {
        let (tx, rx) = mpsc::unbounded_channel();
        let signed = invitation.clone();
        let invite = invitation.invitation().invite_id();
        self.call(move |d, now| {
            let id = d.core.join(now, &signed)?;
            let _ = tx.send(JoinEvent::Gathered {
                candidates: d.core.candidates(),
            });
            d.joins.insert(id, tx);
            // The join certificate (a fresh key carrying the join proof) takes about a
            // millisecond to make: make it while ICE runs, off the driver.
            for s in &d.sockets {
                let (transport, inv) = (s.transport.clone(), signed.invitation().clone());
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = transport.join_certificate(&inv) {
                        tracing::warn!("cannot make the join certificate: {e}");
                    }
                });
            }
            Ok::<_, Error>(())
        })
        .await??;
        Ok(Join { invite, events: rx })
    }

    /// Inviter side of phase 2: verifies an RSVP against the outstanding invitation it
    /// answers and starts checking towards the responder at once. Returns the responder.
    pub async fn accept_rsvp(&self, rsvp: &SignedRsvp) -> Result<NodeId> {
        let rsvp = rsvp.clone();
        self.call(move |d, now| d.core.accept_rsvp(now, &rsvp))
            .await?
    }

    /// Revokes an outstanding invitation: no further join is accepted (recorded in the
    /// ledger, so it survives a restart with the same state directory).
    pub async fn revoke(&self, invite: InviteId) -> Result<()> {
        self.call(move |d, now| d.core.revoke_invitation(now, invite))
            .await?
    }

    /// The members this node knows (not itself).
    pub async fn members(&self) -> Result<Vec<crate::MemberInfo>> {
        self.call(|d, _| d.core.members()).await
    }

    /// The introduction counters since the node started.
    pub async fn net_stats(&self) -> Result<crate::NetStats> {
        self.call(|d, _| d.core.net_stats()).await
    }

    /// The gossip views' sizes.
    pub async fn views(&self) -> Result<crate::Views> {
        self.call(|d, _| d.core.views()).await
    }

    /// The overlay links: each peer with what is known about its link.
    pub async fn links(&self) -> Result<Vec<(NodeId, crate::proto::LinkInfo)>> {
        self.call(|d, _| {
            d.core
                .overlay_links()
                .into_iter()
                .filter_map(|(p, l)| Some((p, d.core.link_info_of(l)?.clone())))
                .collect()
        })
        .await
    }

    /// The links the topology policy (and the application) want now, and which of them
    /// are up.
    pub async fn desired_links(&self) -> Result<Vec<(NodeId, bool)>> {
        self.call(|d, _| {
            d.core
                .desired_links()
                .iter()
                .map(|p| (*p, d.core.link_to(p).is_some()))
                .collect()
        })
        .await
    }

    /// The topology policy in force.
    pub async fn topology(&self) -> Result<&'static str> {
        self.call(|d, _| d.core.topology_name()).await
    }

    /// Switches the topology policy while running.
    pub async fn set_topology(&self, topology: Topology) -> Result<()> {
        self.call(move |d, now| d.core.set_topology(now, &topology))
            .await?
    }

    /// Broadcasts `payload` to every member, signed by this node; returns its id.
    pub async fn broadcast(&self, payload: Vec<u8>) -> Result<u64> {
        self.call(move |d, now| d.core.broadcast(now, &payload))
            .await?
    }

    /// Sends a message to one member (a link is made on demand: direct, or introduced).
    pub async fn send_to(&self, member: NodeId, payload: Vec<u8>) -> Result<()> {
        self.call(move |d, now| d.core.send_message(now, member, payload))
            .await?
    }

    /// A link to `member` for channels and streams, made on demand (directly or through
    /// an introduction) and kept while [`MemberLink`]s to it are used; waits until it is
    /// up.
    pub async fn connect_member(&self, member: NodeId) -> Result<MemberLink> {
        let (tx, rx) = oneshot::channel();
        self.call(move |d, now| {
            d.core.want_link(now, member)?;
            if let Some(link) = d.core.link_to(&member)
                && let Some(session) = d.session_of(link)
                && let Some(info) = d.core.link_info_of(link)
            {
                let _ = tx.send(Ok(MemberLink {
                    session,
                    peer: member,
                    path: info.path,
                }));
            } else {
                d.waiting.push((member, tx));
            }
            Ok::<_, Error>(())
        })
        .await??;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The next channel a member opened towards this node, with who opened it.
    pub async fn accept_channel(&self) -> Result<(NodeId, Channel)> {
        let mut rx = self.inner.member_channels.lock().await;
        rx.recv().await.ok_or(Error::Closed)
    }

    /// Revokes a member's credential (this node's credential must grant REVOKE); every
    /// member cuts it off as the revocation spreads.
    pub async fn revoke_member(&self, member: NodeId) -> Result<()> {
        self.call(move |d, now| d.core.revoke_member(now, member))
            .await?
    }

    /// Leaves the network for good (the other members are told).
    pub async fn leave(&self) -> Result<()> {
        self.call(|d, now| d.core.leave(now)).await
    }

    /// Network events from now on ([`NetEvents::next`]).
    pub fn events(&self) -> NetEvents {
        NetEvents {
            rx: self.inner.net.subscribe(),
        }
    }

    /// Shuts the node down and waits until it has stopped: sessions end with "endpoint
    /// closed", the sockets close and the ledger file is released (a new node may then open
    /// the same state directory).
    pub async fn close(&self) {
        let _ = self
            .inner
            .calls
            .send(Box::new(|d: &mut Driver, _| d.shutdown = true))
            .await;
        let mut stopped = self.inner.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }
}

/// A subscription to a node's network events. Each subscriber buffers up to 1,024
/// events; one that falls further behind is told how many it missed.
#[derive(Debug)]
pub struct NetEvents {
    rx: broadcast::Receiver<NetEvent>,
}

/// What [`NetEvents::next`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetUpdate {
    /// An event.
    Event(NetEvent),
    /// This subscriber fell behind and missed this many events (the node's state, e.g.
    /// [`Node::members`], is still exact).
    Lagged(u64),
}

impl NetEvents {
    /// The next event; `None` once the node has shut down.
    pub async fn next(&mut self) -> Option<NetUpdate> {
        match self.rx.recv().await {
            Ok(e) => Some(NetUpdate::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(NetUpdate::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
