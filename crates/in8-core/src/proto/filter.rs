//! The in-process NAT shim ([`crate::InboundFilter`]): drops what a NAT would drop, so
//! phase 2 and birthday probing can be exercised on one machine (DESIGN §8).

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::config::InboundFilter;

/// Most remote addresses, and most (socket, remote) pairs, remembered by the shim (then
/// it forgets them all, as a NAT's expiring mappings would): twice
/// [`crate::Birthday::MAX_PROBES`], so one easy-side burst fits.
const FILTER_MEMORY: usize = 32_768;

pub(crate) struct Filter {
    kind: InboundFilter,
    /// Remote addresses any socket sent to.
    sent_to: HashSet<SocketAddr>,
    /// (local socket, remote address) pairs: each socket's own mapping (symmetric NAT).
    pairs: HashSet<(SocketAddr, SocketAddr)>,
}

impl Filter {
    pub(crate) fn new(kind: InboundFilter) -> Self {
        Self {
            kind,
            sent_to: HashSet::new(),
            pairs: HashSet::new(),
        }
    }

    /// A datagram left socket `base` for `to`.
    pub(crate) fn note_sent(&mut self, base: SocketAddr, to: SocketAddr) {
        if self.sent_to.len() >= FILTER_MEMORY || self.pairs.len() >= FILTER_MEMORY {
            self.sent_to.clear();
            self.pairs.clear();
        }
        self.sent_to.insert(to);
        self.pairs.insert((base, to));
    }

    /// Whether a datagram from `from` may reach socket `base`.
    pub(crate) fn admits(&self, base: SocketAddr, from: SocketAddr) -> bool {
        match self.kind {
            InboundFilter::AddressAndPortDependent => self.sent_to.contains(&from),
            InboundFilter::AddressDependent => self.sent_to.iter().any(|a| a.ip() == from.ip()),
            InboundFilter::Symmetric => self.pairs.contains(&(base, from)),
        }
    }

    /// Whether an ICE datagram from one of the node's own sockets (not a birthday socket)
    /// leaves at all: behind a symmetric NAT it would leave from a fresh external port the
    /// peer's filter drops, so the shim drops it here.
    pub(crate) fn passes_ice_out(&self) -> bool {
        self.kind != InboundFilter::Symmetric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn symmetric_filters_per_socket() {
        let mut f = Filter::new(InboundFilter::Symmetric);
        f.note_sent(a(1), a(9));
        assert!(f.admits(a(1), a(9)));
        assert!(!f.admits(a(2), a(9)), "another socket is another mapping");
        assert!(!f.passes_ice_out());
        let mut f = Filter::new(InboundFilter::AddressAndPortDependent);
        f.note_sent(a(1), a(9));
        assert!(f.admits(a(2), a(9)));
        assert!(!f.admits(a(1), a(8)));
        assert!(f.passes_ice_out());
    }
}
