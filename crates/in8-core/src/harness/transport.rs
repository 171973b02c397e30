//! The harness's stand-in for in8-transport: a DTLS-like handshake and record layer over
//! the simulated network, so that links cross the same NAT boxes as ICE. It keeps the
//! transport's decisions: the client authenticates the server by the identity the core
//! expects, the server checks the client's identity (member links) or its join proof
//! (the real `in8_transport::JoinProof`, verified against the invitation) and redeems the
//! invitation in the node's ledger before the link is up; a refusal reaches the client.
//! Not modelled: encryption, SCTP's retransmission (the harness's links are lossless once
//! up unless the network drops them).
//!
//! Datagrams start with 22 (a DTLS content type, RFC 7983's 20–63 range), then a kind:
//! 1 hello, 2 accept, 3 refuse, 4 data, 5 close.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use in8_artifact::{Identity, Invitation, Ledger, NodeId, Timestamp};
use in8_transport::{JoinProof, PeerAuth, Refusal};

use crate::error::Error;
use crate::proto::{ClientMode, LinkId, LinkInput, ServerMode};

const PURPOSE: &str = "harness-dtls";
const RETRANSMIT: Duration = Duration::from_millis(250);

/// One link of a node.
struct Link {
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
}

enum State {
    /// Client: hello sent, waiting for the answer.
    Hello {
        expect: Option<NodeId>,
        hello: Vec<u8>,
        next: Instant,
        deadline: Instant,
    },
    /// Server: route reserved; a hello may be waiting.
    Reserved {
        hello: Option<Vec<u8>>,
    },
    /// Server: handshake allowed; waiting for the hello.
    Accepting {
        mode: ServerMode,
        deadline: Instant,
    },
    Up,
}

/// The transport of one node.
pub(crate) struct SimTransport {
    identity: Identity,
    ledger: Arc<dyn Ledger>,
    links: HashMap<LinkId, Link>,
    by_path: HashMap<(SocketAddr, SocketAddr), LinkId>,
    limit: Duration,
    /// Datagrams to send: (from, to, bytes).
    pub(crate) out: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Link inputs for the core.
    pub(crate) inputs: Vec<(LinkId, LinkInput)>,
}

fn datagram(kind: u8, body: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![22, kind];
    for b in body {
        v.extend_from_slice(b);
    }
    v
}

impl SimTransport {
    pub(crate) fn new(identity: Identity, ledger: Arc<dyn Ledger>, limit: Duration) -> Self {
        Self {
            identity,
            ledger,
            links: HashMap::new(),
            by_path: HashMap::new(),
            limit,
            out: Vec::new(),
            inputs: Vec::new(),
        }
    }

    fn signed_hello(&self, binding: &[u8; 32], proof: Option<&JoinProof>) -> Vec<u8> {
        let sig = self.identity.sign(PURPOSE, &[binding]);
        let proof = proof.map(|p| p.to_bytes().to_vec()).unwrap_or_default();
        datagram(
            1,
            &[self.identity.node_id().as_bytes(), binding, &sig, &proof],
        )
    }

    pub(crate) fn connect(
        &mut self,
        now: Instant,
        link: LinkId,
        local: SocketAddr,
        remote: SocketAddr,
        mode: ClientMode,
        binding: [u8; 32],
    ) {
        let (expect, proof) = match &mode {
            ClientMode::Join { invitation, expect } => {
                let node = match expect {
                    PeerAuth::Identity(n) => Some(*n),
                    PeerAuth::Fingerprint { node, .. } => *node,
                    _ => Some(invitation.issuer),
                };
                (
                    node,
                    Some(JoinProof::create(&self.identity, invitation, &binding)),
                )
            }
            ClientMode::Member { peer } => (Some(*peer), None),
        };
        let hello = self.signed_hello(&binding, proof.as_ref());
        self.out.push((local, remote, hello.clone()));
        self.by_path.insert((local, remote), link);
        self.links.insert(
            link,
            Link {
                local,
                remote,
                state: State::Hello {
                    expect,
                    hello,
                    next: now + RETRANSMIT,
                    deadline: now + self.limit,
                },
            },
        );
    }

