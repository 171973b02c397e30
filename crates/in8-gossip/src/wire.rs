//! The gossip wire format, version 2: one frame per transport message. (Version 1 had no
//! attempt token in INTRO-REQUEST and INTRODUCE; it is refused as an unknown version.)
//!
//! Frames are a fixed binary layout (big-endian) rather than CBOR: they are short-lived,
//! hot-path messages, and a fixed layout has exactly one encoding per value without a
//! canonicalisation step. Signed things inside frames (peer records, credentials,
//! revocations, application broadcasts) are carried as their exact signed bytes.
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | wire version = 2 |
//! | 1 | frame type (below) |
//! | … | body |
//!
//! | type | frame | body |
//! |------|-------|------|
//! | 0x01 | JOIN | sender's record |
//! | 0x02 | JOIN-REPLY | contact's record, `n` u8, `n` records (contact's neighbours), `m` u8, `m` records (passive sample) |
//! | 0x03 | FORWARD-JOIN | ttl u8, the newcomer's record |
//! | 0x04 | NEIGHBOR | priority u8 (0 low, 1 high, 2 pinned), sender's record |
//! | 0x05 | NEIGHBOR-REPLY | accepted u8 (0 / 1) |
//! | 0x06 | DISCONNECT | alive u8 (0 / 1) |
//! | 0x07 | SHUFFLE | ttl u8, origin's record, `n` u8 + records (active sample), `m` u8 + records (passive sample) |
//! | 0x08 | SHUFFLE-REPLY | replier's record, `n` u8, `n` records |
//! | 0x10 | GOSSIP | round u16, broadcast envelope (rest of the frame) |
//! | 0x11 | IHAVE | `n` u8, `n` × (id u64, round u16) |
//! | 0x12 | GRAFT | id u64, round u16 |
//! | 0x13 | PRUNE | (empty) |
//! | 0x20 | INTRO-REQUEST | target node id (32), attempt token u64, requester's fresh record (its offer) |
//! | 0x21 | INTRODUCE | delay ms u16, attempt token u64, the other side's record (its offer) |
//! | 0x22 | INTRO-UNAVAILABLE | target node id (32) |
//! | 0x30 | REVOCATIONS | `n` u8, `n` × (length u16, revocation record) |
//!
//! Records are [`SignedPeerRecord`]s (self-delimiting). Lists hold at most [`MAX_LIST`]
//! entries; booleans are exactly 0 or 1; anything else is an error. The broadcast envelope:
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | kind: 0 application, 1 revocation |
//! | app: 32 + 8 + 4 + L + 64 | origin node id, origin sequence number, payload length `L`, payload, origin's signature (purpose `gossip-broadcast`, over network id ‖ sequence ‖ payload) |
//! | revocation: 2 + R | length, the signed revocation record (CBOR) |
//!
//! A message id is the first 8 bytes (big-endian) of BLAKE3 over the envelope.

pub(crate) mod codec;

use in8_artifact::{NodeId, SignedRevocation};

use crate::config::MAX_LIST;
use crate::error::{Error, Result};
use crate::proto::{Message, MessageId, Priority};
use crate::record::SignedPeerRecord;
use codec::{Reader, Writer};

/// The wire version this implementation speaks.
pub const WIRE_VERSION: u8 = 2;
/// Largest frame accepted, in bytes.
pub const MAX_FRAME: usize = 256 * 1024;
/// Bytes an application envelope adds to its payload.
pub const APP_ENVELOPE_OVERHEAD: usize = 1 + 32 + 8 + 4 + 64;

