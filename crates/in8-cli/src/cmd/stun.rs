//! `in8 stun`: a standalone STUN server answering Binding requests (RFC 8489) with in8-ice's
//! responder; with `--alternate`, the RFC 5780 NAT behaviour discovery usage as well (four
//! sockets: two IPs times two ports).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use in8_ice::responder::{self, Amplification, ResponderConfig};
use in8_ice::stun::{Class, Message, MessageWriter, Method, attr};
use serde_json::json;
use tokio::net::UdpSocket;

use crate::output::Output;

/// Largest datagram read (a Binding request is far smaller).
const MAX_DATAGRAM: usize = 2048;

/// Arguments of `in8 stun`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Address and UDP port to answer on.
    #[arg(long, default_value = "0.0.0.0:3478")]
    listen: SocketAddr,
    /// RFC 5780: another IP address of this machine and a second port (IP:PORT, port 0 =
    /// any) to answer "change IP / change port" requests from; advertised as OTHER-ADDRESS
    /// so `in8 nat` can test filtering. Needs a specific --listen IP.
    #[arg(long, value_name = "IP:PORT")]
    alternate: Option<SocketAddr>,
}

/// One of the server's sockets: which IP (primary or alternate) and which port it has.
struct Bound {
    socket: UdpSocket,
    addr: SocketAddr,
    alt_ip: bool,
    alt_port: bool,
}

/// The sockets, indexed by `(alt_ip, alt_port)` as `2 * alt_ip + alt_port`; one socket
/// without `--alternate`.
struct Server {
    sockets: Vec<Bound>,
    answered: AtomicU64,
}

impl Server {
    fn get(&self, alt_ip: bool, alt_port: bool) -> Option<&Bound> {
        self.sockets
            .iter()
            .find(|b| b.alt_ip == alt_ip && b.alt_port == alt_port)
    }

