//! `in8 inspect`: decode, verify and show any artifact.

use std::process::ExitCode;

use anyhow::{Context, Result};
use in8_artifact::{
    Artifact, Candidate, NoRevocations, RevocationTarget, SignedInvitation, SignedMembership,
    SignedRevocation, SignedRsvp, Timestamp, VerifyPolicy,
};
use serde_json::{Value, json};

use super::{now, read_artifact_arg};
use crate::home::Home;
use crate::output::{EXIT_INVALID, Output};

/// Arguments of `in8 inspect`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The artifact: its text, @FILE, or - for stdin.
    artifact: String,
    /// For an RSVP: the invitation it answers (text, @FILE or -), to check its MAC.
    #[arg(long, value_name = "INVITATION")]
    invitation: Option<String>,
}

type Fields = Vec<(&'static str, Value)>;
type Checks = Vec<(&'static str, Result<(), String>)>;

fn candidates(list: &[Candidate]) -> Value {
    list.iter().map(|c| Value::from(c.to_string())).collect()
}

fn ts(t: Timestamp, now: Timestamp) -> Value {
    let rel = if t > now {
        format!(
            "in {}",
            humantime::format_duration(std::time::Duration::from_secs(t.0 - now.0))
        )
    } else {
        format!(
            "{} ago",
            humantime::format_duration(std::time::Duration::from_secs(now.0 - t.0))
        )
    };
    Value::from(format!("{t} ({rel})"))
}

fn invitation(s: &SignedInvitation, now: Timestamp) -> (Fields, Checks) {
    let i = s.invitation();
    let mut f: Fields = vec![
        ("network", i.network.to_string().into()),
        ("issuer", i.issuer.to_string().into()),
        ("invite id", i.invite_id().to_string().into()),
        ("expires", ts(i.expires, now)),
    ];
    if let Some(nb) = i.not_before {
        f.push(("not before", ts(nb, now)));
    }
    f.extend([
        ("uses", i.uses.into()),
        ("policy", i.flags.names().into()),
        ("grants", i.capabilities.names().into()),
        ("role", format!("{:?}", i.role).to_lowercase().into()),
        (
            "certificate",
            match &i.cert_fingerprint {
                Some(fp) => format!("pinned sha-256 {}", data_encoding::HEXLOWER.encode(fp)).into(),
                None => "bound to the issuer's identity key".into(),
            },
        ),
        ("candidates", candidates(&i.candidates)),
    ]);
    if !i.servers.is_empty() {
        let s: Vec<Value> = i
            .servers
            .iter()
            .map(|h| {
                format!("{:?} {}:{}", h.kind, h.host, h.port)
                    .to_lowercase()
                    .into()
            })
            .collect();
        f.push(("servers", s.into()));
    }
    for p in &i.entry_peers {
        f.push((
            "entry peer",
            json!({"id": p.id.to_string(), "candidates": candidates(&p.candidates)}),
        ));
    }
    if !i.extensions.is_empty() {
        f.push((
            "unknown fields",
            i.extensions
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .into(),
        ));
    }
    let checks = s
        .checks(now, &VerifyPolicy::default(), &NoRevocations)
        .into_iter()
        .map(|c| (c.name, c.outcome.map_err(|e| e.to_string())))
        .collect();
    (f, checks)
}

fn rsvp(s: &SignedRsvp, now: Timestamp, against: Option<&SignedInvitation>) -> (Fields, Checks) {
    let r = s.rsvp();
    let f: Fields = vec![
        ("answers invitation", r.invite_id.to_string().into()),
        ("responder", r.responder.to_string().into()),
        ("ice ufrag", r.ufrag.clone().into()),
        ("expires", ts(r.expires, now)),
        ("candidates", candidates(&r.candidates)),
    ];
    let checks = match against {
        Some(inv) => vec![(
            "reference, MAC, signature and expiry against the invitation",
            s.verify(inv.invitation(), now, &VerifyPolicy::default())
                .map(drop)
                .map_err(|e| e.to_string()),
        )],
        None => vec![(
            "MAC and signature",
            Err("not checked: pass --invitation with the invitation it answers".into()),
        )],
    };
    (f, checks)
}

fn membership(s: &SignedMembership, now: Timestamp) -> (Fields, Checks) {
    let m = s.membership();
    let f: Fields = vec![
        ("network", m.network.to_string().into()),
        ("member", m.member.to_string().into()),
        ("issuer", m.issuer.to_string().into()),
        ("rights", m.capabilities.names().into()),
        ("expires", ts(m.expires, now)),
        ("chain depth", s.depth().into()),
    ];
    let outcome = s
        .verify(now, &VerifyPolicy::default(), &NoRevocations)
        .map(drop)
        .map_err(|e| e.to_string());
    (f, vec![("chain to the network's creator", outcome)])
}

fn revocation(s: &SignedRevocation, now: Timestamp) -> (Fields, Checks) {
    let r = s.revocation();
    let target = match r.target {
        RevocationTarget::Invitation(id) => format!("invitation {id}"),
        RevocationTarget::Member(id) => format!("member {id}"),
    };
    let f: Fields = vec![
        ("network", r.network.to_string().into()),
        ("revokes", target.into()),
        ("issuer", r.issuer.to_string().into()),
        ("issued at", ts(r.issued_at, now)),
        ("expires", ts(r.expires, now)),
    ];
    let outcome = s
        .verify(now, &VerifyPolicy::default())
        .map(drop)
        .map_err(|e| e.to_string());
    (f, vec![("signature and authority", outcome)])
}

pub(crate) fn run(a: &Args, _home: &Home, out: &Output) -> Result<ExitCode> {
    let input = read_artifact_arg(&a.artifact)?;
    let (artifact, form) = Artifact::parse(&input).context("cannot decode the artifact")?;
    let against = match &a.invitation {
        Some(arg) => {
            let (bytes, _) = in8_artifact::text::decode_any(&read_artifact_arg(arg)?)
                .context("cannot decode --invitation")?;
            Some(SignedInvitation::decode(&bytes).context("--invitation is not an invitation")?)
        }
        None => None,
    };
    let now = now();
    let (fields, checks) = match &artifact {
        Artifact::Invitation(s) => invitation(s, now),
        Artifact::Rsvp(s) => rsvp(s, now, against.as_ref()),
        Artifact::Membership(s) => membership(s, now),
        Artifact::Revocation(s) => revocation(s, now),
    };
    let bytes = artifact.to_bytes();
    let qr = in8_artifact::qr::Qr::new(bytes).ok().map(|q| q.version());
    let all_ok = checks.iter().all(|(_, r)| r.is_ok());
    if out.json() {
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), "inspect".into());
        obj.insert("kind".into(), artifact.kind().to_string().into());
        obj.insert("form".into(), form.to_string().into());
        obj.insert("bytes".into(), bytes.len().into());
        obj.insert("qr_version".into(), qr.into());
        for (k, v) in fields {
            obj.insert(k.replace(' ', "_"), v);
        }
        let checks: Vec<Value> = checks
            .iter()
            .map(|(n, r)| json!({"check": n, "ok": r.is_ok(), "error": r.as_ref().err()}))
            .collect();
        obj.insert("checks".into(), checks.into());
        obj.insert("valid".into(), all_ok.into());
        out.event(Value::Object(obj));
    } else {
        println!(
            "{} ({} bytes of CBOR, read as {form}{})",
            artifact.kind(),
            bytes.len(),
            qr.map(|v| format!(", QR version {v} at level M"))
                .unwrap_or_default()
        );
        for (k, v) in &fields {
            match v {
                Value::Array(items) if !items.is_empty() => {
                    println!("  {k:<18} {}", plain(&items[0]));
                    for it in &items[1..] {
                        println!("  {:<18} {}", "", plain(it));
                    }
                }
                v => println!("  {k:<18} {}", plain(v)),
            }
        }
        println!("checks");
        for (name, r) in &checks {
            match r {
                Ok(()) => println!("  ok    {name}"),
                Err(e) => println!("  FAIL  {name}: {e}"),
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        other => other.to_string(),
    }
}