/// One decoded frame, with full records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Frame {
    Join {
        record: SignedPeerRecord,
    },
    JoinReply {
        contact: SignedPeerRecord,
        active: Vec<SignedPeerRecord>,
        passive: Vec<SignedPeerRecord>,
    },
    ForwardJoin {
        ttl: u8,
        record: SignedPeerRecord,
    },
    Neighbor {
        priority: Priority,
        record: SignedPeerRecord,
    },
    NeighborReply {
        accepted: bool,
    },
    Disconnect {
        alive: bool,
    },
    Shuffle {
        ttl: u8,
        origin: SignedPeerRecord,
        active: Vec<SignedPeerRecord>,
        passive: Vec<SignedPeerRecord>,
    },
    ShuffleReply {
        replier: SignedPeerRecord,
        peers: Vec<SignedPeerRecord>,
    },
    Gossip {
        round: u16,
        envelope: Vec<u8>,
    },
    IHave {
        entries: Vec<(MessageId, u16)>,
    },
    Graft {
        id: MessageId,
        round: u16,
    },
    Prune,
    IntroRequest {
        target: NodeId,
        token: u64,
        offer: SignedPeerRecord,
    },
    Introduce {
        delay_ms: u16,
        token: u64,
        offer: SignedPeerRecord,
    },
    IntroUnavailable {
        target: NodeId,
    },
    Revocations {
        records: Vec<SignedRevocation>,
    },
}

fn prio_code(p: Priority) -> u8 {
    match p {
        Priority::Low => 0,
        Priority::High => 1,
        Priority::Pinned => 2,
    }
}

fn write_records(w: &mut Writer, list: &[SignedPeerRecord]) {
    w.u8(list.len().min(MAX_LIST) as u8);
    for r in list.iter().take(MAX_LIST) {
        w.bytes(r.to_bytes());
    }
}

fn read_records(r: &mut Reader<'_>) -> Result<Vec<SignedPeerRecord>> {
    let n = usize::from(r.u8("list length")?);
    if n > MAX_LIST {
        return Err(Error::TooLong {
            what: "record list",
            len: n,
            max: MAX_LIST,
        });
    }
    (0..n).map(|_| SignedPeerRecord::read(r)).collect()
}

fn read_bool(r: &mut Reader<'_>, field: &'static str) -> Result<bool> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::InvalidValue {
            field,
            reason: "a boolean is 0 or 1",
        }),
    }
}

impl Frame {
    /// The frame type byte.
    pub fn type_code(&self) -> u8 {
        match self {
            Frame::Join { .. } => 0x01,
            Frame::JoinReply { .. } => 0x02,
            Frame::ForwardJoin { .. } => 0x03,
            Frame::Neighbor { .. } => 0x04,
            Frame::NeighborReply { .. } => 0x05,
            Frame::Disconnect { .. } => 0x06,
            Frame::Shuffle { .. } => 0x07,
            Frame::ShuffleReply { .. } => 0x08,
            Frame::Gossip { .. } => 0x10,
            Frame::IHave { .. } => 0x11,
            Frame::Graft { .. } => 0x12,
            Frame::Prune => 0x13,
            Frame::IntroRequest { .. } => 0x20,
            Frame::Introduce { .. } => 0x21,
            Frame::IntroUnavailable { .. } => 0x22,
            Frame::Revocations { .. } => 0x30,
        }
    }

