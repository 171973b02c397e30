//! Byte-level reading and writing for the gossip wire format (big-endian, bounded).

use crate::error::{Error, Result};

/// Appends big-endian fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// Reads big-endian fields, failing with [`Error::Truncated`] instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(Error::Truncated { context })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn fixed<const N: usize>(&mut self, context: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, context)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, context: &'static str) -> Result<u8> {
        Ok(self.fixed::<1>(context)?[0])
    }
    pub(crate) fn u16(&mut self, context: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.fixed(context)?))
    }
    pub(crate) fn u32(&mut self, context: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.fixed(context)?))
    }
    pub(crate) fn u64(&mut self, context: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.fixed(context)?))
    }

    /// The unread rest.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn finish(&self, what: &'static str) -> Result<()> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(Error::TrailingBytes { what, count }),
        }
    }
}
