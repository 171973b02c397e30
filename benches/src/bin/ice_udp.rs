//! UDP load test of STUN Binding responders on loopback, one core each: coturn (plain
//! Binding requests), the in8 endpoint (plain), and the in8 endpoint (authenticated ICE
//! checks: MESSAGE-INTEGRITY + FINGERPRINT checked and added), all measured with the same
//! load generator in one run. Prints a markdown table.
//!
//! `cargo run --release -p in8-benches --bin ice_udp -- [--seconds N] [--batch]`
//! (needs `turnserver` from the Debian package `coturn`; without it the coturn row says so).
//!
//! CPU 1 runs the server under test, CPU 0 the generator (the machine has 2 cores).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use in8_artifact::{InviteSecret, fixtures};
use in8_ice::responder::{Amplification, ResponderConfig};
use in8_ice::stun::{Class, IntegrityKey, Message, MessageWriter, Method, TransactionId, attr};
use in8_ice::{Endpoint, EndpointConfig, LocalCandidate};

const WINDOW: usize = 64;

fn pin(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

fn invitation() -> in8_artifact::Invitation {
    let mut inv = fixtures::invitation();
    inv.secret = InviteSecret::from_bytes(&[9; 16]).unwrap_or_else(|_| fixtures::secret());
    inv
}

const CLIENT_UFRAG: &str = "loadgen1";

/// The generator's requests: plain (20 bytes + FINGERPRINT) or an authenticated ICE check.
fn request(auth: bool, i: u32) -> Vec<u8> {
    let mut tid = [0u8; 12];
    tid[..4].copy_from_slice(&i.to_be_bytes());
    let mut b = Vec::new();
    let mut w = MessageWriter::new(&mut b, Method::BINDING, Class::Request, TransactionId(tid));
    if auth {
        let inv = invitation();
        w.attr(
            attr::USERNAME,
            format!("{}:{CLIENT_UFRAG}", inv.secret.inviter_ufrag()).as_bytes(),
        )
        .attr_u32(attr::PRIORITY, 0x6e00_01ff)
        .attr_u64(attr::ICE_CONTROLLING, 0x1234_5678_9abc_def0)
        .attr(attr::USE_CANDIDATE, &[])
        .integrity(&IntegrityKey::short_term(&inv.secret.inviter_password()));
        w.fingerprint();
    }
    b
}

/// Closed-loop generator: keeps WINDOW requests outstanding, counts success responses;
/// sends and receives up to 32 datagrams per system call (sendmmsg / recvmmsg) so that it
/// is not the bottleneck. Answers the server's own checks (triggered checks, consent) as an
/// ICE peer would.
fn generate(server: SocketAddr, auth: bool, warmup: Duration, secs: Duration) -> Result<f64> {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;
    const N: usize = 32;
    pin(0);
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let fd = sock.as_raw_fd();
    let reqs: Vec<Vec<u8>> = (0..256).map(|i| request(auth, i)).collect();
    let my_key = IntegrityKey::short_term(&invitation().secret.invitee_password(CLIENT_UFRAG));
    let mut bufs = vec![[0u8; 1500]; N];
    let (start, mut counted_from, mut count) = (Instant::now(), None, 0u64);
    let (mut outstanding, mut timeouts, mut i) = (0usize, 0u32, 0usize);
    let mut replies: Vec<Vec<u8>> = Vec::new();
    loop {
        let now = Instant::now();
        if counted_from.is_none() && now >= start + warmup {
            counted_from = Some(now);
            count = 0;
        }
        if counted_from.is_some_and(|t| now >= t + secs) {
            break;
        }
        // Refill the window (and send answers to the server's checks) in batches.
        let mut batch: Vec<&[u8]> = replies.iter().map(Vec::as_slice).collect();
        while outstanding < WINDOW && batch.len() < N * 2 {
            batch.push(&reqs[i % reqs.len()]);
            i += 1;
            outstanding += 1;
        }
        for chunk in batch.chunks(N) {
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|b| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = vec![None; chunk.len()];
            let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
            sendmmsg(fd, &mut hdrs, &iovs, &addrs, [], MsgFlags::empty())?;
        }
        replies.clear();
        let mut lens = Vec::with_capacity(N);
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(N, None);
            match recvmmsg(
                fd,
                &mut hdrs,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(msgs) => lens.extend(msgs.map(|m| m.bytes)),
                Err(_) => {
                    // Timeout: assume the window was lost.
                    outstanding = 0;
                    timeouts += 1;
                }
            }
        }
        for (k, n) in lens.into_iter().enumerate() {
            let Ok(m) = Message::parse(&bufs[k][..n]) else {
                continue;
            };
            match m.class() {
                Class::Success => {
                    outstanding = outstanding.saturating_sub(1);
                    count += 1;
                }
                Class::Request => {
                    let mut out = Vec::with_capacity(80);
                    MessageWriter::new(
                        &mut out,
                        Method::BINDING,
                        Class::Success,
                        m.transaction_id(),
                    )
                    .xor_address(attr::XOR_MAPPED_ADDRESS, server)
                    .integrity(&my_key)
                    .fingerprint();
                    replies.push(out);
                }
                _ => outstanding = outstanding.saturating_sub(1),
            }
        }
    }
    let elapsed = counted_from.map_or(secs, |t| t.elapsed());
    eprintln!("generator: {server} auth={auth}: {timeouts} window timeouts");
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// The in8 responder: one socket, one core, the endpoint with one listened invitation.
fn serve(sock: UdpSocket, stop: Arc<AtomicBool>, batch: bool) -> Result<()> {
    pin(1);
    let local = sock.local_addr()?;
    let cfg = EndpointConfig {
        responder: Some(ResponderConfig {
            amplification: Amplification::Standard,
            other_address: None,
        }),
        ..EndpointConfig::default()
    };
    let mut e = Endpoint::new(cfg, 1);
    e.add_local_candidate(LocalCandidate::host(local, 0));
    e.listen(&invitation())?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    if batch {
        return serve_batched(sock, stop, e, local);
    }
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            e.handle_timeout(Instant::now());
            drain(&mut e, &sock)?;
            continue;
        };
        let now = Instant::now();
        let _ = e.handle_packet(now, from, local, &buf[..n]);
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
        }
        drain(&mut e, &sock)?;
    }
    Ok(())
}

