//! `in8 send FILE` (invites, then sends) and `in8 recv INVITATION` (joins, then receives):
//! one file over an encrypted byte stream labelled `in8-file`, with an offer header (name,
//! size, BLAKE3), resume from a kept partial file, and the checksum verified at the end.

mod progress;
mod receive;
mod wire;

pub(crate) use receive::run_recv;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use data_encoding::HEXLOWER;
use in8_core::Connection;
use in8_transport::ByteStream;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use self::progress::Progress;
use self::wire::{Answer, Offer, WireError};
use super::chat::HostArgs;
use crate::home::Home;
use crate::output::Output;
use crate::settings::{FileConfig, NodeArgs};

/// The byte stream's label.
pub(crate) const LABEL: &str = "in8-file";
/// How long each side waits for the other's offer or answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long the sender waits for the verdict after the last byte (the receiver flushes the
/// file to disk first).
const VERDICT_WAIT: Duration = Duration::from_secs(120);
/// Bytes read from or written to the file at a time.
const CHUNK: usize = 256 * 1024;

/// Arguments of `in8 send`.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// The file to send.
    file: PathBuf,
    #[command(flatten)]
    host: HostArgs,
}

/// Arguments of `in8 recv`.
#[derive(clap::Args, Debug)]
pub(crate) struct RecvArgs {
    /// The sender's invitation: its text, @FILE, or - for stdin.
    invitation: String,
    /// Directory to save the file in (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Overwrite a file of the same name.
    #[arg(long)]
    force: bool,
    /// If phase 1 fails, also write the RSVP to this file.
    #[arg(long, value_name = "FILE")]
    rsvp_out: Option<PathBuf>,
    /// Draw the RSVP as a QR code too.
    #[arg(long)]
    qr: bool,
    #[command(flatten)]
    node: NodeArgs,
}

/// Where an unfinished transfer of the content with BLAKE3 `hash` is kept in the output
/// directory (so a later `in8 recv` of the same content resumes it).
fn partial_name(hash: &[u8; 32]) -> String {
    format!(".in8-{}.part", &HEXLOWER.encode(hash)[..32])
}

/// Size and BLAKE3 of a file.
fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, *h.finalize().as_bytes()))
}

pub(crate) fn run_send(
    a: &SendArgs,
    home: &Home,
    out: &Output,
    file: &FileConfig,
) -> Result<ExitCode> {
    a.host.validate()?;
    let meta = std::fs::metadata(&a.file)
        .with_context(|| format!("cannot read {}: check the path", a.file.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file: send one file (pack a directory with tar first)",
            a.file.display()
        );
    }
    let name = a
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} has no UTF-8 file name: rename it", a.file.display()))?;
    wire::check_name(name).with_context(|| format!("cannot send {name:?}: rename it"))?;
    out.note(format!("computing the BLAKE3 checksum of {name}…"));
    let (size, hash) = hash_file(&a.file)?;
    let offer = Offer {
        name: name.to_owned(),
        size,
        hash,
    };
    let mut lines = super::chat::stdin_lines(false);
    crate::run_async(async {
        let (node, conn) = a
            .host
            .invite_and_wait(home, file, out, "in8 recv", &mut lines)
            .await?;
        let result = send_over(&conn, &a.file, &offer, out).await;
        conn.close().await.ok();
        node.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

async fn send_over(conn: &Connection, path: &Path, offer: &Offer, out: &Output) -> Result<()> {
    let peer = conn.peer().short();
    let mut stream = conn.open_stream(LABEL).await?;
    stream.write_all(&offer.encode()?).await?;
    stream.flush().await?;
    let answer = tokio::time::timeout(ANSWER_WAIT, read_answer(&mut stream))
        .await
        .map_err(|_| {
            anyhow!(
                "{peer} did not answer the file offer within {} s: is it running `in8 recv`?",
                ANSWER_WAIT.as_secs()
            )
        })??;
    let offset = match answer {
        Answer::Accept { offset } if offset <= offer.size => offset,
        Answer::Accept { offset } => bail!(
            "{peer} asked to resume at byte {offset} of a {}-byte file",
            offer.size
        ),
        Answer::Refuse { reason } => bail!("{peer} refused the file: {reason}"),
        other => bail!("{peer} answered the offer with {other:?}"),
    };
    if offset > 0 {
        out.event(json!({"event": "resume", "offset": offset, "total": offer.size}));
        out.note(format!("{peer} already has {offset} bytes: resuming"));
    }
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut progress = Progress::new(out, "sending", offset, offer.size);
    let mut remaining = offer.size - offset;
    let mut buf = vec![0u8; CHUNK];
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64) as usize;
        let n = f.read(&mut buf[..want]).await?;
        if n == 0 {
            bail!(
                "{} became shorter while it was sent: send it again once it no longer changes",
                path.display()
            );
        }
        stream
            .write_all(&buf[..n])
            .await
            .with_context(|| format!("sending to {peer}"))?;
        remaining -= n as u64;
        progress.advance(n as u64);
    }
    stream.shutdown().await?;
    progress.finish();
    out.note(format!("waiting for {peer} to verify the checksum…"));
    let verdict = tokio::time::timeout(VERDICT_WAIT, read_answer(&mut stream))
        .await
        .map_err(|_| {
            anyhow!(
                "{peer} did not confirm the file within {} s",
                VERDICT_WAIT.as_secs()
            )
        })??;
    match verdict {
        Answer::Verified => {
            out.event(
                json!({"event": "sent", "name": offer.name, "bytes": offer.size,
                "blake3": HEXLOWER.encode(&offer.hash), "verified": true}),
            );
            out.note(format!(
                "{} ({} bytes) delivered to {peer}; its BLAKE3 checksum matched",
                offer.name, offer.size
            ));
            stream.close().await.ok();
            Ok(())
        }
        Answer::Mismatch => bail!(
            "{peer} received {} but its BLAKE3 checksum did not match (did the file change while it was sent?); the receiver removed it: send it again",
            offer.name
        ),
        other => bail!("{peer} answered the transfer with {other:?}"),
    }
}

/// Reads one answer, byte by byte (never past it: the verdict follows on the same stream).
async fn read_answer(s: &mut ByteStream) -> Result<Answer> {
    let mut buf = Vec::with_capacity(wire::MAX_ANSWER);
    loop {
        match Answer::decode(&buf) {
            Ok((a, _)) => return Ok(a),
            Err(WireError::Truncated) if buf.len() < wire::MAX_ANSWER => {
                let mut b = [0u8; 1];
                if s.read(&mut b).await? == 0 {
                    bail!("the peer closed the transfer without answering");
                }
                buf.push(b[0]);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the offer: its fixed prefix, then exactly the rest it announces (at most
/// [`wire::MAX_OFFER`] bytes in all).
async fn read_offer(s: &mut ByteStream) -> Result<Offer> {
    let mut buf = Vec::with_capacity(wire::MAX_OFFER);
    buf.resize(wire::OFFER_PREFIX, 0);
    s.read_exact(&mut buf)
        .await
        .context("the sender closed the transfer before offering a file")?;
    let len = Offer::len_from_prefix(&buf)?;
    buf.resize(len, 0);
    s.read_exact(&mut buf[wire::OFFER_PREFIX..])
        .await
        .context("the sender's offer ended early")?;
    Ok(Offer::decode(&buf)?.0)
}
