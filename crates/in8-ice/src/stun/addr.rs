//! (XOR-)MAPPED-ADDRESS style attribute values (RFC 8489 §14.1, §14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{MAGIC_COOKIE, TransactionId};

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Decodes a MAPPED-ADDRESS style value (`0`, family, port, address).
pub fn decode_address(v: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    match (v.get(1)?, v.len()) {
        (&FAMILY_V4, 8) => {
            let mut o = [0u8; 4];
            o.copy_from_slice(&v[4..8]);
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
        }
        (&FAMILY_V6, 20) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&v[4..20]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

/// RFC 8489 §14.2: "X-Port is computed by XOR'ing the mapped port with the most significant
/// 16 bits of the magic cookie. If the IP address family is IPv4, X-Address is computed by
/// XOR'ing the mapped IP address with the magic cookie. If the IP address family is IPv6,
/// X-Address is computed by XOR'ing the mapped IP address with the concatenation of the
/// magic cookie and the 96-bit transaction ID."
fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[4..].copy_from_slice(&tid.0);
    m
}

/// Decodes an XOR-MAPPED-ADDRESS style value.
pub fn decode_xor_address(v: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let plain = decode_address(v)?;
    let mask = xor_mask(tid);
    let port = plain.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match plain.ip() {
        IpAddr::V4(a) => {
            let mut o = a.octets();
            o.iter_mut().zip(&mask[..4]).for_each(|(b, m)| *b ^= m);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        IpAddr::V6(a) => {
            let mut o = a.octets();
            o.iter_mut().zip(&mask).for_each(|(b, m)| *b ^= m);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    Some(SocketAddr::new(ip, port))
}

/// Encodes a MAPPED-ADDRESS style value into `out`, returning its length (8 or 20).
pub(crate) fn encode_address(addr: SocketAddr, out: &mut [u8; 20]) -> usize {
    out[0] = 0;
    out[2..4].copy_from_slice(&addr.port().to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => {
            out[1] = FAMILY_V4;
            out[4..8].copy_from_slice(&a.octets());
            8
        }
        IpAddr::V6(a) => {
            out[1] = FAMILY_V6;
            out[4..20].copy_from_slice(&a.octets());
            20
        }
    }
}

/// Encodes an XOR-MAPPED-ADDRESS style value into `out`, returning its length.
pub(crate) fn encode_xor_address(
    addr: SocketAddr,
    tid: &TransactionId,
    out: &mut [u8; 20],
) -> usize {
    let n = encode_address(addr, out);
    let mask = xor_mask(tid);
    out[2] ^= mask[0];
    out[3] ^= mask[1];
    out[4..n].iter_mut().zip(&mask).for_each(|(b, m)| *b ^= m);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_round_trip() {
        let tid = TransactionId([7; 12]);
        for a in [
            "192.0.2.1:32853",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ] {
            let a: SocketAddr = a.parse().unwrap();
            let mut b = [0u8; 20];
            let n = encode_xor_address(a, &tid, &mut b);
            assert_eq!(decode_xor_address(&b[..n], &tid), Some(a));
            assert_ne!(decode_address(&b[..n]), Some(a));
        }
        assert_eq!(decode_address(&[0, 1, 0]), None);
        assert_eq!(decode_address(&[0, 3, 0, 1, 1, 2, 3, 4]), None);
    }
}
