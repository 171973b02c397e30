//! The TURN client against a scripted server.

use super::*;
use crate::stun::Message;

const SERVER: &str = "192.0.2.10:3478";
const LOCAL: &str = "10.0.0.1:5000";
const RELAYED: &str = "192.0.2.10:50000";

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn client() -> TurnClient {
    TurnClient::new(
        TurnConfig {
            server: a(SERVER),
            username: "in8".into(),
            password: "secret".into(),
            lifetime: Duration::from_secs(600),
        },
        a(LOCAL),
        1,
    )
}

fn key() -> IntegrityKey {
    IntegrityKey::long_term("in8", "example.org", "secret")
}

fn reply(req: &[u8], f: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut b = Vec::new();
    let mut w = MessageWriter::new(&mut b, m.method(), Class::Success, m.transaction_id());
    f(&mut w);
    w.integrity(&key()).fingerprint();
    b
}

fn error(req: &[u8], code: u16, nonce: &[u8]) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut b = Vec::new();
    MessageWriter::new(&mut b, m.method(), Class::Error, m.transaction_id())
        .error_code(code, "auth")
        .attr(attr::REALM, b"example.org")
        .attr(attr::NONCE, nonce)
        .fingerprint();
    b
}

fn allocated(now: Instant) -> TurnClient {
    let mut c = client();
    c.allocate(now);
    let first = c.poll_transmit().unwrap().contents;
    let m = Message::parse(&first).unwrap();
    assert_eq!(m.method(), Method::ALLOCATE);
    assert!(
        !m.has_integrity(),
        "first Allocate goes without credentials"
    );
    c.handle_packet(now, a(SERVER), &error(&first, 401, b"nonce-1"))
        .unwrap();
    let second = c.poll_transmit().unwrap().contents;
    let m = Message::parse(&second).unwrap();
    assert!(
        m.verify_integrity(&key()),
        "long-term key MD5(user:realm:pass)"
    );
    assert_eq!(m.get(attr::NONCE), Some(&b"nonce-1"[..]));
    assert_eq!(m.get_u32(attr::REQUESTED_TRANSPORT), Some(17 << 24));
    let ok = reply(&second, |w| {
        w.xor_address(attr::XOR_RELAYED_ADDRESS, a(RELAYED))
            .xor_address(attr::XOR_MAPPED_ADDRESS, a("203.0.113.5:40000"))
            .attr_u32(attr::LIFETIME, 600);
    });
    c.handle_packet(now, a(SERVER), &ok).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Allocated {
            relayed: a(RELAYED),
            mapped: Some(a("203.0.113.5:40000")),
            lifetime: Duration::from_secs(600)
        })
    );
    c
}

#[test]
fn allocate_permission_channel_send_and_data() {
    let now = Instant::now();
    let mut c = allocated(now);
    let peer = a("198.51.100.20:7000");
    assert!(c.send_to(now, peer, b"x").is_err(), "no permission yet");
    c.create_permission(now, peer.ip()).unwrap();
    let req = c.poll_transmit().unwrap().contents;
    let m = Message::parse(&req).unwrap();
    assert_eq!(m.method(), Method::CREATE_PERMISSION);
    assert_eq!(
        m.xor_address(attr::XOR_PEER_ADDRESS).map(|p| p.ip()),
        Some(peer.ip())
    );
    c.handle_packet(now, a(SERVER), &reply(&req, |_| {}))
        .unwrap();
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::PermissionCreated { peer: peer.ip() })
    );
    // Send indication while no channel is bound.
    c.send_to(now, peer, b"hello").unwrap();
    let ind = c.poll_transmit().unwrap().contents;
    let m = Message::parse(&ind).unwrap();
    assert_eq!((m.method(), m.class()), (Method::SEND, Class::Indication));
    assert_eq!(m.get(attr::DATA), Some(&b"hello"[..]));
    // Channel.
    let ch = c.channel_bind(now, peer).unwrap();
    assert_eq!(ch, 0x4000);
    let req = c.poll_transmit().unwrap().contents;
    c.handle_packet(now, a(SERVER), &reply(&req, |_| {}))
        .unwrap();
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::ChannelBound { peer, channel: ch })
    );
    c.send_to(now, peer, b"hi").unwrap();
    assert_eq!(
        c.poll_transmit().unwrap().contents,
        vec![0x40, 0x00, 0x00, 0x02, b'h', b'i']
    );
    // Incoming ChannelData and Data indication.
    c.handle_packet(now, a(SERVER), &[0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0])
        .unwrap();
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Data {
            peer,
            data: vec![1, 2, 3]
        })
    );
    let mut b = Vec::new();
    MessageWriter::new(
        &mut b,
        Method::DATA,
        Class::Indication,
        TransactionId([1; 12]),
    )
    .xor_address(attr::XOR_PEER_ADDRESS, peer)
    .attr(attr::DATA, b"yo");
    c.handle_packet(now, a(SERVER), &b).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Data {
            peer,
            data: b"yo".to_vec()
        })
    );
    // Not from the server: refused.
    assert!(c.handle_packet(now, peer, &b).is_err());
    // Truncated ChannelData: an error, no panic.
    assert!(
        c.handle_packet(now, a(SERVER), &[0x40, 0x00, 0x00, 0x09, 1])
            .is_err()
    );
}

