//! Data over established sessions on loopback: byte-stream transfers checked with BLAKE3,
//! many small messages on many channels interleaved, chunked long messages, unordered and
//! partially reliable channels, backpressure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use helpers::*;
use in8_transport::{ChannelOptions, Error, PIECE, Reliability, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Streams `len` bytes from `from` to `to` and returns (sent hash, received hash).
async fn stream_transfer(from: &Session, to: &Session, len: usize) -> (blake3::Hash, blake3::Hash) {
    let mut tx = from.open_stream("bulk").await.unwrap();
    let writer = tokio::spawn(async move {
        let mut hasher = blake3::Hasher::new();
        let mut left = len;
        let mut seed = 0u64;
        while left > 0 {
            let n = left.min(256 * 1024);
            let chunk = payload(n, seed);
            seed += 1;
            hasher.update(&chunk);
            tx.write_all(&chunk).await.unwrap();
            left -= n;
        }
        tx.shutdown().await.unwrap();
        (hasher.finalize(), tx)
    });
    let mut rx = to.accept_channel().await.unwrap().into_stream();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    loop {
        let n = rx.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got += n;
        hasher.update(&buf[..n]);
    }
    assert_eq!(got, len);
    let (sent, tx) = writer.await.unwrap();
    tx.close().await.unwrap();
    (sent, hasher.finalize())
}

/// The 100 MB transfer of the issue (about 25 s in the dev profile on the 2-core machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_over_a_byte_stream_arrive_intact() {
    let (a, b, _, _) = joined_pair(config()).await;
    let (sent, got) = stream_transfer(&b, &a, 100 * 1024 * 1024).await;
    assert_eq!(sent, got);
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_small_messages_on_sixteen_interleaved_channels() {
    let (a, b, _, _) = joined_pair(config()).await;
    // Channels 0..8 reliable ordered, 8..12 reliable unordered, 12..16 ordered with
    // partial reliability (on loopback nothing is lost, so all must arrive).
    let mut senders = Vec::new();
    for i in 0..16u32 {
        let mut opts = ChannelOptions::reliable(format!("ch{i}"));
        if (8..12).contains(&i) {
            opts = opts.unordered();
        }
        if i >= 12 {
            opts = opts.max_retransmits(5);
        }
        senders.push(b.open_channel(opts).await.unwrap());
    }
    let mut receivers = HashMap::new();
    for _ in 0..16 {
        let c = a.accept_channel().await.unwrap();
        receivers.insert(c.label().to_owned(), c);
    }
    assert!(receivers["ch9"].options().unordered);
    assert_eq!(
        receivers["ch13"].options().reliability,
        Reliability::MaxRetransmits(5)
    );
    // 1,000 messages in all, round-robin over the channels, sent concurrently.
    let send = tokio::spawn(async move {
        for n in 0..1000u32 {
            let ch = &senders[(n % 16) as usize];
            ch.send(Bytes::from(format!("{}:{n}", ch.label())))
                .await
                .unwrap();
        }
        senders
    });
    let mut tasks = Vec::new();
    for (label, ch) in receivers {
        tasks.push(tokio::spawn(async move {
            let i: u32 = label[2..].parse().unwrap();
            let expected: Vec<u32> = (0..1000).filter(|n| n % 16 == i).collect();
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let m = ch.recv().await.unwrap().unwrap();
                let s = std::str::from_utf8(&m).unwrap();
                let (l, n) = s.split_once(':').unwrap();
                assert_eq!(l, label);
                got.push(n.parse::<u32>().unwrap());
            }
            if ch.options().unordered {
                got.sort_unstable();
            }
            assert_eq!(got, expected, "channel {label}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    send.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_messages_are_chunked_transparently() {
    let (a, b, _, _) = joined_pair(config()).await;
    let tx = b
        .open_channel(ChannelOptions::reliable("big"))
        .await
        .unwrap();
    let rx_fut = a.accept_channel();
    let sizes = [
        0,
        1,
        PIECE - 1,
        PIECE,
        PIECE + 1,
        3 * PIECE,
        1_000_000,
        0,
        17,
    ];
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| payload(n, i as u64))
        .collect();
    let m2 = msgs.clone();
    let send = tokio::spawn(async move {
        for m in m2 {
            tx.send(m).await.unwrap();
        }
        tx
    });
    let rx = rx_fut.await.unwrap();
    for m in &msgs {
        let got = rx.recv().await.unwrap().unwrap();
        assert_eq!(got.len(), m.len());
        assert_eq!(&got[..], &m[..]);
    }
    let tx = send.await.unwrap();
    // Above the configured maximum: refused before anything is sent.
    let too_big = vec![0u8; config().max_message_size + 1];
    assert!(matches!(
        tx.send(too_big).await,
        Err(Error::MessageTooLarge { .. })
    ));
    // Unordered channels cannot reassemble, so they refuse a full piece.
    let u = b
        .open_channel(ChannelOptions::reliable("u").unordered())
        .await
        .unwrap();
    assert!(matches!(
        u.send(vec![0u8; PIECE]).await,
        Err(Error::MessageTooLarge { .. })
    ));
    u.send(vec![1u8; PIECE - 1]).await.unwrap();
    let ur = a.accept_channel().await.unwrap();
    assert_eq!(ur.recv().await.unwrap().unwrap().len(), PIECE - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_the_sender_back() {
    let mut cfg = config();
    cfg.send_buffer = 256 * 1024;
    let (a, b, _, _) = joined_pair(cfg.clone()).await;
    let tx = b
        .open_channel(ChannelOptions::reliable("slow"))
        .await
        .unwrap();
    tx.send(Bytes::from_static(b"hi")).await.unwrap();
    let rx = a.accept_channel().await.unwrap();
    assert_eq!(rx.recv().await.unwrap().unwrap(), Bytes::from_static(b"hi"));
    // Nobody reads now. The sender must stall once the peer's receive window (1 MiB)
    // and our send buffer (256 KiB) are full, instead of queueing 64 MiB.
    let tx2 = tx.clone();
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        for _ in 0..1024 {
            tx2.send(vec![7u8; 64 * 1024 - 1]).await.unwrap();
            sent += 1;
        }
        sent
    });
    // Wait until the writer is blocked: the buffered amount stops moving.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = tx.buffered_amount();
        if now == last {
            break;
        }
        last = now;
    }
    assert!(
        !writer.is_finished(),
        "the writer should be blocked by backpressure"
    );
    let bound = cfg.send_buffer + PIECE;
    assert!(
        tx.buffered_amount() <= bound,
        "{} > {bound}",
        tx.buffered_amount()
    );
    // Reading everything releases the writer.
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 1024 {
            rx.recv().await.unwrap().unwrap();
            n += 1;
        }
    });
    assert_eq!(writer.await.unwrap(), 1024);
    reader.await.unwrap();
}
