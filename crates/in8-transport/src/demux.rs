//! RFC 7983 demultiplexing of one UDP socket by the first byte of each datagram.
//!
//! Pure and allocation-free: [`classify`] is what the [`crate::Endpoint`]'s receive loop
//! calls for every datagram, and what the `transport_demux` fuzz target hammers.

/// What a datagram is, by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// STUN (ICE connectivity checks, consent freshness, binding requests to us as a
    /// reflector, TURN control messages): first byte 0..=3.
    Stun,
    /// ZRTP: first byte 16..=19. in8 does not use ZRTP; such datagrams are dropped.
    Zrtp,
    /// DTLS records: first byte 20..=63.
    Dtls,
    /// TURN ChannelData: first byte 64..=79.
    TurnChannel,
    /// RTP / RTCP: first byte 128..=191. in8 carries no media; such datagrams are dropped.
    Rtp,
    /// Anything else (including empty datagrams): dropped.
    Unknown,
}

/// Classifies a datagram by its first byte.
///
/// RFC 7983 §7: "If the value of the first byte is in between 0 and 3 (inclusive), then the
/// packet is STUN. If the value is between 16 and 19 (inclusive), then the packet is ZRTP.
/// If the value is between 20 and 63 (inclusive), then the packet is DTLS. If the value is
/// between 64 and 79 (inclusive), then the packet is TURN Channel. If the value is in
/// between 128 and 191 (inclusive), then the packet is RTP (or RTCP [...]). If the value
/// does not match any known range, then the packet MUST be dropped and an alert MAY be
/// logged."
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::TurnChannel,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_is_classified_as_rfc_7983_says() {
        for b in 0u8..=255 {
            let want = match b {
                0..=3 => PacketKind::Stun,
                16..=19 => PacketKind::Zrtp,
                20..=63 => PacketKind::Dtls,
                64..=79 => PacketKind::TurnChannel,
                128..=191 => PacketKind::Rtp,
                _ => PacketKind::Unknown,
            };
            assert_eq!(classify(&[b, 0, 0]), want, "first byte {b}");
        }
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }

    #[test]
    fn real_headers_land_where_expected() {
        // STUN binding request: type 0x0001, then the magic cookie 0x2112A442.
        assert_eq!(
            classify(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]),
            PacketKind::Stun
        );
        // DTLS handshake record (content type 22), version DTLS 1.2 (0xfefd).
        assert_eq!(classify(&[22, 0xfe, 0xfd]), PacketKind::Dtls);
        // DTLS application data (23) and alert (21).
        assert_eq!(classify(&[23, 0xfe, 0xfd]), PacketKind::Dtls);
        assert_eq!(classify(&[21, 0xfe, 0xfd]), PacketKind::Dtls);
        // TURN ChannelData, channel number 0x4000.
        assert_eq!(classify(&[0x40, 0x00, 0x00, 0x04]), PacketKind::TurnChannel);
        // RTP version 2.
        assert_eq!(classify(&[0x80, 0x60]), PacketKind::Rtp);
    }
}
