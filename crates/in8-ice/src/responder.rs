//! The STUN Binding responder every in8 node runs, so any member can be a reflector for
//! the others (DESIGN §5, §7; seed claim 32).
//!
//! Stateless: a plain Binding request (no USERNAME) gets a success response with
//! XOR-MAPPED-ADDRESS (the RFC 8489 Binding usage) and FINGERPRINT when the request had
//! one. RFC 5780 extras (RESPONSE-ORIGIN,
//! OTHER-ADDRESS) are added when the responder knows its other address.

use std::net::SocketAddr;

use crate::stun::{Class, Message, MessageWriter, Method, attr};

/// How the responder treats requests whose answer would be larger than the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Amplification {
    /// Answer only when the reply is no larger than the request (in8 peers pad their
    /// requests with PADDING; a spoofed 20-byte request gets nothing). The default.
    #[default]
    Never,
    /// Answer every well-formed request, as a public STUN server does (a 20-byte request
    /// gets a 32- or 44-byte answer). For `in8 stun`.
    Standard,
}

/// Responder settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponderConfig {
    /// Amplification policy.
    pub amplification: Amplification,
    /// RFC 5780 OTHER-ADDRESS to advertise (a second address and port this node answers
    /// on), if any.
    pub other_address: Option<SocketAddr>,
}

/// Writes the answer to a plain Binding request into `out` (cleared first). Returns false
/// (and leaves `out` empty) when the message is not a plain Binding request, carries
/// unknown comprehension-required attributes we will not answer without authentication,
/// or the answer would break the amplification policy.
pub fn respond(
    config: &ResponderConfig,
    from: SocketAddr,
    to: SocketAddr,
    msg: &Message<'_>,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    if msg.method() != Method::BINDING
        || msg.class() != Class::Request
        || msg.has_integrity()
        || msg.username().is_some()
        || !msg.unknown_required().is_empty()
    {
        return false;
    }
    let mut w = MessageWriter::new(out, Method::BINDING, Class::Success, msg.transaction_id());
    w.xor_address(attr::XOR_MAPPED_ADDRESS, from);
    // RFC 5780 §6.1: "If the Binding Request does not contain any attributes from this
    // document, OTHER-ADDRESS and RESPONSE-ORIGIN are still included in the Binding
    // Response" (by a server of that usage, i.e. one with a second address).
    if let Some(other) = config.other_address {
        w.address(attr::RESPONSE_ORIGIN, to);
        w.address(attr::OTHER_ADDRESS, other);
    }
    if msg.has_fingerprint() {
        w.fingerprint();
    }
    if config.amplification == Amplification::Never && out.len() > msg.bytes().len() {
        out.clear();
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::TransactionId;

    fn request(padding: usize) -> Vec<u8> {
        let mut b = Vec::new();
        let mut w = MessageWriter::new(
            &mut b,
            Method::BINDING,
            Class::Request,
            TransactionId([1; 12]),
        );
        if padding > 0 {
            w.attr(attr::PADDING, &vec![0; padding]);
        }
        w.fingerprint();
        b
    }

    #[test]
    fn answers_padded_requests_only_by_default() {
        let from: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let to: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let mut out = Vec::new();
        let short = request(0);
        let m = Message::parse(&short).unwrap();
        assert!(!respond(
            &ResponderConfig::default(),
            from,
            to,
            &m,
            &mut out
        ));
        assert!(out.is_empty());
        let std = ResponderConfig {
            amplification: Amplification::Standard,
            other_address: None,
        };
        assert!(respond(&std, from, to, &m, &mut out));
        let r = Message::parse(&out).unwrap();
        assert_eq!(r.xor_mapped_address(), Some(from));
        assert!(r.has_fingerprint());

        let padded = request(12);
        let m = Message::parse(&padded).unwrap();
        assert!(respond(&ResponderConfig::default(), from, to, &m, &mut out));
        assert!(out.len() <= padded.len());
    }
}
