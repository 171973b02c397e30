//! `in8 chat`: a group chat over the network's signed broadcasts. Without an argument
//! this node invites (and waits, taking a pasted RSVP); with an invitation it joins.
//! Everyone in the network who runs `in8 chat` takes part (more are brought in with
//! `in8 net invite`, which the chat's node answers); the chat ends for a participant at
//! the end of its input, or when everyone else has left.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use in8_core::{Connection, NetEvent, NetUpdate, Node};
use serde_json::json;
use tokio::sync::mpsc;

mod room;
use room::{Message, Room, Say, Shown};

use super::invite::{self, Show};
use crate::home::Home;
use crate::output::Output;
use crate::settings::{FileConfig, NodeArgs};

/// Longest line sent or shown; longer lines are skipped with a warning.
const MAX_LINE: usize = 16 * 1024;
/// How long a new participant waits for a gossip neighbour before saying hello.
const CHANNEL_WAIT: Duration = Duration::from_secs(30);
/// How long a joiner waits, once connected, for its membership credential.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(20);
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
            let line = String::from_utf8_lossy(&buf).into_owned();
            // Measured as sent: invalid bytes become U+FFFD (3 bytes each).
            if line.len() > MAX_LINE {
                if warn {
                    eprintln!(
                        "warning: a line of {} bytes was not sent (at most {MAX_LINE})",
                        line.len()
                    );
                }
                continue;
            }
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
        let (node, peer) = match &a.invitation {
            None => {
                let (node, conn) = a
                    .host
                    .invite_and_wait(home, file, out, "in8 chat", &mut lines)
                    .await?;
                (node, conn.peer())
            }
            Some(arg) => {
                let text = if arg == "-" {
                    first_line(&mut lines).await?
                } else {
                    arg.clone()
                };
                let invitation = super::join::read_invitation(&text)?;
                let node = super::join::start(home, file, &a.host.node).await?;
                let mut events = node.events();
                let conn = crate::connect::join(
                    &node,
                    &invitation,
                    out,
                    a.rsvp_out.as_deref(),
                    a.host.show.qr,
                )
                .await?;
                member_of(&node, &mut events, invitation.invitation().network).await?;
                (node, conn.peer())
            }
        };
        // The control socket lets `in8 net invite` bring more people in.
        let server = crate::control::Server::bind(&crate::control::socket_path(home)).await;
        let ctx = crate::control::commands::Ctx {
            node: node.clone(),
            out: *out,
            stop: std::sync::Arc::new(tokio::sync::Notify::new()),
        };
        let server = match server {
            Ok(s) => Some(s),
            Err(e) => {
                out.note(format!(
                    "warning: no control socket, so `in8 net` cannot reach this chat: {e:#}"
                ));
                None
            }
        };
        let serving = server.map(|server| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                loop {
                    server.serve_next(&ctx).await;
                }
            })
        });
        let result = converse(&node, peer, out, &mut lines, &ctx.stop).await;
        if let Some(s) = serving {
            s.abort();
            let _ = s.await;
        }
        node.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

/// Waits until the node is a member of `network` (its credential arrived).
async fn member_of(
    node: &Node,
    events: &mut in8_core::NetEvents,
    network: in8_artifact::NetworkId,
) -> Result<()> {
    let wait = async {
        loop {
            if node.network_id().await.is_ok_and(|n| n == network) {
                return Ok(());
            }
            match events.next().await {
                Some(_) => {}
                None => bail!("the node stopped"),
            }
        }
    };
    tokio::time::timeout(MEMBERSHIP_WAIT, wait)
        .await
        .map_err(|_| {
            anyhow!("connected, but no membership credential arrived within {MEMBERSHIP_WAIT:?}")
        })?
}

/// Waits (bounded) until gossip has a neighbour, so the first broadcast has somewhere to
/// go. The views have no event of their own; they are looked at every few milliseconds.
async fn neighboured(node: &Node) {
    let t = tokio::time::Instant::now();
    while t.elapsed() < CHANNEL_WAIT {
        if node.views().await.is_ok_and(|v| v.active > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

fn show(out: &Output, s: &Shown) {
    match s {
        Shown::Joined(p) => {
            out.event(json!({"event": "joined_chat", "peer": p.to_string()}));
            out.note(format!("{} joined the chat", p.short()));
        }
        Shown::Line(p, text) => {
            out.event(json!({"event": "message", "from": p.to_string(), "text": text}));
            if !out.json() {
                println!("{}: {}", p.short(), printable(&shortened(text)));
            }
        }
        Shown::Left(p) => {
            out.event(json!({"event": "left", "by": "peer", "peer": p.to_string()}));
            out.note(format!("{} left the chat", p.short()));
        }
    }
}

/// Broadcasts stdin lines and shows the others', until stdin ends or everyone else left.
async fn converse(
    node: &Node,
    peer: in8_artifact::NodeId,
    out: &Output,
    lines: &mut mpsc::Receiver<String>,
    stop: &tokio::sync::Notify,
) -> Result<()> {
    let mut events = node.events();
    let mut room = Room::default();
    room.add(peer);
    neighboured(node).await;
    node.broadcast(room.say(Say::Hello).encode()).await?;
    out.event(json!({"event": "chat_ready", "peer": peer.to_string()}));
    out.note(format!(
        "chatting with {} (and whoever joins the network): type a line and press Enter to send it; Ctrl-D (end of input) leaves",
        peer.short()
    ));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.notified() => {
                // `in8 net stop` or `in8 net leave` (the node has then left already).
                node.broadcast(room.say(Say::Bye).encode()).await.ok();
                out.event(json!({"event": "left", "by": "local"}));
                out.note("stopped through the control socket: leaving the chat");
                return Ok(());
            }
            line = lines.recv() => match line {
                None => {
                    node.broadcast(room.say(Say::Bye).encode()).await.ok();
                    out.event(json!({"event": "left", "by": "local"}));
                    out.note("end of input: leaving the chat");
                    return Ok(());
                }
                Some(l) => {
                    node.broadcast(room.say(Say::Line(l.clone())).encode())
                        .await
                        .context("sending the line")?;
                    out.event(json!({"event": "sent", "text": l}));
                }
            },
            u = events.next() => {
                let shown = match u {
                    Some(NetUpdate::Event(NetEvent::Broadcast { origin, payload, .. })) => {
                        match Message::decode(&payload) {
                            Some(m) if origin != node.node_id() => room.handle(Instant::now(), origin, m),
                            _ => Vec::new(),
                        }
                    }
                    Some(NetUpdate::Event(NetEvent::MemberDown { member, .. }
                        | NetEvent::MemberRevoked(member))) => room.gone(&member),
                    Some(NetUpdate::Event(NetEvent::SelfRevoked)) => {
                        bail!("this node was revoked from the network: the chat is over")
                    }
                    Some(_) => Vec::new(),
                    None => bail!("the node stopped"),
                };
                for s in &shown {
                    show(out, s);
                }
                if room.empty() {
                    out.note("everyone else left: the chat is over");
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                for s in &room.tick(Instant::now()) {
                    show(out, s);
                }
            }
        }
    }
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
