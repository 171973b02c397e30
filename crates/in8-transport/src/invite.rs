//! Sessions opened from an invitation (the join proof) and between members.
//!
//! The order of events, counted in round trips from the invitee's first ICE check
//! (docs/results/core.md has the measured timeline):
//!
//! 1. ICE check → response;
//! 2. ClientHello → ServerHello … ServerHelloDone (no HelloVerifyRequest, see
//!    `Config::skip_hello_verify`);
//! 3. the invitee's Certificate (with the join proof), ClientKeyExchange,
//!    CertificateVerify, Finished → the inviter's Finished, then its verdict and, when it
//!    accepts, its SCTP INIT in the same flight;
//! 4. INIT ACK → COOKIE ECHO: the invitee's association is up, the session is open.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use in8_artifact::{Invitation, Ledger};

use crate::cert::PeerAuth;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::join::{JoinProof, Refusal, decode_verdict, encode_verdict};
use crate::path::Via;
use crate::secure::{DtlsRole, SecureConn};
use crate::session::Session;

/// Whether a record looks like an SCTP packet between in8's SCTP ports (the 12-byte common
/// header starts with source and destination port 5000, RFC 9260 §3.1).
fn is_sctp(record: &[u8]) -> bool {
    record.len() >= 12 && record[..4] == [0x13, 0x88, 0x13, 0x88]
}

impl Endpoint {
    /// The invitee's side: DTLS client towards the inviter at `remote` (the nominated ICE
    /// pair), presenting its join certificate for `invitation` (which carries the join
    /// proof, [`Endpoint::join_certificate`]) and authenticating the inviter's certificate
    /// from the invitation (pinned fingerprint, or the issuer's binding); then waits for
    /// the inviter's verdict and answers its SCTP association.
    pub async fn join(&self, remote: SocketAddr, invitation: &Invitation) -> Result<Session> {
        self.join_via(remote, invitation, Via::Direct).await
    }

    /// [`Endpoint::join`] over a path that goes `via` a relay.
    pub async fn join_via(
        &self,
        remote: SocketAddr,
        invitation: &Invitation,
        via: Via,
    ) -> Result<Session> {
        let auth = PeerAuth::for_invitation(invitation);
        self.join_with(remote, invitation, auth, via).await
    }

    /// [`Endpoint::join_via`] towards one of the invitation's entry peers (seed claim 23):
    /// the peer's certificate is authenticated by `expect` (an entry peer's identity
    /// binding) instead of the issuer's, and the session's peer is the node `expect`
    /// names.
    pub async fn join_with(
        &self,
        remote: SocketAddr,
        invitation: &Invitation,
        expect: PeerAuth,
        via: Via,
    ) -> Result<Session> {
        let peer = match &expect {
            PeerAuth::Identity(n) => *n,
            PeerAuth::Fingerprint { node, .. } => node.unwrap_or(invitation.issuer),
            PeerAuth::AnyCertificate => invitation.issuer,
        };
        // Usually made already (in8-core makes it while ICE runs); otherwise a key pair and
        // four signatures, about 1 ms, off the async workers.
        let cert = match self.cached_join_certificate(&invitation.invite_id()) {
            Some(cert) => cert,
            None => {
                let (endpoint, inv) = (self.clone(), invitation.clone());
                tokio::task::spawn_blocking(move || endpoint.join_certificate(&inv))
                    .await
                    .map_err(|e| Error::Certificate {
                        reason: format!("making the join certificate failed: {e}"),
                    })??
            }
        };
        let conn = self
            .handshake(remote, DtlsRole::Client, expect, via, &cert)
            .await?;
        let first = match conn.recv_record(self.shared.config.join_timeout).await {
            Ok(r) => r,
            Err(e) => {
                conn.close().await;
                return Err(match e {
                    Error::Timeout { remote, after, .. } => Error::Timeout {
                        stage: "join verdict",
                        remote,
                        after,
                    },
                    e => e,
                });
            }
        };
        match decode_verdict(&first) {
            Ok(Ok(())) => conn.into_session_with(Some(peer), None).await,
            Ok(Err(refusal)) => {
                conn.close().await;
                Err(Error::JoinRefused(refusal))
            }
            // The verdict record was lost (DTLS does not retransmit application data) and
            // the inviter's SCTP INIT came first: the inviter starts SCTP only after it
            // accepted, so the INIT is the acceptance. SCTP repeats it until answered.
            Err(_) if is_sctp(&first) => conn.into_session_with(Some(peer), Some(first)).await,
            Err(e) => {
                conn.close().await;
                Err(e)
            }
        }
    }

    /// The inviter's side: DTLS server for the invitee at `remote`. `expect` authenticates
    /// the invitee's certificate when it is known (after an RSVP that pinned it), else use
    /// [`PeerAuth::AnyCertificate`] (phase 1). The invitee's certificate must carry a join
    /// proof for `invitation` made over that certificate's key; once the handshake is done
    /// the inviter verifies it, checks the validity period, redeems the invitation in
    /// `ledger`, sends its verdict and, when it accepts, starts SCTP (as the SCTP client)
    /// and returns the session. A missing, forged or copied proof, or a used-up, expired or
    /// revoked invitation, is answered with a refusal verdict, closes the DTLS session and
    /// returns [`Error::JoinRejected`]; nothing is redeemed.
    pub async fn accept_join(
        &self,
        remote: SocketAddr,
        invitation: &Invitation,
        ledger: Arc<dyn Ledger>,
        expect: PeerAuth,
    ) -> Result<Session> {
        self.accept_join_via(remote, invitation, ledger, expect, Via::Direct)
            .await
    }

