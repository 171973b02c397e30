//! The `in8 send` / `in8 recv` wire format (docs/cli.md, "File transfer wire format"): an
//! offer (name, size, BLAKE3 hash) from the sender, answers from the receiver. Std only, so
//! the fuzz target `cli_transfer_wire` can include this file as it is.

use std::fmt;
use std::path::{Component, Path};

/// First bytes of an offer.
pub(crate) const MAGIC: [u8; 4] = *b"IN8F";
/// The format version this code speaks.
pub(crate) const VERSION: u8 = 1;
/// Longest file name, in bytes (a name length is one byte).
pub(crate) const MAX_NAME: usize = 255;
/// Fixed part of an offer before the name: magic, version, name length.
pub(crate) const OFFER_PREFIX: usize = 4 + 1 + 1;
/// Fixed part of an offer after the name: size, hash.
pub(crate) const OFFER_SUFFIX: usize = 8 + 32;
/// Largest offer: the header is bounded by this many bytes.
pub(crate) const MAX_OFFER: usize = OFFER_PREFIX + MAX_NAME + OFFER_SUFFIX;

/// Why bytes are not a valid offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    /// More bytes are needed.
    Truncated,
    /// Not an in8 file offer.
    BadMagic,
    /// A version this code does not speak.
    Version(u8),
    /// An unknown answer kind.
    BadAnswer(u8),
    /// The file name is refused (why).
    BadName(&'static str),
    /// The refusal reason is not UTF-8.
    BadReason,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the header ended early"),
            Self::BadMagic => {
                f.write_str("the peer did not send an in8 file offer (is it running `in8 send`?)")
            }
            Self::Version(v) => write!(
                f,
                "the peer speaks file transfer version {v}, this in8 speaks {VERSION}: update the older side"
            ),
            Self::BadAnswer(k) => write!(f, "unknown answer kind {k:#04x} from the receiver"),
            Self::BadName(why) => write!(f, "refused file name: {why}"),
            Self::BadReason => f.write_str("the receiver's refusal reason is not UTF-8"),
        }
    }
}

impl std::error::Error for WireError {}

/// Checks that `name` is one plain file name: no directories, no traversal, no control
/// characters (a peer's name is printed and used as a path).
pub(crate) fn check_name(name: &str) -> Result<(), WireError> {
    if name.is_empty() {
        return Err(WireError::BadName("empty"));
    }
    if name.len() > MAX_NAME {
        return Err(WireError::BadName("longer than 255 bytes"));
    }
    if name.contains(['/', '\\']) {
        return Err(WireError::BadName("contains a path separator"));
    }
    if name.chars().any(char::is_control) {
        return Err(WireError::BadName("contains control characters"));
    }
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(WireError::BadName("not a plain file name (. or ..)")),
    }
}

/// What the sender offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The file's name (checked with [`check_name`]).
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// BLAKE3 of its whole content.
    pub(crate) hash: [u8; 32],
}

impl Offer {
    /// The offer's bytes. The name must pass [`check_name`].
    pub(crate) fn encode(&self) -> Result<Vec<u8>, WireError> {
        check_name(&self.name)?;
        let mut b = Vec::with_capacity(OFFER_PREFIX + self.name.len() + OFFER_SUFFIX);
        b.extend_from_slice(&MAGIC);
        b.push(VERSION);
        b.push(self.name.len() as u8);
        b.extend_from_slice(self.name.as_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.hash);
        Ok(b)
    }

