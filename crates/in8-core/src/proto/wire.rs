//! The network channel's wire format, version 1 (docs/network.md "Wire format"): the
//! frames two linked nodes exchange on the `in8-net` data channel of their session, and
//! the payloads of network broadcasts (carried inside in8-gossip's signed application
//! envelope). Fixed binary layouts, big-endian, like in8-gossip's; signed things (peer
//! records, credentials, invitations) travel as their exact signed bytes.
//!
//! Frame: `version u8 = 1 ‖ type u8 ‖ body`.
//!
//! | type | frame | body |
//! |------|-------|------|
//! | 0x01 | HELLO | the sender's signed peer record (self-delimiting) |
//! | 0x02 | WELCOME | credential length u16, the newcomer's credential (CBOR) |
//! | 0x03 | GOSSIP | one in8-gossip frame (rest of the frame) |
//! | 0x04 | HOST | invitation length u16, a signed invitation naming the receiver as an entry peer |
//! | 0x05 | REDEEMED | invite id (16), the newcomer's node id (32) |
//! | 0x06 | BYE | cause u8 (0 not needed, 1 duplicate, 2 not a member, 3 misbehaved, 4 leaving) |
//! | 0x07 | MEMBERS | count u8 (at most 32), that many signed peer records |
//! | 0x08 | MESSAGE | application payload (rest of the frame) |
//! | 0x09 | ASK-MEMBERS | (empty): a newcomer asks a neighbour for the members it knows |
//!
//! Broadcast payload: `kind u8 ‖ body`.
//!
//! | kind | payload | body |
//! |------|---------|------|
//! | 0x01 | ANNOUNCE | the origin's signed peer record, neighbour count u8 (at most 16), node ids (32 each) |
//! | 0x02 | APP | application payload (rest) |
//! | 0x03 | LEAVE | (empty) |
//! | 0x04 | REDEEMED | invite id (16), the newcomer's node id (32) |
//!
//! Decoding is strict: an unknown version, type or cause, a short or long body, a list
//! over its bound or trailing bytes are each an error ([`WireError`]), never a panic.

use in8_artifact::{InviteId, NodeId, SignedInvitation, SignedMembership};
use in8_gossip::SignedPeerRecord;

use crate::proto::CloseCause;

/// The version of the network channel's frames.
pub const NET_WIRE_VERSION: u8 = 1;
/// Largest frame accepted on the network channel, in bytes.
pub const MAX_NET_FRAME: usize = 256 * 1024;
/// Most records in one MEMBERS frame.
pub const MAX_MEMBERS_FRAME: usize = 32;
/// Most neighbours an ANNOUNCE lists.
pub const MAX_ANNOUNCED_NEIGHBOURS: usize = 16;

/// Why a frame or payload was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its fields.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes after the last field.
    #[error("{count} trailing bytes after a {what}")]
    Trailing {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A version this node does not speak.
    #[error("network frame version {0} is not supported (this node speaks 1); upgrade in8")]
    Version(u8),
    /// An unknown frame type or payload kind.
    #[error("unknown {what} 0x{code:02x}")]
    Unknown {
        /// Frame type or payload kind.
        what: &'static str,
        /// The code.
        code: u8,
    },
    /// A list longer than its bound, or a frame longer than [`MAX_NET_FRAME`].
    #[error("{what} too long ({len} > {max})")]
    TooLong {
        /// What.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A signed thing inside did not decode.
    #[error("malformed {what}")]
    Malformed {
        /// What.
        what: &'static str,
    },
}

type Result<T> = std::result::Result<T, WireError>;

/// One frame on the network channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetFrame {
    /// The sender's record: its credential admits it (first frame on a member link).
    Hello(Box<SignedPeerRecord>),
    /// The inviter's (or entry peer's) credential for the newcomer.
    Welcome(Box<SignedMembership>),
    /// A gossip frame.
    Gossip(Vec<u8>),
    /// Please serve this invitation as one of its entry peers.
    Host(Box<SignedInvitation>),
    /// An invitation the receiver hosts or issued was redeemed at the sender.
    Redeemed {
        /// The invitation.
        invite: InviteId,
        /// The newcomer it admitted.
        member: NodeId,
    },
    /// The sender closes the link.
    Bye(CloseCause),
    /// Members the sender knows (sent to a newcomer).
    Members(Vec<SignedPeerRecord>),
    /// An application message to the receiver.
    Message(Vec<u8>),
    /// A newcomer asks for the members the receiver knows (answered with MEMBERS, once
    /// per link).
    AskMembers,
}

