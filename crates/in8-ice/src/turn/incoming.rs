//! What the TURN server sends: responses (with the 401 / 438 credential dance), Data
//! indications and ChannelData.

use std::net::SocketAddr;
use std::time::Instant;

use core::time::Duration;

use super::{
    CHANNEL_LIFETIME, FIRST_CHANNEL, LAST_CHANNEL, PERMISSION_LIFETIME, Req, State, TurnClient,
    TurnEvent,
};
use crate::error::Error;
use crate::stun::{Class, IntegrityKey, Message, Method, attr};

impl TurnClient {
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
}
