//! Zero-copy STUN message parsing (RFC 8489 §5, §6.3, §14).

use std::net::SocketAddr;

use super::integrity::{IntegrityKey, MI_LEN, fingerprint};
use super::{
    Class, HEADER_LEN, MAGIC_COOKIE, MAX_ATTRIBUTES, Method, TransactionId, attr,
    decode_xor_address, split_type,
};

/// Most unknown comprehension-required attribute types remembered (for UNKNOWN-ATTRIBUTES).
const MAX_UNKNOWN: usize = 8;

/// Why bytes are not an acceptable STUN message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Shorter than the 20-byte header.
    #[error("shorter than a STUN header")]
    TooShort,
    /// RFC 8489 §6.3: "the first two bits are 0" failed.
    #[error("the first two bits are not zero")]
    NotStun,
    /// The magic cookie is missing (RFC 3489 or not STUN).
    #[error("no magic cookie")]
    NoMagicCookie,
    /// The header length does not match the datagram.
    #[error("length field {field} does not match {actual} bytes after the header")]
    LengthMismatch {
        /// The header's length field.
        field: usize,
        /// Bytes present after the header.
        actual: usize,
    },
    /// RFC 8489 §5: "the message length MUST contain the size of the message in bytes, not
    /// including the 20-byte STUN header. Since all STUN attributes are padded to a multiple
    /// of 4 bytes, the last 2 bits of this field are always zero."
    #[error("length not a multiple of 4")]
    Misaligned,
    /// An attribute runs past the end of the message.
    #[error("attribute 0x{0:04x} truncated")]
    TruncatedAttribute(u16),
    /// More than [`super::MAX_ATTRIBUTES`] attributes.
    #[error("more than {} attributes", MAX_ATTRIBUTES)]
    TooManyAttributes,
    /// A FINGERPRINT attribute is present but wrong.
    #[error("bad FINGERPRINT")]
    BadFingerprint,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    ty: u16,
    /// Offset of the attribute header.
    at: u16,
    len: u16,
}

/// A parsed view of a STUN message. Nothing is copied out of the input.
#[derive(Clone)]
pub struct Message<'a> {
    bytes: &'a [u8],
    method: Method,
    class: Class,
    tid: TransactionId,
    slots: [Slot; MAX_ATTRIBUTES],
    n: usize,
    mi: Option<usize>,
    fp: bool,
    unknown: [u16; MAX_UNKNOWN],
    n_unknown: usize,
}

