//! One `in8 up` process on a lab host: its JSON events, read on a thread as they come, and
//! its control socket (`<home>/control.sock`, reachable from the lab's own namespace:
//! Unix sockets are named in the file system, not in a network namespace).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::ChildGuard;
use crate::{Error, Host, Result};

/// Longest a control request waits for its answer (a join's answer comes once it is a
/// member).
const CONTROL_WAIT: Duration = Duration::from_secs(90);

/// An event a node printed: which node, when it arrived, what it says.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The node's index.
    pub node: usize,
    /// When the line was read.
    pub at: Instant,
    /// The event.
    pub event: Value,
}

/// A running node.
#[derive(Debug)]
pub struct LabNode {
    /// Its index (node 0 creates the network).
    pub index: usize,
    /// Its home directory.
    pub home: PathBuf,
    /// The site it sits in (0-based) and that site's NAT.
    pub site: usize,
    /// Its node id, once it printed `up`.
    pub id: Option<String>,
    guard: Option<ChildGuard>,
    pid: Option<u32>,
}

impl LabNode {
    /// Starts `in8 up` on `host` with `args` after the global flags; its events go to
    /// `tx`, its standard error to `<home>.err`.
    pub fn spawn(
        index: usize,
        site: usize,
        host: &Host,
        in8: &Path,
        home: PathBuf,
        args: &[String],
        tx: mpsc::Sender<Printed>,
    ) -> Result<Self> {
        let mut cmd = host.command(in8);
        cmd.arg("--home")
            .arg(&home)
            .arg("--json")
            .arg("up")
            .args(args);
        let mut guard = ChildGuard::spawn(&mut cmd)?;
        let pid = guard.id();
        let (out, err) = guard.take_pipes();
        if let Some(out) = out {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                    let Ok(event) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let p = Printed {
                        node: index,
                        at: Instant::now(),
                        event,
                    };
                    if tx.send(p).is_err() {
                        return;
                    }
                }
            });
        }
        if let Some(mut err) = err {
            let path = home.with_extension("err");
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = err.read_to_end(&mut buf);
                let _ = std::fs::write(path, buf);
            });
        }
        Ok(Self {
            index,
            home,
            site,
            id: None,
            guard: Some(guard),
            pid,
        })
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.guard.as_mut().is_some_and(|g| !g.has_exited())
    }

    /// Kills the process at once (SIGKILL: no goodbye, as a crash or a power cut).
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut g) = self.guard.take() {
            let _ = g.stop();
        }
    }

    /// Its resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status.lines().find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    }

    /// Sends one control request and returns the answer (an error when it says
    /// `ok: false`).
    pub fn control(&self, request: &Value) -> Result<Value> {
        let path = self.home.join("control.sock");
        let what = format!("node{}'s control socket {}", self.index, path.display());
        let io = |e| Error::io(what.clone(), e);
        let mut s = UnixStream::connect(&path).map_err(io)?;
        s.set_read_timeout(Some(CONTROL_WAIT)).map_err(io)?;
        let mut line = request.to_string();
        line.push('\n');
        s.write_all(line.as_bytes()).map_err(io)?;
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).map_err(io)?;
        let v: Value = serde_json::from_str(&answer)
            .map_err(|e| Error::Config(format!("{what} answered no JSON ({e}): {answer:?}")))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(Error::Config(format!(
                "node{} refused {request}: {}",
                self.index, v["error"]
            )))
        }
    }
}

impl Drop for LabNode {
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            let _ = g.stop();
        }
    }
}
