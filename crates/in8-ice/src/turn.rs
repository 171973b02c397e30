//! A sans-IO TURN client (RFC 8656 over UDP): Allocate with long-term credentials, Refresh,
//! CreatePermission, ChannelBind, Send / Data indications and ChannelData.
//!
//! Written for in8 (permissively licensed; turn-rs, which is GPL, is never linked). The
//! driver routes every datagram from the TURN server to [`TurnClient::handle_packet`],
//! sends what [`TurnClient::poll_transmit`] returns from the same socket, and sends agent
//! transmits whose `from` is the relayed address through [`TurnClient::send_to`].

use core::time::Duration;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::error::Error;
use crate::stun::{Class, IntegrityKey, MessageWriter, Method, TransactionId, attr};
use crate::transmit::Transmit;

/// RFC 8656 §9: "The Permission Lifetime MUST be 300 seconds (= 5 minutes)."
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// RFC 8656 §12: a channel binding lasts 10 minutes.
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// Most permissions and channels each (a bound).
pub const MAX_PEERS: usize = 64;
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;

/// Client settings.
#[derive(Clone, Debug)]
pub struct TurnConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// Long-term credential user name.
    pub username: String,
    /// Long-term credential password.
    pub password: String,
    /// Requested allocation lifetime (RFC 8656 default 600 s).
    pub lifetime: Duration,
}

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// The allocation exists.
    Allocated {
        /// The relayed transport address (a relay candidate).
        relayed: SocketAddr,
        /// Our server-reflexive address as the server saw it.
        mapped: Option<SocketAddr>,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// The allocation was refreshed.
    Refreshed {
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// A permission for this peer IP is installed.
    PermissionCreated {
        /// The peer IP.
        peer: IpAddr,
    },
    /// A channel is bound to this peer.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// Data relayed from a peer.
    Data {
        /// The peer.
        peer: SocketAddr,
        /// The payload.
        data: Vec<u8>,
    },
    /// A request failed (error response or timeout); the allocation may be gone.
    Failed {
        /// The method that failed.
        method: u16,
        /// The STUN error code, `None` for a timeout.
        code: Option<u16>,
    },
    /// The allocation was released or expired.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    Allocate,
    Refresh(u32),
    CreatePermission(IpAddr),
    ChannelBind(SocketAddr, u16),
}

impl Req {
    fn method(&self) -> Method {
        match self {
            Req::Allocate => Method::ALLOCATE,
            Req::Refresh(_) => Method::REFRESH,
            Req::CreatePermission(_) => Method::CREATE_PERMISSION,
            Req::ChannelBind(..) => Method::CHANNEL_BIND,
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: TransactionId,
    req: Req,
    bytes: Vec<u8>,
    sends: u32,
    interval: Duration,
    next: Instant,
    auth_retries: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Allocating,
    Allocated {
        relayed: SocketAddr,
        expires: Instant,
    },
    Closed,
}

/// The TURN client state machine.
#[derive(Debug)]
pub struct TurnClient {
    config: TurnConfig,
    local: SocketAddr,
    rng: ChaCha20Rng,
    state: State,
    realm: Option<String>,
    nonce: Option<Vec<u8>>,
    key: Option<IntegrityKey>,
    pending: Vec<Pending>,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<(SocketAddr, u16, Instant)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TurnEvent>,
}

impl TurnClient {
    /// A client sending from the local socket `local`.
    pub fn new(config: TurnConfig, local: SocketAddr, seed: u64) -> Self {
        Self {
            config,
            local,
            rng: ChaCha20Rng::seed_from_u64(seed),
            state: State::Idle,
            realm: None,
            nonce: None,
            key: None,
            pending: Vec::new(),
            permissions: Vec::new(),
            channels: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The relayed address once allocated.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated { relayed, .. } => Some(relayed),
            _ => None,
        }
    }

    /// Starts the allocation. RFC 8656 §7.1: the first request goes without credentials;
    /// the server's 401 carries REALM and NONCE.
    pub fn allocate(&mut self, now: Instant) {
        if self.state == State::Idle || self.state == State::Closed {
            self.state = State::Allocating;
            self.request(now, Req::Allocate, 0);
        }
    }

    /// Installs (or refreshes) a permission for `peer` (RFC 8656 §9): the server relays
    /// data only between the client and peers it holds a permission for.
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) -> Result<(), Error> {
        self.relayed_address().ok_or(Error::Closed)?;
        if self.permissions.len() >= MAX_PEERS && !self.permissions.iter().any(|(p, _)| *p == peer)
        {
            return Err(Error::Limit {
                what: "TURN permissions",
                max: MAX_PEERS,
            });
        }
        self.request(now, Req::CreatePermission(peer), 0);
        Ok(())
    }

    /// Binds a channel to `peer` (RFC 8656 §12), which also installs its permission.
    pub fn channel_bind(&mut self, now: Instant, peer: SocketAddr) -> Result<u16, Error> {
        self.relayed_address().ok_or(Error::Closed)?;
        let channel = match self.channels.iter().find(|(p, ..)| *p == peer) {
            Some((_, c, _)) => *c,
            None => {
                if self.channels.len() >= MAX_PEERS {
                    return Err(Error::Limit {
                        what: "TURN channels",
                        max: MAX_PEERS,
                    });
                }
                FIRST_CHANNEL + self.channels.len() as u16
            }
        };
        self.request(now, Req::ChannelBind(peer, channel), 0);
        Ok(channel)
    }

    /// Sends `data` to `peer` through the relay: as ChannelData when a channel is bound
    /// (4 bytes of overhead), else as a Send indication. A permission must exist.
    pub fn send_to(&mut self, now: Instant, peer: SocketAddr, data: &[u8]) -> Result<(), Error> {
        self.relayed_address().ok_or(Error::Closed)?;
        if !self
            .permissions
            .iter()
            .any(|(p, t)| *p == peer.ip() && *t > now)
        {
            return Err(Error::Policy("no TURN permission for this peer"));
        }
        if data.len() > 65_000 {
            return Err(Error::Invalid {
                what: "TURN payload",
                reason: "larger than 65000 bytes",
            });
        }
        let contents = if let Some((_, ch, _)) = self
            .channels
            .iter()
            .find(|(p, _, t)| *p == peer && *t > now)
        {
            // RFC 8656 §12.4: channel number (2 bytes), length (2 bytes), application data.
            let mut b = Vec::with_capacity(4 + data.len());
            b.extend_from_slice(&ch.to_be_bytes());
            b.extend_from_slice(&(data.len() as u16).to_be_bytes());
            b.extend_from_slice(data);
            b
        } else {
            let mut b = Vec::with_capacity(36 + data.len());
            let tid = TransactionId::random(&mut self.rng);
            MessageWriter::new(&mut b, Method::SEND, Class::Indication, tid)
                .xor_address(attr::XOR_PEER_ADDRESS, peer)
                .attr(attr::DATA, data);
            b
        };
        self.transmits.push_back(Transmit {
            from: self.local,
            to: self.config.server,
            contents,
        });
        Ok(())
    }

    /// Releases the allocation (RFC 8656 §7.2: a Refresh with LIFETIME 0).
    pub fn deallocate(&mut self, now: Instant) {
        if self.relayed_address().is_some() {
            self.request(now, Req::Refresh(0), 0);
        }
    }

    fn request(&mut self, now: Instant, req: Req, auth_retries: u8) {
        let id = TransactionId::random(&mut self.rng);
        let mut b = Vec::with_capacity(128);
        {
            let mut w = MessageWriter::new(&mut b, req.method(), Class::Request, id);
            match &req {
                Req::Allocate => {
                    // RFC 8656 §18.12: REQUESTED-TRANSPORT protocol 17 (UDP), then RFFU.
                    w.attr_u32(attr::REQUESTED_TRANSPORT, 17 << 24);
                    w.attr_u32(attr::LIFETIME, self.config.lifetime.as_secs() as u32);
                }
                Req::Refresh(l) => {
                    w.attr_u32(attr::LIFETIME, *l);
                }
                Req::CreatePermission(ip) => {
                    w.xor_address(attr::XOR_PEER_ADDRESS, SocketAddr::new(*ip, 0));
                }
                Req::ChannelBind(peer, ch) => {
                    w.attr_u32(attr::CHANNEL_NUMBER, (*ch as u32) << 16);
                    w.xor_address(attr::XOR_PEER_ADDRESS, *peer);
                }
            }
            if let (Some(realm), Some(nonce), Some(key)) = (&self.realm, &self.nonce, &self.key) {
                // RFC 8489 §9.2.4: USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
                w.attr(attr::USERNAME, self.config.username.as_bytes());
                w.attr(attr::REALM, realm.as_bytes());
                w.attr(attr::NONCE, nonce);
                w.integrity(key);
            }
            w.fingerprint();
        }
        let rto = Duration::from_millis(500);
        self.pending.push(Pending {
            id,
            req,
            bytes: b.clone(),
            sends: 1,
            interval: rto,
            next: now + rto,
            auth_retries,
        });
        self.transmits.push_back(Transmit {
            from: self.local,
            to: self.config.server,
            contents: b,
        });
    }

    /// The next datagram to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }
}

mod incoming;
#[cfg(test)]
mod tests;
mod timers;
