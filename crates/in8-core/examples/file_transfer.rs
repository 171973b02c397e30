//! A file transfer between two in8 nodes in this process, on loopback: a generated file
//! goes over a byte stream (tokio `AsyncRead` / `AsyncWrite` with backpressure) and its
//! BLAKE3 hash is checked on arrival.
//!
//! ```text
//! cargo run -p in8-core --example file_transfer            # 8 MiB
//! cargo run -p in8-core --release --example file_transfer -- 64
//! ```
//!
//! The stream carries a tiny header (size, BLAKE3) and then the bytes. `in8 send` /
//! `in8 recv` is the full version (file names, resume, progress bar; docs/cli.md).

use std::io::{Read, Write};
use std::time::Instant;

use in8_artifact::Identity;
use in8_core::{Config, InviteOptions, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bytes moved between the file and the stream at a time.
const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mib: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| "usage: file_transfer [MEBIBYTES]")?,
        None => 8,
    };
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("source.bin");
    let dest = dir.path().join("received.bin");
    let (size, hash) = generate(&source, mib * 1024 * 1024)?;
    println!("generated {mib} MiB, BLAKE3 {}", hex(&hash));

    let alice = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
    let bob = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
    let mut invite = alice.invite(InviteOptions::default()).await?;
    let bob_conn = bob.join(invite.invitation()).await?.connected().await?;
    let alice_conn = invite.joined().await?;

    let start = Instant::now();
    // Alice sends: header, then the file, then end of stream.
    let sender = tokio::spawn(async move {
        let mut stream = alice_conn.open_stream("file").await?;
        stream.write_all(&size.to_be_bytes()).await?;
        stream.write_all(&hash).await?;
        let mut file = std::fs::File::open(&source)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = tokio::task::block_in_place(|| file.read(&mut buf))?;
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await?;
        }
        stream.shutdown().await?;
        // Wait until Bob closes: he has everything then.
        alice_conn.closed().await;
        Ok::<_, Error>(())
    });

    // Bob receives into a file, hashing as the bytes arrive.
    let mut stream = bob_conn.accept_channel().await?.into_stream();
    let mut header = [0u8; 40];
    stream.read_exact(&mut header).await?;
    let expected_size = u64::from_be_bytes(header[..8].try_into()?);
    let expected_hash = &header[8..];
    let mut out = std::fs::File::create(&dest)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        tokio::task::block_in_place(|| out.write_all(&buf[..n]))?;
        hasher.update(&buf[..n]);
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    bob_conn.close().await?;
    sender.await??;

    let ok = got == expected_size && hasher.finalize().as_bytes() == expected_hash;
    println!(
        "received {got} bytes in {secs:.2} s ({:.1} MiB/s) over {}; BLAKE3 {}",
        got as f64 / secs / (1024.0 * 1024.0),
        bob_conn.path().kind.sdp_name(),
        if ok { "verified" } else { "MISMATCH" }
    );
    bob.close().await;
    alice.close().await;
    if !ok {
        return Err("the received file differs from the sent one".into());
    }
    Ok(())
}

/// Writes `len` pseudo-random bytes (xorshift) to `path`; returns the size and BLAKE3.
fn generate(path: &std::path::Path, len: usize) -> Result<(u64, [u8; 32]), Error> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut file = std::fs::File::create(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK);
        for b in &mut chunk[..n] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        file.write_all(&chunk[..n])?;
        hasher.update(&chunk[..n]);
        left -= n;
    }
    Ok((len as u64, *hasher.finalize().as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