    /// [`Endpoint::accept_join`] over a path that goes `via` a relay.
    pub async fn accept_join_via(
        &self,
        remote: SocketAddr,
        invitation: &Invitation,
        ledger: Arc<dyn Ledger>,
        expect: PeerAuth,
        via: Via,
    ) -> Result<Session> {
        self.reserve_accept(remote, via)?
            .accept_join(invitation, ledger, expect)
            .await
    }

    /// Registers the route for `remote` now, so that its DTLS datagrams are queued from this
    /// moment on, and returns the handle to run [`PendingAccept::accept_join`] on later
    /// (e.g. in a spawned task). Call it before answering the peer's first connectivity
    /// check, or its ClientHello may arrive before the route exists and be dropped (costing
    /// a DTLS retransmission, 500 ms by default). Dropping the handle releases the route.
    pub fn reserve_accept(&self, remote: SocketAddr, via: Via) -> Result<PendingAccept> {
        Ok(PendingAccept {
            endpoint: self.clone(),
            path: self.shared.open_path(remote, via)?,
        })
    }

    fn judge(
        &self,
        conn: &SecureConn,
        invitation: &Invitation,
        ledger: &dyn Ledger,
    ) -> std::result::Result<in8_artifact::NodeId, Refusal> {
        let raw = conn
            .peer_cert
            .join_proof
            .as_deref()
            .ok_or(Refusal::NotAJoinProof)?;
        let proof = JoinProof::decode(raw).map_err(|_| Refusal::NotAJoinProof)?;
        let node = proof.verify(invitation, &conn.peer_cert.key_binding)?;
        // A certificate that carries a binding must be bound to the proven identity.
        if let Some(bound) = conn.peer_bound_node()
            && bound != node
        {
            return Err(Refusal::BadProof);
        }
        let now = (self.shared.config.clock)();
        if now >= invitation.expires || invitation.not_before.is_some_and(|nb| now < nb) {
            return Err(Refusal::Expired);
        }
        match ledger.redeem(
            &invitation.invite_id(),
            invitation.uses,
            invitation.expires,
            now,
        ) {
            Ok(_) => Ok(node),
            Err(in8_artifact::Error::AlreadyUsed { .. }) => Err(Refusal::AlreadyUsed),
            Err(in8_artifact::Error::Revoked { .. }) => Err(Refusal::Revoked),
            Err(e) => {
                tracing::warn!("ledger refused the redemption: {e}");
                Err(Refusal::Unavailable)
            }
        }
    }

    /// A session between two nodes that know each other's certificates (members, or after
    /// an RSVP): mutual authentication, no join proof. The ICE controlling side should be
    /// the [`DtlsRole::Client`].
    pub async fn connect(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        peer: PeerAuth,
    ) -> Result<Session> {
        self.connect_via(remote, role, peer, Via::Direct).await
    }

    /// [`Endpoint::connect`] over a path that goes `via` a relay.
    pub async fn connect_via(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        peer: PeerAuth,
        via: Via,
    ) -> Result<Session> {
        let node = expected_node(&peer);
        let conn = self.connect_dtls_via(remote, role, peer, via).await?;
        let node = node.or(conn.peer_bound_node());
        conn.into_session_with(node, None).await
    }
}

fn expected_node(peer: &PeerAuth) -> Option<in8_artifact::NodeId> {
    match peer {
        PeerAuth::Identity(n) => Some(*n),
        PeerAuth::Fingerprint { node, .. } => *node,
        PeerAuth::AnyCertificate => None,
    }
}

/// A route reserved for an invitee's DTLS datagrams ([`Endpoint::reserve_accept`]).
pub struct PendingAccept {
    endpoint: Endpoint,
    path: Arc<crate::path::PathConn>,
}

impl std::fmt::Debug for PendingAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAccept")
            .field("remote", &self.path.remote())
            .finish_non_exhaustive()
    }
}

impl PendingAccept {
    /// Runs [`Endpoint::connect`] as the DTLS server on the reserved route: a session
    /// between members (mutual authentication by `peer`, no join proof).
    pub async fn connect(self, peer: PeerAuth) -> Result<Session> {
        let endpoint = self.endpoint;
        let cert = endpoint.shared.cert.clone();
        let node = expected_node(&peer);
        let conn = endpoint
            .handshake_on(self.path, DtlsRole::Server, peer, &cert)
            .await?;
        let node = node.or(conn.peer_bound_node());
        conn.into_session_with(node, None).await
    }

    /// Runs [`Endpoint::accept_join`] on the reserved route.
    pub async fn accept_join(
        self,
        invitation: &Invitation,
        ledger: Arc<dyn Ledger>,
        expect: PeerAuth,
    ) -> Result<Session> {
        let endpoint = self.endpoint;
        let cert = endpoint.shared.cert.clone();
        let conn = endpoint
            .handshake_on(self.path, DtlsRole::Server, expect, &cert)
            .await?;
        match endpoint.judge(&conn, invitation, ledger.as_ref()) {
            Ok(node) => {
                let verdict = Bytes::copy_from_slice(&encode_verdict(Ok(())));
                if let Err(e) = conn.send_record(&verdict).await {
                    conn.close().await;
                    return Err(e);
                }
                conn.into_session_with(Some(node), None).await
            }
            Err(refusal) => {
                // Sent twice: the session closes right after, so a lost refusal could not
                // be repeated on request.
                for _ in 0..2 {
                    let _ = conn.send_record(&encode_verdict(Err(refusal))).await;
                }
                conn.close().await;
                Err(Error::JoinRejected(refusal))
            }
        }
    }
}
