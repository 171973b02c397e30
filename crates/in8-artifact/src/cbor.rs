//! Deterministic CBOR (RFC 8949 §4.2) on top of minicbor.
//!
//! RFC 8949 §4.2.1: "Preferred serialization MUST be used. In particular, this means that
//! arguments (see Section 3) for integers, lengths in major types 2 through 5, and tags MUST
//! be as short as possible", "Indefinite-length items MUST NOT appear", and "The keys in
//! every map MUST be sorted in the bytewise lexicographic order of their deterministic
//! encodings." For unsigned integer keys that order is numeric order.
//!
//! minicbor's encoder already writes shortest heads and definite lengths; [`Reader`] adds the
//! strictness minicbor's decoder does not have (it accepts long heads, indefinite lengths,
//! unsorted or duplicate keys and ignores trailing bytes).

use minicbor::Decoder;
use minicbor::data::Type;

use crate::error::{Error, Result};

/// The largest artifact (in bytes) any decoder here accepts.
pub const MAX_ARTIFACT_BYTES: usize = 8192;
/// Deepest nesting of arrays and maps the strict reader accepts.
pub const MAX_DEPTH: usize = 16;

/// A deterministic CBOR writer into a vector.
///
/// Writing into a `Vec<u8>` cannot fail (minicbor's error type for it is `Infallible`), so
/// the methods return `&mut Self` for chaining instead of a `Result`.
pub(crate) struct Enc(minicbor::Encoder<Vec<u8>>);

impl Enc {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self(minicbor::Encoder::new(Vec::with_capacity(256)))
    }
    /// An unsigned integer, shortest head.
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        let _ = self.0.u64(v);
        self
    }
    /// A byte string.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let _ = self.0.bytes(b);
        self
    }
    /// A text string.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        let _ = self.0.str(s);
        self
    }
    /// A definite array head.
    pub(crate) fn array(&mut self, n: usize) -> &mut Self {
        let _ = self.0.array(n as u64);
        self
    }
    /// A definite map head.
    pub(crate) fn map(&mut self, n: usize) -> &mut Self {
        let _ = self.0.map(n as u64);
        self
    }
    /// Already-encoded CBOR bytes, copied verbatim.
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.writer_mut().extend_from_slice(b);
        self
    }
    /// Preserved extension fields (kept in key order by the decoder).
    pub(crate) fn extensions(&mut self, ext: &[(u64, Vec<u8>)]) -> &mut Self {
        for (k, raw) in ext {
            self.u64(*k).raw(raw);
        }
        self
    }
    /// The encoded bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0.into_writer()
    }
}

/// Number of bytes the shortest head for argument `v` takes (RFC 8949 §3).
fn shortest_head_len(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// A strict, deterministic-CBOR reader over a complete input.
pub(crate) struct Reader<'b> {
    d: Decoder<'b>,
    depth: usize,
}

impl<'b> Reader<'b> {
    /// Reads from `input`; rejects inputs over [`MAX_ARTIFACT_BYTES`].
    pub(crate) fn new(input: &'b [u8]) -> Result<Self> {
        if input.len() > MAX_ARTIFACT_BYTES {
            return Err(Error::TooLarge {
                size: input.len(),
                limit: MAX_ARTIFACT_BYTES,
            });
        }
        Ok(Self {
            d: Decoder::new(input),
            depth: 0,
        })
    }

    fn map_err(e: minicbor::decode::Error, field: &'static str) -> Error {
        if e.is_end_of_input() {
            Error::Truncated { context: field }
        } else if e.is_type_mismatch() {
            Error::UnexpectedType {
                field,
                expected: "another CBOR type",
            }
        } else {
            Error::InvalidValue {
                field,
                reason: "malformed CBOR",
            }
        }
    }

    fn datatype(&mut self, field: &'static str) -> Result<Type> {
        self.d.datatype().map_err(|e| Self::map_err(e, field))
    }

    fn check_head(&self, start: usize, value: u64, payload: usize) -> Result<()> {
        let head = self.d.position() - start - payload;
        if head != shortest_head_len(value) {
            return Err(Error::NonShortestInteger { value });
        }
        Ok(())
    }

