//! Text and binary forms of an artifact, and auto-detection when reading one back.
//!
//! | form | looks like | for |
//! |------|-----------|-----|
//! | [`Form::Text`] | `in8:` + base64url (RFC 4648 §5, no padding) | chat, e-mail, files |
//! | [`Form::Base32`] | `IN8:` + uppercase base32 (RFC 4648 §6, no padding) | QR codes (alphanumeric mode) |
//! | [`Form::Grouped`] | `K1M4X 8QZ3P ...` checksummed groups ([`grouped`]) | reading aloud, typing |
//! | [`Form::Cbor`] | the raw CBOR bytes | files |
//! | [`Form::Ndef`] | one NFC NDEF record, MIME type `application/vnd.in8+cbor` ([`ndef`]) | NFC tags |

pub mod grouped;
pub mod ndef;

use core::fmt;
use core::str::FromStr;

use crate::cbor::MAX_ARTIFACT_BYTES;
use crate::error::{Error, Result};

/// Prefix of the base64url text form.
pub const TEXT_PREFIX: &str = "in8:";
/// Prefix of the base32 (QR) form.
pub const BASE32_PREFIX: &str = "IN8:";

/// A representation of an artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    /// `in8:` + base64url.
    Text,
    /// `IN8:` + uppercase base32, for QR alphanumeric mode.
    Base32,
    /// Crockford base32 in checksummed groups, for reading aloud.
    Grouped,
    /// Raw CBOR bytes.
    Cbor,
    /// An NFC NDEF message with one record.
    Ndef,
}

impl Form {
    /// Whether the form is binary (not printable text).
    pub fn is_binary(self) -> bool {
        matches!(self, Form::Cbor | Form::Ndef)
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Text => "text",
            Form::Base32 => "base32",
            Form::Grouped => "words",
            Form::Cbor => "cbor",
            Form::Ndef => "ndef",
        })
    }
}

impl FromStr for Form {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "text" | "base64" | "base64url" => Form::Text,
            "base32" | "qr" => Form::Base32,
            "words" | "grouped" => Form::Grouped,
            "cbor" | "raw" | "bin" => Form::Cbor,
            "ndef" | "nfc" => Form::Ndef,
            _ => {
                return Err(Error::BadText {
                    form: "format name",
                    reason: format!("unknown format {s:?}; use text, base32, words, cbor or ndef"),
                });
            }
        })
    }
}

/// Encodes artifact bytes in `form` (binary forms are returned as bytes).
pub fn encode(bytes: &[u8], form: Form) -> Vec<u8> {
    match form {
        Form::Text => encode_text(bytes).into_bytes(),
        Form::Base32 => encode_base32(bytes).into_bytes(),
        Form::Grouped => grouped::encode(bytes).into_bytes(),
        Form::Cbor => bytes.to_vec(),
        Form::Ndef => ndef::encode(bytes),
    }
}

/// `in8:` + base64url.
pub fn encode_text(bytes: &[u8]) -> String {
    format!(
        "{TEXT_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(bytes)
    )
}

/// `IN8:` + uppercase base32.
pub fn encode_base32(bytes: &[u8]) -> String {
    format!(
        "{BASE32_PREFIX}{}",
        data_encoding::BASE32_NOPAD.encode(bytes)
    )
}

fn bad(form: &'static str, e: impl fmt::Display) -> Error {
    Error::BadText {
        form,
        reason: e.to_string(),
    }
}

