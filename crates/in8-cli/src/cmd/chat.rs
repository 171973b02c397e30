//! `in8 chat`: line-by-line text chat on an encrypted data channel. Without an argument
//! this node invites (and waits, taking a pasted RSVP); with an invitation it joins.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use in8_core::{Connection, Node};
use in8_transport::{Channel, ChannelOptions};
use serde_json::json;
use tokio::sync::mpsc;

use super::invite::{self, Show};
use crate::home::Home;
use crate::output::Output;
use crate::settings::{FileConfig, NodeArgs};

/// The data channel's label.
pub(crate) const LABEL: &str = "in8-chat";
/// Longest line sent or shown; longer lines are skipped with a warning.
const MAX_LINE: usize = 16 * 1024;
/// How long the inviter waits for the joiner to open the chat channel.
const CHANNEL_WAIT: Duration = Duration::from_secs(30);
/// Lines read ahead from stdin (the reader waits when this many are queued).
const LINE_QUEUE: usize = 64;

/// Arguments of `in8 chat`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The invitation to join: its text, @FILE, or - for the first line of stdin. Without
    /// it, this node invites and waits for the peer.
    invitation: Option<String>,
    /// When joining: if phase 1 fails, also write the RSVP to this file.
    #[arg(long, value_name = "FILE")]
    rsvp_out: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

/// What a command that invites and waits (`chat`, `send`) takes: the invitation's
/// validity, how it is shown, where an RSVP may come from, and the node flags.
#[derive(clap::Args, Debug)]
pub(crate) struct HostArgs {
    /// How long the invitation stays valid (e.g. 90s, 15m, 2h).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// An RSVP file to pick up while waiting (it may appear later); RSVPs pasted on stdin
    /// are taken too.
    #[arg(long, value_name = "FILE")]
    rsvp: Option<PathBuf>,
    /// Do not allow an RSVP (phase 2) if one-way connection fails.
    #[arg(long)]
    no_rsvp: bool,
    #[command(flatten)]
    pub(crate) show: Show,
    #[command(flatten)]
    pub(crate) node: NodeArgs,
}

impl HostArgs {
    /// Checks the flags before anything starts.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.ttl < Duration::from_secs(1) {
            bail!("--ttl must be at least 1s");
        }
        Ok(())
    }

    /// Starts the node, prints a single-use invitation and what the peer runs with it
    /// (`peer_command`, e.g. "in8 recv"), and waits (taking RSVPs from `lines` and
    /// `--rsvp FILE`) until the peer joined.
    pub(crate) async fn invite_and_wait(
        &self,
        home: &Home,
        file: &FileConfig,
        out: &Output,
        peer_command: &str,
        lines: &mut mpsc::Receiver<String>,
    ) -> Result<(Node, Connection)> {
        let options = in8_core::InviteOptions {
            ttl: self.ttl,
            uses: 1,
            allow_rsvp: !self.no_rsvp,
            ..in8_core::InviteOptions::default()
        };
        let (node, mut invite) = invite::start(home, file, &self.node, options).await?;
        invite::show_invitation(&self.show, invite.invitation(), out)?;
        let arg = match &self.show.out {
            Some(p) => format!("@{}", p.display()),
            None => "<invitation>".into(),
        };
        out.note(format!("the peer runs: {peer_command} {arg}"));
        let conn =
            crate::connect::host_with(&node, &mut invite, out, self.rsvp.as_deref(), lines).await?;
        Ok((node, conn))
    }
}

/// Lines from stdin, read on a blocking thread. Lines longer than [`MAX_LINE`] are skipped
/// with a warning on stderr; the channel closes at end of input.
pub(crate) fn stdin_lines(warn: bool) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(LINE_QUEUE);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdin.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            if buf.len() > MAX_LINE {
                if warn {
                    eprintln!(
                        "warning: a line of {} bytes was not sent (at most {MAX_LINE})",
                        buf.len()
                    );
                }
                continue;
            }
            let line = String::from_utf8_lossy(&buf).into_owned();
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Makes a peer's text safe to print on a terminal: control characters (escape sequences
/// included) become U+FFFD, tabs stay.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

