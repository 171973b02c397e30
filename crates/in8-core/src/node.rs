//! The [`Node`]: a running in8 peer.

use std::sync::Arc;

use in8_artifact::{
    Candidate, Flags, Invitation, InviteId, InviteSecret, Ledger, Membership, MemoryLedger,
    NoRevocations, NodeId, SignedInvitation, SignedMembership, SignedRsvp,
};
use in8_ice::nat::NatClass;
use in8_transport::Endpoint;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::driver::{Command, Driver, Setup, Socket, now_unix};
use crate::error::{Error, Result};
use crate::events::{Invite, InviteOptions, Join};
use crate::gather;

/// Commands queued towards the driver (bounded; callers wait when it is full).
const COMMAND_QUEUE: usize = 256;
/// STUN / TURN-channel datagrams queued from all sockets towards the driver.
const INCOMING_QUEUE: usize = 1024;

struct Inner {
    commands: mpsc::Sender<Command>,
    node_id: NodeId,
    identity: in8_artifact::Identity,
    network: SignedMembership,
    candidates: Vec<Candidate>,
    config: Arc<Config>,
    restored: std::sync::Mutex<Vec<Invite>>,
    stopped: tokio::sync::watch::Receiver<bool>,
    /// (classification over, class).
    nat: tokio::sync::watch::Receiver<(bool, Option<NatClass>)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Shutdown);
    }
}

/// A running in8 node: one UDP socket per host address, an ICE endpoint answering checks
/// for its invitations, and DTLS / SCTP sessions. Cheap to clone; the node shuts down when
/// the last clone is dropped or [`Node::close`] is called.
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

