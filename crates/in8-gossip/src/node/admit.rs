//! Incoming frames: decode, verify, admit, then hand the core a [`Message`].

use in8_artifact::{Capabilities, NodeId};

use super::Gossip;
use crate::Time;
use crate::error::{Error, Result};
use crate::proto::Message;
use crate::record::SignedPeerRecord;
use crate::wire::{BROADCAST_PURPOSE, Envelope, Frame, message_id};

impl Gossip {
    /// Handles one frame from `from`, whose node id the transport authenticated (DTLS
    /// with the identity-bound certificate). Errors say why the frame was dropped; a
    /// dropped frame never creates state.
    pub fn handle_message(&mut self, now: Time, from: NodeId, bytes: &[u8]) -> Result<()> {
        if from == self.me || self.core.has_left() {
            return Ok(());
        }
        let frame = Frame::decode(bytes)?;
        let msg = self.admit(now, from, frame)?;
        if let Some(msg) = msg {
            self.core
                .handle_message(now, from, msg, &mut self.rng, &mut self.out);
        }
        self.drain(now);
        Ok(())
    }

    /// Verifies a record and stores it if it is newer than what we have.
    pub(super) fn admit_record(&mut self, now: Time, rec: SignedPeerRecord) -> Result<NodeId> {
        let id = rec.node();
        if id == self.me {
            return Ok(id);
        }
        if let Some(old) = self.records.get(&id)
            && (old.record().seq > rec.record().seq || old == &rec)
        {
            return Ok(id);
        }
        let wall = self.wall(now);
        rec.verify(&self.network, wall, &self.policy, &self.revocations)?;
        self.records.insert(id, rec);
        Ok(id)
    }

    /// Admits the sender from the record it presents about itself.
    fn admit_sender(&mut self, now: Time, from: NodeId, rec: SignedPeerRecord) -> Result<()> {
        if rec.node() != from {
            return Err(Error::Mismatch {
                what: "peer record",
                reason: "the sender presented someone else's record",
            });
        }
        self.admit_record(now, rec).map(|_| ())
    }

    /// Third-party records: keep the ids of those that verify, drop the others.
    fn admit_list(&mut self, now: Time, list: Vec<SignedPeerRecord>) -> Vec<NodeId> {
        let me = self.me;
        list.into_iter()
            .filter_map(|r| self.admit_record(now, r).ok())
            .filter(|id| *id != me)
            .collect()
    }

    fn require_admitted(&self, from: NodeId) -> Result<()> {
        if self.records.contains_key(&from) {
            Ok(())
        } else {
            Err(Error::NotAdmitted { peer: from })
        }
    }

    fn admit(&mut self, now: Time, from: NodeId, frame: Frame) -> Result<Option<Message<NodeId>>> {
        Ok(Some(match frame {
            Frame::Join { record } => {
                self.admit_sender(now, from, record)?;
                Message::Join
            }
            Frame::Neighbor { priority, record } => {
                self.admit_sender(now, from, record)?;
                Message::Neighbor { priority }
            }
            Frame::JoinReply {
                contact,
                active,
                passive,
            } => {
                if !self.core.is_joining(from) && !self.core.is_active(from) {
                    return Err(Error::NotAdmitted { peer: from });
                }
                self.admit_sender(now, from, contact)?;
                let active = self.admit_list(now, active);
                let passive = self.admit_list(now, passive);
                Message::JoinReply { active, passive }
            }
            Frame::ShuffleReply { replier, peers } => {
                self.admit_sender(now, from, replier)?;
                let peers = self.admit_list(now, peers);
                Message::ShuffleReply { peers }
            }
            Frame::ForwardJoin { ttl, record } => {
                self.require_admitted(from)?;
                let peer = self.admit_record(now, record)?;
                Message::ForwardJoin { peer, ttl }
            }
            Frame::Shuffle {
                ttl,
                origin,
                active,
                passive,
            } => {
                self.require_admitted(from)?;
                let origin = self.admit_record(now, origin)?;
                let active = self.admit_list(now, active);
                let passive = self.admit_list(now, passive);
                Message::Shuffle {
                    origin,
                    ttl,
                    active,
                    passive,
                }
            }
            Frame::NeighborReply { accepted } => {
                self.require_admitted(from)?;
                Message::NeighborReply { accepted }
            }
            Frame::Disconnect { alive } => {
                self.require_admitted(from)?;
                Message::Disconnect { alive }
            }
            Frame::Gossip { round, envelope } => {
                self.require_admitted(from)?;
                let id = message_id(&envelope);
                if !self.core.has_seen(id) {
                    self.check_envelope(now, &envelope)?;
                }
                Message::Gossip {
                    id,
                    round,
                    payload: envelope.into(),
                }
            }
            Frame::IHave { entries } => {
                self.require_admitted(from)?;
                Message::IHave { entries }
            }
            Frame::Graft { id, round } => {
                self.require_admitted(from)?;
                Message::Graft { id, round }
            }
            Frame::Prune => {
                self.require_admitted(from)?;
                Message::Prune
            }
            Frame::IntroRequest {
                target,
                token,
                offer,
            } => {
                self.require_admitted(from)?;
                self.admit_sender(now, from, offer)?;
                if !self
                    .record
                    .record()
                    .capabilities
                    .contains(Capabilities::INTRODUCE)
                {
                    // We may not introduce: say so at once instead of letting it time out.
                    let message = Message::IntroUnavailable { target };
                    self.out
                        .push(crate::proto::OutEvent::Send { to: from, message });
                    return Ok(None);
                }
                Message::IntroRequest { target, token }
            }
            Frame::Introduce {
                delay_ms,
                token,
                offer,
            } => {
                self.require_admitted(from)?;
                let introducer_ok = self
                    .records
                    .get(&from)
                    .is_some_and(|r| r.record().capabilities.contains(Capabilities::INTRODUCE));
                if !introducer_ok {
                    return Err(Error::MissingCapability {
                        peer: from,
                        capability: "introduce",
                    });
                }
                let peer = self.admit_record(now, offer)?;
                Message::Introduce {
                    peer,
                    delay_ms,
                    token,
                }
            }
            Frame::IntroUnavailable { target } => {
                self.require_admitted(from)?;
                Message::IntroUnavailable { target }
            }
            Frame::Revocations { records } => {
                self.require_admitted(from)?;
                for r in &records {
                    // Each record is self-authenticating; a bad one is skipped.
                    let _ = self.apply_revocation(now, r);
                }
                return Ok(None);
            }
        }))
    }

    /// Verifies a broadcast envelope before it is delivered or forwarded.
    fn check_envelope(&mut self, now: Time, envelope: &[u8]) -> Result<()> {
        match Envelope::decode(envelope)? {
            Envelope::App {
                origin,
                seq,
                payload,
                signature,
            } => {
                if self.revocations_block(&origin) {
                    return Err(Error::Mismatch {
                        what: "broadcast",
                        reason: "its origin's membership was revoked",
                    });
                }
                origin
                    .verify(
                        BROADCAST_PURPOSE,
                        &[self.network.as_bytes(), &seq.to_be_bytes(), &payload],
                        &signature,
                        "broadcast",
                    )
                    .map_err(|source| Error::Rejected {
                        what: "broadcast",
                        source,
                    })
            }
            Envelope::Revocation(r) => self.apply_revocation(now, &r).map(|_| ()),
        }
    }

    fn revocations_block(&self, origin: &NodeId) -> bool {
        use in8_artifact::Revocations as _;
        self.revocations.member_revoked(&self.network, origin)
    }
}
