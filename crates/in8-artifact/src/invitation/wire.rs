//! Invitation body: deterministic CBOR map with integer keys.
//!
//! | key | field | type | presence |
//! |-----|-------|------|----------|
//! | 0 | version | uint = 1 | required |
//! | 1 | kind | uint = 1 | required |
//! | 2 | network id | bstr 16 | required |
//! | 3 | issuer node id | bstr 32 | required |
//! | 4 | invite secret | bstr 16..=32 | required |
//! | 5 | candidates | array of candidate bstr | required |
//! | 6 | expires | uint (Unix s) | required |
//! | 7 | not before | uint (Unix s) | optional |
//! | 8 | uses | uint 2..=10^6 | omitted when 1 |
//! | 9 | flags | uint | omitted when 0 |
//! | 10 | capabilities | uint | omitted when 0 |
//! | 11 | role | uint | omitted when 0 (auto) |
//! | 12 | cert fingerprint | bstr 32 | optional |
//! | 13 | server hints | array of [kind, host, port] | omitted when empty |
//! | 14 | entry peers | array of [bstr 32, candidates] | omitted when empty |
//! | 15 | issuer's NAT behaviour | [mapping uint, filtering uint] | omitted when unknown |
//!
//! Fields equal to their default must be omitted (so every invitation has exactly one
//! encoding); unknown even keys are critical and rejected, unknown odd keys are preserved.

use crate::candidate::{decode_list, encode_list};
use crate::cbor::{Reader, unknown_key};
use crate::envelope::{ArtifactKind, body_header, body_start};
use crate::error::{Error, Result};
use crate::identity::NodeId;
use crate::ids::NetworkId;
use crate::invitation::{EntryPeer, Invitation, MAX_ENTRY_PEERS, MAX_SERVER_HINTS, MAX_USES};
use crate::nat::{NatBehaviour, decode_field};
use crate::policy::{Capabilities, Flags, ServerHint, ServerKind, TopologyRole};
use crate::secrets::InviteSecret;
use crate::time::Timestamp;

/// Key of the issuer's NAT behaviour (odd: readers that predate it ignore it).
pub(super) const NAT_KEY: u64 = 15;

pub(super) fn encode_body(inv: &Invitation) -> Vec<u8> {
    let n = 7
        + usize::from(inv.not_before.is_some())
        + usize::from(inv.uses != 1)
        + usize::from(inv.flags != Flags::NONE)
        + usize::from(inv.capabilities != Capabilities::NONE)
        + usize::from(inv.role != TopologyRole::Auto)
        + usize::from(inv.cert_fingerprint.is_some())
        + usize::from(!inv.servers.is_empty())
        + usize::from(!inv.entry_peers.is_empty())
        + usize::from(inv.nat.is_some())
        + inv.extensions.len();
    let mut e = body_start(ArtifactKind::Invitation, n);
    e.u64(2).bytes(inv.network.as_bytes());
    e.u64(3).bytes(inv.issuer.as_bytes());
    e.u64(4).bytes(inv.secret.as_bytes());
    e.u64(5);
    encode_list(&inv.candidates, &mut e);
    e.u64(6).u64(inv.expires.as_unix());
    if let Some(nb) = inv.not_before {
        e.u64(7).u64(nb.as_unix());
    }
    if inv.uses != 1 {
        e.u64(8).u64(u64::from(inv.uses));
    }
    if inv.flags != Flags::NONE {
        e.u64(9).u64(u64::from(inv.flags.0));
    }
    if inv.capabilities != Capabilities::NONE {
        e.u64(10).u64(u64::from(inv.capabilities.0));
    }
    if inv.role != TopologyRole::Auto {
        e.u64(11).u64(inv.role.code());
    }
    if let Some(fp) = &inv.cert_fingerprint {
        e.u64(12).bytes(fp);
    }
    if !inv.servers.is_empty() {
        e.u64(13).array(inv.servers.len());
        for s in &inv.servers {
            e.array(3)
                .u64(s.kind.code())
                .str(&s.host)
                .u64(u64::from(s.port));
        }
    }
    if !inv.entry_peers.is_empty() {
        e.u64(14).array(inv.entry_peers.len());
        for p in &inv.entry_peers {
            e.array(2).bytes(p.id.as_bytes());
            encode_list(&p.candidates, &mut e);
        }
    }
    if let Some(n) = &inv.nat {
        e.u64(NAT_KEY);
        n.encode(&mut e);
    }
    e.extensions(&inv.extensions);
    e.finish()
}

fn nonzero(v: u64, field: &'static str) -> Result<u64> {
    if v == 0 {
        return Err(Error::InvalidValue {
            field,
            reason: "default value must be omitted",
        });
    }
    Ok(v)
}

fn decode_server(r: &mut Reader<'_>) -> Result<ServerHint> {
    if r.array("server hint", 3)? != 3 {
        return Err(Error::WrongSize {
            field: "server hint",
            expected: "3 items",
            actual: 0,
        });
    }
    let kind = ServerKind::from_code(r.u64("server kind")?).ok_or(Error::InvalidValue {
        field: "server kind",
        reason: "unknown server kind",
    })?;
    let host = r.str("server host")?;
    if host.is_empty() || host.len() > 253 {
        return Err(Error::WrongSize {
            field: "server host",
            expected: "1..=253",
            actual: host.len(),
        });
    }
    let port = u16::try_from(r.u64("server port")?).map_err(|_| Error::InvalidValue {
        field: "server port",
        reason: "larger than 65535",
    })?;
    r.leave();
    Ok(ServerHint {
        kind,
        host: host.to_owned(),
        port,
    })
}

