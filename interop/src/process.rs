//! Processes the lab starts, stopped when their guard drops (also while a test panics).

use std::io::Read;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::command::describe;
use crate::{Error, Result};

/// What a finished process printed and how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Finished {
    /// Standard output and standard error, one after the other.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A running process the lab started. Dropping it stops it: SIGTERM, a grace period of
/// [`ChildGuard::GRACE`], then SIGKILL, and always a wait so no zombie is left.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    /// How long a process gets to exit after SIGTERM before it is killed.
    pub const GRACE: Duration = Duration::from_secs(2);

    /// Starts `cmd` with standard output and error captured (read them with
    /// [`ChildGuard::wait`] or [`ChildGuard::stop`]).
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let name = describe(cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                command: name.clone(),
                source,
            })?;
        Ok(Self {
            child: Some(child),
            name,
        })
    }

    /// Starts `cmd` as it is configured (its standard streams as the caller set them).
    pub fn spawn_plain(cmd: &mut Command) -> Result<Self> {
        let name = describe(cmd);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: name.clone(),
            source,
        })?;
        Ok(Self {
            child: Some(child),
            name,
        })
    }

    /// Takes the captured standard output and error pipes (of a process started with
    /// [`ChildGuard::spawn`]) so the caller can read them while it runs; what it prints
    /// afterwards is then no longer in the [`Finished`] that [`ChildGuard::stop`] returns.
    pub fn take_pipes(&mut self) -> (Option<ChildStdout>, Option<ChildStderr>) {
        match self.child.as_mut() {
            Some(c) => (c.stdout.take(), c.stderr.take()),
            None => (None, None),
        }
    }

    /// Takes its standard input, if it was started with a piped one
    /// ([`ChildGuard::spawn_plain`] with `Stdio::piped()`).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The command line it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Waits up to `timeout` for the process to exit by itself, then returns what it
    /// printed; if it is still running it is stopped and [`Error::NotReady`] returned.
    pub fn wait(mut self, timeout: Duration) -> Result<Finished> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(Error::Queue("process already collected".into()));
            };
            match child.try_wait() {
                Ok(Some(_)) => return self.collect(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let out = self.stop()?;
                    return Err(Error::NotReady {
                        what: format!("`{}` to finish", self.name),
                        after: timeout,
                        log: crate::command::tail(&out.combined(), 2000),
                    });
                }
                Err(e) => return Err(Error::io(format!("waiting for `{}`", self.name), e)),
            }
        }
    }

    /// Stops the process (SIGTERM, grace period, SIGKILL) and returns what it printed.
    pub fn stop(&mut self) -> Result<Finished> {
        self.terminate();
        self.collect()
    }

    fn terminate(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Self::GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
    }

    fn collect(&mut self) -> Result<Finished> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Queue("process already collected".into()));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        let status = child
            .wait()
            .map_err(|e| Error::io(format!("waiting for `{}`", self.name), e))?;
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.terminate();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_collects_output_and_status() {
        let g =
            ChildGuard::spawn(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 4"]))
                .unwrap();
        let f = g.wait(Duration::from_secs(10)).unwrap();
        assert_eq!(f.stdout, "out\n");
        assert_eq!(f.stderr, "err\n");
        assert_eq!(f.status.code(), Some(4));
    }

    #[test]
    fn taken_pipes_are_read_while_it_runs() {
        let mut g =
            ChildGuard::spawn(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 5"]))
                .unwrap();
        let (out, err) = g.take_pipes();
        let (mut out, mut err) = (out.unwrap(), err.unwrap());
        let (mut o, mut e) = (String::new(), String::new());
        out.read_to_string(&mut o).unwrap();
        err.read_to_string(&mut e).unwrap();
        assert_eq!((o.as_str(), e.as_str()), ("out\n", "err\n"));
        let f = g.stop().unwrap();
        assert_eq!(f.status.code(), Some(5));
        assert!(f.stdout.is_empty() && f.stderr.is_empty());
        assert_eq!(g.take_pipes().0.map(|_| ()), None);
    }

    #[test]
    fn drop_stops_a_running_process() {
        let g = ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap();
        let pid = g.id().unwrap();
        drop(g);
        // Reaped: no /proc entry (or at most a different process reusing the id).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!stat.starts_with("sleep"), "sleep {pid} still running");
    }

    #[test]
    fn wait_times_out_and_stops() {
        let g = ChildGuard::spawn(Command::new("sleep").arg("600")).unwrap();
        let err = g.wait(Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::NotReady { .. }), "{err}");
    }
}
