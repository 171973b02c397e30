//! A minimal STUN Binding client: enough to see whether a server answers and which
//! reflexive address it reports. Lab tooling only: in8's own STUN lives in in8-ice.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::{Error, Result};

// RFC 8489 §5: "The magic cookie field MUST contain the fixed value 0x2112A442 in network
// byte order."
const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A Binding request without attributes (20 bytes) with this transaction id.
pub fn binding_request(txid: [u8; 12]) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // length 0: no attributes
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&txid);
    m
}

/// The reflexive address of a Binding success response to `txid`: XOR-MAPPED-ADDRESS, or
/// MAPPED-ADDRESS from an old server. `None` for anything else.
pub fn parse_binding_response(msg: &[u8], txid: [u8; 12]) -> Option<SocketAddr> {
    let header = msg.get(..20)?;
    if u16::from_be_bytes([header[0], header[1]]) != BINDING_SUCCESS
        || header[4..8] != MAGIC_COOKIE.to_be_bytes()
        || header[8..20] != txid
    {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let body = msg.get(20..20 + len)?;
    let mut mapped = None;
    let mut at = 0;
    while let Some(h) = body.get(at..at + 4) {
        let kind = u16::from_be_bytes([h[0], h[1]]);
        let alen = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        match kind {
            ATTR_XOR_MAPPED_ADDRESS => return decode_address(value, Some(&header[4..20])),
            ATTR_MAPPED_ADDRESS => mapped = decode_address(value, None),
            _ => {}
        }
        // RFC 8489 §14: attributes are padded to a multiple of 4 bytes.
        at += 4 + alen.div_ceil(4) * 4;
    }
    mapped
}

/// Decodes a (XOR-)MAPPED-ADDRESS value; `xor` is the magic cookie + transaction id.
fn decode_address(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    // RFC 8489 §14.2: "X-Port is computed by XOR'ing the mapped port with the most
    // significant 16 bits of the magic cookie."
    let key = xor.unwrap_or(&[0u8; 16]);
    port ^= u16::from_be_bytes([key[0], key[1]]);
    let ip = match family {
        0x01 => {
            let b = v.get(4..8)?;
            IpAddr::V4(Ipv4Addr::new(
                b[0] ^ key[0],
                b[1] ^ key[1],
                b[2] ^ key[2],
                b[3] ^ key[3],
            ))
        }
        0x02 => {
            let b = v.get(4..20)?;
            let mut o = [0u8; 16];
            for (i, x) in o.iter_mut().enumerate() {
                *x = b[i] ^ key[i];
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Sends Binding requests from `socket` to `server` (retransmitting every 200 ms) until a
/// matching success response arrives or `timeout` passes; returns the reflexive address.
pub fn query(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<SocketAddr> {
    let mut txid = [0u8; 12];
    rand::rng().fill_bytes(&mut txid);
    let request = binding_request(txid);
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    let io = |e| Error::io(format!("STUN Binding to {server}"), e);
    while Instant::now() < deadline {
        socket.send_to(&request, server).map_err(io)?;
        let resend = Instant::now() + Duration::from_millis(200);
        while let Some(left) = resend
            .min(deadline)
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            socket.set_read_timeout(Some(left)).map_err(io)?;
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == server => {
                    if let Some(addr) = parse_binding_response(&buf[..n], txid) {
                        return Ok(addr);
                    }
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(io(e)),
            }
        }
    }
    Err(Error::NotReady {
        what: format!("a STUN Binding response from {server}"),
        after: timeout,
        log: String::new(),
    })
}

/// Sends one Binding request (no retransmission) and returns the round-trip time of its
/// response, or `None` if none arrived within `timeout` (lost either way).
pub fn round_trip(
    socket: &UdpSocket,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let mut txid = [0u8; 12];
    rand::rng().fill_bytes(&mut txid);
    let io = |e| Error::io(format!("STUN Binding to {server}"), e);
    let sent = Instant::now();
    socket.send_to(&binding_request(txid), server).map_err(io)?;
    let deadline = sent + timeout;
    let mut buf = [0u8; 1500];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        socket.set_read_timeout(Some(left)).map_err(io)?;
        match socket.recv_from(&mut buf) {
            Ok((n, from))
                if from == server && parse_binding_response(&buf[..n], txid).is_some() =>
            {
                return Ok(Some(sent.elapsed()));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    #[test]
    fn request_is_a_bare_binding() {
        let r = binding_request(TXID);
        assert_eq!(&r[..8], &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &TXID);
    }

    #[test]
    fn parses_the_rfc5769_ipv4_response() {
        // The first attributes of RFC 5769 §2.2's sample IPv4 response (SOFTWARE "test vector",
        // XOR-MAPPED-ADDRESS 192.0.2.1:32853), without MESSAGE-INTEGRITY and FINGERPRINT, so
        // the length is 0x1c.
        let hex = "0101001c 2112a442 b7e7a701 bc34d686 fa87dfae \
                   8022000b 74657374 20766563 746f7220 \
                   00200008 0001a147 e112a643";
        let bytes: Vec<u8> = {
            let h: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
            (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        };
        assert_eq!(
            parse_binding_response(&bytes, TXID),
            Some("192.0.2.1:32853".parse().unwrap())
        );
        let mut other = TXID;
        other[0] ^= 1;
        assert_eq!(parse_binding_response(&bytes, other), None);
    }

    #[test]
    fn truncated_or_foreign_messages_are_ignored() {
        assert_eq!(parse_binding_response(&[], TXID), None);
        assert_eq!(parse_binding_response(&binding_request(TXID), TXID), None);
        let mut m = binding_request(TXID).to_vec();
        m[0..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
        m[3] = 12; // claims 12 bytes of attributes that are not there
        assert_eq!(parse_binding_response(&m, TXID), None);
    }

    #[test]
    fn query_times_out_against_a_silent_peer() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = query(&s, silent.local_addr().unwrap(), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, Error::NotReady { .. }), "{err}");
        // It did retransmit.
        silent.set_nonblocking(true).unwrap();
        let mut n = 0;
        let mut buf = [0u8; 64];
        while silent.recv_from(&mut buf).is_ok() {
            n += 1;
        }
        assert!(n >= 2, "{n} requests");
    }
}
