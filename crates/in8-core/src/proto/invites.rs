//! Invitations this node listens for: the ones it issued (persisted, single use enforced
//! by the ledger) and the ones it hosts as an entry peer for another member; RSVPs
//! accepted for them (phase 2); expiry and revocation.

use std::time::{Duration, Instant};

use in8_artifact::{
    Candidate, CandidateKind, Capabilities, EntryPeer, Flags, Invitation, InviteId, InviteSecret,
    NodeId, SignedInvitation, SignedRsvp,
};
use in8_transport::PeerAuth;

use super::ice_events::{Hosting, Purpose, SessionCtx};
use super::{Action, Core, Event, InviteEnd, InviteProgress, Store};
use crate::error::{Error, Result};
use crate::events::{InviteOptions, Phase};

/// An invitation this node listens for.
pub(crate) struct Outstanding {
    pub(crate) signed: SignedInvitation,
    pub(crate) deadline: Instant,
    /// Revoked: still listened for until it expires, so a late invitee gets a clear
    /// refusal (the ledger refuses it) instead of silence.
    pub(crate) revoked: bool,
    /// Served for another member: this node is one of the invitation's entry peers.
    pub(crate) hosted: bool,
}

impl Core {
    /// Issues an invitation to this node's network and listens for it until it expires or
    /// is revoked. With `options.entry_peers > 0` it names up to that many linked members
    /// (publicly reachable ones first) as entry peers and asks them to serve it too.
    pub fn invite(&mut self, now: Instant, options: &InviteOptions) -> Result<SignedInvitation> {
        let wall = self.wall(now);
        let relay_ok = self.config.allow_relay;
        let candidates: Vec<Candidate> = self
            .candidates()
            .into_iter()
            .filter(|c| {
                let relay = c.kind == CandidateKind::Relay;
                if options.relay_only {
                    relay && relay_ok
                } else {
                    !relay || relay_ok
                }
            })
            .collect();
        if options.relay_only && candidates.is_empty() {
            return Err(Error::NoRelay);
        }
        let own = self.net.credential.membership().clone();
        if own.member != own.issuer && !own.capabilities.contains(Capabilities::INVITE) {
            return Err(Error::NotAllowed {
                what: "invite: this node's credential does not grant it",
            });
        }
        if self.net.credential.depth() >= in8_artifact::MAX_CHAIN_DEPTH {
            return Err(Error::NotAllowed {
                what: "invite: this node's credential is at the chain's depth limit; ask a member closer to the creator",
            });
        }
        let mut inv = Invitation::new(
            own.network,
            self.me,
            InviteSecret::generate(&mut self.rng),
            candidates,
            wall,
            options.ttl,
        );
        inv.uses = options.uses;
        // A member grants at most what it holds.
        inv.capabilities = Capabilities(options.capabilities.0 & own.capabilities.0);
        // Nothing outlives the issuer's own membership.
        inv.expires = inv.expires.min(own.expires);
        if !options.allow_rsvp {
            inv.flags = inv.flags.without(Flags::RSVP_ALLOWED);
        }
        if self.config.allow_relay {
            inv.flags = inv.flags.with(Flags::RELAY_ALLOWED);
        }
        inv.nat = self.nat.as_ref().and_then(super::behaviour);
        inv.entry_peers = self.pick_entry_peers(options.entry_peers);
        let hosts: Vec<NodeId> = inv.entry_peers.iter().map(|e| e.id).collect();
        let signed = inv.sign(&self.identity)?;
        if self.config.state_dir.is_some() {
            self.push_action(Action::Store(Store::Invitation(Box::new(signed.clone()))));
        }
        self.listen(now, signed.clone(), false)?;
        for peer in hosts {
            // A reachable member this node has no link to gets it over a link made for it.
            self.route_gossip(
                now,
                peer,
                super::wire::NetFrame::Host(Box::new(signed.clone())),
            );
        }
        Ok(signed)
    }

