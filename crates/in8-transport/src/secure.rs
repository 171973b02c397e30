//! The DTLS layer: a mutually authenticated DTLS 1.2 connection over one path of the
//! shared socket, before any SCTP runs on it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dtls::cipher_suite::CipherSuiteId;
use dtls::config::{ClientAuthType, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use in8_artifact::NodeId;
use webrtc_util::KeyingMaterialExporter;

use crate::cert::{LocalCertificate, PeerAuth, PeerCertInfo, PeerCertSlot, verify_peer};
use crate::endpoint::{Endpoint, Shared};
use crate::error::{Error, Result};
use crate::join::{BINDING_LEN, EXPORTER_LABEL};
use crate::path::{PathConn, Via};

/// Which side of the DTLS handshake this node plays. The invitee is the client, the
/// inviter the server; between members the ICE controlling agent is the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello; opens data channels on even stream ids (RFC 8832 §6).
    Client,
    /// Answers it; opens data channels on odd stream ids.
    Server,
}

/// Largest DTLS record payload read at once.
pub(crate) const RECORD_BUF: usize = 16 * 1024;

/// ECDHE only: every session key comes from an ephemeral X25519 / P-256 exchange, so a
/// later compromise of an identity or certificate key does not reveal past traffic.
const CIPHER_SUITES: [CipherSuiteId; 2] = [
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
];

/// An established, authenticated DTLS connection (no SCTP yet). Obtained from
/// [`Endpoint::connect_dtls`]; the join flows and [`SecureConn::into_session`] build on it.
pub struct SecureConn {
    pub(crate) endpoint: Arc<Shared>,
    pub(crate) dtls: Arc<DTLSConn>,
    pub(crate) path: Arc<PathConn>,
    pub(crate) role: DtlsRole,
    pub(crate) peer_cert: PeerCertInfo,
    pub(crate) binding: [u8; BINDING_LEN],
}

impl std::fmt::Debug for SecureConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureConn")
            .field("remote", &self.path.remote())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn dtls_config(
    shared: &Shared,
    role: DtlsRole,
    auth: PeerAuth,
    slot: PeerCertSlot,
    cert: &LocalCertificate,
) -> dtls::config::Config {
    let verify = move |certs: &[Vec<u8>], _chains: &[rustls_pki_types::CertificateDer<'static>]| {
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(leaf) = certs.first() else {
            s.rejection = Some("the peer sent no certificate".into());
            return Err(dtls::Error::ErrInvalidCertificate);
        };
        match verify_peer(&auth, leaf) {
            Ok(info) => {
                *s = info;
                Ok(())
            }
            Err(reason) => {
                s.rejection = Some(reason);
                Err(dtls::Error::ErrInvalidCertificate)
            }
        }
    };
    let c = &shared.config;
    dtls::config::Config {
        certificates: vec![cert.dtls.clone()],
        cipher_suites: CIPHER_SUITES.to_vec(),
        extended_master_secret: ExtendedMasterSecretType::Require,
        // Authentication is ours (identity binding or pinned fingerprint), not web PKI:
        // skip chain validation and check the leaf in `verify_peer_certificate`.
        insecure_skip_verify: true,
        client_auth: match role {
            DtlsRole::Server => ClientAuthType::RequireAnyClientCert,
            DtlsRole::Client => ClientAuthType::NoClientCert,
        },
        verify_peer_certificate: Some(Arc::new(verify)),
        server_name: "in8".into(),
        // RFC 6347 §4.2.1: "DTLS servers SHOULD perform a cookie exchange whenever a new
        // handshake is being performed." The cookie proves that the client receives at
        // its source address; here a DTLS server only runs for an address its caller
        // named, and in8-core starts it only after ICE proved exactly that (a check of its
        // own answered from the address, RFC 8445 §7.2.5.3.2), so the exchange would cost
        // a round trip and add nothing (`Config::skip_hello_verify`, third_party/dtls).
        insecure_skip_verify_hello: role == DtlsRole::Server && c.skip_hello_verify,
        flight_interval: c.flight_interval,
        mtu: c.mtu,
        ..Default::default()
    }
}

impl Endpoint {
    /// Runs a DTLS handshake with `remote` over the shared socket, authenticating the peer's
    /// certificate by `auth`. A wrong certificate aborts the handshake (the peer gets a
    /// `bad_certificate` alert) and returns [`Error::PeerCertificate`].
    pub async fn connect_dtls(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        auth: PeerAuth,
    ) -> Result<SecureConn> {
        self.connect_dtls_via(remote, role, auth, Via::Direct).await
    }

    /// [`Endpoint::connect_dtls`] on a path whose datagrams travel `via` a relay.
    pub async fn connect_dtls_via(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        auth: PeerAuth,
        via: Via,
    ) -> Result<SecureConn> {
        let cert = self.shared.cert.clone();
        self.handshake(remote, role, auth, via, &cert).await
    }

