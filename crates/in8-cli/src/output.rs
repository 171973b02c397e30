//! Human and JSON output, and mapping errors to exit codes.

use std::process::ExitCode;

use serde_json::{Value, json};

/// Exit code: operational failure.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code: invalid artifact.
pub(crate) const EXIT_INVALID: u8 = 3;
/// Exit code: could not connect.
pub(crate) const EXIT_UNREACHABLE: u8 = 4;

/// Where and how results are printed.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        Self { json, quiet }
    }

    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// Whether `--quiet` was given (no progress output).
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// Prints one JSON event (JSON mode only).
    pub(crate) fn event(&self, v: Value) {
        if self.json {
            println!("{v}");
        }
    }

    /// A progress or advice line for humans, on stderr (suppressed by --quiet and --json).
    pub(crate) fn note(&self, msg: impl AsRef<str>) {
        if !self.json && !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// Reports an error and returns the exit code it maps to.
    pub(crate) fn fail(&self, e: &anyhow::Error) -> ExitCode {
        let code = exit_code(e);
        if self.json {
            println!(
                "{}",
                json!({"event": "error", "message": format!("{e:#}"), "exit_code": code})
            );
        } else {
            eprintln!("error: {e:#}");
        }
        ExitCode::from(code)
    }
}

/// A connection-level failure the CLI itself detects (exit code 4).
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Artifact errors (malformed, forged, expired, …) exit with 3, connection failures with 4,
/// everything else with 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    use in8_artifact::Error as A;
    use in8_core::Error as C;
    if e.downcast_ref::<Unreachable>().is_some() {
        return EXIT_UNREACHABLE;
    }
    if let Some(c) = e.downcast_ref::<C>() {
        return match c {
            C::Artifact(a) => artifact_code(a),
            C::JoinRefused(_)
            | C::Unreachable { .. }
            | C::Timeout { .. }
            | C::InvitationEnded(_) => EXIT_UNREACHABLE,
            C::Transport(in8_transport::Error::JoinRefused(_)) => EXIT_UNREACHABLE,
            C::OwnInvitation | C::UnknownInvitation(_) => EXIT_INVALID,
            _ => EXIT_FAILURE,
        };
    }
    match e.downcast_ref::<A>() {
        Some(a) => artifact_code(a),
        None => EXIT_FAILURE,
    }
}

fn artifact_code(a: &in8_artifact::Error) -> u8 {
    use in8_artifact::Error as A;
    match Some(a) {
        Some(A::Io { .. } | A::LedgerLocked { .. } | A::BadIdentityFile { .. })
        | Some(A::CorruptLedger { .. } | A::CapacityExceeded { .. }) => EXIT_FAILURE,
        Some(_) => EXIT_INVALID,
        None => EXIT_FAILURE,
    }
}
