//! Establishing a connection from the command line, as inviter or invitee, with progress
//! printed for humans (stderr) or as JSON events (stdout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use in8_artifact::{SignedInvitation, SignedRsvp, text};
use in8_core::{Connection, Invite, InviteEvent, JoinEvent, Node};
use serde_json::json;
use tokio::sync::mpsc;

use crate::output::Output;

/// How often `--rsvp FILE` is looked for while waiting.
const RSVP_FILE_POLL: Duration = Duration::from_millis(250);
/// Longest line read from stdin while waiting for an RSVP.
const MAX_LINE: usize = 16 * 1024;

/// A NAT class's common name (`in8 nat`'s verdict), `null` in JSON when unknown.
fn nat_name(n: Option<in8_ice::nat::NatClass>) -> Option<&'static str> {
    n.map(|c| crate::cmd::nat::verdict(&c).0)
}

/// The JSON description of a connection.
pub(crate) fn describe(c: &Connection) -> serde_json::Value {
    let p = c.path();
    json!({
        "nat": nat_name(c.nat()),
        "peer_nat": nat_name(c.peer_nat()),
        "birthday": p.birthday,
        "peer": c.peer().to_string(),
        "phase": match c.phase() { in8_core::Phase::One => 1, in8_core::Phase::Two => 2 },
        "path": p.kind.sdp_name(),
        "local": p.local.to_string(),
        "remote": p.remote.to_string(),
        "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
        "elapsed_ms": c.elapsed().as_secs_f64() * 1000.0,
        "invite_id": c.invite_id().to_string(),
    })
}

/// One line for humans.
pub(crate) fn summary(c: &Connection) -> String {
    let p = c.path();
    let nat = match (nat_name(c.nat()), nat_name(c.peer_nat())) {
        (None, None) => String::new(),
        (ours, theirs) => format!(
            ", NAT {} / peer {}",
            ours.unwrap_or("unknown"),
            theirs.unwrap_or("unknown")
        ),
    };
    format!(
        "{} via {} path {} -> {}{}{} ({}{}, {:.0} ms)",
        c.peer().short(),
        p.kind.sdp_name(),
        p.local,
        p.remote,
        if p.birthday {
            " found by birthday probing"
        } else {
            ""
        },
        p.rtt
            .map(|r| format!(", rtt {:.1} ms", r.as_secs_f64() * 1000.0))
            .unwrap_or_default(),
        c.phase(),
        nat,
        c.elapsed().as_secs_f64() * 1000.0
    )
}

/// Lines typed or piped on stdin (a pasted RSVP), read on a blocking thread.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.len() > MAX_LINE {
                continue;
            }
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn parse_rsvp(input: &[u8]) -> Result<SignedRsvp> {
    let (bytes, _) = text::decode_any(input)?;
    Ok(SignedRsvp::decode(&bytes)?)
}

/// The inviter's wait: prints progress, takes RSVPs from stdin or `rsvp_file`, and returns
/// the next joined connection.
pub(crate) async fn host(
    node: &Node,
    invite: &mut Invite,
    out: &Output,
    rsvp_file: Option<&Path>,
) -> Result<Connection> {
    host_with(node, invite, out, rsvp_file, &mut stdin_lines()).await
}