fn drain(e: &mut Endpoint, sock: &UdpSocket) -> Result<()> {
    while let Some(t) = e.poll_transmit() {
        let _ = sock.send_to(&t.contents, t.to);
    }
    while e.poll_event().is_some() {}
    Ok(())
}

/// recvmmsg / sendmmsg: up to 32 datagrams per system call each way.
fn serve_batched(
    sock: UdpSocket,
    stop: Arc<AtomicBool>,
    mut e: Endpoint,
    local: SocketAddr,
) -> Result<()> {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;
    const N: usize = 32;
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; 1500]; N];
    let mut out: Vec<(Vec<u8>, SockaddrStorage)> = Vec::with_capacity(N * 2);
    while !stop.load(Ordering::Relaxed) {
        let mut received: Vec<(usize, SocketAddr)> = Vec::with_capacity(N);
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(N, None);
            match recvmmsg(
                fd,
                &mut hdrs,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(msgs) => {
                    for m in msgs {
                        let from = m
                            .address
                            .and_then(|a| a.as_sockaddr_in().map(|v| SocketAddr::V4((*v).into())));
                        if let Some(from) = from {
                            received.push((m.bytes, from));
                        }
                    }
                }
                Err(_) => {
                    e.handle_timeout(Instant::now());
                }
            }
        }
        let now = Instant::now();
        for (k, (n, from)) in received.iter().enumerate() {
            let _ = e.handle_packet(now, *from, local, &bufs[k][..*n]);
        }
        if e.poll_timeout().is_some_and(|t| t <= now) {
            e.handle_timeout(now);
        }
        out.clear();
        while let Some(t) = e.poll_transmit() {
            out.push((t.contents, SockaddrStorage::from(t.to)));
        }
        while e.poll_event().is_some() {}
        for chunk in out.chunks(N) {
            let iovs: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk.iter().map(|(_, a)| Some(*a)).collect();
            let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
            let _ = sendmmsg(fd, &mut hdrs, &iovs, &addrs, [], MsgFlags::empty());
        }
    }
    Ok(())
}

fn measure_in8(auth: bool, batch: bool, warmup: Duration, secs: Duration) -> Result<f64> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let addr = sock.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let server = std::thread::spawn(move || serve(sock, s2, batch));
    let rate = generate(addr, auth, warmup, secs);
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    rate
}

fn measure_coturn(warmup: Duration, secs: Duration) -> Result<Option<f64>> {
    if !std::path::Path::new("/usr/bin/turnserver").exists() {
        return Ok(None);
    }
    let cfg = in8_interop::coturn::CoturnConfig::loopback().context("coturn config")?;
    let coturn = in8_interop::coturn::Coturn::start(cfg, None).context("starting coturn")?;
    if let Some(pid) = coturn.pid() {
        // Every coturn thread on CPU 1, like the in8 server.
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &pid.to_string()])
            .output();
    }
    let rate = generate(coturn.stun_addr(), false, warmup, secs)?;
    drop(coturn);
    Ok(Some(rate))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5u64);
    let (warmup, dur) = (Duration::from_secs(1), Duration::from_secs(secs));
    let coturn = measure_coturn(warmup, dur)?;
    let plain = measure_in8(false, false, warmup, dur)?;
    let auth = measure_in8(true, false, warmup, dur)?;
    let auth_batched = measure_in8(true, true, warmup, dur)?;
    println!(
        "| responder (server on CPU 1, generator on CPU 0, window {WINDOW}) | requests | answered / s | vs coturn plain |"
    );
    println!("|---|---|---:|---:|");
    let base = coturn.unwrap_or(f64::NAN);
    match coturn {
        Some(c) => println!(
            "| coturn {} | plain Binding | {c:.0} | 1.00 |",
            coturn_version()
        ),
        None => println!("| coturn | plain Binding | not installed | |"),
    }
    println!(
        "| in8 endpoint, recvfrom/sendto | plain Binding | {plain:.0} | {:.2} |",
        plain / base
    );
    println!(
        "| in8 endpoint, recvfrom/sendto | authenticated ICE check | {auth:.0} | {:.2} |",
        auth / base
    );
    println!(
        "| in8 endpoint, recvmmsg/sendmmsg x32 | authenticated ICE check | {auth_batched:.0} | {:.2} |",
        auth_batched / base
    );
    Ok(())
}

fn coturn_version() -> String {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "coturn"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default()
}
