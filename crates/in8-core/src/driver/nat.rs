//! Running the NAT classifier ([`crate::gather::Classifier`]) on the node's first socket:
//! its probes leave through the driver, the STUN responses ICE does not own are offered to
//! it, and its result is published ([`crate::Node::nat`]) and carried in every invitation
//! and RSVP issued afterwards.

use std::net::SocketAddr;
use std::time::Instant;

use super::Driver;

impl Driver {
    /// Sends due classification probes; publishes the class when it is known.
    pub(crate) fn classify_timeout(&mut self, now: Instant) {
        let Some(c) = &mut self.classifier else {
            return;
        };
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        let base = c.base();
        let mut sends = Vec::new();
        while let Some(t) = c.poll_transmit() {
            sends.push(t);
        }
        for (to, bytes) in sends {
            if let Some(f) = &mut self.filter {
                f.note_sent(base, to);
            }
            if let Some(s) = self.sockets.iter().find(|s| s.base == base)
                && let Err(e) = s.sender.try_send_to(&bytes, to)
            {
                tracing::debug!(%to, "NAT probe not sent: {e}");
            }
        }
        self.classify_done();
    }

    /// A STUN response no ICE session owns, on socket `base`.
    pub(crate) fn classify_response(&mut self, base: SocketAddr, data: &[u8]) {
        if let Some(c) = &mut self.classifier
            && c.handle_response(base, data)
        {
            self.classify_done();
        }
    }

    fn classify_done(&mut self) {
        let Some(class) = self.classifier.as_ref().and_then(|c| c.result()) else {
            return;
        };
        tracing::info!(?class, "NAT classified");
        self.classifier = None;
        self.nat = Some(class);
        self.nat_tx.send_replace((true, Some(class)));
    }
}