    /// Reads an unsigned integer in shortest form.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64> {
        match self.datatype(field)? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
                let start = self.d.position();
                let v = self.d.u64().map_err(|e| Self::map_err(e, field))?;
                self.check_head(start, v, 0)?;
                Ok(v)
            }
            _ => Err(Error::UnexpectedType {
                field,
                expected: "an unsigned integer",
            }),
        }
    }

    /// Reads an unsigned integer that must fit `u32`.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        let v = self.u64(field)?;
        u32::try_from(v).map_err(|_| Error::InvalidValue {
            field,
            reason: "larger than 2^32 - 1",
        })
    }

    /// Reads a definite-length byte string.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'b [u8]> {
        match self.datatype(field)? {
            Type::Bytes => {
                let start = self.d.position();
                let b = self.d.bytes().map_err(|e| Self::map_err(e, field))?;
                self.check_head(start, b.len() as u64, b.len())?;
                Ok(b)
            }
            Type::BytesIndef => Err(Error::IndefiniteLength),
            _ => Err(Error::UnexpectedType {
                field,
                expected: "a byte string",
            }),
        }
    }

    /// Reads a byte string of exactly `N` bytes.
    pub(crate) fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<[u8; N]> {
        let b = self.bytes(field)?;
        <[u8; N]>::try_from(b).map_err(|_| Error::WrongSize {
            field,
            expected,
            actual: b.len(),
        })
    }

    /// Reads a definite-length UTF-8 text string.
    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'b str> {
        match self.datatype(field)? {
            Type::String => {
                let start = self.d.position();
                let s = self.d.str().map_err(|e| Self::map_err(e, field))?;
                self.check_head(start, s.len() as u64, s.len())?;
                Ok(s)
            }
            Type::StringIndef => Err(Error::IndefiniteLength),
            _ => Err(Error::UnexpectedType {
                field,
                expected: "a text string",
            }),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::TooDeep { limit: MAX_DEPTH });
        }
        Ok(())
    }

    /// Reads a definite array head and returns its length, bounded by `max` items.
    ///
    /// The caller reads exactly that many items, then calls [`Reader::leave`].
    pub(crate) fn array(&mut self, field: &'static str, max: usize) -> Result<usize> {
        match self.datatype(field)? {
            Type::Array => {
                let start = self.d.position();
                let n = self
                    .d
                    .array()
                    .map_err(|e| Self::map_err(e, field))?
                    .ok_or(Error::IndefiniteLength)?;
                self.check_head(start, n, 0)?;
                if n > max as u64 {
                    return Err(Error::WrongSize {
                        field,
                        expected: "within the item limit",
                        actual: usize::try_from(n).unwrap_or(usize::MAX),
                    });
                }
                self.enter()?;
                Ok(n as usize)
            }
            Type::ArrayIndef => Err(Error::IndefiniteLength),
            _ => Err(Error::UnexpectedType {
                field,
                expected: "an array",
            }),
        }
    }

    /// Reads a definite map head; keys are then read with [`MapKeys`].
    pub(crate) fn map(&mut self, field: &'static str) -> Result<MapKeys> {
        match self.datatype(field)? {
            Type::Map => {
                let start = self.d.position();
                let n = self
                    .d
                    .map()
                    .map_err(|e| Self::map_err(e, field))?
                    .ok_or(Error::IndefiniteLength)?;
                self.check_head(start, n, 0)?;
                self.enter()?;
                Ok(MapKeys {
                    remaining: n,
                    previous: None,
                })
            }
            Type::MapIndef => Err(Error::IndefiniteLength),
            _ => Err(Error::UnexpectedType {
                field,
                expected: "a map",
            }),
        }
    }

    /// Marks the end of an array or map started with [`Reader::array`] / [`Reader::map`].
    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Skips one item, checking it is deterministic, and returns its raw bytes.
    ///
    /// Only the CBOR types in8 artifacts may carry are accepted in unknown fields: unsigned and
    /// negative integers, byte and text strings, arrays, maps with unsigned keys, booleans and
    /// null. Floats, tags and other simple values are rejected as they admit several encodings.
    pub(crate) fn skip_raw(&mut self, field: &'static str) -> Result<&'b [u8]> {
        let start = self.d.position();
        self.skip(field)?;
        let end = self.d.position();
        Ok(&self.d.input()[start..end])
    }

    fn skip(&mut self, field: &'static str) -> Result<()> {
        match self.datatype(field)? {
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => self.u64(field).map(drop),
            Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::Int => {
                let start = self.d.position();
                let v = self.d.int().map_err(|e| Self::map_err(e, field))?;
                let arg = u64::try_from(-1 - i128::from(v)).map_err(|_| Error::InvalidValue {
                    field,
                    reason: "negative integer out of range",
                })?;
                self.check_head(start, arg, 0)
            }
            Type::Bytes | Type::BytesIndef => self.bytes(field).map(drop),
            Type::String | Type::StringIndef => self.str(field).map(drop),
            Type::Bool | Type::Null => self.d.skip().map_err(|e| Self::map_err(e, field)),
            Type::Array | Type::ArrayIndef => {
                let n = self.array(field, MAX_ARTIFACT_BYTES)?;
                for _ in 0..n {
                    self.skip(field)?;
                }
                self.leave();
                Ok(())
            }
            Type::Map | Type::MapIndef => {
                let mut keys = self.map(field)?;
                while keys.next(self)?.is_some() {
                    self.skip(field)?;
                }
                self.leave();
                Ok(())
            }
            _ => Err(Error::UnexpectedType {
                field,
                expected: "an integer, string, array, map, bool or null",
            }),
        }
    }

    /// Succeeds only if every input byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        let left = self.d.input().len() - self.d.position();
        if left != 0 {
            return Err(Error::TrailingBytes { count: left });
        }
        Ok(())
    }
}

