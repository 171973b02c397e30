//! RFC 5780 NAT behaviour discovery with coturn's `turnutils_natdiscovery`, run on a lab
//! host against the lab's coturn, and its output parsed into a [`Behaviour`].
//!
//! RFC 5780 §4.3 (mapping), test II: "If the XOR-MAPPED-ADDRESS in the Binding Response is
//! the same as test I the NAT currently has Endpoint-Independent Mapping." §4.4 (filtering),
//! test II asks the server to answer from its alternate address and port: "If the client
//! receives a response, the current behavior of the NAT is Endpoint-Independent
//! Filtering." Test III asks for the alternate port only: "If the client receives a
//! response, the current behavior is Address-Dependent Filtering; if no response is
//! received, the current behavior is Address and Port-Dependent Filtering."

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::nat::{Behaviour, Filtering, Mapping};
use crate::netns::Netns;
use crate::process::{ChildGuard, Finished};
use crate::{Error, Result};

/// Upper bound for one discovery run (its filtering tests wait ~3 s per unanswered request).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one discovery run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The behaviour it concluded (with `translated` from the reflexive address).
    pub behaviour: Behaviour,
    /// The reflexive address of the first Binding response.
    pub reflexive: SocketAddr,
    /// Every distinct reflexive address the mapping tests saw (one for EIM).
    pub mapped: Vec<SocketAddr>,
}

/// Runs `turnutils_natdiscovery -m -f -L <local> <server>` inside `netns` (a host of the lab)
/// and parses what it prints. `local` is the host's own address, so the tool can tell "no NAT".
pub fn run(netns: &Netns, local: IpAddr, server: SocketAddr) -> Result<(Discovery, Finished)> {
    let mut cmd = netns.command("turnutils_natdiscovery");
    cmd.args(["-m", "-f", "-L"])
        .arg(local.to_string())
        .args(["-p", &server.port().to_string()])
        .arg(server.ip().to_string());
    let out = ChildGuard::spawn(&mut cmd)?.wait(TIMEOUT)?;
    let text = out.combined();
    Ok((parse(&text, local)?, out))
}

/// Parses `turnutils_natdiscovery -m -f` output; `local` is the host's own address.
pub fn parse(text: &str, local: IpAddr) -> Result<Discovery> {
    let mut mapping = None;
    let mut filtering = None;
    let mut mapped: Vec<SocketAddr> = Vec::new();
    let mut in_mapping = true;
    for line in text.lines().map(str::trim) {
        if line.contains("Filtering Behavior Discovery") {
            in_mapping = false;
        }
        if let Some(addr) = line.split("UDP reflexive addr:").nth(1) {
            let addr: SocketAddr = addr.trim().parse().map_err(|_| Error::Parse {
                what: "turnutils_natdiscovery",
                detail: format!("bad reflexive address in {line:?}"),
            })?;
            if in_mapping && !mapped.contains(&addr) {
                mapped.push(addr);
            }
            if mapped.is_empty() {
                mapped.push(addr);
            }
        }
        let Some(kind) = line
            .strip_prefix("NAT with ")
            .and_then(|l| l.strip_suffix('!'))
        else {
            continue;
        };
        match kind {
            "Endpoint Independent Mapping" => mapping = Some(Mapping::EndpointIndependent),
            "Address Dependent Mapping" => mapping = Some(Mapping::AddressDependent),
            "Address and Port Dependent Mapping" => {
                mapping = Some(Mapping::AddressAndPortDependent)
            }
            "Endpoint Independent Filtering" => filtering = Some(Filtering::EndpointIndependent),
            "Address Dependent Filtering" => filtering = Some(Filtering::AddressDependent),
            "Address and Port Dependent Filtering" => {
                filtering = Some(Filtering::AddressAndPortDependent)
            }
            _ => {}
        }
    }
    let missing = |what: &str| Error::Parse {
        what: "turnutils_natdiscovery",
        detail: format!(
            "no {what} conclusion in its output:\n{}",
            crate::command::tail(text, 1500)
        ),
    };
    let mapping = mapping.ok_or_else(|| missing("mapping"))?;
    let filtering = filtering.ok_or_else(|| missing("filtering"))?;
    let reflexive = *mapped.first().ok_or_else(|| missing("reflexive address"))?;
    Ok(Discovery {
        behaviour: Behaviour {
            translated: reflexive.ip() != local,
            mapping,
            filtering,
        },
        reflexive,
        mapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from the lab: a host behind the symmetric router (trimmed of blank lines).
    const SYMMETRIC: &str = "\
-= Mapping Behavior Discovery =-
RFC 5780 response 1
0: : IPv4. Response origin: : 192.0.2.10:3478
0: : IPv4. Other addr: : 192.0.2.11:3479
0: : IPv4. UDP reflexive addr: 203.0.113.2:8290
0: : IPv4. Local addr: : 10.1.0.2:40000
RFC 5780 response 2
0: : IPv4. Response origin: : 192.0.2.11:3478
0: : IPv4. UDP reflexive addr: 203.0.113.2:21588
RFC 5780 response 3
0: : IPv4. Response origin: : 192.0.2.11:3479
0: : IPv4. UDP reflexive addr: 203.0.113.2:12746
NAT with Address and Port Dependent Mapping!
-= Filtering Behavior Discovery =-
RFC 5780 response 4
0: : IPv4. UDP reflexive addr: 203.0.113.2:1430
STUN receive timeout..
STUN receive timeout..
NAT with Address and Port Dependent Filtering!
";

    // Captured from the lab: a host with a public address (-L given).
    const PUBLIC: &str = "\
-= Mapping Behavior Discovery =-
0: : IPv4. UDP reflexive addr: 192.0.2.1:46690
0: : IPv4. Local addr: : 192.0.2.1:46690
No NAT! (Endpoint Independent Mapping)
0: : IPv4. UDP reflexive addr: 192.0.2.1:46690
NAT with Endpoint Independent Mapping!
-= Filtering Behavior Discovery =-
0: : IPv4. UDP reflexive addr: 192.0.2.1:55765
No NAT! (Endpoint Independent Mapping)
0: : IPv4. UDP reflexive addr: 192.0.2.1:55765
NAT with Endpoint Independent Filtering!
";

    #[test]
    fn symmetric_nat_output() {
        let d = parse(SYMMETRIC, "10.1.0.2".parse().unwrap()).unwrap();
        assert_eq!(d.behaviour.mapping, Mapping::AddressAndPortDependent);
        assert_eq!(d.behaviour.filtering, Filtering::AddressAndPortDependent);
        assert!(d.behaviour.translated);
        assert_eq!(d.reflexive, "203.0.113.2:8290".parse().unwrap());
        assert_eq!(d.mapped.len(), 3);
    }

    #[test]
    fn public_host_output() {
        let d = parse(PUBLIC, "192.0.2.1".parse().unwrap()).unwrap();
        assert!(!d.behaviour.translated);
        assert_eq!(d.behaviour.mapping, Mapping::EndpointIndependent);
        assert_eq!(d.behaviour.filtering, Filtering::EndpointIndependent);
        assert_eq!(d.mapped, ["192.0.2.1:46690".parse().unwrap()]);
    }

    #[test]
    fn output_without_conclusions_is_an_error() {
        let err = parse(
            "Connection Timeout or Failure\n",
            "10.1.0.2".parse().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no mapping conclusion"), "{err}");
        let half = SYMMETRIC.split("-= Filtering").next().unwrap();
        let err = parse(half, "10.1.0.2".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no filtering conclusion"), "{err}");
    }
}