impl Node {
    /// Starts a node: binds its sockets, gathers candidates (host addresses, plus
    /// server-reflexive ones when STUN servers are configured), opens the ledger and starts
    /// the driver task. Must run inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Self> {
        Self::start_in(config, None).await
    }

    /// Like [`Node::start`], as a member of `network` (this node's credential in it). Without
    /// one the node creates a network of its own.
    pub async fn start_in(config: Config, network: Option<SignedMembership>) -> Result<Self> {
        let identity = config.identity.clone();
        let network = match network {
            Some(n) => {
                if n.membership().member != identity.node_id() {
                    return Err(Error::Artifact(in8_artifact::Error::BadChain {
                        reason: "the network credential belongs to another node",
                    }));
                }
                n
            }
            None => Membership::genesis(
                &identity,
                rand::random(),
                now_unix() + std::time::Duration::from_secs(10 * 365 * 86_400),
            ),
        };
        let ledger: Arc<dyn Ledger> = match &config.state_dir {
            Some(dir) => Arc::new(in8_artifact::FileLedger::open(
                dir.join("ledger"),
                in8_artifact::DEFAULT_LEDGER_CAPACITY,
                now_unix(),
            )?),
            None => Arc::new(MemoryLedger::default()),
        };
        let udp = gather::bind_sockets(&config).await?;
        let reflexive =
            gather::server_reflexive(&udp, &config.stun_servers, config.gather_timeout).await;
        let (merged_tx, merged_rx) = mpsc::channel(INCOMING_QUEUE);
        let mut sockets = Vec::new();
        let mut hosts = Vec::new();
        for sock in udp {
            let base = sock.local_addr().map_err(|source| Error::Io {
                action: "reading a socket address".into(),
                source,
            })?;
            let (transport, mut link) =
                Endpoint::from_socket(sock, identity.clone(), config.transport.clone())?;
            let sender = link.sender();
            let tx = merged_tx.clone();
            tokio::spawn(async move {
                while let Some(d) = link.recv().await {
                    if tx.send((base, d)).await.is_err() {
                        break;
                    }
                }
            });
            hosts.push(base);
            sockets.push(Socket {
                base,
                transport,
                sender,
            });
        }
        drop(merged_tx);
        let locals = gather::local_candidates(&hosts, &reflexive.srflx);
        let (relay_tx, relay_rx) = mpsc::channel(crate::driver::RELAY_QUEUE);
        let relay = config.turn.as_ref().and_then(|t| {
            let base = hosts.iter().find(|h| h.is_ipv4() == t.addr.is_ipv4())?;
            Some(crate::driver::Relay::new(
                t,
                *base,
                rand::random(),
                relay_tx,
            ))
        });
        let config = Arc::new(config);
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (gathered_tx, mut gathered) = tokio::sync::watch::channel(false);
        let (nat_tx, nat) = tokio::sync::watch::channel((false, config.assume_nat));
        let driver = Driver::new(
            identity.clone(),
            config.clone(),
            sockets,
            locals,
            ledger,
            commands.clone(),
            relay,
            Setup {
                first: reflexive.first,
                nat: nat_tx,
                gathered: gathered_tx,
            },
        );
        let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(driver.run(commands_rx, merged_rx, relay_rx, stopped_tx));
        // Wait for the relay allocation (bounded by the gather timeout in the driver).
        let _ = gathered.wait_for(|g| *g).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        commands
            .send(Command::Candidates { reply: tx })
            .await
            .map_err(|_| Error::Closed)?;
        let candidates = rx.await.map_err(|_| Error::Closed)??;
        tracing::info!(node = %identity.node_id().short(), ?candidates, "node started");
        let node = Self {
            inner: Arc::new(Inner {
                commands,
                node_id: identity.node_id(),
                identity,
                network,
                candidates,
                config,
                restored: std::sync::Mutex::new(Vec::new()),
                stopped,
                nat,
            }),
        };
        if let Some(dir) = &node.inner.config.state_dir {
            for signed in crate::persist::load(dir, node.inner.node_id, now_unix()) {
                let invite = node.listen(signed).await?;
                node.restored().push(invite);
            }
        }
        Ok(node)
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .commands
            .send(Command::Stats { reply: tx })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Invitations issued before a restart (from the state directory) that are listened for
    /// again; each handle is handed out once.
    pub fn restored_invitations(&self) -> Vec<Invite> {
        std::mem::take(&mut *self.restored())
    }

    async fn listen(&self, signed: SignedInvitation) -> Result<Invite> {
        let (tx, rx) = mpsc::channel(self.inner.config.event_queue.max(1));
        let invitation = signed.clone();
        self.call(|reply| Command::Listen {
            invitation,
            events: tx,
            reply,
        })
        .await?;
        Ok(Invite {
            invitation: signed,
            events: rx,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// This node's credential in its network.
    pub fn network(&self) -> &SignedMembership {
        &self.inner.network
    }

    /// This node's NAT behaviour: [`Config::assume_nat`], or what RFC 5780 classification
    /// against the configured STUN servers found (it runs in the background after start;
    /// `None` until it is done, and when the servers cannot classify). Every invitation and
    /// RSVP this node issues carries it; birthday probing needs it on both sides.
    pub fn nat(&self) -> Option<NatClass> {
        self.inner.nat.borrow().1
    }

    /// Waits until classification is over (at once when the class is assumed or no STUN
    /// server can classify; otherwise at most five probes, each bounded by
    /// [`Config::gather_timeout`]) and returns [`Node::nat`].
    pub async fn nat_classified(&self) -> Option<NatClass> {
        let mut rx = self.inner.nat.clone();
        let done = rx.wait_for(|(done, _)| *done).await.map(|n| n.1);
        done.unwrap_or_else(|_| self.nat())
    }

    /// The candidates this node advertises (in invitations and RSVPs).
    pub fn candidates(&self) -> &[Candidate] {
        &self.inner.candidates
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Issues an invitation and listens for it until it expires, is used up or revoked.
    /// Progress and joins arrive on the returned handle.
    pub async fn invite(&self, options: InviteOptions) -> Result<Invite> {
        let now = now_unix();
        let relay_ok = self.inner.config.allow_relay;
        let candidates: Vec<Candidate> = self
            .inner
            .candidates
            .iter()
            .filter(|c| {
                let relay = c.kind == in8_artifact::CandidateKind::Relay;
                if options.relay_only {
                    relay && relay_ok
                } else {
                    !relay || relay_ok
                }
            })
            .copied()
            .collect();
        if options.relay_only && candidates.is_empty() {
            return Err(Error::NoRelay);
        }
        let mut inv = Invitation::new(
            self.inner.network.membership().network,
            self.inner.node_id,
            InviteSecret::generate(&mut rand::rng()),
            candidates,
            now,
            options.ttl,
        );
        inv.uses = options.uses;
        inv.capabilities = options.capabilities;
        if !options.allow_rsvp {
            inv.flags = inv.flags.without(Flags::RSVP_ALLOWED);
        }
        if self.inner.config.allow_relay {
            inv.flags = inv.flags.with(Flags::RELAY_ALLOWED);
        }
        inv.nat = self.nat().as_ref().and_then(gather::behaviour);
        let signed = inv.sign(&self.inner.identity)?;
        if let Some(dir) = &self.inner.config.state_dir {
            crate::persist::save(dir, &signed)?;
        }
        self.listen(signed).await
    }

    /// Joins from an invitation: verifies it, then connects (phase 1); if that fails the
    /// handle yields [`crate::JoinEvent::Phase1Failed`] with the RSVP to send back and keeps
    /// trying until the inviter accepts it or it expires.
    pub async fn join(&self, invitation: &SignedInvitation) -> Result<Join> {
        invitation.verify(now_unix(), &self.inner.config.verify, &NoRevocations)?;
        let inv = invitation.invitation();
        if inv.issuer == self.inner.node_id {
            return Err(Error::OwnInvitation);
        }
        let (tx, rx) = mpsc::channel(self.inner.config.event_queue.max(1));
        let signed = invitation.clone();
        self.call(|reply| Command::Join {
            invitation: signed,
            events: tx,
            reply,
        })
        .await?;
        Ok(Join {
            invite: inv.invite_id(),
            events: rx,
        })
    }

    /// Inviter side of phase 2: verifies an RSVP against the outstanding invitation it
    /// answers and starts checking towards the responder at once. Returns the responder.
    pub async fn accept_rsvp(&self, rsvp: &SignedRsvp) -> Result<NodeId> {
        let rsvp = rsvp.clone();
        self.call(|reply| Command::AcceptRsvp { rsvp, reply }).await
    }

    /// Revokes an outstanding invitation: no further join is accepted (recorded in the
    /// ledger, so it survives a restart with the same state directory).
    pub async fn revoke(&self, invite: InviteId) -> Result<()> {
        self.call(|reply| Command::Revoke { invite, reply }).await
    }

    /// Shuts the node down and waits until it has stopped: sessions end with "endpoint
    /// closed", the sockets close and the ledger file is released (a new node may then open
    /// the same state directory).
    pub async fn close(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
        let mut stopped = self.inner.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }
}