/// One network broadcast payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// The origin's record and current neighbours.
    Announce {
        /// Its record.
        record: Box<SignedPeerRecord>,
        /// Its overlay neighbours.
        neighbours: Vec<NodeId>,
    },
    /// An application broadcast.
    App(Vec<u8>),
    /// The origin leaves the network.
    Leave,
    /// The origin redeemed this invitation.
    Redeemed {
        /// The invitation.
        invite: InviteId,
        /// The newcomer it admitted.
        member: NodeId,
    },
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
    fn record(&mut self) -> Result<SignedPeerRecord> {
        // Self-delimiting: body length u16, body, 64-byte signature.
        let len = match self.b {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => return Err(WireError::Truncated("peer record")),
        };
        let bytes = self.take(2 + len + 64, "peer record")?;
        SignedPeerRecord::decode(bytes).map_err(|_| WireError::Malformed {
            what: "peer record",
        })
    }
    fn node(&mut self) -> Result<NodeId> {
        let b = self.take(32, "node id")?;
        let mut a = [0u8; 32];
        a.copy_from_slice(b);
        Ok(NodeId::from_bytes(a))
    }
    fn invite(&mut self) -> Result<InviteId> {
        let b = self.take(16, "invite id")?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(InviteId::from_bytes(a))
    }
    fn finish(&self, what: &'static str) -> Result<()> {
        match self.b.len() {
            0 => Ok(()),
            count => Err(WireError::Trailing { what, count }),
        }
    }
}

fn cause_code(c: CloseCause) -> u8 {
    match c {
        CloseCause::Duplicate => 1,
        CloseCause::NotAMember => 2,
        CloseCause::Misbehaved => 3,
        CloseCause::Leaving => 4,
        _ => 0,
    }
}

fn cause_of(code: u8) -> Result<CloseCause> {
    Ok(match code {
        0 => CloseCause::NotNeeded,
        1 => CloseCause::Duplicate,
        2 => CloseCause::NotAMember,
        3 => CloseCause::Misbehaved,
        4 => CloseCause::Leaving,
        code => {
            return Err(WireError::Unknown {
                what: "close cause",
                code,
            });
        }
    })
}