    pub(crate) fn reserve(&mut self, link: LinkId, local: SocketAddr, remote: SocketAddr) {
        if self.by_path.contains_key(&(local, remote)) {
            self.inputs.push((
                link,
                LinkInput::Failed(Error::Transport(in8_transport::Error::AlreadyConnected(
                    remote,
                ))),
            ));
            return;
        }
        self.by_path.insert((local, remote), link);
        self.links.insert(
            link,
            Link {
                local,
                remote,
                state: State::Reserved { hello: None },
            },
        );
    }

    pub(crate) fn accept(&mut self, now: Instant, wall: Timestamp, link: LinkId, mode: ServerMode) {
        let Some(l) = self.links.get_mut(&link) else {
            self.inputs.push((link, LinkInput::Failed(Error::Closed)));
            return;
        };
        let waiting = match &mut l.state {
            State::Reserved { hello } => hello.take(),
            _ => return,
        };
        l.state = State::Accepting {
            mode,
            deadline: now + self.limit,
        };
        if let Some(h) = waiting {
            self.server_hello(wall, link, &h);
        }
    }

    pub(crate) fn close(&mut self, link: LinkId) {
        if let Some(l) = self.links.remove(&link) {
            self.by_path.remove(&(l.local, l.remote));
            if matches!(l.state, State::Up) {
                self.out.push((l.local, l.remote, datagram(5, &[])));
            }
        }
    }

    pub(crate) fn send(&mut self, link: LinkId, frame: Vec<u8>) {
        if let Some(l) = self.links.get(&link)
            && matches!(l.state, State::Up)
        {
            self.out.push((l.local, l.remote, datagram(4, &[&frame])));
        }
    }

    /// The earliest retransmission or deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| match &l.state {
                State::Hello { next, deadline, .. } => Some((*next).min(*deadline)),
                State::Accepting { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for (id, l) in &mut self.links {
            match &mut l.state {
                State::Hello {
                    hello,
                    next,
                    deadline,
                    ..
                } => {
                    if *deadline <= now {
                        failed.push(*id);
                    } else if *next <= now {
                        *next = now + RETRANSMIT;
                        self.out.push((l.local, l.remote, hello.clone()));
                    }
                }
                State::Accepting { deadline, .. } if *deadline <= now => failed.push(*id),
                _ => {}
            }
        }
        for id in failed {
            if let Some(l) = self.links.remove(&id) {
                self.by_path.remove(&(l.local, l.remote));
                self.inputs.push((
                    id,
                    LinkInput::Failed(Error::Transport(in8_transport::Error::Timeout {
                        stage: "DTLS handshake",
                        remote: l.remote,
                        after: self.limit,
                    })),
                ));
            }
        }
    }

    /// A datagram of this transport (first byte 22) arrived on `local` from `remote`.
    pub(crate) fn handle(
        &mut self,
        wall: Timestamp,
        local: SocketAddr,
        remote: SocketAddr,
        d: &[u8],
    ) {
        let Some(&link) = self.by_path.get(&(local, remote)) else {
            return;
        };
        match d.get(1) {
            Some(1) => {
                let Some(l) = self.links.get_mut(&link) else {
                    return;
                };
                match &mut l.state {
                    State::Reserved { hello } => *hello = Some(d.to_vec()),
                    State::Accepting { .. } => self.server_hello(wall, link, d),
                    // A repeated hello on an open link: answer again (the accept was lost).
                    State::Up => {
                        let ours = self.identity.node_id();
                        self.out
                            .push((local, remote, datagram(2, &[ours.as_bytes()])));
                    }
                    State::Hello { .. } => {}
                }
            }
            Some(2) => self.client_answer(link, d.get(2..).unwrap_or_default(), None),
            Some(3) => {
                let code = d.get(2).copied().unwrap_or(0);
                let refusal = match code {
                    1 => Refusal::BadProof,
                    2 => Refusal::WrongInvitation,
                    3 => Refusal::AlreadyUsed,
                    4 => Refusal::Expired,
                    5 => Refusal::Revoked,
                    6 => Refusal::NotAJoinProof,
                    _ => Refusal::Unavailable,
                };
                self.client_answer(link, &[], Some(refusal));
            }
            Some(4)
                if self
                    .links
                    .get(&link)
                    .is_some_and(|l| matches!(l.state, State::Up)) =>
            {
                self.inputs.push((
                    link,
                    LinkInput::Frame(d.get(2..).unwrap_or_default().to_vec()),
                ));
            }
            Some(5) => {
                if let Some(l) = self.links.remove(&link) {
                    self.by_path.remove(&(l.local, l.remote));
                    self.inputs.push((
                        link,
                        LinkInput::Closed(in8_transport::CloseReason::PeerClosed),
                    ));
                }
            }
            _ => {}
        }
    }

