//! Running the system tools the lab uses (`ip`, `nft`, `iptables`, coturn's tools) and
//! capturing what they print.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{Error, Result};

/// Whether this process runs as root (namespaces, nftables and NFQUEUE need it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Fails with [`Error::NotRoot`] unless this process runs as root.
pub fn require_root(what: &'static str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot { what })
    }
}

/// The programs the lab runs and the Debian package that provides each.
pub const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("iptables", "iptables"),
    ("turnserver", "coturn"),
    ("turnutils_natdiscovery", "coturn"),
];

/// The Debian packages the lab needs (what `cargo xtask interop` installs).
pub fn packages() -> Vec<&'static str> {
    let mut p: Vec<&str> = TOOLS.iter().map(|(_, pkg)| *pkg).collect();
    p.dedup();
    p
}

/// Finds `tool` on `PATH` (and in the sbin directories, which a non-root `PATH` may lack).
pub fn find_tool(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Fails with [`Error::MissingTool`] for the first of the lab's programs that is not installed.
pub fn require_tools() -> Result<()> {
    for (tool, package) in TOOLS {
        if find_tool(tool).is_none() {
            return Err(Error::MissingTool {
                tool: (*tool).to_owned(),
                package,
            });
        }
    }
    Ok(())
}

/// A command line as text, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The last `max` bytes of `text`, on a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

/// Runs `cmd` with `stdin` as its input, waits, and returns its output; fails with
/// [`Error::Command`] (quoting its standard error) if it exits unsuccessfully.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8]) -> Result<Output> {
    let line = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(|e| Error::io(format!("writing to `{line}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("waiting for `{line}`"), e))?;
    check(&line, out)
}

/// Runs `cmd` without input and returns its output; fails like [`run_with_input`].
pub fn run(cmd: &mut Command) -> Result<Output> {
    run_with_input(cmd, &[])
}

fn check(line: &str, out: Output) -> Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: line.to_owned(),
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 2000),
        })
    }
}

/// `ip -n <ns> -batch -` with `batch` as input (one `ip` command a line, without `ip`).
pub fn ip_batch(netns: &str, batch: &str) -> Result<()> {
    run_with_input(
        Command::new("ip").args(["-n", netns, "-batch", "-"]),
        batch.as_bytes(),
    )
    .map(drop)
}

/// `ip netns exec <ns> <program> <args...>` as a command to add to and run.
pub fn in_netns(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]).arg(program);
    cmd
}

/// Loads an nftables ruleset into a namespace (`nft -f -`).
pub fn nft_load(netns: &str, ruleset: &str) -> Result<()> {
    run_with_input(in_netns(netns, "nft").args(["-f", "-"]), ruleset.as_bytes()).map(drop)
}

/// Whether a path exists (for `/run/netns/...` and `/proc/<pid>`).
pub(crate) fn exists(path: impl AsRef<Path>) -> bool {
    path.as_ref().exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("  short  ", 10), "short");
        assert_eq!(tail("abcdef", 3), "...def");
        // 'é' is two bytes: a cut inside it moves forward.
        assert_eq!(tail("aé", 1), "...");
        assert_eq!(tail("aéb", 2), "...b");
    }

    #[test]
    fn describe_quotes_program_and_args() {
        let mut c = Command::new("ip");
        c.args(["-n", "x", "link"]);
        assert_eq!(describe(&c), "ip -n x link");
    }

    #[test]
    fn failing_command_reports_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]))
            .expect_err("exit 3 is a failure");
        match err {
            Error::Command { stderr, status, .. } => {
                assert_eq!(stderr, "boom");
                assert!(status.contains('3'), "{status}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn input_reaches_the_command() {
        let out = run_with_input(&mut Command::new("cat"), b"hello").unwrap();
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn packages_are_the_debian_names() {
        assert_eq!(
            packages(),
            ["iproute2", "nftables", "iptables", "coturn"].to_vec()
        );
    }
}