    /// Listens for an invitation (one this node issued, restored after a restart, or one
    /// it hosts as an entry peer).
    pub fn listen(&mut self, now: Instant, signed: SignedInvitation, hosted: bool) -> Result<()> {
        let id = signed.invitation().invite_id();
        if !self.invites.contains_key(&id) && self.invites.len() >= self.config.max_invitations {
            return Err(Error::Limit {
                what: "outstanding invitations",
                limit: self.config.max_invitations,
            });
        }
        let inv = signed.invitation();
        self.ice.listen(inv)?;
        // An invitation that lists only relay candidates hides this node's addresses: its
        // sessions check only from the relay too.
        if !inv.candidates.is_empty()
            && inv
                .candidates
                .iter()
                .all(|c| c.kind == CandidateKind::Relay)
        {
            self.ice.set_relay_only(id)?;
        }
        let left = inv
            .expires
            .as_unix()
            .saturating_sub(self.wall(now).as_unix());
        self.invites.insert(
            id,
            Outstanding {
                deadline: now + Duration::from_secs(left),
                signed,
                revoked: false,
                hosted,
            },
        );
        Ok(())
    }

    /// Inviter side of phase 2: verifies an RSVP against the outstanding invitation it
    /// answers and starts checking towards the responder at once. Returns the responder.
    pub fn accept_rsvp(&mut self, now: Instant, rsvp: &SignedRsvp) -> Result<NodeId> {
        let id = rsvp.rsvp().invite_id;
        let Some(o) = self.invites.get(&id).filter(|o| !o.hosted) else {
            return Err(Error::UnknownInvitation(id.to_string()));
        };
        let inv = o.signed.invitation().clone();
        let r = rsvp
            .verify(&inv, self.wall(now), &self.config.verify)?
            .clone();
        if inv.flags.contains(Flags::RELAY_ALLOWED) {
            self.permit(now, &r.candidates);
        }
        let session = self.ice.accept_rsvp(now, &inv, &r)?;
        let expect = match r.cert_fingerprint {
            Some(fingerprint) => PeerAuth::Fingerprint {
                fingerprint,
                node: Some(r.responder),
            },
            None => PeerAuth::Identity(r.responder),
        };
        self.push_event(Event::Invite {
            invite: id,
            event: InviteProgress::Phase2Started {
                responder: r.responder,
            },
        });
        let hosting = Hosting {
            invite: id,
            expect: expect.clone(),
            phase: Phase::Two,
            rsvp_candidates: r.candidates.clone(),
            peer_nat: r.nat,
        };
        match self.sessions.get_mut(&session) {
            Some(ctx) => {
                if let Purpose::Hosting(h) = &mut ctx.purpose {
                    *h = hosting;
                }
            }
            None => {
                self.sessions
                    .insert(session, SessionCtx::new(Purpose::Hosting(hosting), now));
            }
        }
        // Phase 2 begins for the inviter: the RSVP carries the invitee's NAT class.
        let peer = super::birthday::Peer {
            nat: r.nat.as_ref().map(super::class_of),
            candidates: &r.candidates,
            credentials: in8_ice::Credentials {
                password: inv.secret.invitee_password(&r.ufrag),
                ufrag: r.ufrag.clone(),
            },
            relay_allowed: inv.flags.contains(Flags::RELAY_ALLOWED),
            one_burst: true,
        };
        if let Err(why) = self.start_birthday(now, session, peer) {
            tracing::info!(?session, "phase 2 is unlikely to connect: {why}");
        }
        self.flush(now, None);
        Ok(r.responder)
    }

    /// Revokes an outstanding invitation: no further join is accepted (recorded in the
    /// ledger, so it survives a restart with the same state directory).
    pub fn revoke_invitation(&mut self, now: Instant, invite: InviteId) -> Result<()> {
        let wall = self.wall(now);
        let Some(o) = self.invites.get_mut(&invite) else {
            return Err(Error::UnknownInvitation(invite.to_string()));
        };
        let inv = o.signed.invitation();
        self.ledger.revoke(&invite, inv.expires, wall)?;
        if !o.revoked {
            o.revoked = true;
            self.push_event(Event::Invite {
                invite,
                event: InviteProgress::Ended(InviteEnd::Revoked),
            });
        }
        Ok(())
    }