#[test]
fn refreshes_before_expiry_and_deallocates() {
    let t0 = Instant::now();
    let mut c = allocated(t0);
    c.create_permission(t0, a("198.51.100.20:0").ip()).unwrap();
    let req = c.poll_transmit().unwrap().contents;
    c.handle_packet(t0, a(SERVER), &reply(&req, |_| {}))
        .unwrap();
    while c.poll_event().is_some() {}
    // The permission is refreshed a minute before its 5 minutes run out.
    let t = c.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(240));
    c.handle_timeout(t);
    let req = c.poll_transmit().unwrap().contents;
    assert_eq!(
        Message::parse(&req).unwrap().method(),
        Method::CREATE_PERMISSION
    );
    c.handle_packet(t, a(SERVER), &reply(&req, |_| {})).unwrap();
    // The allocation is refreshed a minute before its 10 minutes; a 438 Stale Nonce is
    // retried with the new nonce.
    let t = t0 + Duration::from_secs(540);
    c.handle_timeout(t);
    let mut refresh = None;
    while let Some(tr) = c.poll_transmit() {
        if Message::parse(&tr.contents).unwrap().method() == Method::REFRESH {
            refresh = Some(tr.contents);
        }
    }
    let refresh = refresh.unwrap();
    c.handle_packet(t, a(SERVER), &error(&refresh, 438, b"nonce-2"))
        .unwrap();
    let again = c.poll_transmit().unwrap().contents;
    assert_eq!(
        Message::parse(&again).unwrap().get(attr::NONCE),
        Some(&b"nonce-2"[..])
    );
    c.handle_packet(
        t,
        a(SERVER),
        &reply(&again, |w| {
            w.attr_u32(attr::LIFETIME, 600);
        }),
    )
    .unwrap();
    while let Some(e) = c.poll_event() {
        if let TurnEvent::Refreshed { lifetime } = e {
            assert_eq!(lifetime, Duration::from_secs(600));
        }
    }
    c.deallocate(t);
    let req = c.poll_transmit().unwrap().contents;
    assert_eq!(
        Message::parse(&req).unwrap().get_u32(attr::LIFETIME),
        Some(0)
    );
    c.handle_packet(t, a(SERVER), &reply(&req, |_| {})).unwrap();
    assert_eq!(c.poll_event(), Some(TurnEvent::Closed));
    assert_eq!(c.relayed_address(), None);
}

#[test]
fn forged_response_without_integrity_is_refused() {
    let now = Instant::now();
    let mut c = allocated(now);
    c.create_permission(now, a("198.51.100.20:0").ip()).unwrap();
    let req = c.poll_transmit().unwrap().contents;
    let m = Message::parse(&req).unwrap();
    let mut b = Vec::new();
    MessageWriter::new(&mut b, m.method(), Class::Success, m.transaction_id()).fingerprint();
    assert_eq!(
        c.handle_packet(now, a(SERVER), &b),
        Err(Error::Unauthenticated)
    );
}

#[test]
fn allocation_times_out_after_rc_sends() {
    let t0 = Instant::now();
    let mut c = client();
    c.allocate(t0);
    let mut sends = 0;
    while let Some(t) = c.poll_timeout() {
        while c.poll_transmit().is_some() {
            sends += 1;
        }
        c.handle_timeout(t);
    }
    while c.poll_transmit().is_some() {
        sends += 1;
    }
    assert_eq!(sends, 7);
    assert_eq!(
        c.poll_event(),
        Some(TurnEvent::Failed {
            method: 3,
            code: None
        })
    );
}
