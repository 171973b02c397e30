//! The error type of the topology layer.

/// A policy or auto configuration that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of range.
    #[error("topology parameter {field} out of range (allowed: {range})")]
    BadParameter {
        /// The parameter.
        field: &'static str,
        /// The allowed range.
        range: &'static str,
    },
    /// A policy name that does not exist.
    #[error(
        "unknown topology policy {name:?} (expected mesh, star, tree, spanning-tree, dag, hierarchical, random, hybrid or auto)"
    )]
    UnknownPolicy {
        /// The name given.
        name: String,
    },
}
