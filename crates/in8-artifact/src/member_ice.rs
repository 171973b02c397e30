//! ICE credentials of a session between two members, derived from the pair's static
//! Diffie-Hellman secret so that no signalling has to carry them (docs/artifact.md
//! "Member sessions").
//!
//! Each node id is an ed25519 public key; its X25519 form (the birationally equivalent
//! Montgomery point, RFC 7748 §4.1) and the X25519 form of the signing key give both
//! members the same 32-byte secret `Z = X25519(a, B) = X25519(b, A)` that nobody else can
//! compute — an introducer that relays the attempt does not learn the ICE passwords.
//!
//! One attempt is named by the *caller* (the ICE controlling side), the *callee* and a
//! 64-bit `token` (the caller's Unix time in seconds in the high 32 bits, random low bits;
//! callees refuse tokens far from their clock, so an old check cannot be replayed much
//! later). Then `PRK = HKDF-Extract(salt = "in8/v1/member-ice", IKM = Z)` and, with
//! `ctx = network id (16) ‖ caller id (32) ‖ callee id (32) ‖ token (8, big-endian)`:
//!
//! | label ‖ ctx | L | use |
//! |-------------|---|-----|
//! | `in8 v1 member callee ufrag` | 5 | callee's ufrag (8 lowercase base32 chars) |
//! | `in8 v1 member caller pwd` | 18 | caller's ICE password (24 base64 chars) |
//! | `in8 v1 member callee pwd` | 18 | callee's ICE password |
//!
//! The caller's ufrag is public and self-describing: the 64 lowercase base32 characters of
//! `caller id ‖ token`, so a callee that never heard of the caller can still derive the
//! passwords and check the request's MESSAGE-INTEGRITY before keeping any state. RFC 8445
//! §5.3: "The ufrag value MUST contain at least 24 bits of randomness" — the token's low
//! 32 bits are random.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::identity::{Identity, NODE_ID_LEN, NodeId};
use crate::ids::NetworkId;

const SALT: &[u8] = b"in8/v1/member-ice";
/// Length of a caller's ufrag: base32 of 40 bytes.
pub const CALLER_UFRAG_LEN: usize = 64;

/// The static X25519 secret of a pair of members.
#[derive(Clone)]
pub struct PairSecret(Zeroizing<[u8; 32]>);

impl core::fmt::Debug for PairSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PairSecret(..)")
    }
}

impl Identity {
    /// The secret this node shares with `peer` (X25519 of the two keys' Montgomery forms).
    /// Fails for a key that is not a valid point or of low order (the secret would be
    /// predictable).
    pub fn pair_secret(&self, peer: &NodeId) -> Result<PairSecret> {
        let pk = ed25519_dalek::VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| {
            Error::BadPublicKey {
                field: "peer node id",
            }
        })?;
        if pk.is_weak() {
            return Err(Error::BadPublicKey {
                field: "peer node id",
            });
        }
        let z = pk
            .to_montgomery()
            .mul_clamped(self.signing_key().to_scalar_bytes());
        let z = Zeroizing::new(z.to_bytes());
        if z.iter().all(|b| *b == 0) {
            return Err(Error::BadPublicKey {
                field: "peer node id",
            });
        }
        Ok(PairSecret(z))
    }
}

/// The four ICE credentials of one member-session attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberIce {
    /// The caller's (controlling side's) ufrag: [`caller_ufrag`].
    pub caller_ufrag: String,
    /// The caller's password.
    pub caller_pwd: String,
    /// The callee's ufrag.
    pub callee_ufrag: String,
    /// The callee's password.
    pub callee_pwd: String,
}

impl core::fmt::Debug for MemberIce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "MemberIce({}:{}, ..)",
            self.callee_ufrag, self.caller_ufrag
        )
    }
}

/// The caller's ufrag for an attempt: base32 (lowercase, no padding) of `caller ‖ token`.
pub fn caller_ufrag(caller: &NodeId, token: u64) -> String {
    let mut b = [0u8; NODE_ID_LEN + 8];
    b[..NODE_ID_LEN].copy_from_slice(caller.as_bytes());
    b[NODE_ID_LEN..].copy_from_slice(&token.to_be_bytes());
    data_encoding::BASE32_NOPAD.encode(&b).to_ascii_lowercase()
}

