//! `in8 invite`: create an invitation.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use in8_artifact::text::{self, Form};
use in8_artifact::{
    Candidate, CandidateKind, Capabilities, Flags, Invitation, InviteSecret, SignedInvitation,
};
use serde_json::json;

use super::now;
use crate::home::Home;
use crate::output::Output;
use crate::settings::FileConfig;

/// Default UDP port a node listens on.
pub(crate) const DEFAULT_PORT: u16 = 48_808;
/// Most host candidates put in an invitation.
const MAX_HOST_CANDIDATES: usize = 8;

/// Arguments of `in8 invite`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Only build and print the invitation; do not listen for the invitee.
    #[arg(long)]
    print_only: bool,
    /// How long the invitation stays valid (e.g. 90s, 15m, 2h, 1d).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// How many nodes may join with it (1 = single use).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    uses: u32,
    #[command(flatten)]
    show: Show,
    /// An RSVP file to pick up while waiting (it may appear later); RSVPs pasted on stdin
    /// are taken too.
    #[arg(long, value_name = "FILE", conflicts_with = "print_only")]
    rsvp: Option<PathBuf>,
    /// After the join, keep the session open this long (e.g. 10s) before exiting.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    hold: Duration,
    #[command(flatten)]
    node: crate::settings::NodeArgs,
    /// Do not allow an RSVP (phase 2) if one-way connection fails.
    #[arg(long)]
    no_rsvp: bool,
    /// Rights granted to the invitee: comma-separated of introduce, invite, relay, revoke.
    #[arg(long, value_delimiter = ',', value_parser = parse_capability)]
    grant: Vec<Capabilities>,
}