/// Iterates the unsigned-integer keys of a map, enforcing strictly ascending order.
pub(crate) struct MapKeys {
    remaining: u64,
    previous: Option<u64>,
}

impl MapKeys {
    /// The next key, or `None` when the map is done (the caller then calls [`Reader::leave`]).
    pub(crate) fn next(&mut self, r: &mut Reader<'_>) -> Result<Option<u64>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let key = r.u64("map key")?;
        if let Some(previous) = self.previous {
            if key == previous {
                return Err(Error::DuplicateKey { key });
            }
            if key < previous {
                return Err(Error::UnsortedKeys { previous, key });
            }
        }
        self.previous = Some(key);
        Ok(Some(key))
    }
}

/// Unknown map keys: even keys are critical (a reader that does not know them must reject the
/// artifact), odd keys may be ignored and are preserved verbatim.
pub(crate) fn unknown_key(
    r: &mut Reader<'_>,
    key: u64,
    extensions: &mut Vec<(u64, Vec<u8>)>,
) -> Result<()> {
    if key.is_multiple_of(2) {
        return Err(Error::UnknownCriticalKey { key });
    }
    if extensions.len() >= MAX_EXTENSIONS {
        return Err(Error::CapacityExceeded {
            what: "extension fields",
            limit: MAX_EXTENSIONS,
        });
    }
    let raw = r.skip_raw("extension")?;
    extensions.push((key, raw.to_vec()));
    Ok(())
}

/// Most unknown, non-critical fields kept per map.
pub const MAX_EXTENSIONS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn read_u64(b: &[u8]) -> Result<u64> {
        let mut r = Reader::new(b)?;
        let v = r.u64("x")?;
        r.finish()?;
        Ok(v)
    }

    #[test]
    fn rejects_long_heads() {
        assert_eq!(read_u64(&[0x17]).unwrap(), 23);
        assert!(matches!(
            read_u64(&[0x18, 0x17]),
            Err(Error::NonShortestInteger { value: 23 })
        ));
        assert!(matches!(
            read_u64(&[0x19, 0x00, 0xff]),
            Err(Error::NonShortestInteger { .. })
        ));
        assert_eq!(read_u64(&[0x19, 0x01, 0x00]).unwrap(), 256);
    }

    #[test]
    fn rejects_trailing_and_truncated() {
        assert!(matches!(
            read_u64(&[0x01, 0x00]),
            Err(Error::TrailingBytes { count: 1 })
        ));
        assert!(matches!(
            read_u64(&[0x19, 0x01]),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn rejects_indefinite_and_bad_keys() {
        let mut r = Reader::new(&[0xbf, 0xff]).unwrap();
        assert!(matches!(r.map("m"), Err(Error::IndefiniteLength)));
        let mut r = Reader::new(&[0xa2, 0x01, 0x00, 0x01, 0x00]).unwrap();
        let mut k = r.map("m").unwrap();
        k.next(&mut r).unwrap();
        r.u64("v").unwrap();
        assert!(matches!(
            k.next(&mut r),
            Err(Error::DuplicateKey { key: 1 })
        ));
        let mut r = Reader::new(&[0xa2, 0x02, 0x00, 0x01, 0x00]).unwrap();
        let mut k = r.map("m").unwrap();
        k.next(&mut r).unwrap();
        r.u64("v").unwrap();
        assert!(matches!(
            k.next(&mut r),
            Err(Error::UnsortedKeys {
                previous: 2,
                key: 1
            })
        ));
    }

    #[test]
    fn skip_rejects_floats_and_deep_nesting() {
        let mut r = Reader::new(&[0xf9, 0x3c, 0x00]).unwrap();
        assert!(r.skip_raw("x").is_err());
        let deep = [0x81u8; 40];
        let mut r = Reader::new(&deep).unwrap();
        assert!(matches!(r.skip_raw("x"), Err(Error::TooDeep { .. })));
    }
}
