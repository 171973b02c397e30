//! Retransmissions and refreshes of the TURN client.

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Req, State, TurnClient, TurnEvent};
use crate::transmit::Transmit;

impl TurnClient {
    /// Retransmits, and refreshes the allocation (one minute before expiry), permissions
    /// (RFC 8656 §9: before their 5 minutes run out) and channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.next > now {
                i += 1;
                continue;
            }
            if p.sends < 7 {
                p.sends += 1;
                p.interval *= 2;
                p.next = now + p.interval;
                let t = Transmit {
                    from: self.local,
                    to: self.config.server,
                    contents: p.bytes.clone(),
                };
                self.transmits.push_back(t);
                i += 1;
            } else {
                let p = self.pending.swap_remove(i);
                if p.req == Req::Allocate {
                    self.state = State::Idle;
                }
                self.events.push_back(TurnEvent::Failed {
                    method: p.req.method().0,
                    code: None,
                });
            }
        }
        if let State::Allocated { expires, .. } = self.state {
            if now >= expires {
                self.state = State::Closed;
                self.events.push_back(TurnEvent::Closed);
                return;
            }
            let busy = |r: &dyn Fn(&Req) -> bool, s: &Self| s.pending.iter().any(|p| r(&p.req));
            if now + Duration::from_secs(60) >= expires
                && !busy(&|r| matches!(r, Req::Refresh(_)), self)
            {
                let l = self.config.lifetime.as_secs() as u32;
                self.request(now, Req::Refresh(l.max(1)), 0);
            }
            let refresh_perm: Vec<IpAddr> = self
                .permissions
                .iter()
                .filter(|(_, t)| now + Duration::from_secs(60) >= *t)
                .map(|(p, _)| *p)
                .filter(|p| !busy(&|r| *r == Req::CreatePermission(*p), self))
                .collect();
            for p in refresh_perm {
                self.request(now, Req::CreatePermission(p), 0);
            }
            let refresh_ch: Vec<(SocketAddr, u16)> = self
                .channels
                .iter()
                .filter(|(_, _, t)| now + Duration::from_secs(60) >= *t)
                .map(|(p, c, _)| (*p, *c))
                .filter(|(p, c)| !busy(&|r| *r == Req::ChannelBind(*p, *c), self))
                .collect();
            for (p, c) in refresh_ch {
                self.request(now, Req::ChannelBind(p, c), 0);
            }
        }
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let m = Duration::from_secs(60);
        let mut t: Vec<Instant> = self.pending.iter().map(|p| p.next).collect();
        if let State::Allocated { expires, .. } = self.state {
            t.push(expires);
            if !self
                .pending
                .iter()
                .any(|p| matches!(p.req, Req::Refresh(_)))
            {
                t.push(expires.checked_sub(m).unwrap_or(expires));
            }
            for (peer, x) in &self.permissions {
                if !self
                    .pending
                    .iter()
                    .any(|p| p.req == Req::CreatePermission(*peer))
                {
                    t.push(x.checked_sub(m).unwrap_or(*x));
                }
            }
            for (peer, ch, x) in &self.channels {
                if !self
                    .pending
                    .iter()
                    .any(|p| p.req == Req::ChannelBind(*peer, *ch))
                {
                    t.push(x.checked_sub(m).unwrap_or(*x));
                }
            }
        }
        t.into_iter().min()
    }
}