    /// Encodes the frame (lists longer than [`MAX_LIST`] are truncated).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(self.type_code());
        match self {
            Frame::Join { record } => {
                w.bytes(record.to_bytes());
            }
            Frame::JoinReply {
                contact,
                active,
                passive,
            } => {
                w.bytes(contact.to_bytes());
                write_records(&mut w, active);
                write_records(&mut w, passive);
            }
            Frame::ForwardJoin { ttl, record } => {
                w.u8(*ttl).bytes(record.to_bytes());
            }
            Frame::Neighbor { priority, record } => {
                w.u8(prio_code(*priority)).bytes(record.to_bytes());
            }
            Frame::NeighborReply { accepted } => {
                w.u8(u8::from(*accepted));
            }
            Frame::Disconnect { alive } => {
                w.u8(u8::from(*alive));
            }
            Frame::Shuffle {
                ttl,
                origin,
                active,
                passive,
            } => {
                w.u8(*ttl).bytes(origin.to_bytes());
                write_records(&mut w, active);
                write_records(&mut w, passive);
            }
            Frame::ShuffleReply { replier, peers } => {
                w.bytes(replier.to_bytes());
                write_records(&mut w, peers);
            }
            Frame::Gossip { round, envelope } => {
                w.u16(*round).bytes(envelope);
            }
            Frame::IHave { entries } => {
                w.u8(entries.len().min(MAX_LIST) as u8);
                for (id, round) in entries.iter().take(MAX_LIST) {
                    w.u64(*id).u16(*round);
                }
            }
            Frame::Graft { id, round } => {
                w.u64(*id).u16(*round);
            }
            Frame::Prune => {}
            Frame::IntroRequest {
                target,
                token,
                offer,
            } => {
                w.bytes(target.as_bytes())
                    .u64(*token)
                    .bytes(offer.to_bytes());
            }
            Frame::Introduce {
                delay_ms,
                token,
                offer,
            } => {
                w.u16(*delay_ms).u64(*token).bytes(offer.to_bytes());
            }
            Frame::IntroUnavailable { target } => {
                w.bytes(target.as_bytes());
            }
            Frame::Revocations { records } => {
                w.u8(records.len().min(MAX_LIST) as u8);
                for r in records.iter().take(MAX_LIST) {
                    let b = r.to_bytes();
                    w.u16(b.len() as u16).bytes(b);
                }
            }
        }
        w.0
    }

    /// Strictly decodes one frame. Does not verify any signature.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_FRAME {
            return Err(Error::TooLong {
                what: "frame",
                len: bytes.len(),
                max: MAX_FRAME,
            });
        }
        let mut r = Reader::new(bytes);
        let v = r.u8("wire version")?;
        if v != WIRE_VERSION {
            return Err(Error::UnsupportedVersion {
                found: v,
                supported: WIRE_VERSION,
            });
        }
        let t = r.u8("frame type")?;
        let rec = |r: &mut Reader<'_>| SignedPeerRecord::read(r);
        let node =
            |r: &mut Reader<'_>| -> Result<NodeId> { Ok(NodeId::from_bytes(r.fixed("node id")?)) };
        let frame = match t {
            0x01 => Frame::Join {
                record: rec(&mut r)?,
            },
            0x02 => Frame::JoinReply {
                contact: rec(&mut r)?,
                active: read_records(&mut r)?,
                passive: read_records(&mut r)?,
            },
            0x03 => Frame::ForwardJoin {
                ttl: r.u8("ttl")?,
                record: rec(&mut r)?,
            },
            0x04 => Frame::Neighbor {
                priority: match r.u8("priority")? {
                    0 => Priority::Low,
                    1 => Priority::High,
                    2 => Priority::Pinned,
                    _ => {
                        return Err(Error::InvalidValue {
                            field: "priority",
                            reason: "must be 0 (low), 1 (high) or 2 (pinned)",
                        });
                    }
                },
                record: rec(&mut r)?,
            },
            0x05 => Frame::NeighborReply {
                accepted: read_bool(&mut r, "accepted")?,
            },
            0x06 => Frame::Disconnect {
                alive: read_bool(&mut r, "alive")?,
            },
            0x07 => Frame::Shuffle {
                ttl: r.u8("ttl")?,
                origin: rec(&mut r)?,
                active: read_records(&mut r)?,
                passive: read_records(&mut r)?,
            },
            0x08 => Frame::ShuffleReply {
                replier: rec(&mut r)?,
                peers: read_records(&mut r)?,
            },
            0x10 => {
                let round = r.u16("round")?;
                let envelope = r.rest().to_vec();
                Envelope::decode(&envelope)?;
                Frame::Gossip { round, envelope }
            }
            0x11 => {
                let n = usize::from(r.u8("list length")?);
                if n > MAX_LIST {
                    return Err(Error::TooLong {
                        what: "IHAVE list",
                        len: n,
                        max: MAX_LIST,
                    });
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push((r.u64("message id")?, r.u16("round")?));
                }
                Frame::IHave { entries }
            }
            0x12 => Frame::Graft {
                id: r.u64("message id")?,
                round: r.u16("round")?,
            },
            0x13 => Frame::Prune,
            0x20 => Frame::IntroRequest {
                target: node(&mut r)?,
                token: r.u64("token")?,
                offer: rec(&mut r)?,
            },
            0x21 => Frame::Introduce {
                delay_ms: r.u16("delay")?,
                token: r.u64("token")?,
                offer: rec(&mut r)?,
            },
            0x22 => Frame::IntroUnavailable {
                target: node(&mut r)?,
            },
            0x30 => {
                let n = usize::from(r.u8("list length")?);
                if n > MAX_LIST {
                    return Err(Error::TooLong {
                        what: "revocation list",
                        len: n,
                        max: MAX_LIST,
                    });
                }
                let mut records = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = usize::from(r.u16("revocation length")?);
                    let b = r.take(len, "revocation")?;
                    records.push(SignedRevocation::decode(b).map_err(|source| {
                        Error::Rejected {
                            what: "revocation",
                            source,
                        }
                    })?);
                }
                Frame::Revocations { records }
            }
            found => return Err(Error::UnknownType { found }),
        };
        r.finish("frame")?;
        Ok(frame)
    }
}

