//! The line protocol between the tests and `interop/peers/aioice_peer.py` (its signalling):
//! `CREDS <ufrag> <pwd>`, then `CAND <ip> <port> <priority> [<type>]` per candidate, then
//! `END`, in both directions.

use in8_ice::{Candidate, CandidateKind, Credentials, LocalCandidate};

/// Reads the peer's offer from `next_line` (which panics when the peer goes quiet).
pub(crate) fn read_offer(mut next_line: impl FnMut() -> String) -> (Credentials, Vec<Candidate>) {
    let mut creds = None;
    let mut cands = Vec::new();
    loop {
        let l = next_line();
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.first().copied() {
            Some("CREDS") => {
                creds = Some(Credentials {
                    ufrag: f[1].into(),
                    password: f[2].into(),
                })
            }
            Some("CAND") => cands.push(Candidate {
                kind: match f.get(4).copied() {
                    Some("srflx") => CandidateKind::ServerReflexive,
                    Some("relay") => CandidateKind::Relay,
                    _ => CandidateKind::Host,
                },
                addr: format!("{}:{}", f[1], f[2]).parse().unwrap(),
                priority: f[3].parse().unwrap(),
            }),
            Some("END") => break,
            _ => {}
        }
    }
    (creds.unwrap(), cands)
}

/// Our answer: credentials and candidates, as the peer reads them.
pub(crate) fn answer(creds: &Credentials, cands: &[LocalCandidate]) -> String {
    let mut s = format!("CREDS {} {}\n", creds.ufrag, creds.password);
    for c in cands {
        let kind = match c.candidate.kind {
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::Relay => "relay",
            _ => "host",
        };
        s += &format!(
            "CAND {} {} {} {kind}\n",
            c.candidate.addr.ip(),
            c.candidate.addr.port(),
            c.candidate.priority
        );
    }
    s + "END\n"
}