    fn rfc5780(&self) -> bool {
        self.sockets.len() == 4
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<UdpSocket> {
    UdpSocket::bind(addr).await.with_context(|| {
        format!("cannot listen on UDP {addr} ({what}): is the port taken? choose another one")
    })
}

async fn open(a: &Args) -> Result<Server> {
    let primary = bind(a.listen, "primary").await?;
    let p = primary.local_addr()?;
    let mut sockets = vec![Bound {
        socket: primary,
        addr: p,
        alt_ip: false,
        alt_port: false,
    }];
    if let Some(alt) = a.alternate {
        if p.ip().is_unspecified() {
            bail!(
                "--alternate needs a specific --listen IP (e.g. --listen 192.0.2.1:3478 --alternate 192.0.2.2:3479): answers must come from known addresses"
            );
        }
        if alt.ip() == p.ip() || alt.is_ipv4() != p.is_ipv4() || alt.ip().is_unspecified() {
            bail!(
                "--alternate must be another IP address of this machine, of the same family as --listen {}",
                p.ip()
            );
        }
        if alt.port() == p.port() {
            bail!(
                "--alternate needs a port other than {} (or 0 for any)",
                p.port()
            );
        }
        // Second port on the primary IP first, so port 0 picks one free there.
        let aq = bind(
            SocketAddr::new(p.ip(), alt.port()),
            "primary IP, alternate port",
        )
        .await?;
        let q = aq.local_addr()?.port();
        let bp = bind(
            SocketAddr::new(alt.ip(), p.port()),
            "alternate IP, primary port",
        )
        .await?;
        let bq = bind(SocketAddr::new(alt.ip(), q), "alternate IP and port").await?;
        for (socket, alt_ip, alt_port) in [(aq, false, true), (bp, true, false), (bq, true, true)] {
            let addr = socket.local_addr()?;
            sockets.push(Bound {
                socket,
                addr,
                alt_ip,
                alt_port,
            });
        }
    }
    Ok(Server {
        sockets,
        answered: AtomicU64::new(0),
    })
}

/// The answer to one datagram received on socket `on`: the bytes and which socket sends
/// them, or `None` to stay silent.
fn answer(
    server: &Server,
    on: &Bound,
    from: SocketAddr,
    datagram: &[u8],
) -> Option<(Vec<u8>, usize)> {
    let msg = Message::parse(datagram).ok()?;
    // RFC 5780 §7.2: CHANGE-REQUEST "contains two flags to control the IP address and port
    // that the server uses to send the response"; "change IP" is 0x4, "change port" 0x2.
    let flags = msg.get_u32(attr::CHANGE_REQUEST).unwrap_or(0);
    let (change_ip, change_port) = (flags & 0x4 != 0, flags & 0x2 != 0);
    let mut out = Vec::with_capacity(96);
    if (change_ip || change_port) && !server.rfc5780() {
        // This server cannot answer from another address: say so rather than answer from
        // the same one (a client would take that for an open filter).
        if msg.method() != Method::BINDING || msg.class() != Class::Request {
            return None;
        }
        let mut w = MessageWriter::new(
            &mut out,
            Method::BINDING,
            Class::Error,
            msg.transaction_id(),
        );
        w.error_code(
            420,
            "Unknown Attribute: no alternate address (in8 stun --alternate)",
        );
        w.attr(
            attr::UNKNOWN_ATTRIBUTES,
            &attr::CHANGE_REQUEST.to_be_bytes(),
        );
        if msg.has_fingerprint() {
            w.fingerprint();
        }
        return Some((out, 0));
    }
    let reply_ip = on.alt_ip ^ change_ip;
    let reply_port = on.alt_port ^ change_port;
    let index = server
        .sockets
        .iter()
        .position(|b| b.alt_ip == reply_ip && b.alt_port == reply_port)?;
    // RFC 5780 §7.4, OTHER-ADDRESS: "the source IP address and port that would be used if
    // the client requested the 'change IP' and 'change port' behavior".
    let other = server.get(!on.alt_ip, !on.alt_port).map(|b| b.addr);
    let config = ResponderConfig {
        amplification: Amplification::Standard,
        other_address: other,
    };
    responder::respond(&config, from, server.sockets[index].addr, &msg, &mut out)
        .then_some((out, index))
}

async fn serve(server: Arc<Server>, index: usize) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let on = &server.sockets[index];
        let (n, from) = match on.socket.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors about earlier answers surface here on Linux: not fatal.
            Err(e) => {
                tracing::debug!(error = %e, "receive error");
                continue;
            }
        };
        if let Some((reply, via)) = answer(&server, on, from, &buf[..n]) {
            let sock = &server.sockets[via];
            if sock.socket.send_to(&reply, from).await.is_ok() {
                server.answered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, via = %sock.addr, "answered a Binding request");
            }
        }
    }
}

pub(crate) fn run(a: &Args, out: &Output) -> Result<ExitCode> {
    crate::runtime()?.block_on(async {
        let server = Arc::new(open(a).await?);
        let addrs: Vec<String> = server.sockets.iter().map(|b| b.addr.to_string()).collect();
        let primary = server.sockets[0].addr;
        let other = server.get(true, true).map(|b| b.addr);
        out.event(json!({"event": "listening", "addr": primary.to_string(),
            "other_address": other.map(|o| o.to_string()), "sockets": addrs}));
        out.note(format!(
            "STUN server on UDP {primary}{}: answering Binding requests (RFC 8489); point peers at it with --stun {}. Ctrl-C stops it.",
            other
                .map(|o| format!(", alternate {o} (RFC 5780, for `in8 nat`)"))
                .unwrap_or_default(),
            reachable(primary),
        ));
        let tasks: Vec<_> = (0..server.sockets.len())
            .map(|i| tokio::spawn(serve(server.clone(), i)))
            .collect();
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        for t in &tasks {
            t.abort();
        }
        let n = server.answered.load(Ordering::Relaxed);
        out.event(json!({"event": "stopped", "answered": n}));
        out.note(format!("stopped after answering {n} request(s)"));
        Ok(ExitCode::SUCCESS)
    })
}

/// How to name this server to others: `HOST:PORT` with a placeholder for a wildcard bind.
fn reachable(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("<this machine's IP>:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("<this machine's IP>:{}", addr.port()),
        _ => addr.to_string(),
    }
}