/// A broadcast envelope: what Plumtree carries and what its message id is derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// An application message, signed by its origin.
    App {
        /// The origin.
        origin: NodeId,
        /// The origin's sequence number.
        seq: u64,
        /// The payload.
        payload: Vec<u8>,
        /// The origin's signature.
        signature: [u8; 64],
    },
    /// A revocation record (self-authenticating).
    Revocation(SignedRevocation),
}

/// Signature purpose of application broadcasts.
pub(crate) const BROADCAST_PURPOSE: &str = "gossip-broadcast";

impl Envelope {
    /// Encodes the envelope.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Envelope::App {
                origin,
                seq,
                payload,
                signature,
            } => {
                w.u8(0)
                    .bytes(origin.as_bytes())
                    .u64(*seq)
                    .u32(payload.len() as u32)
                    .bytes(payload)
                    .bytes(signature);
            }
            Envelope::Revocation(r) => {
                let b = r.to_bytes();
                w.u8(1).u16(b.len() as u16).bytes(b);
            }
        }
        w.0
    }

    /// Strictly decodes an envelope (no signature check).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let e = match r.u8("envelope kind")? {
            0 => {
                let origin = NodeId::from_bytes(r.fixed("origin")?);
                let seq = r.u64("sequence number")?;
                let len = r.u32("payload length")? as usize;
                let payload = r.take(len, "payload")?.to_vec();
                let signature = r.fixed("signature")?;
                Envelope::App {
                    origin,
                    seq,
                    payload,
                    signature,
                }
            }
            1 => {
                let len = usize::from(r.u16("revocation length")?);
                let rv =
                    SignedRevocation::decode(r.take(len, "revocation")?).map_err(|source| {
                        Error::Rejected {
                            what: "revocation",
                            source,
                        }
                    })?;
                Envelope::Revocation(rv)
            }
            _ => {
                return Err(Error::InvalidValue {
                    field: "envelope kind",
                    reason: "must be 0 (application) or 1 (revocation)",
                });
            }
        };
        r.finish("broadcast envelope")?;
        Ok(e)
    }
}

/// The message id of an encoded envelope.
pub fn message_id(envelope: &[u8]) -> MessageId {
    let h = blake3::hash(envelope);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_be_bytes(b)
}

/// The exact encoded length of the frame `message` becomes, when every record is
/// `record_len` bytes long and a GOSSIP payload is the envelope itself. The simulator
/// counts bytes with it; a test checks it against [`Frame::encode`].
pub fn encoded_len<P>(message: &Message<P>, record_len: usize) -> usize {
    let list = |n: usize| 1 + n.min(MAX_LIST) * record_len;
    2 + match message {
        Message::Join => record_len,
        Message::JoinReply { active, passive } => {
            record_len + list(active.len()) + list(passive.len())
        }
        Message::ForwardJoin { .. } | Message::Neighbor { .. } => 1 + record_len,
        Message::NeighborReply { .. } | Message::Disconnect { .. } => 1,
        Message::Shuffle {
            active, passive, ..
        } => 1 + record_len + list(active.len()) + list(passive.len()),
        Message::ShuffleReply { peers } => record_len + list(peers.len()),
        Message::Gossip { payload, .. } => 2 + payload.len(),
        Message::IHave { entries } => 1 + entries.len().min(MAX_LIST) * 10,
        Message::Graft { .. } => 10,
        Message::Prune => 0,
        Message::IntroRequest { .. } => 32 + 8 + record_len,
        Message::Introduce { .. } => 2 + 8 + record_len,
        Message::IntroUnavailable { .. } => 32,
    }
}
