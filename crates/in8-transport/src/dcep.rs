//! The Data Channel Establishment Protocol (DCEP, RFC 8832): the wire format that opens a
//! WebRTC data channel on an SCTP stream.
//!
//! ```text
//! DATA_CHANNEL_OPEN (RFC 8832 §5.1)
//!   0        message type 0x03
//!   1        channel type (0x00 reliable, 0x80 reliable unordered,
//!            0x01 / 0x81 limited retransmits, 0x02 / 0x82 limited lifetime)
//!   2..4     priority (u16, big endian)
//!   4..8     reliability parameter (u32: retransmits or lifetime in ms, 0 if reliable)
//!   8..10    label length (u16)
//!   10..12   protocol length (u16)
//!   12..     label, then protocol (UTF-8)
//! DATA_CHANNEL_ACK (RFC 8832 §5.2)
//!   0        message type 0x02
//! ```

use crate::error::{Error, Result};

/// SCTP payload protocol identifier of DCEP messages (RFC 8832 §8.1: "WebRTC DCEP" 50).
pub const PPID_DCEP: u32 = 50;

const MSG_OPEN: u8 = 0x03;
const MSG_ACK: u8 = 0x02;
const HEADER_LEN: usize = 12;

/// How a channel delivers messages (RFC 8832 §5.1 "Channel Type" and "Reliability
/// Parameter").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Reliability {
    /// Every message arrives (retransmitted until acknowledged).
    #[default]
    Reliable,
    /// A message is retransmitted at most this many times, then abandoned.
    MaxRetransmits(u32),
    /// A message is abandoned once it is older than this many milliseconds.
    MaxLifetimeMs(u32),
}

/// A DCEP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// DATA_CHANNEL_OPEN.
    Open {
        /// Ordered (false) or unordered (true) delivery.
        unordered: bool,
        /// Reliability.
        reliability: Reliability,
        /// RFC 8832 §5.1 "Priority" (in8 uses 256, "normal", unless told otherwise).
        priority: u16,
        /// The channel's label.
        label: String,
        /// The sub-protocol name (may be empty).
        protocol: String,
    },
    /// DATA_CHANNEL_ACK.
    Ack,
}

fn malformed(reason: &'static str) -> Error {
    Error::Malformed {
        what: "DCEP message",
        reason,
    }
}

