//! The lab's one error type.

use std::io;
use std::time::Duration;

/// What went wrong while building, driving or tearing down the lab.
///
/// Every variant says what to do next: install a package, run as root, clean up leftovers,
/// or read the quoted command output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation needs root (network namespaces, nftables, NFQUEUE).
    #[error(
        "{what} needs root (network namespaces, nftables, NFQUEUE); run as root, e.g. `sudo cargo xtask interop`"
    )]
    NotRoot {
        /// What was attempted.
        what: &'static str,
    },
    /// A program the lab runs is not installed.
    #[error(
        "`{tool}` is not installed (Debian package `{package}`); `cargo xtask interop` installs the lab's packages"
    )]
    MissingTool {
        /// The program.
        tool: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A command could not be started.
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// Entering a network namespace failed.
    #[error("entering network namespace {name}: {detail}")]
    Netns {
        /// The namespace.
        name: String,
        /// The system's reason.
        detail: String,
    },
    /// The lab configuration is not possible (too many sites or hosts, duplicate names...).
    #[error("invalid lab configuration: {0}")]
    Config(String),
    /// A service did not answer in time.
    #[error("{what} did not become ready within {after:?}; its log: {log}")]
    NotReady {
        /// The service.
        what: String,
        /// How long we waited.
        after: Duration,
        /// The end of its log, if any.
        log: String,
    },
    /// Output of a tool could not be understood.
    #[error("could not parse the output of {what}: {detail}")]
    Parse {
        /// The tool.
        what: &'static str,
        /// What was missing or wrong.
        detail: String,
    },
    /// The NFQUEUE delayer failed.
    #[error("NFQUEUE delayer: {0}")]
    Queue(String),
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
