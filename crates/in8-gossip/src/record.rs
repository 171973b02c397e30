//! Signed peer records: what a member says about itself, signed by itself, carrying the
//! membership credential that admits it.
//!
//! Wire form (big-endian), self-delimiting so records can be listed back to back:
//!
//! | bytes | field |
//! |-------|-------|
//! | 2 | body length `L` (at most [`MAX_RECORD_BODY`]) |
//! | L | body (below) |
//! | 64 | ed25519 signature by `node` over the body, purpose `peer-record` |
//!
//! Body:
//!
//! | bytes | field |
//! |-------|-------|
//! | 1 | record version = 1 |
//! | 16 | network id |
//! | 32 | node id (the signer) |
//! | 8 | sequence number (a newer record has a larger one) |
//! | 1 | NAT class ([`NatClass`]) |
//! | 4 | capabilities the node offers (a subset of its credential's) |
//! | 8 | expires (Unix seconds) |
//! | 1 | candidate count `n` (at most 16) |
//! | n × (7, 11, 19 or 23) | candidates: flags (bits 0–1 type, bit 2 IPv6, others 0), address, port, priority (4) |
//! | 2 | credential length `C` |
//! | C | the membership credential (`in8_artifact::SignedMembership`, CBOR) |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use in8_artifact::{
    Candidate, CandidateKind, Capabilities, Identity, MAX_CANDIDATES, NetworkId, NodeId,
    Revocations, SignedMembership, Timestamp, VerifyPolicy,
};

use crate::error::{Error, Result};
use crate::wire::codec::{Reader, Writer};

/// Largest record body accepted, in bytes.
pub const MAX_RECORD_BODY: usize = 4096;
/// The record format version.
pub const RECORD_VERSION: u8 = 1;
const SIGN_PURPOSE: &str = "peer-record";

/// What a node knows about its own NAT (from NAT classification, RFC 5780 logic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NatClass {
    /// Not measured.
    #[default]
    Unknown,
    /// Publicly reachable (no NAT, or a port mapping).
    Public,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    Restricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Endpoint-dependent mapping.
    Symmetric,
}

impl NatClass {
    fn code(self) -> u8 {
        match self {
            NatClass::Unknown => 0,
            NatClass::Public => 1,
            NatClass::FullCone => 2,
            NatClass::Restricted => 3,
            NatClass::PortRestricted => 4,
            NatClass::Symmetric => 5,
        }
    }
    fn from_code(c: u8) -> Result<Self> {
        Ok(match c {
            0 => NatClass::Unknown,
            1 => NatClass::Public,
            2 => NatClass::FullCone,
            3 => NatClass::Restricted,
            4 => NatClass::PortRestricted,
            5 => NatClass::Symmetric,
            _ => {
                return Err(Error::InvalidValue {
                    field: "NAT class",
                    reason: "must be 0..=5",
                });
            }
        })
    }

    /// Whether others can open a link to this node without help.
    pub fn reachable(self) -> bool {
        matches!(self, NatClass::Public | NatClass::FullCone)
    }
}

/// The contents of a peer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The network.
    pub network: NetworkId,
    /// The member (and signer).
    pub node: NodeId,
    /// Sequence number: a record replaces an older one with a smaller number.
    pub seq: u64,
    /// The node's NAT behaviour.
    pub nat: NatClass,
    /// Capabilities the node offers (a subset of its credential's).
    pub capabilities: Capabilities,
    /// End of validity.
    pub expires: Timestamp,
    /// Where to reach it (the "signed candidate offer" introductions relay).
    pub candidates: Vec<Candidate>,
    /// Its membership credential.
    pub credential: SignedMembership,
}

/// A peer record with its exact bytes and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPeerRecord {
    record: PeerRecord,
    body_len: usize,
    bytes: Vec<u8>,
}

fn kind_code(k: CandidateKind) -> u8 {
    match k {
        CandidateKind::Host => 0,
        CandidateKind::ServerReflexive => 1,
        CandidateKind::PeerReflexive => 2,
        CandidateKind::Relay => 3,
    }
}

fn kind_from(c: u8) -> CandidateKind {
    match c & 3 {
        0 => CandidateKind::Host,
        1 => CandidateKind::ServerReflexive,
        2 => CandidateKind::PeerReflexive,
        _ => CandidateKind::Relay,
    }
}

impl PeerRecord {
    /// Encodes and signs the record; `identity` must be the record's node.
    pub fn sign(self, identity: &Identity) -> Result<SignedPeerRecord> {
        if identity.node_id() != self.node {
            return Err(Error::Mismatch {
                what: "peer record",
                reason: "a record must be signed by its own node",
            });
        }
        if self.candidates.len() > MAX_CANDIDATES {
            return Err(Error::TooLong {
                what: "candidate list",
                len: self.candidates.len(),
                max: MAX_CANDIDATES,
            });
        }
        let mut w = Writer::default();
        w.u8(RECORD_VERSION)
            .bytes(self.network.as_bytes())
            .bytes(self.node.as_bytes())
            .u64(self.seq)
            .u8(self.nat.code())
            .u32(self.capabilities.0)
            .u64(self.expires.as_unix())
            .u8(self.candidates.len() as u8);
        for c in &self.candidates {
            match c.addr.ip() {
                IpAddr::V4(a) => w.u8(kind_code(c.kind)).bytes(&a.octets()),
                IpAddr::V6(a) => w.u8(kind_code(c.kind) | 4).bytes(&a.octets()),
            };
            w.u16(c.addr.port()).u32(c.priority);
        }
        let cred = self.credential.to_bytes();
        let body_len = w.0.len() + 2 + cred.len();
        if body_len > MAX_RECORD_BODY {
            return Err(Error::TooLong {
                what: "peer record",
                len: body_len,
                max: MAX_RECORD_BODY,
            });
        }
        w.u16(cred.len() as u16).bytes(cred);
        let body = w.0;
        let sig = identity.sign(SIGN_PURPOSE, &[&body]);
        let mut out = Writer(Vec::with_capacity(2 + body.len() + 64));
        out.u16(body.len() as u16).bytes(&body).bytes(&sig);
        Ok(SignedPeerRecord {
            record: self,
            body_len: body.len(),
            bytes: out.0,
        })
    }