fn decode_entry_peer(r: &mut Reader<'_>) -> Result<EntryPeer> {
    let n = r.array("entry peer", 2)?;
    if n != 2 {
        return Err(Error::WrongSize {
            field: "entry peer",
            expected: "2 items",
            actual: n,
        });
    }
    let id = NodeId::from_bytes(r.fixed::<32>("entry peer id", "32")?);
    let candidates = decode_list(r)?;
    r.leave();
    Ok(EntryPeer { id, candidates })
}

pub(super) fn decode_body(body: &[u8]) -> Result<Invitation> {
    let mut r = Reader::new(body)?;
    let (_, mut keys) = body_header(&mut r)?;
    let (mut network, mut issuer, mut secret, mut candidates, mut expires) =
        (None, None, None, None, None);
    // Optional fields start at their defaults (an explicit default is rejected below).
    let mut inv_rest = Optional::default();
    while let Some(k) = keys.next(&mut r)? {
        match k {
            2 => network = Some(NetworkId::from_bytes(r.fixed::<16>("network id", "16")?)),
            3 => issuer = Some(NodeId::from_bytes(r.fixed::<32>("issuer", "32")?)),
            4 => secret = Some(InviteSecret::from_bytes(r.bytes("invite secret")?)?),
            5 => candidates = Some(decode_list(&mut r)?),
            6 => expires = Some(Timestamp(r.u64("expires")?)),
            7 => inv_rest.not_before = Some(Timestamp(r.u64("not before")?)),
            8 => {
                let uses = r.u32("uses")?;
                if !(2..=MAX_USES).contains(&uses) {
                    return Err(Error::InvalidValue {
                        field: "uses",
                        reason: "must be 2..=1000000 (1 is the default and omitted)",
                    });
                }
                inv_rest.uses = uses;
            }
            9 => inv_rest.flags = Flags(nonzero(u64::from(r.u32("flags")?), "flags")? as u32),
            10 => {
                let c = nonzero(u64::from(r.u32("capabilities")?), "capabilities")?;
                inv_rest.capabilities = Capabilities(c as u32);
            }
            11 => inv_rest.role = TopologyRole::from_code(nonzero(r.u64("role")?, "role")?),
            12 => inv_rest.cert_fingerprint = Some(r.fixed::<32>("cert fingerprint", "32")?),
            13 => {
                let n = r.array("server hints", MAX_SERVER_HINTS)?;
                nonzero(n as u64, "server hints")?;
                for _ in 0..n {
                    inv_rest.servers.push(decode_server(&mut r)?);
                }
                r.leave();
            }
            14 => {
                let n = r.array("entry peers", MAX_ENTRY_PEERS)?;
                nonzero(n as u64, "entry peers")?;
                for _ in 0..n {
                    inv_rest.entry_peers.push(decode_entry_peer(&mut r)?);
                }
                r.leave();
            }
            NAT_KEY => decode_field(&mut r, k, &mut inv_rest.nat, &mut inv_rest.extensions)?,
            k => unknown_key(&mut r, k, &mut inv_rest.extensions)?,
        }
    }
    r.leave();
    r.finish()?;
    let expires = expires.ok_or(Error::MissingField { field: "expires" })?;
    if let Some(nb) = inv_rest.not_before
        && nb >= expires
    {
        return Err(Error::InvalidValue {
            field: "not before",
            reason: "must be earlier than the expiry",
        });
    }
    Ok(Invitation {
        network: network.ok_or(Error::MissingField {
            field: "network id",
        })?,
        issuer: issuer.ok_or(Error::MissingField { field: "issuer" })?,
        secret: secret.ok_or(Error::MissingField {
            field: "invite secret",
        })?,
        candidates: candidates.ok_or(Error::MissingField {
            field: "candidates",
        })?,
        expires,
        not_before: inv_rest.not_before,
        uses: inv_rest.uses,
        flags: inv_rest.flags,
        capabilities: inv_rest.capabilities,
        role: inv_rest.role,
        cert_fingerprint: inv_rest.cert_fingerprint,
        servers: inv_rest.servers,
        entry_peers: inv_rest.entry_peers,
        nat: inv_rest.nat,
        extensions: inv_rest.extensions,
    })
}

/// The optional invitation fields, at their defaults until decoded.
struct Optional {
    not_before: Option<Timestamp>,
    uses: u32,
    flags: Flags,
    capabilities: Capabilities,
    role: TopologyRole,
    cert_fingerprint: Option<[u8; 32]>,
    servers: Vec<ServerHint>,
    entry_peers: Vec<EntryPeer>,
    nat: Option<NatBehaviour>,
    extensions: Vec<(u64, Vec<u8>)>,
}

impl Default for Optional {
    fn default() -> Self {
        Self {
            not_before: None,
            uses: 1,
            flags: Flags::NONE,
            capabilities: Capabilities::NONE,
            role: TopologyRole::Auto,
            cert_fingerprint: None,
            servers: Vec::new(),
            entry_peers: Vec::new(),
            nat: None,
            extensions: Vec::new(),
        }
    }
}