    /// How many bytes the whole offer takes, from its first [`OFFER_PREFIX`] bytes (checks
    /// magic and version first, so a reader never waits for a header that cannot be one).
    pub(crate) fn len_from_prefix(prefix: &[u8]) -> Result<usize, WireError> {
        if prefix.len() < OFFER_PREFIX {
            return Err(WireError::Truncated);
        }
        if prefix[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if prefix[4] != VERSION {
            return Err(WireError::Version(prefix[4]));
        }
        Ok(OFFER_PREFIX + usize::from(prefix[5]) + OFFER_SUFFIX)
    }

    /// Decodes an offer at the start of `bytes`; returns it and how many bytes it took.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, usize), WireError> {
        let len = Self::len_from_prefix(bytes)?;
        let b = bytes.get(..len).ok_or(WireError::Truncated)?;
        let name_end = len - OFFER_SUFFIX;
        let name = std::str::from_utf8(&b[OFFER_PREFIX..name_end])
            .map_err(|_| WireError::BadName("not UTF-8"))?;
        check_name(name)?;
        let mut size = [0u8; 8];
        size.copy_from_slice(&b[name_end..name_end + 8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[name_end + 8..len]);
        Ok((
            Self {
                name: name.to_owned(),
                size: u64::from_be_bytes(size),
                hash,
            },
            len,
        ))
    }
}

/// The receiver's answers: to the offer (accept or refuse), then after the data (verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Send from `offset` (bytes the receiver already holds from an interrupted transfer
    /// of the same content; 0 for a fresh start).
    Accept {
        /// Where to resume.
        offset: u64,
    },
    /// Not sending (e.g. the file exists there and `--force` was not given).
    Refuse {
        /// Why, for the sender's user (at most 255 bytes).
        reason: String,
    },
    /// Everything arrived and its BLAKE3 matches the offer.
    Verified,
    /// Everything arrived but the hash differs (the partial file was removed).
    Mismatch,
}

const ACCEPT: u8 = 0;
const REFUSE: u8 = 1;
const VERIFIED: u8 = 2;
const MISMATCH: u8 = 3;
/// Longest answer: a refusal with a 255-byte reason.
pub(crate) const MAX_ANSWER: usize = 2 + 255;