    /// [`Endpoint::connect_dtls`] presenting `cert` instead of this node's certificate
    /// (e.g. a join certificate from [`Endpoint::join_certificate`], or one made by a test
    /// harness with [`LocalCertificate::generate_with_join_proof`]).
    pub async fn connect_dtls_presenting(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        auth: PeerAuth,
        cert: &LocalCertificate,
    ) -> Result<SecureConn> {
        self.handshake(remote, role, auth, Via::Direct, cert).await
    }

    /// The DTLS handshake, presenting `cert` (this node's certificate, or a join
    /// certificate carrying a join proof).
    pub(crate) async fn handshake(
        &self,
        remote: SocketAddr,
        role: DtlsRole,
        auth: PeerAuth,
        via: Via,
        cert: &LocalCertificate,
    ) -> Result<SecureConn> {
        let path = self.shared.open_path(remote, via)?;
        self.handshake_on(path, role, auth, cert).await
    }

    /// The DTLS handshake on a path already opened (its route registered).
    pub(crate) async fn handshake_on(
        &self,
        path: Arc<PathConn>,
        role: DtlsRole,
        auth: PeerAuth,
        cert: &LocalCertificate,
    ) -> Result<SecureConn> {
        let shared = &self.shared;
        let remote = path.remote();
        let slot = PeerCertSlot::default();
        let config = dtls_config(shared, role, auth, Arc::clone(&slot), cert);
        let conn: Arc<dyn webrtc_util::Conn + Send + Sync> = Arc::clone(&path) as _;
        let limit = shared.config.handshake_timeout;
        let result = tokio::time::timeout(
            limit,
            DTLSConn::new(conn, config, role == DtlsRole::Client, None),
        )
        .await;
        let rejection = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rejection
            .take();
        let dtls = match result {
            Err(_) => {
                path.shut();
                return Err(Error::Timeout {
                    stage: "DTLS handshake",
                    remote,
                    after: limit,
                });
            }
            Ok(Err(e)) => {
                path.shut();
                return Err(match rejection {
                    Some(reason) => Error::PeerCertificate { reason },
                    None => Error::Handshake {
                        remote,
                        reason: e.to_string(),
                    },
                });
            }
            Ok(Ok(c)) => Arc::new(c),
        };
        let peer_cert = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let exported = dtls
            .connection_state()
            .await
            .export_keying_material(EXPORTER_LABEL, &[], BINDING_LEN)
            .await;
        let mut binding = [0u8; BINDING_LEN];
        match exported {
            Ok(v) if v.len() == BINDING_LEN => binding.copy_from_slice(&v),
            other => {
                let _ = dtls.close().await;
                path.shut();
                return Err(Error::Handshake {
                    remote,
                    reason: format!("keying material exporter failed: {other:?}"),
                });
            }
        }
        Ok(SecureConn {
            endpoint: Arc::clone(shared),
            dtls,
            path,
            role,
            peer_cert,
            binding,
        })
    }
}

impl SecureConn {
    /// The channel-binding value of this DTLS session (RFC 5705 exporter, label
    /// [`EXPORTER_LABEL`], 32 bytes). Equal on both sides, different for every session.
    pub fn channel_binding(&self) -> [u8; BINDING_LEN] {
        self.binding
    }

    /// SHA-256 fingerprint of the peer's certificate.
    pub fn peer_fingerprint(&self) -> Option<[u8; 32]> {
        self.peer_cert.fingerprint
    }

    /// The node id the peer's certificate is bound to, if it carries a valid binding.
    pub fn peer_bound_node(&self) -> Option<NodeId> {
        self.peer_cert.bound_node
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.path.remote()
    }

    /// This side's DTLS role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Sends one DTLS application record.
    pub async fn send_record(&self, data: &[u8]) -> Result<()> {
        self.dtls
            .write(data, None)
            .await
            .map(|_| ())
            .map_err(|e| Error::Handshake {
                remote: self.remote_addr(),
                reason: e.to_string(),
            })
    }

    /// Receives one DTLS application record, waiting at most `limit`.
    pub async fn recv_record(&self, limit: std::time::Duration) -> Result<Bytes> {
        let mut buf = vec![0u8; RECORD_BUF];
        match tokio::time::timeout(limit, self.dtls.read(&mut buf, None)).await {
            Err(_) => Err(Error::Timeout {
                stage: "waiting for a DTLS record",
                remote: self.remote_addr(),
                after: limit,
            }),
            Ok(Err(dtls::Error::ErrAlertFatalOrClose)) => {
                Err(Error::Closed(crate::CloseReason::PeerClosed))
            }
            Ok(Err(e)) => Err(Error::Handshake {
                remote: self.remote_addr(),
                reason: e.to_string(),
            }),
            Ok(Ok(n)) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Closes the DTLS connection (close_notify) and releases the path.
    pub async fn close(self) {
        let _ = self.dtls.close().await;
        self.path.shut();
    }
}