pub(crate) fn run(a: &Args, home: &Home, out: &Output, file: &FileConfig) -> Result<ExitCode> {
    a.host.validate()?;
    let mut lines = stdin_lines(!out.json());
    crate::run_async(async {
        let (node, conn, channel) = match &a.invitation {
            None => {
                let (node, conn) = a
                    .host
                    .invite_and_wait(home, file, out, "in8 chat", &mut lines)
                    .await?;
                let channel = tokio::time::timeout(CHANNEL_WAIT, accept_chat(&conn))
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "{} connected but opened no chat within {} s: is it running `in8 chat <invitation>`?",
                            conn.peer().short(),
                            CHANNEL_WAIT.as_secs()
                        )
                    })??;
                (node, conn, channel)
            }
            Some(arg) => {
                let text = if arg == "-" {
                    first_line(&mut lines).await?
                } else {
                    arg.clone()
                };
                let invitation = super::join::read_invitation(&text)?;
                let node = super::join::start(home, file, &a.host.node).await?;
                let conn = crate::connect::join(
                    &node,
                    &invitation,
                    out,
                    a.rsvp_out.as_deref(),
                    a.host.show.qr,
                )
                .await?;
                let channel = conn.open_channel(ChannelOptions::reliable(LABEL)).await?;
                (node, conn, channel)
            }
        };
        let result = converse(&conn, channel, out, &mut lines).await;
        conn.close().await.ok();
        node.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

/// `-`: the invitation is the first non-empty line of stdin; the rest is the chat.
async fn first_line(lines: &mut mpsc::Receiver<String>) -> Result<String> {
    while let Some(l) = lines.recv().await {
        if !l.trim().is_empty() {
            return Ok(l.trim().to_owned());
        }
    }
    bail!("stdin ended before an invitation: pipe one in, or pass it as an argument")
}

/// The inviter takes the joiner's chat channel (other channels are ignored).
async fn accept_chat(conn: &Connection) -> Result<Channel> {
    loop {
        let ch = conn.accept_channel().await?;
        if ch.label() == LABEL {
            return Ok(ch);
        }
        tracing::debug!(
            label = ch.label(),
            "ignoring a channel that is not the chat"
        );
    }
}

/// Sends stdin lines and prints the peer's, until stdin ends or the peer leaves.
async fn converse(
    conn: &Connection,
    channel: Channel,
    out: &Output,
    lines: &mut mpsc::Receiver<String>,
) -> Result<()> {
    let peer = conn.peer();
    out.event(json!({"event": "chat_ready", "peer": peer.to_string()}));
    out.note(format!(
        "chatting with {}: type a line and press Enter to send it; Ctrl-D (end of input) leaves",
        peer.short()
    ));
    // Receive on a task of its own, so a half-received message is never dropped by select.
    let (tx, mut incoming) = mpsc::channel(16);
    let reader = channel.clone();
    let task = tokio::spawn(async move {
        loop {
            let r = reader.recv().await;
            let last = !matches!(r, Ok(Some(_)));
            if tx.send(r).await.is_err() || last {
                break;
            }
        }
    });
    let result = loop {
        tokio::select! {
            line = lines.recv() => match line {
                None => {
                    out.event(json!({"event": "left", "by": "local"}));
                    out.note("end of input: leaving the chat");
                    channel.close().await.ok();
                    break Ok(());
                }
                Some(l) => {
                    channel.send(l.clone().into_bytes()).await
                        .with_context(|| format!("sending to {}", peer.short()))?;
                    out.event(json!({"event": "sent", "text": l}));
                }
            },
            msg = incoming.recv() => match msg {
                Some(Ok(Some(m))) => {
                    let text = String::from_utf8_lossy(&m);
                    out.event(json!({"event": "message", "from": peer.to_string(), "text": text}));
                    if !out.json() {
                        println!("{}: {}", peer.short(), printable(&shortened(&text)));
                    }
                }
                Some(Ok(None)) | None => {
                    out.event(json!({"event": "left", "by": "peer"}));
                    out.note(format!("{} left the chat", peer.short()));
                    break Ok(());
                }
                Some(Err(in8_transport::Error::Closed(in8_transport::CloseReason::PeerClosed))) => {
                    out.event(json!({"event": "left", "by": "peer"}));
                    out.note(format!("{} left the chat", peer.short()));
                    break Ok(());
                }
                Some(Err(e)) => {
                    break Err(anyhow!(e).context(format!(
                        "the connection to {} was lost; start a new chat with a fresh invitation",
                        peer.short()
                    )));
                }
            },
        }
    };
    task.abort();
    result
}

/// At most [`MAX_LINE`] bytes of a peer's message are shown (cut at a character boundary).
fn shortened(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_LINE {
        return text.into();
    }
    let mut end = MAX_LINE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes, cut)", &text[..end], text.len()).into()
}

#[cfg(test)]
mod tests {
    use super::{MAX_LINE, printable, shortened};

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_LINE);
        let s = shortened(&long);
        assert!(s.ends_with(&format!("… ({} bytes, cut)", long.len())));
        assert!(s.len() < MAX_LINE + 40);
        assert_eq!(shortened("short"), "short");
    }

    #[test]
    fn escape_sequences_from_the_peer_are_neutralised() {
        assert_eq!(printable("hi\x1b[2Jthere\tok"), "hi\u{FFFD}[2Jthere\tok");
        assert_eq!(printable("plain ünïcode"), "plain ünïcode");
    }
}
