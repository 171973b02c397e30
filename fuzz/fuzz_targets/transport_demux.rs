//! Arbitrary datagrams into the RFC 7983 demultiplexer: never panics, and the kind follows
//! the first byte only.
#![no_main]

use in8_transport::{PacketKind, classify, route_datagram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 4242));
    let kind = route_datagram(data, from);
    assert_eq!(kind, classify(data));
    if let Some(&b) = data.first() {
        assert_eq!(kind, classify(&[b]));
    } else {
        assert_eq!(kind, PacketKind::Unknown);
    }
});