/// Reads a caller's ufrag back into (caller, token); `None` if it is not one.
pub fn parse_caller_ufrag(ufrag: &[u8]) -> Option<(NodeId, u64)> {
    if ufrag.len() != CALLER_UFRAG_LEN {
        return None;
    }
    let upper: Vec<u8> = ufrag.iter().map(u8::to_ascii_uppercase).collect();
    let b = data_encoding::BASE32_NOPAD.decode(&upper).ok()?;
    let id: [u8; NODE_ID_LEN] = b.get(..NODE_ID_LEN)?.try_into().ok()?;
    let token: [u8; 8] = b.get(NODE_ID_LEN..)?.try_into().ok()?;
    Some((NodeId::from_bytes(id), u64::from_be_bytes(token)))
}

/// The Unix time (seconds) carried in a token's high 32 bits.
pub fn token_time(token: u64) -> u64 {
    token >> 32
}

/// A token for an attempt started at Unix time `unix_s` with random bits `random`.
pub fn make_token(unix_s: u64, random: u32) -> u64 {
    ((unix_s & 0xffff_ffff) << 32) | u64::from(random)
}

impl PairSecret {
    /// The credentials of the attempt (`caller` → `callee`, `token`) in `network`.
    pub fn member_ice(
        &self,
        network: &NetworkId,
        caller: &NodeId,
        callee: &NodeId,
        token: u64,
    ) -> MemberIce {
        let hk = Hkdf::<Sha256>::new(Some(SALT), self.0.as_ref());
        let tok = token.to_be_bytes();
        let ctx: [&[u8]; 4] = [
            network.as_bytes(),
            caller.as_bytes(),
            callee.as_bytes(),
            &tok,
        ];
        let expand = |label: &[u8], out: &mut [u8]| {
            let mut info: Vec<&[u8]> = vec![label];
            info.extend_from_slice(&ctx);
            // out.len() <= 18, far below HKDF-SHA256's limit: expand cannot fail.
            let _ = hk.expand_multi_info(&info, out);
        };
        let mut u = Zeroizing::new([0u8; 5]);
        expand(b"in8 v1 member callee ufrag", u.as_mut());
        let mut pa = Zeroizing::new([0u8; 18]);
        expand(b"in8 v1 member caller pwd", pa.as_mut());
        let mut pb = Zeroizing::new([0u8; 18]);
        expand(b"in8 v1 member callee pwd", pb.as_mut());
        MemberIce {
            caller_ufrag: caller_ufrag(caller, token),
            caller_pwd: data_encoding::BASE64_NOPAD.encode(pa.as_ref()),
            callee_ufrag: data_encoding::BASE32_NOPAD
                .encode(u.as_ref())
                .to_ascii_lowercase(),
            callee_pwd: data_encoding::BASE64_NOPAD.encode(pb.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_credentials() {
        let (a, b, c) = (
            Identity::from_seed(&[1; 32]),
            Identity::from_seed(&[2; 32]),
            Identity::from_seed(&[3; 32]),
        );
        let net = NetworkId::derive(&a.node_id(), 9);
        let tok = make_token(1_800_000_000, 42);
        let ab = a.pair_secret(&b.node_id()).unwrap();
        let ba = b.pair_secret(&a.node_id()).unwrap();
        let x = ab.member_ice(&net, &a.node_id(), &b.node_id(), tok);
        assert_eq!(x, ba.member_ice(&net, &a.node_id(), &b.node_id(), tok));
        // A third party derives something else from its own secrets.
        let cb = c.pair_secret(&b.node_id()).unwrap();
        assert_ne!(x, cb.member_ice(&net, &a.node_id(), &b.node_id(), tok));
        // Every input matters.
        assert_ne!(x, ab.member_ice(&net, &b.node_id(), &a.node_id(), tok));
        assert_ne!(x, ab.member_ice(&net, &a.node_id(), &b.node_id(), tok + 1));
        assert_ne!(
            x,
            ab.member_ice(
                &NetworkId::derive(&a.node_id(), 8),
                &a.node_id(),
                &b.node_id(),
                tok
            )
        );
        assert_eq!(x.caller_ufrag.len(), CALLER_UFRAG_LEN);
        assert_eq!(x.callee_ufrag.len(), 8);
        assert_eq!(
            parse_caller_ufrag(x.caller_ufrag.as_bytes()),
            Some((a.node_id(), tok))
        );
        assert_eq!(token_time(tok), 1_800_000_000);
    }

    #[test]
    fn bad_keys_and_ufrags_are_refused() {
        let a = Identity::from_seed(&[1; 32]);
        // The identity point has low order.
        let mut low = [0u8; 32];
        low[0] = 1;
        assert!(a.pair_secret(&NodeId::from_bytes(low)).is_err());
        assert!(parse_caller_ufrag(b"short").is_none());
        assert!(parse_caller_ufrag(&[b'!'; CALLER_UFRAG_LEN]).is_none());
    }
}