impl Message {
    /// Encodes the message. Fails if label or protocol exceed 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        match self {
            Message::Ack => Ok(vec![MSG_ACK]),
            Message::Open {
                unordered,
                reliability,
                priority,
                label,
                protocol,
            } => {
                let label_len = u16::try_from(label.len()).map_err(|_| Error::LabelTooLong {
                    what: "label",
                    len: label.len(),
                })?;
                let proto_len = u16::try_from(protocol.len()).map_err(|_| Error::LabelTooLong {
                    what: "protocol",
                    len: protocol.len(),
                })?;
                let (kind, param) = match reliability {
                    Reliability::Reliable => (0x00, 0),
                    Reliability::MaxRetransmits(n) => (0x01, *n),
                    Reliability::MaxLifetimeMs(ms) => (0x02, *ms),
                };
                let mut b = Vec::with_capacity(HEADER_LEN + label.len() + protocol.len());
                b.push(MSG_OPEN);
                b.push(kind | if *unordered { 0x80 } else { 0 });
                b.extend_from_slice(&priority.to_be_bytes());
                // RFC 8832 §5.1: "For reliable channels, this field MUST be set to 0 on the
                // sending side and MUST be ignored on the receiving side."
                b.extend_from_slice(&param.to_be_bytes());
                b.extend_from_slice(&label_len.to_be_bytes());
                b.extend_from_slice(&proto_len.to_be_bytes());
                b.extend_from_slice(label.as_bytes());
                b.extend_from_slice(protocol.as_bytes());
                Ok(b)
            }
        }
    }

    /// Decodes a message; every malformation is an error, never a panic.
    pub fn decode(b: &[u8]) -> Result<Self> {
        match b.first() {
            Some(&MSG_ACK) if b.len() == 1 => Ok(Message::Ack),
            Some(&MSG_ACK) => Err(malformed("DATA_CHANNEL_ACK longer than 1 byte")),
            Some(&MSG_OPEN) => {
                if b.len() < HEADER_LEN {
                    return Err(malformed(
                        "DATA_CHANNEL_OPEN shorter than its 12-byte header",
                    ));
                }
                let kind = b[1];
                let priority = u16::from_be_bytes([b[2], b[3]]);
                let param = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                let label_len = usize::from(u16::from_be_bytes([b[8], b[9]]));
                let proto_len = usize::from(u16::from_be_bytes([b[10], b[11]]));
                if b.len() != HEADER_LEN + label_len + proto_len {
                    return Err(malformed(
                        "DATA_CHANNEL_OPEN length does not match label and protocol lengths",
                    ));
                }
                let reliability = match kind & 0x7f {
                    0x00 => Reliability::Reliable,
                    0x01 => Reliability::MaxRetransmits(param),
                    0x02 => Reliability::MaxLifetimeMs(param),
                    _ => return Err(malformed("unknown channel type")),
                };
                let label = std::str::from_utf8(&b[HEADER_LEN..HEADER_LEN + label_len])
                    .map_err(|_| malformed("label is not UTF-8"))?;
                let protocol = std::str::from_utf8(&b[HEADER_LEN + label_len..])
                    .map_err(|_| malformed("protocol is not UTF-8"))?;
                Ok(Message::Open {
                    unordered: kind & 0x80 != 0,
                    reliability,
                    priority,
                    label: label.to_owned(),
                    protocol: protocol.to_owned(),
                })
            }
            Some(_) => Err(malformed("unknown message type")),
            None => Err(malformed("empty")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pinned vector (annotated in docs/transport.md): an unordered channel with at most
    /// 3 retransmits, priority 256, label "chat", protocol "in8".
    #[test]
    fn pinned_open_vector() {
        let m = Message::Open {
            unordered: true,
            reliability: Reliability::MaxRetransmits(3),
            priority: 256,
            label: "chat".into(),
            protocol: "in8".into(),
        };
        let hex: String = m
            .encode()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            concat!(
                "03",       // DATA_CHANNEL_OPEN
                "81",       // PARTIAL_RELIABLE_REXMIT | unordered
                "0100",     // priority 256
                "00000003", // 3 retransmits
                "0004",     // label length
                "0003",     // protocol length
                "63686174", // "chat"
                "696e38",   // "in8"
            )
        );
        assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
        assert_eq!(Message::Ack.encode().unwrap(), vec![0x02]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[0x02, 0]).is_err());
        assert!(Message::decode(&[0x03, 0, 0, 0]).is_err());
        // Label length says 5, only 4 follow.
        assert!(Message::decode(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 1, 2, 3, 4]).is_err());
        // Unknown channel type 0x03.
        assert!(Message::decode(&[3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Invalid UTF-8 label.
        assert!(Message::decode(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff]).is_err());
        assert!(Message::decode(&[0x09]).is_err());
    }

    fn reliability() -> impl Strategy<Value = Reliability> {
        prop_oneof![
            Just(Reliability::Reliable),
            any::<u32>().prop_map(Reliability::MaxRetransmits),
            any::<u32>().prop_map(Reliability::MaxLifetimeMs),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(unordered in any::<bool>(), reliability in reliability(), priority in any::<u16>(),
                      label in ".{0,40}", protocol in ".{0,20}") {
            let m = Message::Open { unordered, reliability, priority, label, protocol };
            let enc = m.encode().unwrap();
            let dec = Message::decode(&enc).unwrap();
            // A reliable channel's parameter is sent as 0, so the round trip is exact.
            prop_assert_eq!(dec, m);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&b);
        }
    }
}
