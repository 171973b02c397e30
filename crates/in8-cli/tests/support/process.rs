//! Running the real `in8` binary: JSON events read from its stdout on a thread, waited for
//! by name (the other process's events are the synchronisation, never sleeps).

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Upper bound for any single wait: only reached when something is broken.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// `in8 --home HOME --json` with piped stdio.
pub(crate) fn in8(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_in8"));
    c.arg("--home").arg(home).arg("--json");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A running `in8` process and the events it printed so far.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    stderr: Option<std::thread::JoinHandle<String>>,
    pub(crate) seen: Vec<Value>,
}

impl Proc {
    /// Spawns `cmd` (stdin piped when `piped_stdin`).
    pub(crate) fn spawn(cmd: &mut Command, piped_stdin: bool) -> Self {
        if piped_stdin {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON on stdout: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            events,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// The next event named `name` (earlier ones are kept in `seen`); panics on an error
    /// event, on exit without it, or after [`WAIT`].
    pub(crate) fn wait_for(&mut self, name: &str) -> Value {
        loop {
            match self.events.recv_timeout(WAIT) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == name {
                        return v;
                    }
                    assert_ne!(v["event"], "error", "error while waiting for {name}: {v}");
                }
                Err(_) => panic!("no {name} event; saw {:?}", self.seen),
            }
        }
    }

    /// Writes a line to its stdin.
    pub(crate) fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the exit; returns the exit code, every event (seen and remaining) and
    /// stderr.
    pub(crate) fn finish(&mut self) -> (i32, Vec<Value>, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.events.iter());
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), all, err)
    }
}

impl Drop for Proc {
    /// A failed test leaves no process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
