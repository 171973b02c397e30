//! `in8 recv`: join the sender's invitation, take its offer, receive into a partial file
//! (resuming one kept from an interrupted transfer of the same content), verify BLAKE3,
//! then move the file into place and tell the sender.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use data_encoding::HEXLOWER;
use in8_core::Connection;
use in8_transport::ByteStream;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::progress::Progress;
use super::wire::Answer;
use super::{ANSWER_WAIT, CHUNK, LABEL, RecvArgs, partial_name, read_offer};
use crate::home::Home;
use crate::output::Output;
use crate::settings::FileConfig;

pub(crate) fn run_recv(
    a: &RecvArgs,
    home: &Home,
    out: &Output,
    file: &FileConfig,
) -> Result<ExitCode> {
    let invitation = super::super::join::read_invitation(&a.invitation)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the output directory {}", a.out.display()))?;
    crate::run_async(async {
        let node = super::super::join::start(home, file, &a.node).await?;
        let conn =
            crate::connect::join(&node, &invitation, out, a.rsvp_out.as_deref(), a.qr).await?;
        let result = receive(&conn, a, out).await;
        conn.close().await.ok();
        node.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

async fn accept_file(conn: &Connection) -> Result<ByteStream> {
    loop {
        let ch = conn.accept_channel().await?;
        if ch.label() == LABEL {
            return Ok(ch.into_stream());
        }
        tracing::debug!(label = ch.label(), "ignoring a channel that is not a file");
    }
}

async fn receive(conn: &Connection, a: &RecvArgs, out: &Output) -> Result<()> {
    let peer = conn.peer().short();
    let mut stream = tokio::time::timeout(ANSWER_WAIT, async {
        let mut s = accept_file(conn).await?;
        let offer = read_offer(&mut s).await?;
        Ok::<_, anyhow::Error>((s, offer))
    })
    .await
    .map_err(|_| {
        anyhow!(
            "{peer} connected but offered no file within {} s: is it running `in8 send FILE`?",
            ANSWER_WAIT.as_secs()
        )
    })??;
    let (stream, offer) = (&mut stream.0, stream.1);
    let hash_hex = HEXLOWER.encode(&offer.hash);
    out.event(
        json!({"event": "offer", "from": conn.peer().to_string(), "name": offer.name,
        "bytes": offer.size, "blake3": hash_hex}),
    );
    out.note(format!(
        "{peer} sends {} ({} bytes)",
        super::super::chat::printable(&offer.name),
        offer.size
    ));
    let dest = a.out.join(&offer.name);
    if dest.exists() && !a.force {
        let reason = format!("{} already exists at the receiver", offer.name);
        stream
            .write_all(&Answer::Refuse { reason }.encode())
            .await?;
        stream.flush().await?;
        let _ = tokio::time::timeout(ANSWER_WAIT, stream.channel().close()).await;
        bail!(
            "{} already exists: pass --force to overwrite it, or --out another directory",
            dest.display()
        );
    }
    let part = a.out.join(partial_name(&offer.hash));
    let (mut hasher, offset) = resume_state(&part, offer.size).await?;
    if offset > 0 {
        out.event(json!({"event": "resume", "offset": offset, "total": offer.size}));
        out.note(format!(
            "resuming from {offset} bytes kept in {}",
            part.display()
        ));
    }
    stream
        .write_all(&Answer::Accept { offset }.encode())
        .await?;
    stream.flush().await?;
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .with_context(|| format!("cannot write {}", part.display()))?;
    let mut progress = Progress::new(out, "receiving", offset, offer.size);
    let mut done = offset;
    let mut buf = vec![0u8; CHUNK];
    let kept = |done: u64| {
        format!(
            "receiving {} stopped after {done} of {} bytes; {} is kept: run `in8 recv` with a new invitation from the sender (same --out) to resume",
            offer.name,
            offer.size,
            part.display()
        )
    };
    while done < offer.size {
        let want = (offer.size - done).min(CHUNK as u64) as usize;
        let n = match stream.read(&mut buf[..want]).await {
            Ok(0) => bail!("the sender ended the stream early: {}", kept(done)),
            Ok(n) => n,
            Err(e) => return Err(anyhow!(e).context(kept(done))),
        };
        f.write_all(&buf[..n])
            .await
            .with_context(|| format!("writing {}", part.display()))?;
        hasher.update(&buf[..n]);
        done += n as u64;
        progress.advance(n as u64);
    }
    f.sync_all().await?;
    drop(f);
    progress.finish();
    // The sender ends the data with end-of-stream; anything more is a broken sender.
    // (A lost connection here does not spoil bytes whose hash matches.)
    let extra = tokio::time::timeout(ANSWER_WAIT, stream.read(&mut buf[..1])).await;
    let too_long = matches!(extra, Ok(Ok(n)) if n > 0);
    if too_long || *hasher.finalize().as_bytes() != offer.hash {
        let _ = tokio::fs::remove_file(&part).await;
        stream.write_all(&Answer::Mismatch.encode()).await?;
        let _ = tokio::time::timeout(ANSWER_WAIT, stream.channel().close()).await;
        bail!(
            "{} from {peer} failed the BLAKE3 check (expected {hash_hex}); the partial file was removed: ask the sender to send it again",
            offer.name
        );
    }
    if dest.exists() && !a.force {
        bail!(
            "{} appeared while receiving: the data is kept in {} (rename it yourself, or pass --force next time)",
            dest.display(),
            part.display()
        );
    }
    tokio::fs::rename(&part, &dest)
        .await
        .with_context(|| format!("moving {} to {}", part.display(), dest.display()))?;
    // The file is saved and verified whatever happens to the verdict; then wait until it
    // was acknowledged, so the sender sees it before we close.
    if let Err(e) = stream.write_all(&Answer::Verified.encode()).await {
        out.note(format!(
            "(could not tell {peer} that the file arrived: {e})"
        ));
    }
    let _ = tokio::time::timeout(ANSWER_WAIT, stream.channel().close()).await;
    out.event(json!({"event": "received", "from": conn.peer().to_string(),
        "path": dest.display().to_string(), "bytes": offer.size, "blake3": hash_hex, "verified": true}));
    out.note(format!(
        "saved {} ({} bytes); BLAKE3 {hash_hex} verified",
        dest.display(),
        offer.size
    ));
    Ok(())
}

/// What an earlier, interrupted transfer of the same content left: the hash of its bytes
/// so far and how many there are (0 and a fresh hasher when there is nothing usable).
async fn resume_state(part: &Path, size: u64) -> Result<(blake3::Hasher, u64)> {
    let part = part.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut h = blake3::Hasher::new();
        let len = match std::fs::metadata(&part) {
            Ok(m) => m.len(),
            Err(_) => return Ok((h, 0)),
        };
        if len > size {
            std::fs::remove_file(&part)
                .with_context(|| format!("removing the stale {}", part.display()))?;
            return Ok((h, 0));
        }
        let mut f =
            std::fs::File::open(&part).with_context(|| format!("reading {}", part.display()))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok((h, len))
    })
    .await?
}
