//! Network and invitation identifiers.

use core::fmt;
use core::str::FromStr;

use crate::error::{Error, Result};
use crate::identity::NodeId;

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 16]);

        impl $name {
            /// Wraps 16 raw bytes.
            pub const fn from_bytes(b: [u8; 16]) -> Self {
                Self(b)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        /// Lowercase hex, 32 characters.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                let raw = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(s.trim().as_bytes())
                    .map_err(|e| Error::BadText { form: $what, reason: e.to_string() })?;
                let b = <[u8; 16]>::try_from(raw.as_slice()).map_err(|_| Error::WrongSize {
                    field: $what,
                    expected: "16",
                    actual: raw.len(),
                })?;
                Ok(Self(b))
            }
        }
    };
}

id16!(
    /// A network's id. Self-certifying: it is derived from the creator's node id and a
    /// genesis nonce ([`NetworkId::derive`]), so a membership chain can be checked against it
    /// without any other trust anchor.
    NetworkId,
    "network id"
);

id16!(
    /// An invitation's id: the key of the single-use ledger. Derived from the invite secret
    /// (see [`crate::InviteSecret::invite_id`]), so it costs no bytes in the artifact.
    InviteId,
    "invite id"
);

impl NetworkId {
    /// The id of the network created by `creator` with `nonce`:
    /// the first 16 bytes of BLAKE3 `derive_key("in8 v1 network id", creator || nonce_be)`.
    pub fn derive(creator: &NodeId, nonce: u64) -> Self {
        let mut h = blake3::Hasher::new_derive_key("in8 v1 network id");
        h.update(creator.as_bytes());
        h.update(&nonce.to_be_bytes());
        let out = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&out.as_bytes()[..16]);
        Self(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = InviteId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string().parse::<InviteId>().unwrap(), id);
        assert!("abcd".parse::<InviteId>().is_err());
    }

    #[test]
    fn network_id_depends_on_creator_and_nonce() {
        let a = NodeId::from_bytes([1; 32]);
        let b = NodeId::from_bytes([2; 32]);
        assert_ne!(NetworkId::derive(&a, 0), NetworkId::derive(&b, 0));
        assert_ne!(NetworkId::derive(&a, 0), NetworkId::derive(&a, 1));
        assert_eq!(NetworkId::derive(&a, 5), NetworkId::derive(&a, 5));
    }
}