/// Decodes any printable form, detecting which it is.
pub fn decode_text(s: &str) -> Result<(Vec<u8>, Form)> {
    let t = s.trim();
    if t.len() > 4 * MAX_ARTIFACT_BYTES {
        return Err(Error::TooLarge {
            size: t.len(),
            limit: 4 * MAX_ARTIFACT_BYTES,
        });
    }
    // Every artifact envelope starts with the byte 0x82 or 0x83, which is "g" in base64url
    // and "Q" in base32: the first data character tells the two forms apart, whatever the
    // case of the prefix (a base32 form may have gone through a lowercasing tool).
    let prefix = t.get(..4).filter(|_| t.len() > 4);
    if !prefix.is_some_and(|p| p.eq_ignore_ascii_case(TEXT_PREFIX)) {
        if t.starts_with(['G', 'g']) && grouped::looks_like(t) {
            // The grouped form of an envelope always starts with "G".
            return Ok((grouped::decode(t)?, Form::Grouped));
        }
        return Err(Error::BadText {
            form: "artifact",
            reason: "not an in8 artifact: expected `in8:...`, `IN8:...` or checksummed groups \
                     starting with G"
                .into(),
        });
    }
    // Line breaks and spaces may be inserted by chat clients; they are not part of the data.
    let compact: String = t[4..].chars().filter(|c| !c.is_whitespace()).collect();
    let (bytes, form) = if compact.starts_with(['q', 'Q']) {
        let upper = compact.to_ascii_uppercase();
        let b = data_encoding::BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|e| bad("IN8: base32", e))?;
        (b, Form::Base32)
    } else {
        let b = data_encoding::BASE64URL_NOPAD
            .decode(compact.as_bytes())
            .map_err(|e| bad("in8: base64url", e))?;
        (b, Form::Text)
    };
    Ok((bytes, form))
}

/// Decodes an artifact read from a file or stdin: text forms, NDEF or raw CBOR.
pub fn decode_any(input: &[u8]) -> Result<(Vec<u8>, Form)> {
    if input.len() > 4 * MAX_ARTIFACT_BYTES {
        return Err(Error::TooLarge {
            size: input.len(),
            limit: 4 * MAX_ARTIFACT_BYTES,
        });
    }
    if ndef::looks_like(input) {
        return Ok((ndef::decode(input)?, Form::Ndef));
    }
    // An artifact envelope is a CBOR array of 2 or 3 items: 0x82 / 0x83.
    if matches!(input.first(), Some(0x82 | 0x83)) {
        return Ok((input.to_vec(), Form::Cbor));
    }
    match core::str::from_utf8(input) {
        Ok(s) => decode_text(s),
        Err(_) => Err(Error::BadText {
            form: "artifact",
            reason: "binary data that is neither CBOR nor an NDEF record".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_form() {
        let data = vec![0x82, 0x41, 0x00, 0x40];
        assert!(grouped::encode(&data).starts_with('G'));
        assert!(encode_text(&data).starts_with("in8:g"));
        assert!(encode_base32(&data).starts_with("IN8:Q"));
        for form in [
            Form::Text,
            Form::Base32,
            Form::Grouped,
            Form::Cbor,
            Form::Ndef,
        ] {
            let enc = encode(&data, form);
            let (dec, f) = decode_any(&enc).unwrap();
            assert_eq!((dec, f), (data.clone(), form));
        }
    }

    #[test]
    fn tolerates_whitespace_and_rejects_garbage() {
        let t = encode_text(&[1, 2, 3, 4, 5, 6, 7]);
        let wrapped = format!("  {}\n{}  ", &t[..6], &t[6..]);
        assert_eq!(decode_text(&wrapped).unwrap().0, vec![1, 2, 3, 4, 5, 6, 7]);
        assert!(decode_text("hello: world").is_err());
        assert!(decode_text("in8:***").is_err());
        assert!(decode_text("ééé:abc").is_err());
        // Wrapped text: the form is decided on the first data character, not on whitespace.
        let b32 = encode_base32(&[0x83, 9, 9, 9, 9]);
        let wrapped = format!("in8:\t{}", &b32.to_lowercase()[4..]);
        assert_eq!(
            decode_text(&wrapped).unwrap(),
            (vec![0x83, 9, 9, 9, 9], Form::Base32)
        );
        assert!(decode_text("In8:\tq0C X9CY").is_err()); // fuzz regression: '0' is not base32
        assert_eq!(
            decode_text(&b32.to_lowercase()).unwrap().0,
            vec![0x83, 9, 9, 9, 9]
        );
    }
}