fn long(out: &mut Vec<u8>, b: &[u8]) {
    // Credentials and invitations are bounded by in8-artifact (`MAX_ARTIFACT_BYTES`,
    // well under 64 KiB).
    out.extend_from_slice(&(b.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(b);
}

impl NetFrame {
    /// The frame type byte.
    pub fn code(&self) -> u8 {
        match self {
            NetFrame::Hello(_) => 0x01,
            NetFrame::Welcome(_) => 0x02,
            NetFrame::Gossip(_) => 0x03,
            NetFrame::Host(_) => 0x04,
            NetFrame::Redeemed { .. } => 0x05,
            NetFrame::Bye(_) => 0x06,
            NetFrame::Members(_) => 0x07,
            NetFrame::Message(_) => 0x08,
            NetFrame::AskMembers => 0x09,
        }
    }

    /// Encodes the frame (a MEMBERS list is cut to [`MAX_MEMBERS_FRAME`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![NET_WIRE_VERSION, self.code()];
        match self {
            NetFrame::Hello(r) => out.extend_from_slice(r.to_bytes()),
            NetFrame::Welcome(c) => long(&mut out, c.to_bytes()),
            NetFrame::Gossip(g) | NetFrame::Message(g) => out.extend_from_slice(g),
            NetFrame::Host(i) => long(&mut out, i.to_bytes()),
            NetFrame::Redeemed { invite, member } => {
                out.extend_from_slice(invite.as_bytes());
                out.extend_from_slice(member.as_bytes());
            }
            NetFrame::Bye(c) => out.push(cause_code(*c)),
            NetFrame::AskMembers => {}
            NetFrame::Members(list) => {
                let n = list.len().min(MAX_MEMBERS_FRAME);
                out.push(n as u8);
                for r in &list[..n] {
                    out.extend_from_slice(r.to_bytes());
                }
            }
        }
        out
    }

    /// Decodes one frame.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_NET_FRAME {
            return Err(WireError::TooLong {
                what: "network frame",
                len: bytes.len(),
                max: MAX_NET_FRAME,
            });
        }
        let mut r = Reader { b: bytes };
        let v = r.u8("frame version")?;
        if v != NET_WIRE_VERSION {
            return Err(WireError::Version(v));
        }
        let frame = match r.u8("frame type")? {
            0x01 => NetFrame::Hello(Box::new(r.record()?)),
            0x02 => {
                let n = usize::from(r.u16("credential length")?);
                let b = r.take(n, "credential")?;
                NetFrame::Welcome(Box::new(
                    SignedMembership::decode(b)
                        .map_err(|_| WireError::Malformed { what: "credential" })?,
                ))
            }
            0x03 => NetFrame::Gossip(r.rest().to_vec()),
            0x04 => {
                let n = usize::from(r.u16("invitation length")?);
                let b = r.take(n, "invitation")?;
                NetFrame::Host(Box::new(
                    SignedInvitation::decode(b)
                        .map_err(|_| WireError::Malformed { what: "invitation" })?,
                ))
            }
            0x05 => NetFrame::Redeemed {
                invite: r.invite()?,
                member: r.node()?,
            },
            0x06 => NetFrame::Bye(cause_of(r.u8("cause")?)?),
            0x07 => {
                let n = usize::from(r.u8("member count")?);
                if n > MAX_MEMBERS_FRAME {
                    return Err(WireError::TooLong {
                        what: "member list",
                        len: n,
                        max: MAX_MEMBERS_FRAME,
                    });
                }
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(r.record()?);
                }
                NetFrame::Members(list)
            }
            0x08 => NetFrame::Message(r.rest().to_vec()),
            0x09 => NetFrame::AskMembers,
            code => {
                return Err(WireError::Unknown {
                    what: "frame type",
                    code,
                });
            }
        };
        r.finish("network frame")?;
        Ok(frame)
    }
}

impl Broadcast {
    /// The payload kind byte.
    pub fn code(&self) -> u8 {
        match self {
            Broadcast::Announce { .. } => 0x01,
            Broadcast::App(_) => 0x02,
            Broadcast::Leave => 0x03,
            Broadcast::Redeemed { .. } => 0x04,
        }
    }

    /// Encodes the payload (neighbours cut to [`MAX_ANNOUNCED_NEIGHBOURS`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.code()];
        match self {
            Broadcast::Announce { record, neighbours } => {
                out.extend_from_slice(record.to_bytes());
                let n = neighbours.len().min(MAX_ANNOUNCED_NEIGHBOURS);
                out.push(n as u8);
                for id in &neighbours[..n] {
                    out.extend_from_slice(id.as_bytes());
                }
            }
            Broadcast::App(p) => out.extend_from_slice(p),
            Broadcast::Leave => {}
            Broadcast::Redeemed { invite, member } => {
                out.extend_from_slice(invite.as_bytes());
                out.extend_from_slice(member.as_bytes());
            }
        }
        out
    }

    /// Decodes one payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { b: bytes };
        let b = match r.u8("payload kind")? {
            0x01 => {
                let record = Box::new(r.record()?);
                let n = usize::from(r.u8("neighbour count")?);
                if n > MAX_ANNOUNCED_NEIGHBOURS {
                    return Err(WireError::TooLong {
                        what: "neighbour list",
                        len: n,
                        max: MAX_ANNOUNCED_NEIGHBOURS,
                    });
                }
                let mut neighbours = Vec::with_capacity(n);
                for _ in 0..n {
                    neighbours.push(r.node()?);
                }
                Broadcast::Announce { record, neighbours }
            }
            0x02 => Broadcast::App(r.rest().to_vec()),
            0x03 => Broadcast::Leave,
            0x04 => Broadcast::Redeemed {
                invite: r.invite()?,
                member: r.node()?,
            },
            code => {
                return Err(WireError::Unknown {
                    what: "payload kind",
                    code,
                });
            }
        };
        r.finish("broadcast payload")?;
        Ok(b)
    }
}