/// How an invitation is shown (shared by `invite`, `chat` and `send`).
#[derive(clap::Args, Debug)]
pub(crate) struct Show {
    /// Also draw the invitation as a QR code in the terminal.
    #[arg(long)]
    pub(crate) qr: bool,
    /// Write the QR code as an SVG image to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) qr_svg: Option<PathBuf>,
    /// Output form: text (in8:…), base32 (IN8:…, for QR), words (checksummed groups to read
    /// aloud), cbor (raw bytes) or ndef (NFC record).
    #[arg(long, default_value = "text", value_parser = parse_form)]
    pub(crate) format: Form,
    /// Write the invitation to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

impl Args {
    /// The invitation options these flags ask for.
    pub(crate) fn options(&self) -> in8_core::InviteOptions {
        in8_core::InviteOptions {
            ttl: self.ttl,
            uses: self.uses,
            allow_rsvp: !self.no_rsvp,
            capabilities: self
                .grant
                .iter()
                .fold(Capabilities::NONE, |acc, c| acc.with(*c)),
            ..in8_core::InviteOptions::default()
        }
    }
}

fn parse_form(s: &str) -> Result<Form, String> {
    s.parse().map_err(|e: in8_artifact::Error| e.to_string())
}

fn parse_capability(s: &str) -> Result<Capabilities, String> {
    Ok(match s {
        "introduce" => Capabilities::INTRODUCE,
        "invite" => Capabilities::INVITE,
        "relay" => Capabilities::RELAY,
        "revoke" => Capabilities::REVOKE,
        _ => {
            return Err(format!(
                "unknown right {s:?}: use introduce, invite, relay or revoke"
            ));
        }
    })
}

/// Host candidates: addresses of the usable interfaces (no link-local; loopback only when
/// there is nothing else), IPv4 first.
pub(crate) fn host_candidates(port: u16) -> Result<Vec<Candidate>> {
    let ifaces = if_addrs::get_if_addrs().context("listing network interfaces")?;
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => !a.is_link_local() && !a.is_unspecified() && !a.is_broadcast(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80 && !a.is_unspecified(),
    };
    let mut ips: Vec<IpAddr> = ifaces
        .iter()
        .map(|i| i.ip())
        .filter(|ip| usable(ip) && !ip.is_loopback())
        .collect();
    if ips.is_empty() {
        ips = ifaces
            .iter()
            .map(|i| i.ip())
            .filter(|ip| ip.is_loopback())
            .collect();
    }
    ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    ips.dedup();
    ips.truncate(MAX_HOST_CANDIDATES);
    Ok(ips
        .into_iter()
        .enumerate()
        .map(|(i, ip)| Candidate::new(CandidateKind::Host, SocketAddr::new(ip, port), i))
        .collect())
}

pub(crate) fn run(a: &Args, home: &Home, out: &Output, file: &FileConfig) -> Result<ExitCode> {
    if a.print_only {
        return print_only(a, home, out);
    }
    if a.ttl < Duration::from_secs(1) {
        bail!("--ttl must be at least 1s");
    }
    crate::run_async(async {
        let (node, mut invite) = start(home, file, &a.node, a.options()).await?;
        show_invitation(&a.show, invite.invitation(), out)?;
        for n in 1..=a.uses {
            let conn = crate::connect::host(&node, &mut invite, out, a.rsvp.as_deref()).await?;
            crate::cmd::ping::answer(&conn, out).await?;
            if n == a.uses {
                tokio::time::sleep(a.hold).await;
            }
            conn.close().await.ok();
        }
        node.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts this node (at [`DEFAULT_PORT`] unless configured) and issues an invitation it
/// listens for.
pub(crate) async fn start(
    home: &Home,
    file: &FileConfig,
    node: &crate::settings::NodeArgs,
    options: in8_core::InviteOptions,
) -> Result<(in8_core::Node, in8_core::Invite)> {
    let mut cfg = crate::settings::node_config(home, file, node, DEFAULT_PORT)?;
    let (me, _) = home.identity()?;
    let network = home.network(&me, now())?;
    cfg.identity = me;
    let node = in8_core::Node::start_in(cfg, Some(network)).await?;
    // The invitation carries this node's NAT class (birthday probing needs both sides'):
    // wait for classification (immediate without STUN servers able to classify).
    node.nat_classified().await;
    let invite = node.invite(options).await?;
    Ok((node, invite))
}

/// Prints (or writes) an invitation in the requested form, with its QR code if asked.
pub(crate) fn show_invitation(a: &Show, signed: &SignedInvitation, out: &Output) -> Result<()> {
    let bytes = signed.to_bytes();
    let encoded = text::encode(bytes, a.format);
    let qr = in8_artifact::qr::Qr::new(bytes)?;
    if let Some(path) = &a.qr_svg {
        std::fs::write(path, qr.to_svg()).with_context(|| format!("writing {}", path.display()))?;
    }
    match &a.out {
        Some(path) => crate::connect::write_atomically(path, &encoded)?,
        None if out.json() => {}
        None => {
            let mut stdout = std::io::stdout().lock();
            if a.format.is_binary() && stdout.is_terminal() {
                bail!(
                    "--format {} is binary: pass --out FILE or redirect stdout",
                    a.format
                );
            }
            stdout.write_all(&encoded)?;
            if !a.format.is_binary() {
                writeln!(stdout)?;
            }
            stdout.flush()?;
        }
    }
    let inv = signed.invitation();
    if out.json() {
        out.event(json!({
            "event": "invitation",
            "text": text::encode_text(bytes),
            "format": a.format.to_string(),
            "out": a.out.as_ref().map(|p| p.display().to_string()),
            "bytes": bytes.len(),
            "qr_version": qr.version(),
            "invite_id": inv.invite_id().to_string(),
            "network": inv.network.to_string(),
            "issuer": inv.issuer.to_string(),
            "expires": inv.expires.to_string(),
            "uses": inv.uses,
            "candidates": inv.candidates.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "entry_peers": inv.entry_peers.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(),
        }));
    } else {
        if a.qr {
            println!("{}", qr.to_terminal());
        }
        if let Some(path) = &a.out {
            out.note(format!(
                "wrote the invitation ({}) to {}",
                a.format,
                path.display()
            ));
        }
        out.note(format!(
            "invitation {}: {} bytes, QR version {}, expires {}, {} use(s); give it to the peer, e.g. `in8 join <it>`",
            inv.invite_id(),
            bytes.len(),
            qr.version(),
            inv.expires,
            inv.uses
        ));
    }
    Ok(())
}

fn print_only(a: &Args, home: &Home, out: &Output) -> Result<ExitCode> {
    if a.ttl < Duration::from_secs(1) {
        bail!("--ttl must be at least 1s");
    }
    let (me, _) = home.identity()?;
    let now = now();
    let network = home.network(&me, now)?;
    let candidates = host_candidates(a.node.port().unwrap_or(DEFAULT_PORT))?;
    let mut inv = Invitation::new(
        network.membership().network,
        me.node_id(),
        InviteSecret::generate(&mut rand::rng()),
        candidates,
        now,
        a.ttl,
    );
    let o = a.options();
    inv.uses = o.uses;
    if a.node.relay_flag() {
        inv.flags = inv.flags.with(Flags::RELAY_ALLOWED);
    }
    if !o.allow_rsvp {
        inv.flags = inv.flags.without(Flags::RSVP_ALLOWED);
    }
    inv.capabilities = o.capabilities;
    let signed = inv.sign(&me)?;
    show_invitation(&a.show, &signed, out)?;
    out.note("print-only: nothing is listening for this invitation. Check it with `in8 inspect`.");
    Ok(ExitCode::SUCCESS)
}