impl Answer {
    /// The answer's bytes (a longer refusal reason is cut at a character boundary).
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Accept { offset } => {
                let mut b = vec![ACCEPT];
                b.extend_from_slice(&offset.to_be_bytes());
                b
            }
            Self::Refuse { reason } => {
                let mut end = reason.len().min(255);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                let mut b = vec![REFUSE, end as u8];
                b.extend_from_slice(&reason.as_bytes()[..end]);
                b
            }
            Self::Verified => vec![VERIFIED],
            Self::Mismatch => vec![MISMATCH],
        }
    }

    /// Decodes an answer at the start of `bytes`; returns it and how many bytes it took
    /// ([`WireError::Truncated`] when more are needed).
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, usize), WireError> {
        let kind = *bytes.first().ok_or(WireError::Truncated)?;
        match kind {
            ACCEPT => {
                let b = bytes.get(1..9).ok_or(WireError::Truncated)?;
                let mut o = [0u8; 8];
                o.copy_from_slice(b);
                Ok((
                    Self::Accept {
                        offset: u64::from_be_bytes(o),
                    },
                    9,
                ))
            }
            REFUSE => {
                let n = usize::from(*bytes.get(1).ok_or(WireError::Truncated)?);
                let r = bytes.get(2..2 + n).ok_or(WireError::Truncated)?;
                let reason = std::str::from_utf8(r).map_err(|_| WireError::BadReason)?;
                Ok((
                    Self::Refuse {
                        reason: reason.to_owned(),
                    },
                    2 + n,
                ))
            }
            VERIFIED => Ok((Self::Verified, 1)),
            MISMATCH => Ok((Self::Mismatch, 1)),
            k => Err(WireError::BadAnswer(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// docs/cli.md pins this offer: "hello.txt", 11 bytes, BLAKE3("hello world").
    const PINNED_OFFER: &str = concat!(
        "494e3846",                                                         // magic "IN8F"
        "01",                                                               // version 1
        "09",                                                               // name length 9
        "68656c6c6f2e747874",                                               // "hello.txt"
        "000000000000000b", // size 11, u64 big-endian
        "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24", // BLAKE3("hello world")
    );

    fn hello() -> Offer {
        Offer {
            name: "hello.txt".into(),
            size: 11,
            hash: *blake3::hash(b"hello world").as_bytes(),
        }
    }

    fn hex(b: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(b)
    }

    #[test]
    fn pinned_offer_vector() {
        let bytes = hello().encode().unwrap();
        assert_eq!(hex(&bytes), PINNED_OFFER);
        let pinned = data_encoding::HEXLOWER
            .decode(PINNED_OFFER.as_bytes())
            .unwrap();
        assert_eq!(Offer::decode(&pinned).unwrap(), (hello(), pinned.len()));
        assert_eq!(Offer::len_from_prefix(&pinned[..OFFER_PREFIX]), Ok(55));
    }

    #[test]
    fn pinned_answer_vectors() {
        let cases = [
            (Answer::Accept { offset: 0x0102 }, "000000000000000102"),
            (
                Answer::Refuse {
                    reason: "exists".into(),
                },
                "0106657869737473",
            ),
            (Answer::Verified, "02"),
            (Answer::Mismatch, "03"),
        ];
        for (a, h) in cases {
            assert_eq!(hex(&a.encode()), h);
            let b = a.encode();
            assert_eq!(Answer::decode(&b), Ok((a, b.len())));
        }
    }

    #[test]
    fn path_traversal_and_odd_names_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "/abs",
            "dir\\file",
            "bell\u{7}",
            "esc\u{1b}[2J",
            "line\nbreak",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
        for good in [
            "hello.txt",
            ".hidden",
            "ünïcode name.tar.gz",
            "a..b",
            &"x".repeat(255),
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
        // A peer's offer with a traversal name is refused on decode, not only on encode.
        let mut evil = hello().encode().unwrap();
        evil[OFFER_PREFIX..OFFER_PREFIX + 9].copy_from_slice(b"../../x.y");
        assert!(matches!(Offer::decode(&evil), Err(WireError::BadName(_))));
    }

    #[test]
    fn bad_headers_fail_early_and_clearly() {
        let good = hello().encode().unwrap();
        for n in 0..good.len() {
            assert_eq!(Offer::decode(&good[..n]), Err(WireError::Truncated), "{n}");
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Offer::len_from_prefix(&b), Err(WireError::BadMagic));
        let mut b = good.clone();
        b[4] = 9;
        assert_eq!(Offer::decode(&b), Err(WireError::Version(9)));
        assert!(WireError::Version(9).to_string().contains("update"));
        assert_eq!(Answer::decode(&[7]), Err(WireError::BadAnswer(7)));
        assert_eq!(
            Answer::decode(&[1, 2, 0xff, 0xfe]),
            Err(WireError::BadReason)
        );
        // A refusal reason longer than 255 bytes is cut at a character boundary.
        let long = Answer::Refuse {
            reason: "é".repeat(200),
        }
        .encode();
        assert_eq!(long.len(), 2 + 254);
        assert!(Answer::decode(&long).is_ok());
    }

    proptest! {
        #[test]
        fn offers_round_trip(name in "[a-zA-Z0-9 ._-]{1,200}", size: u64, hash: [u8; 32]) {
            prop_assume!(check_name(&name).is_ok());
            let o = Offer { name, size, hash };
            let b = o.encode().unwrap();
            prop_assert!(b.len() <= MAX_OFFER);
            prop_assert_eq!(Offer::decode(&b).unwrap(), (o, b.len()));
        }

        #[test]
        fn answers_round_trip(offset: u64, reason in "\\PC{0,100}") {
            for a in [Answer::Accept { offset }, Answer::Refuse { reason: reason.clone() }] {
                let b = a.encode();
                prop_assert!(b.len() <= MAX_ANSWER);
                let (back, n) = Answer::decode(&b).unwrap();
                prop_assert_eq!(n, b.len());
                if let (Answer::Refuse { reason: r }, Answer::Refuse { reason: orig }) = (&back, &a) {
                    prop_assert!(orig.starts_with(r.as_str()));
                } else {
                    prop_assert_eq!(back, a);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok((o, n)) = Offer::decode(&bytes) {
                prop_assert_eq!(o.encode().unwrap(), bytes[..n].to_vec());
            }
            let _ = Answer::decode(&bytes);
        }
    }
}