impl core::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("class", &self.class)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Message<'a> {
    /// Parses one datagram. Checks the header, the attribute framing and FINGERPRINT when
    /// present; MESSAGE-INTEGRITY is checked separately with [`Message::verify_integrity`]
    /// because the key depends on USERNAME.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() < HEADER_LEN {
            return Err(ParseError::TooShort);
        }
        if bytes[0] & 0xc0 != 0 {
            return Err(ParseError::NotStun);
        }
        if bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
            return Err(ParseError::NoMagicCookie);
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if !len.is_multiple_of(4) {
            return Err(ParseError::Misaligned);
        }
        if len != bytes.len() - HEADER_LEN {
            return Err(ParseError::LengthMismatch {
                field: len,
                actual: bytes.len() - HEADER_LEN,
            });
        }
        let (method, class) = split_type(u16::from_be_bytes([bytes[0], bytes[1]]));
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&bytes[8..20]);
        let mut m = Message {
            bytes,
            method,
            class,
            tid: TransactionId(tid),
            slots: [Slot::default(); MAX_ATTRIBUTES],
            n: 0,
            mi: None,
            fp: false,
            unknown: [0; MAX_UNKNOWN],
            n_unknown: 0,
        };
        let mut at = HEADER_LEN;
        // RFC 8489 §14.5: "With the exception of the MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
        // attributes, which appear after MESSAGE-INTEGRITY, agents MUST ignore all other
        // attributes that follow MESSAGE-INTEGRITY."
        let mut after_mi = false;
        while at < bytes.len() {
            if bytes.len() - at < 4 {
                return Err(ParseError::TruncatedAttribute(0));
            }
            let ty = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            let vlen = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            let padded = (vlen + 3) & !3;
            if bytes.len() - at - 4 < padded {
                return Err(ParseError::TruncatedAttribute(ty));
            }
            if m.n == MAX_ATTRIBUTES {
                return Err(ParseError::TooManyAttributes);
            }
            if ty == attr::FINGERPRINT {
                // RFC 8489 §14.7: "When present, the FINGERPRINT attribute MUST be the last
                // attribute in the message and thus will appear after MESSAGE-INTEGRITY and
                // MESSAGE-INTEGRITY-SHA256." Anything after it is ignored.
                let v = &bytes[at + 4..at + 4 + vlen];
                if vlen != 4
                    || u32::from_be_bytes([v[0], v[1], v[2], v[3]]) != fingerprint(bytes, at)
                {
                    return Err(ParseError::BadFingerprint);
                }
                m.fp = true;
                break;
            }
            let keep = !after_mi || ty == attr::MESSAGE_INTEGRITY_SHA256;
            if keep {
                m.slots[m.n] = Slot {
                    ty,
                    at: at as u16,
                    len: vlen as u16,
                };
                m.n += 1;
                if ty == attr::MESSAGE_INTEGRITY {
                    m.mi = Some(at);
                    after_mi = true;
                } else if ty < 0x8000
                    && !attr::KNOWN_REQUIRED.contains(&ty)
                    && m.n_unknown < MAX_UNKNOWN
                    && !m.unknown[..m.n_unknown].contains(&ty)
                {
                    m.unknown[m.n_unknown] = ty;
                    m.n_unknown += 1;
                }
            }
            at += 4 + padded;
        }
        Ok(m)
    }

    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// The class.
    pub fn class(&self) -> Class {
        self.class
    }
    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The value of the first attribute of type `ty` (attributes after MESSAGE-INTEGRITY
    /// other than MESSAGE-INTEGRITY-SHA256 are not visible).
    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.slots[..self.n].iter().find(|s| s.ty == ty).map(|s| {
            let at = s.at as usize + 4;
            &self.bytes[at..at + s.len as usize]
        })
    }

    /// Whether an attribute of type `ty` is present.
    pub fn has(&self, ty: u16) -> bool {
        self.slots[..self.n].iter().any(|s| s.ty == ty)
    }

    /// The attribute types in order.
    pub fn attribute_types(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots[..self.n].iter().map(|s| s.ty)
    }

    /// Unknown comprehension-required attribute types (at most 8 remembered).
    pub fn unknown_required(&self) -> &[u16] {
        &self.unknown[..self.n_unknown]
    }

    /// Whether a valid FINGERPRINT was present (an invalid one fails [`Message::parse`]).
    pub fn has_fingerprint(&self) -> bool {
        self.fp
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.mi.is_some()
    }

    /// Checks MESSAGE-INTEGRITY with `key` in constant time. False when absent.
    pub fn verify_integrity(&self, key: &IntegrityKey) -> bool {
        match self.mi {
            Some(at) => {
                let v = &self.bytes[at + 4..];
                v.len() >= MI_LEN && key.verify(self.bytes, at, &v[..MI_LEN]) && {
                    // The attribute length must be exactly 20.
                    u16::from_be_bytes([self.bytes[at + 2], self.bytes[at + 3]]) as usize == MI_LEN
                }
            }
            None => false,
        }
    }

    /// USERNAME.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.get(attr::USERNAME)
    }

    /// A 32-bit attribute.
    pub fn get_u32(&self, ty: u16) -> Option<u32> {
        let v = self.get(ty)?;
        (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }

    /// A 64-bit attribute.
    pub fn get_u64(&self, ty: u16) -> Option<u64> {
        let v = self.get(ty)?;
        let a: [u8; 8] = v.try_into().ok()?;
        Some(u64::from_be_bytes(a))
    }

    /// PRIORITY (ICE).
    pub fn priority(&self) -> Option<u32> {
        self.get_u32(attr::PRIORITY)
    }
    /// USE-CANDIDATE (ICE).
    pub fn use_candidate(&self) -> bool {
        self.has(attr::USE_CANDIDATE)
    }
    /// ICE-CONTROLLING tie-breaker.
    pub fn ice_controlling(&self) -> Option<u64> {
        self.get_u64(attr::ICE_CONTROLLING)
    }
    /// ICE-CONTROLLED tie-breaker.
    pub fn ice_controlled(&self) -> Option<u64> {
        self.get_u64(attr::ICE_CONTROLLED)
    }

    /// An XOR-encoded address attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, ...).
    pub fn xor_address(&self, ty: u16) -> Option<SocketAddr> {
        decode_xor_address(self.get(ty)?, &self.tid)
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_address(attr::XOR_MAPPED_ADDRESS)
    }

    /// ERROR-CODE as (code, reason phrase bytes). RFC 8489 §14.8: the code is
    /// `Class * 100 + Number` with the class in 3..=6 and the number below 100.
    pub fn error_code(&self) -> Option<(u16, &'a [u8])> {
        let v = self.get(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        let class = (v[2] & 0x07) as u16;
        let number = v[3] as u16;
        if !(3..=6).contains(&class) || number >= 100 {
            return None;
        }
        Some((class * 100 + number, &v[4..]))
    }
}