    fn client_answer(&mut self, link: LinkId, body: &[u8], refusal: Option<Refusal>) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let State::Hello { expect, .. } = &l.state else {
            return;
        };
        let expect = *expect;
        if let Some(r) = refusal {
            self.fail(link, Error::JoinRefused(r));
            return;
        }
        let Some(id) = body.get(..32).and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
            return;
        };
        let server = NodeId::from_bytes(id);
        if expect.is_some_and(|e| e != server) {
            self.fail(
                link,
                Error::Transport(in8_transport::Error::PeerCertificate {
                    reason: "not the expected identity".into(),
                }),
            );
            return;
        }
        l.state = State::Up;
        self.inputs.push((link, LinkInput::Up { peer: server }));
    }

    fn fail(&mut self, link: LinkId, e: Error) {
        if let Some(l) = self.links.remove(&link) {
            self.by_path.remove(&(l.local, l.remote));
        }
        self.inputs.push((link, LinkInput::Failed(e)));
    }

    /// The server's side of the handshake on a hello.
    fn server_hello(&mut self, wall: Timestamp, link: LinkId, d: &[u8]) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (local, remote) = (l.local, l.remote);
        let State::Accepting { mode, .. } = &l.state else {
            return;
        };
        let parsed = (|| {
            let id = NodeId::from_bytes(d.get(2..34)?.try_into().ok()?);
            let binding: [u8; 32] = d.get(34..66)?.try_into().ok()?;
            let sig: [u8; 64] = d.get(66..130)?.try_into().ok()?;
            Some((id, binding, sig, d.get(130..).unwrap_or_default().to_vec()))
        })();
        let Some((client, binding, sig, proof)) = parsed else {
            return;
        };
        if client.verify(PURPOSE, &[&binding], &sig, "hello").is_err() {
            return;
        }
        let verdict = match mode {
            ServerMode::Member { peer } if *peer == client => Ok(client),
            ServerMode::Member { .. } => Err(Refusal::BadProof),
            ServerMode::Join { invitation, .. } => {
                self.judge(wall, invitation, &binding, &proof, client)
            }
        };
        let ours = self.identity.node_id();
        match verdict {
            Ok(peer) => {
                self.out
                    .push((local, remote, datagram(2, &[ours.as_bytes()])));
                if let Some(l) = self.links.get_mut(&link) {
                    l.state = State::Up;
                }
                self.inputs.push((link, LinkInput::Up { peer }));
            }
            Err(r) => {
                let code = match r {
                    Refusal::BadProof => 1,
                    Refusal::WrongInvitation => 2,
                    Refusal::AlreadyUsed => 3,
                    Refusal::Expired => 4,
                    Refusal::Revoked => 5,
                    Refusal::NotAJoinProof => 6,
                    _ => 7,
                };
                self.out.push((local, remote, datagram(3, &[&[code]])));
                self.fail(
                    link,
                    Error::Transport(in8_transport::Error::JoinRejected(r)),
                );
            }
        }
    }

    /// The inviter's checks (as `in8_transport`'s): the proof, then the validity period,
    /// then the ledger.
    fn judge(
        &self,
        wall: Timestamp,
        invitation: &Invitation,
        binding: &[u8; 32],
        proof: &[u8],
        client: NodeId,
    ) -> Result<NodeId, Refusal> {
        let proof = JoinProof::decode(proof).map_err(|_| Refusal::NotAJoinProof)?;
        let node = proof.verify(invitation, binding)?;
        if node != client {
            return Err(Refusal::BadProof);
        }
        if wall >= invitation.expires || invitation.not_before.is_some_and(|nb| wall < nb) {
            return Err(Refusal::Expired);
        }
        match self.ledger.redeem(
            &invitation.invite_id(),
            invitation.uses,
            invitation.expires,
            wall,
        ) {
            Ok(_) => Ok(node),
            Err(in8_artifact::Error::AlreadyUsed { .. }) => Err(Refusal::AlreadyUsed),
            Err(in8_artifact::Error::Revoked { .. }) => Err(Refusal::Revoked),
            Err(_) => Err(Refusal::Unavailable),
        }
    }
}