/// Like [`host`], taking pasted RSVPs from `lines`, which the caller keeps reading after
/// the join (`in8 chat` reads its messages from the same stdin).
pub(crate) async fn host_with(
    node: &Node,
    invite: &mut Invite,
    out: &Output,
    rsvp_file: Option<&Path>,
    lines: &mut mpsc::Receiver<String>,
) -> Result<Connection> {
    let mut stdin_open = true;
    let mut rsvp_file: Option<PathBuf> = rsvp_file.map(Path::to_path_buf);
    let mut poll = tokio::time::interval(RSVP_FILE_POLL);
    out.note("waiting for the invitee… (if it reports that phase 1 failed, paste its RSVP here)");
    loop {
        tokio::select! {
            ev = invite.next() => match ev {
                None => return Err(anyhow!("the node stopped")),
                Some(InviteEvent::Joined(c)) => {
                    out.event(json!({"event": "joined", "connection": describe(&c)}));
                    out.note(format!("joined: {}", summary(&c)));
                    return Ok(c);
                }
                Some(InviteEvent::Ended { reason }) => {
                    out.event(json!({"event": "ended", "reason": reason.to_string()}));
                    return Err::<Connection, _>(anyhow!(in8_core::Error::InvitationEnded(reason)))
                        .context("nobody joined");
                }
                Some(InviteEvent::CheckReceived) => {
                    out.event(json!({"event": "check_received"}));
                    out.note("an invitee is checking connectivity…");
                }
                Some(InviteEvent::Connecting { remote }) => {
                    out.event(json!({"event": "connecting", "remote": remote.to_string()}));
                    out.note(format!("securing the session with {remote}…"));
                }
                Some(InviteEvent::Phase2Started { responder }) => {
                    out.event(json!({"event": "phase2_started", "responder": responder.to_string()}));
                    out.note(format!("RSVP from {} accepted: both sides are punching now", responder.short()));
                }
                Some(InviteEvent::JoinFailed { remote, error }) => {
                    out.event(json!({"event": "join_failed", "remote": remote.to_string(), "reason": error.to_string()}));
                    out.note(format!("a join attempt from {remote} failed: {error}"));
                }
                Some(_) => {}
            },
            line = lines.recv(), if stdin_open => match line {
                None => stdin_open = false,
                Some(l) if l.trim().is_empty() => {}
                Some(l) => take_rsvp(node, out, l.trim().as_bytes(), "stdin").await,
            },
            _ = poll.tick(), if rsvp_file.is_some() => {
                if let Some(p) = rsvp_file.clone()
                    && let Ok(bytes) = std::fs::read(&p)
                    && !bytes.is_empty()
                {
                    take_rsvp(node, out, &bytes, &p.display().to_string()).await;
                    rsvp_file = None;
                }
            }
        }
    }
}

async fn take_rsvp(node: &Node, out: &Output, input: &[u8], source: &str) {
    let res = match parse_rsvp(input) {
        Ok(r) => node.accept_rsvp(&r).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match res {
        Ok(who) => out.event(
            json!({"event": "rsvp_accepted", "responder": who.to_string(), "source": source}),
        ),
        Err(e) => {
            out.event(
                json!({"event": "rsvp_rejected", "error": format!("{e:#}"), "source": source}),
            );
            out.note(format!("that RSVP was not accepted: {e:#}"));
        }
    }
}

/// The invitee's join: prints progress; on a phase-1 failure prints (and writes to
/// `rsvp_out`) the RSVP and keeps going until connected or failed.
pub(crate) async fn join(
    node: &Node,
    invitation: &SignedInvitation,
    out: &Output,
    rsvp_out: Option<&Path>,
    qr: bool,
) -> Result<Connection> {
    let mut join = node.join(invitation).await?;
    while let Some(ev) = join.next().await {
        match ev {
            JoinEvent::Gathered { candidates } => {
                let list: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                out.event(json!({"event": "gathered", "candidates": list}));
            }
            JoinEvent::Checking { remote_candidates } => {
                out.event(json!({"event": "checking", "remote_candidates": remote_candidates}));
                out.note(format!(
                    "checking {remote_candidates} address(es) of {}…",
                    invitation.invitation().issuer.short()
                ));
            }
            JoinEvent::Connecting { remote } => {
                out.event(json!({"event": "connecting", "remote": remote.to_string()}));
                out.note(format!("path found to {remote}; securing the session…"));
            }
            JoinEvent::Phase1Failed { reason, rsvp } => {
                let t = text::encode_text(rsvp.to_bytes());
                if let Some(p) = rsvp_out {
                    write_atomically(p, t.as_bytes())?;
                }
                out.event(
                    json!({"event": "phase1_failed", "reason": reason.to_string(), "rsvp": t,
                                 "expires": rsvp.rsvp().expires.to_string()}),
                );
                if !out.json() {
                    eprintln!("phase 1 failed: {reason}");
                    println!("{t}");
                    if qr && let Ok(q) = in8_artifact::qr::Qr::new(rsvp.to_bytes()) {
                        println!("{}", q.to_terminal());
                    }
                    eprintln!(
                        "Send this RSVP to the inviter (they paste it into `in8 invite`); this node keeps the path open until {}.",
                        rsvp.rsvp().expires
                    );
                }
            }
            JoinEvent::Connected(c) => {
                out.event(json!({"event": "connected", "connection": describe(&c)}));
                out.note(format!("connected to {}", summary(&c)));
                return Ok(c);
            }
            JoinEvent::Failed(e) => return Err(e.into()),
            _ => {}
        }
    }
    Err(anyhow!("the node stopped"))
}

/// Writes `data` to `path` atomically and privately (0600, a fresh temporary file, never
/// following a planted link).
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    Ok(in8_core::state::write_atomically(path, data)?)
}
