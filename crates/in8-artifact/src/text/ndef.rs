//! NFC: an NDEF message (NFC Forum NDEF 1.0) of one MIME record, for "tap to join".
//!
//! Record: header byte `MB=1 ME=1 CF=0 SR IL=0 TNF=2 (media type)`, type length, payload
//! length (1 byte when SR=1, i.e. payload < 256 bytes, else 4 bytes big endian), the type
//! `application/vnd.in8+cbor`, then the artifact's CBOR bytes as payload.

use crate::cbor::MAX_ARTIFACT_BYTES;
use crate::error::{Error, Result};

/// The MIME type of the record.
pub const MIME_TYPE: &[u8] = b"application/vnd.in8+cbor";

const MB: u8 = 0x80;
const ME: u8 = 0x40;
const CF: u8 = 0x20;
const SR: u8 = 0x10;
const IL: u8 = 0x08;
const TNF_MEDIA: u8 = 0x02;

/// Wraps artifact bytes in a one-record NDEF message.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let short = payload.len() < 256;
    let mut out = Vec::with_capacity(payload.len() + MIME_TYPE.len() + 6);
    out.push(MB | ME | TNF_MEDIA | if short { SR } else { 0 });
    out.push(MIME_TYPE.len() as u8);
    if short {
        out.push(payload.len() as u8);
    } else {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(MIME_TYPE);
    out.extend_from_slice(payload);
    out
}

/// Whether `input` starts like an in8 NDEF record (never true for a CBOR envelope, whose
/// first byte 0x82 / 0x83 lacks the ME bit).
pub fn looks_like(input: &[u8]) -> bool {
    matches!(input.first(), Some(h) if h & 0x07 == TNF_MEDIA && h & (MB | ME) == MB | ME)
        && input.get(1) == Some(&(MIME_TYPE.len() as u8))
}

fn bad(reason: &str) -> Error {
    Error::BadText {
        form: "NDEF",
        reason: reason.to_owned(),
    }
}

/// Extracts the artifact bytes from a one-record NDEF message.
pub fn decode(input: &[u8]) -> Result<Vec<u8>> {
    let header = *input.first().ok_or_else(|| bad("empty"))?;
    if header & (MB | ME) != (MB | ME) || header & CF != 0 {
        return Err(bad(
            "expected a single, unchunked record (MB=1, ME=1, CF=0)",
        ));
    }
    if header & 0x07 != TNF_MEDIA {
        return Err(bad("expected a media-type record (TNF=2)"));
    }
    if header & IL != 0 {
        return Err(bad("records with an ID field are not used by in8"));
    }
    let type_len = usize::from(*input.get(1).ok_or_else(|| bad("truncated header"))?);
    let (payload_len, mut pos) = if header & SR != 0 {
        (
            usize::from(*input.get(2).ok_or_else(|| bad("truncated header"))?),
            3,
        )
    } else {
        let b = input.get(2..6).ok_or_else(|| bad("truncated header"))?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n < 256 {
            return Err(bad("long length used for a short payload"));
        }
        (n, 6)
    };
    if payload_len > MAX_ARTIFACT_BYTES {
        return Err(Error::TooLarge {
            size: payload_len,
            limit: MAX_ARTIFACT_BYTES,
        });
    }
    let ty = input
        .get(pos..pos + type_len)
        .ok_or_else(|| bad("truncated type"))?;
    if ty != MIME_TYPE {
        return Err(bad("the record's type is not application/vnd.in8+cbor"));
    }
    pos += type_len;
    let payload = input
        .get(pos..pos + payload_len)
        .ok_or_else(|| bad("truncated payload"))?;
    if input.len() != pos + payload_len {
        return Err(Error::TrailingBytes {
            count: input.len() - pos - payload_len,
        });
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_records() {
        for n in [0usize, 1, 255, 256, 1000] {
            let p = vec![0x5a; n];
            let e = encode(&p);
            assert_eq!(e[0] & SR != 0, n < 256);
            assert_eq!(decode(&e).unwrap(), p);
        }
    }

    #[test]
    fn rejects_malformed_records() {
        let e = encode(b"abc");
        assert!(decode(&e[..e.len() - 1]).is_err());
        let mut extra = e.clone();
        extra.push(0);
        assert!(matches!(
            decode(&extra),
            Err(Error::TrailingBytes { count: 1 })
        ));
        let mut chunked = e.clone();
        chunked[0] |= CF;
        assert!(decode(&chunked).is_err());
        let mut wrong_type = e;
        wrong_type[4] ^= 1;
        assert!(decode(&wrong_type).is_err());
    }
}
