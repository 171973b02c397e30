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
use crate::stun::{Class, IntegrityKey, Message, MessageWriter, Method, TransactionId, attr};
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

    /// Handles a datagram from the TURN server.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        if from != self.config.server {
            return Err(Error::Unknown("TURN server address"));
        }
        if let Some(&b0) = bytes.first()
            && (0x40..=0x4f).contains(&b0)
        {
            return self.handle_channel_data(bytes);
        }
        let msg = Message::parse(bytes)?;
        match msg.class() {
            Class::Indication => {
                if msg.method() != Method::DATA {
                    return Err(Error::UnexpectedMethod(msg.method().0));
                }
                let (Some(peer), Some(data)) =
                    (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.get(attr::DATA))
                else {
                    return Err(Error::MissingAttribute("XOR-PEER-ADDRESS or DATA"));
                };
                self.events.push_back(TurnEvent::Data {
                    peer,
                    data: data.to_vec(),
                });
                Ok(())
            }
            Class::Success | Class::Error => self.handle_response(now, &msg),
            Class::Request => Err(Error::UnexpectedMethod(msg.method().0)),
        }
    }

    fn handle_channel_data(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() < 4 {
            return Err(Error::Invalid {
                what: "ChannelData",
                reason: "shorter than its header",
            });
        }
        let ch = u16::from_be_bytes([bytes[0], bytes[1]]);
        if !(FIRST_CHANNEL..=LAST_CHANNEL).contains(&ch) {
            return Err(Error::Invalid {
                what: "ChannelData",
                reason: "channel number out of range",
            });
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        let data = bytes.get(4..4 + len).ok_or(Error::Invalid {
            what: "ChannelData",
            reason: "truncated",
        })?;
        let peer = self
            .channels
            .iter()
            .find(|(_, c, _)| *c == ch)
            .map(|(p, ..)| *p)
            .ok_or(Error::Unknown("TURN channel"))?;
        self.events.push_back(TurnEvent::Data {
            peer,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn handle_response(&mut self, now: Instant, msg: &Message<'_>) -> Result<(), Error> {
        let Some(i) = self
            .pending
            .iter()
            .position(|p| p.id == msg.transaction_id())
        else {
            return Err(Error::UnknownTransaction);
        };
        if msg.method() != self.pending[i].req.method() {
            return Err(Error::UnexpectedMethod(msg.method().0));
        }
        // Once we hold a key, responses must carry a valid MESSAGE-INTEGRITY (a 401 or
        // 438 before that may not).
        let code = msg.error_code().map(|(c, _)| c);
        let authenticated = self.key.as_ref().is_some_and(|k| msg.verify_integrity(k));
        if self.key.is_some() && !authenticated && !matches!(code, Some(401 | 438)) {
            return Err(Error::Unauthenticated);
        }
        let p = self.pending.swap_remove(i);
        if msg.class() == Class::Error {
            // RFC 8489 §9.2.5: a 401 with REALM and NONCE (first contact) or a 438 Stale
            // Nonce with a new NONCE: retry once with the credentials.
            if matches!(code, Some(401 | 438))
                && p.auth_retries < 2
                && let (Some(realm), Some(nonce)) = (msg.get(attr::REALM), msg.get(attr::NONCE))
            {
                let realm = String::from_utf8_lossy(realm).into_owned();
                self.key = Some(IntegrityKey::long_term(
                    &self.config.username,
                    &realm,
                    &self.config.password,
                ));
                self.realm = Some(realm);
                self.nonce = Some(nonce.to_vec());
                self.request(now, p.req, p.auth_retries + 1);
                return Ok(());
            }
            if p.req == Req::Allocate {
                self.state = State::Idle;
            }
            self.events.push_back(TurnEvent::Failed {
                method: p.req.method().0,
                code,
            });
            return Err(Error::ErrorResponse(code.unwrap_or(0)));
        }
        let lifetime = msg
            .get_u32(attr::LIFETIME)
            .map(|s| Duration::from_secs(s as u64));
        match p.req {
            Req::Allocate => {
                let relayed = msg
                    .xor_address(attr::XOR_RELAYED_ADDRESS)
                    .ok_or(Error::MissingAttribute("XOR-RELAYED-ADDRESS"))?;
                let lifetime = lifetime.unwrap_or(self.config.lifetime);
                self.state = State::Allocated {
                    relayed,
                    expires: now + lifetime,
                };
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped: msg.xor_mapped_address(),
                    lifetime,
                });
            }
            Req::Refresh(0) => {
                self.state = State::Closed;
                self.permissions.clear();
                self.channels.clear();
                self.events.push_back(TurnEvent::Closed);
            }
            Req::Refresh(_) => {
                let lifetime = lifetime.unwrap_or(self.config.lifetime);
                if let State::Allocated { relayed, .. } = self.state {
                    self.state = State::Allocated {
                        relayed,
                        expires: now + lifetime,
                    };
                }
                self.events.push_back(TurnEvent::Refreshed { lifetime });
            }
            Req::CreatePermission(ip) => {
                self.permissions.retain(|(p, _)| *p != ip);
                self.permissions.push((ip, now + PERMISSION_LIFETIME));
                self.events
                    .push_back(TurnEvent::PermissionCreated { peer: ip });
            }
            Req::ChannelBind(peer, ch) => {
                self.channels.retain(|(p, ..)| *p != peer);
                self.channels.push((peer, ch, now + CHANNEL_LIFETIME));
                // RFC 8656 §12: a channel binding also installs or refreshes the permission.
                self.permissions.retain(|(p, _)| *p != peer.ip());
                self.permissions
                    .push((peer.ip(), now + PERMISSION_LIFETIME));
                self.events
                    .push_back(TurnEvent::ChannelBound { peer, channel: ch });
            }
        }
        Ok(())
    }

    /// Retransmits, and refreshes the allocation (one minute before expiry), permissions
    /// (RFC 8656 §9: before their 5 minutes run out) and channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.next > now {
                i += 1;
                continue;
            }
            if p.sends < 7 {
                p.sends += 1;
                p.interval *= 2;
                p.next = now + p.interval;
                let t = Transmit {
                    from: self.local,
                    to: self.config.server,
                    contents: p.bytes.clone(),
                };
                self.transmits.push_back(t);
                i += 1;
            } else {
                let p = self.pending.swap_remove(i);
                if p.req == Req::Allocate {
                    self.state = State::Idle;
                }
                self.events.push_back(TurnEvent::Failed {
                    method: p.req.method().0,
                    code: None,
                });
            }
        }
        if let State::Allocated { expires, .. } = self.state {
            if now >= expires {
                self.state = State::Closed;
                self.events.push_back(TurnEvent::Closed);
                return;
            }
            let busy = |r: &dyn Fn(&Req) -> bool, s: &Self| s.pending.iter().any(|p| r(&p.req));
            if now + Duration::from_secs(60) >= expires
                && !busy(&|r| matches!(r, Req::Refresh(_)), self)
            {
                let l = self.config.lifetime.as_secs() as u32;
                self.request(now, Req::Refresh(l.max(1)), 0);
            }
            let refresh_perm: Vec<IpAddr> = self
                .permissions
                .iter()
                .filter(|(_, t)| now + Duration::from_secs(60) >= *t)
                .map(|(p, _)| *p)
                .filter(|p| !busy(&|r| *r == Req::CreatePermission(*p), self))
                .collect();
            for p in refresh_perm {
                self.request(now, Req::CreatePermission(p), 0);
            }
            let refresh_ch: Vec<(SocketAddr, u16)> = self
                .channels
                .iter()
                .filter(|(_, _, t)| now + Duration::from_secs(60) >= *t)
                .map(|(p, c, _)| (*p, *c))
                .filter(|(p, c)| !busy(&|r| *r == Req::ChannelBind(*p, *c), self))
                .collect();
            for (p, c) in refresh_ch {
                self.request(now, Req::ChannelBind(p, c), 0);
            }
        }
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let m = Duration::from_secs(60);
        let mut t: Vec<Instant> = self.pending.iter().map(|p| p.next).collect();
        if let State::Allocated { expires, .. } = self.state {
            t.push(expires);
            if !self
                .pending
                .iter()
                .any(|p| matches!(p.req, Req::Refresh(_)))
            {
                t.push(expires.checked_sub(m).unwrap_or(expires));
            }
            for (peer, x) in &self.permissions {
                if !self
                    .pending
                    .iter()
                    .any(|p| p.req == Req::CreatePermission(*peer))
                {
                    t.push(x.checked_sub(m).unwrap_or(*x));
                }
            }
            for (peer, ch, x) in &self.channels {
                if !self
                    .pending
                    .iter()
                    .any(|p| p.req == Req::ChannelBind(*peer, *ch))
                {
                    t.push(x.checked_sub(m).unwrap_or(*x));
                }
            }
        }
        t.into_iter().min()
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

#[cfg(test)]
mod tests;
