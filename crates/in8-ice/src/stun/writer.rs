//! STUN message encoding into a caller-owned buffer (no allocation once it has capacity).

use std::net::SocketAddr;

use super::addr::{encode_address, encode_xor_address};
use super::integrity::{IntegrityKey, MI_LEN, fingerprint};
use super::{Class, HEADER_LEN, MAGIC_COOKIE, Method, TransactionId, attr, message_type};

/// Appends one STUN message to a `Vec<u8>`, keeping the header length up to date.
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
    tid: TransactionId,
    padding: u8,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message at the end of `buf`.
    pub fn new(buf: &'a mut Vec<u8>, method: Method, class: Class, tid: TransactionId) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid.0);
        Self {
            buf,
            start,
            tid,
            padding: 0,
        }
    }

    /// Uses `byte` for attribute padding. RFC 8489 §14: "The padding bits MUST be set to
    /// zero on sending and MUST be ignored by the receiver"; only for reproducing test
    /// vectors (RFC 5769 pads with spaces).
    pub fn with_padding(mut self, byte: u8) -> Self {
        self.padding = byte;
        self
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    fn set_len(&mut self) {
        let len = (self.buf.len() - self.start - HEADER_LEN) as u16;
        self.buf[self.start + 2..self.start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends an attribute (values longer than 65535 bytes are cut; callers bound them).
    pub fn attr(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        let v = &value[..value.len().min(u16::MAX as usize - 3)];
        self.buf.extend_from_slice(&ty.to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(v);
        let pad = (4 - v.len() % 4) % 4;
        self.buf.extend(core::iter::repeat_n(self.padding, pad));
        self.set_len();
        self
    }

    /// A 32-bit attribute.
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// A 64-bit attribute.
    pub fn attr_u64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// An XOR-encoded address attribute.
    pub fn xor_address(&mut self, ty: u16, addr: SocketAddr) -> &mut Self {
        let mut b = [0u8; 20];
        let n = encode_xor_address(addr, &self.tid, &mut b);
        self.attr(ty, &b[..n])
    }

    /// A plain address attribute (MAPPED-ADDRESS, OTHER-ADDRESS, RESPONSE-ORIGIN).
    pub fn address(&mut self, ty: u16, addr: SocketAddr) -> &mut Self {
        let mut b = [0u8; 20];
        let n = encode_address(addr, &mut b);
        self.attr(ty, &b[..n])
    }

    /// ERROR-CODE with a reason phrase (RFC 8489 §14.8).
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut v = [0u8; 4 + 128];
        v[2] = (code / 100) as u8;
        v[3] = (code % 100) as u8;
        let r = &reason.as_bytes()[..reason.len().min(128)];
        v[4..4 + r.len()].copy_from_slice(r);
        self.attr(attr::ERROR_CODE, &v[..4 + r.len()])
    }

    /// MESSAGE-INTEGRITY over everything written so far (RFC 8489 §14.5).
    pub fn integrity(&mut self, key: &IntegrityKey) -> &mut Self {
        let at = self.buf.len() - self.start;
        self.buf
            .extend_from_slice(&attr::MESSAGE_INTEGRITY.to_be_bytes());
        self.buf.extend_from_slice(&(MI_LEN as u16).to_be_bytes());
        let mac = key.compute(&self.buf[self.start..], at);
        self.buf.extend_from_slice(&mac);
        self.set_len();
        self
    }

    /// FINGERPRINT over everything written so far (RFC 8489 §14.7); must come last.
    pub fn fingerprint(&mut self) -> &mut Self {
        let at = self.buf.len() - self.start;
        let crc = fingerprint(&self.buf[self.start..], at);
        self.attr_u32(attr::FINGERPRINT, crc)
    }

    /// The message length so far, header included.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Never empty: the header is always there.
    pub fn is_empty(&self) -> bool {
        false
    }
}
