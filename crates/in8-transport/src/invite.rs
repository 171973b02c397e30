//! Sessions opened from an invitation (the join proof) and between members.

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use bytes::Bytes;
use in8_artifact::{Invitation, Ledger};

use crate::cert::PeerAuth;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::join::{JoinProof, Refusal, decode_verdict, encode_verdict};
use crate::path::Via;
use crate::secure::{DtlsRole, SecureConn};
use crate::session::Session;

impl Endpoint {
    /// The invitee's side: DTLS client towards the inviter at `remote` (the nominated ICE
    /// pair), authenticating the inviter's certificate from the invitation (pinned
    /// fingerprint, or the issuer's binding); then sends the join proof as the first
    /// message and waits for the inviter's verdict.
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
        let conn = self
            .connect_dtls_via(
                remote,
                DtlsRole::Client,
                PeerAuth::for_invitation(invitation),
                via,
            )
            .await?;
        let proof = JoinProof::create(&self.shared.identity, invitation, &conn.channel_binding());
        let verdict =
            exchange_proof(&conn, &proof.to_bytes(), self.shared.config.join_timeout).await;
        match verdict {
            Ok(Ok(())) => conn.into_session(Some(invitation.issuer)).await,
            Ok(Err(refusal)) => {
                conn.close().await;
                Err(Error::JoinRefused(refusal))
            }
            Err(e) => {
                conn.close().await;
                Err(e)
            }
        }
    }

    /// The inviter's side: DTLS server for the invitee at `remote`. `expect` authenticates
    /// the invitee's certificate when it is known (after an RSVP that pinned it), else use
    /// [`PeerAuth::AnyCertificate`] (phase 1). The first application message must be a
    /// join proof for `invitation` bound to this DTLS session; the inviter verifies it,
    /// checks the validity period, redeems the invitation in `ledger`, answers with a
    /// verdict, and only then starts SCTP and returns the session. Anything else — data
    /// before the proof, a forged or replayed proof, a used-up invitation — closes the
    /// DTLS session and returns [`Error::JoinRejected`]; nothing is redeemed.
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
        let conn = self
            .connect_dtls_via(remote, DtlsRole::Server, expect, via)
            .await?;
        let first = match conn.recv_record(self.shared.config.join_timeout).await {
            Ok(r) => r,
            Err(e) => {
                conn.close().await;
                return Err(e);
            }
        };
        match self.judge(&conn, &first, invitation, ledger.as_ref()) {
            Ok(node) => {
                let verdict = Bytes::copy_from_slice(&encode_verdict(Ok(())));
                conn.send_record(&verdict).await?;
                // A repeated proof (our verdict was lost) is answered again by the session.
                conn.into_session_answering(Some(node), Some((first, verdict)))
                    .await
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

    fn judge(
        &self,
        conn: &SecureConn,
        first: &[u8],
        invitation: &Invitation,
        ledger: &dyn Ledger,
    ) -> std::result::Result<in8_artifact::NodeId, Refusal> {
        // Any data before the proof closes the session: the first record must parse as a
        // join proof.
        let proof = JoinProof::decode(first).map_err(|_| Refusal::NotAJoinProof)?;
        let node = proof.verify(invitation, &conn.channel_binding())?;
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
        let node = match &peer {
            PeerAuth::Identity(n) => Some(*n),
            PeerAuth::Fingerprint { node, .. } => *node,
            PeerAuth::AnyCertificate => None,
        };
        let conn = self.connect_dtls(remote, role, peer).await?;
        let node = node.or(conn.peer_bound_node());
        conn.into_session(node).await
    }
}

/// Sends the join proof and waits for the verdict, sending the proof again (with doubling
/// intervals from 200 ms) while no verdict arrives: DTLS application records are not
/// retransmitted by DTLS itself.
async fn exchange_proof(
    conn: &SecureConn,
    proof: &[u8],
    limit: Duration,
) -> Result<crate::join::Verdict> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut interval = Duration::from_millis(200);
    loop {
        conn.send_record(proof).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                stage: "join verdict",
                remote: conn.remote_addr(),
                after: limit,
            });
        }
        match conn.recv_record(interval.min(left)).await {
            Ok(record) => return decode_verdict(&record),
            Err(Error::Timeout { .. }) => interval = (interval * 2).min(Duration::from_secs(2)),
            Err(e) => return Err(e),
        }
    }
}
