//! `--topology NAME`: the overlay policies by name, with the parameters the CLI uses.

use anyhow::{Result, bail};
use in8_core::Topology;
use in8_topology::Policy;

/// The names `--topology` takes.
pub(crate) const NAMES: &str =
    "auto, mesh, star, tree, spanning-tree, dag, hierarchical, random, hybrid";

/// The policy called `name`.
pub(crate) fn parse(name: &str) -> Result<Topology> {
    let hierarchical = Policy::Hierarchical { core: 4, attach: 2 };
    Ok(match name {
        "auto" => Topology::Auto(in8_topology::AutoConfig::default()),
        "mesh" => Topology::Fixed(Policy::Mesh { max_links: 64 }),
        "star" => Topology::Fixed(Policy::Star { hubs: 1 }),
        "tree" => Topology::Fixed(Policy::Tree { fanout: 2 }),
        "spanning-tree" => Topology::Fixed(Policy::SpanningTree),
        "dag" => Topology::Fixed(Policy::Dag { parents: 2 }),
        "hierarchical" => Topology::Fixed(hierarchical),
        "random" => Topology::Fixed(Policy::Random),
        "hybrid" => Topology::Fixed(Policy::Hybrid(
            Box::new(hierarchical),
            Box::new(Policy::Random),
        )),
        other => bail!("unknown topology {other:?}: use one of {NAMES}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_a_typo_is_named() {
        for n in NAMES.split(", ") {
            assert!(parse(n).is_ok(), "{n}");
        }
        let e = parse("meshh")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("meshh") && e.contains("mesh, star"), "{e}");
    }
}