    pub(crate) fn expire_invitations(&mut self, now: Instant) {
        let done: Vec<InviteId> = self
            .invites
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.ice.unlisten(&id);
            if let Some(o) = self.invites.remove(&id) {
                if !o.revoked {
                    self.push_event(Event::Invite {
                        invite: id,
                        event: InviteProgress::Ended(InviteEnd::Expired),
                    });
                }
                if self.config.state_dir.is_some() && !o.hosted {
                    self.push_action(Action::Store(Store::ForgetInvitation(id)));
                }
            }
        }
    }

    /// Up to `n` members (never more than the format's bound) that may issue credentials,
    /// with the candidates their records give: publicly reachable ones first (linked, then
    /// online members this node is not linked to, which anyone can dial), then other
    /// linked ones. A newcomer that cannot reach the issuer one-way reaches one of them.
    fn pick_entry_peers(&self, n: usize) -> Vec<EntryPeer> {
        let n = n.min(in8_artifact::MAX_ENTRY_PEERS - 1);
        if n == 0 {
            return Vec::new();
        }
        let linked: Vec<NodeId> = self.admitted_peers();
        let reachable_unlinked = self
            .net
            .directory
            .online()
            .filter(|(id, e)| e.record.record().nat.reachable() && !linked.contains(id))
            .map(|(id, _)| *id)
            .collect::<Vec<_>>();
        let mut c: Vec<(bool, bool, NodeId, Vec<Candidate>)> = linked
            .iter()
            .map(|p| (*p, true))
            .chain(reachable_unlinked.into_iter().map(|p| (p, false)))
            .filter_map(|(p, is_linked)| {
                let r = self.record_of(&p)?;
                let r = r.record();
                let m = r.credential.membership();
                let may = (m.member == m.issuer || m.capabilities.contains(Capabilities::INVITE))
                    && r.credential.depth() < in8_artifact::MAX_CHAIN_DEPTH;
                (may && !r.candidates.is_empty()).then(|| {
                    (
                        r.nat.reachable(),
                        is_linked,
                        p,
                        r.candidates
                            .iter()
                            .filter(|c| c.kind != CandidateKind::Relay)
                            .copied()
                            .collect(),
                    )
                })
            })
            .collect();
        c.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        c.into_iter()
            .take(n)
            .map(|(_, _, id, candidates)| EntryPeer { id, candidates })
            .collect()
    }

    /// A member asks this node to serve `signed` as one of its entry peers. Accepted only
    /// from the invitation's issuer, a member that may invite, for this node's network,
    /// when the invitation names this node; bounded by
    /// [`crate::NetworkConfig::max_hosted`].
    pub(crate) fn host_request(&mut self, now: Instant, from: NodeId, signed: SignedInvitation) {
        let wall = self.wall(now);
        let inv = signed.invitation();
        let network = self.net.credential.membership().network;
        let ok = inv.issuer == from
            && inv.network == network
            && inv.entry_peers.iter().any(|e| e.id == self.me)
            && signed
                .verify(wall, &self.config.verify, &in8_artifact::NoRevocations)
                .is_ok()
            && self.record_of(&from).is_some_and(|r| {
                let m = r.record().credential.membership();
                m.member == m.issuer || m.capabilities.contains(Capabilities::INVITE)
            });
        let hosted = self.invites.values().filter(|o| o.hosted).count();
        if !ok || hosted >= self.config.network.max_hosted {
            tracing::debug!(from = %from.short(), "host request refused");
            return;
        }
        if let Err(e) = self.listen(now, signed, true) {
            tracing::debug!("cannot host an invitation: {e}");
        }
    }

    /// An invitation this node issued or hosts was redeemed by `member` at another entry
    /// point: count the use here too, so the next attempt is refused as used up.
    pub(crate) fn redeemed_elsewhere(
        &mut self,
        now: Instant,
        by: NodeId,
        invite: InviteId,
        member: NodeId,
    ) {
        let Some(o) = self.invites.get(&invite) else {
            return;
        };
        let inv = o.signed.invitation();
        let entry = inv.issuer == by || inv.entry_peers.iter().any(|e| e.id == by);
        if !entry || by == self.me || !self.net.note_redemption(invite, member) {
            return;
        }
        let (uses, expires) = (inv.uses, inv.expires);
        if let Err(e) = self.ledger.redeem(&invite, uses, expires, self.wall(now)) {
            tracing::debug!(%invite, "redemption announced by {} not recorded: {e}", by.short());
        }
        self.push_event(Event::Network(super::NetEvent::Redeemed { invite, by }));
    }
}
