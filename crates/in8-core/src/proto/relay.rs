//! The TURN relay (RFC 8656) in the core: allocation and refreshes, permissions, ICE checks
//! and DTLS records through the relayed address. A relay is a policy choice: its candidate
//! is only used in sessions whose invitation allows relays (enforced by in8-ice), and only
//! advertised in invitations when [`crate::Config::allow_relay`] is set.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use in8_artifact::{Candidate, CandidateKind};
use in8_ice::LocalCandidate;
use in8_ice::turn::{TurnClient, TurnConfig, TurnEvent};

use super::{Action, Core};

/// The node's TURN allocation.
pub(crate) struct Relay {
    pub(crate) client: TurnClient,
    pub(crate) server: SocketAddr,
    /// The socket (its base address) that talks to the server.
    pub(crate) base: SocketAddr,
    pub(crate) relayed: Option<SocketAddr>,
    /// Peers a permission was asked for (bounded by the client's own limit).
    requested: HashSet<IpAddr>,
}

impl Relay {
    pub(crate) fn new(server: &crate::config::TurnServer, base: SocketAddr, seed: u64) -> Self {
        let config = TurnConfig {
            server: server.addr,
            username: server.username.clone(),
            password: server.password.clone(),
            lifetime: std::time::Duration::from_secs(600),
        };
        Self {
            client: TurnClient::new(config, base, seed),
            server: server.addr,
            base,
            relayed: None,
            requested: HashSet::new(),
        }
    }
}

impl Core {
    /// Whether a datagram arriving on `base` from `from` is the TURN server's.
    pub(crate) fn is_from_relay(&self, base: SocketAddr, from: SocketAddr) -> bool {
        self.relay
            .as_ref()
            .is_some_and(|r| r.base == base && r.server == from)
    }

    /// The relayed address, when allocated.
    pub(crate) fn relayed_addr(&self) -> Option<SocketAddr> {
        self.relay.as_ref().and_then(|r| r.relayed)
    }

    /// A datagram from the TURN server: responses, Data indications, ChannelData.
    pub(crate) fn handle_relay_datagram(&mut self, now: Instant, data: &[u8]) {
        let Some(r) = &mut self.relay else { return };
        if let Err(e) = r.client.handle_packet(now, r.server, data) {
            tracing::debug!("TURN client ignored a datagram: {e}");
        }
        self.flush_relay(now);
    }

    /// Asks for permissions for the peers at `candidates` (RFC 8656 §9: "the server
    /// relays only from peers with a permission"), so their checks reach the relayed
    /// candidate.
    pub(crate) fn permit(&mut self, now: Instant, candidates: &[Candidate]) {
        let Some(r) = &mut self.relay else { return };
        if r.relayed.is_none() {
            return;
        }
        for c in candidates {
            let ip = c.addr.ip();
            if r.requested.len() < in8_ice::turn::MAX_PEERS && r.requested.insert(ip) {
                let _ = r.client.create_permission(now, ip);
            }
        }
        self.flush_relay(now);
    }

    /// A DTLS datagram of a relayed link leaves through the relay towards `to`.
    pub fn handle_relayed_send(&mut self, now: Instant, to: SocketAddr, data: &[u8]) {
        self.send_relayed(now, to, data);
    }

    /// Sends an ICE transmit or a DTLS datagram from the relayed address to `to`. Without a
    /// permission yet, asks for one and drops the datagram (ICE and DTLS retransmit).
    pub(crate) fn send_relayed(&mut self, now: Instant, to: SocketAddr, data: &[u8]) {
        let Some(r) = &mut self.relay else { return };
        if r.client.send_to(now, to, data).is_err()
            && r.requested.len() < in8_ice::turn::MAX_PEERS
            && r.requested.insert(to.ip())
        {
            let _ = r.client.create_permission(now, to.ip());
        }
        self.flush_relay(now);
    }

    /// Sends the TURN client's datagrams and handles its events.
    pub(crate) fn flush_relay(&mut self, now: Instant) {
        let Some(r) = &mut self.relay else { return };
        let mut out = Vec::new();
        while let Some(t) = r.client.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = r.client.poll_event() {
            events.push(e);
        }
        for t in out {
            self.push_transmit(t);
        }
        for e in events {
            self.relay_event(now, e);
        }
    }

    fn relay_event(&mut self, now: Instant, e: TurnEvent) {
        match e {
            TurnEvent::Allocated { relayed, .. } => {
                tracing::info!(%relayed, "TURN allocation ready");
                if let Some(r) = &mut self.relay {
                    r.relayed = Some(relayed);
                }
                let index = self.locals.len();
                let c = LocalCandidate::new(
                    Candidate::new(CandidateKind::Relay, relayed, index),
                    relayed,
                );
                self.locals.push(c);
                self.ice.add_local_candidate(c);
                self.gathered();
            }
            TurnEvent::Data { peer, data } => {
                let Some((relayed, base)) =
                    self.relay.as_ref().and_then(|r| Some((r.relayed?, r.base)))
                else {
                    return;
                };
                if in8_ice::stun::is_stun(&data) {
                    if let Err(e) = self.ice.handle_packet(now, peer, relayed, &data) {
                        tracing::trace!(%peer, "ICE ignored a relayed datagram: {e}");
                    }
                    self.flush(now, Some(relayed));
                } else {
                    self.push_action(Action::InjectDtls {
                        base,
                        from: peer,
                        data: data.to_vec(),
                    });
                }
            }
            TurnEvent::Failed { method, code } => {
                tracing::warn!(method, ?code, "TURN request failed");
                if self.relay.as_ref().is_some_and(|r| r.relayed.is_none()) {
                    self.gathered();
                }
            }
            TurnEvent::Closed => {
                if let Some(r) = &mut self.relay {
                    r.relayed = None;
                }
            }
            _ => {}
        }
    }
}