    fn decode_body(body: &[u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let v = r.u8("record version")?;
        if v != RECORD_VERSION {
            return Err(Error::UnsupportedVersion {
                found: v,
                supported: RECORD_VERSION,
            });
        }
        let network = NetworkId::from_bytes(r.fixed("network id")?);
        let node = NodeId::from_bytes(r.fixed("node id")?);
        let seq = r.u64("sequence number")?;
        let nat = NatClass::from_code(r.u8("NAT class")?)?;
        let capabilities = Capabilities(r.u32("capabilities")?);
        let expires = Timestamp(r.u64("expires")?);
        let n = usize::from(r.u8("candidate count")?);
        if n > MAX_CANDIDATES {
            return Err(Error::TooLong {
                what: "candidate list",
                len: n,
                max: MAX_CANDIDATES,
            });
        }
        let mut candidates = Vec::with_capacity(n);
        for _ in 0..n {
            let flags = r.u8("candidate flags")?;
            if flags & !7 != 0 {
                return Err(Error::InvalidValue {
                    field: "candidate flags",
                    reason: "bits 3-7 are reserved and must be zero",
                });
            }
            let ip = if flags & 4 != 0 {
                IpAddr::V6(Ipv6Addr::from(r.fixed::<16>("IPv6 address")?))
            } else {
                IpAddr::V4(Ipv4Addr::from(r.fixed::<4>("IPv4 address")?))
            };
            let port = r.u16("port")?;
            if port == 0 {
                return Err(Error::InvalidValue {
                    field: "candidate port",
                    reason: "port 0 is not an address",
                });
            }
            let priority = r.u32("priority")?;
            candidates.push(Candidate {
                kind: kind_from(flags),
                addr: SocketAddr::new(ip, port),
                priority,
            });
        }
        let c = usize::from(r.u16("credential length")?);
        let credential = SignedMembership::decode(r.take(c, "credential")?).map_err(|source| {
            Error::Rejected {
                what: "credential in peer record",
                source,
            }
        })?;
        r.finish("peer record body")?;
        Ok(Self {
            network,
            node,
            seq,
            nat,
            capabilities,
            expires,
            candidates,
            credential,
        })
    }
}

impl SignedPeerRecord {
    /// Strictly decodes one record that fills `bytes` exactly. Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let rec = Self::read(&mut r)?;
        r.finish("peer record")?;
        Ok(rec)
    }

    /// Reads one record from a reader (records are self-delimiting).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.u16("record length")?);
        if len > MAX_RECORD_BODY {
            return Err(Error::TooLong {
                what: "peer record",
                len,
                max: MAX_RECORD_BODY,
            });
        }
        let body = r.take(len, "record body")?;
        let sig = r.take(64, "record signature")?;
        let record = PeerRecord::decode_body(body)?;
        let mut bytes = Vec::with_capacity(2 + len + 64);
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(sig);
        Ok(Self {
            record,
            body_len: len,
            bytes,
        })
    }

    /// The decoded contents.
    pub fn record(&self) -> &PeerRecord {
        &self.record
    }

    /// The node the record describes.
    pub fn node(&self) -> NodeId {
        self.record.node
    }

    /// The encoded record (length, body, signature).
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn body(&self) -> &[u8] {
        &self.bytes[2..2 + self.body_len]
    }

    fn signature(&self) -> [u8; 64] {
        let mut s = [0u8; 64];
        s.copy_from_slice(&self.bytes[2 + self.body_len..]);
        s
    }

    /// Verifies everything that admits the node to `network`: the record's signature by its
    /// node, its expiry, the credential chain up to the network's creator (signatures,
    /// attenuation, expiry, revocations), that the credential is this node's in this
    /// network, and that the offered capabilities are within the credential's.
    pub fn verify(
        &self,
        network: &NetworkId,
        now: Timestamp,
        policy: &VerifyPolicy,
        revocations: &dyn Revocations,
    ) -> Result<&PeerRecord> {
        let rec = &self.record;
        rec.node
            .verify(
                SIGN_PURPOSE,
                &[self.body()],
                &self.signature(),
                "peer record",
            )
            .map_err(|source| Error::Rejected {
                what: "peer record",
                source,
            })?;
        if rec.network != *network {
            return Err(Error::Mismatch {
                what: "peer record",
                reason: "it is for another network",
            });
        }
        if now >= rec.expires + policy.skew() {
            return Err(Error::Rejected {
                what: "peer record",
                source: in8_artifact::Error::Expired {
                    expired_at: rec.expires,
                    now,
                },
            });
        }
        let m = rec.credential.membership();
        if m.member != rec.node || m.network != *network {
            return Err(Error::Mismatch {
                what: "credential",
                reason: "the credential is not this node's in this network",
            });
        }
        if !m.capabilities.contains(rec.capabilities) {
            return Err(Error::Mismatch {
                what: "peer record",
                reason: "it offers capabilities its credential does not grant",
            });
        }
        rec.credential
            .verify(now, policy, revocations)
            .map_err(|source| Error::Rejected {
                what: "membership credential",
                source,
            })?;
        Ok(rec)
    }
}
