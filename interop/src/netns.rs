//! Network namespaces: created with `ip netns add`, entered per thread with `setns(2)`,
//! deleted (with every process still inside) when their guard drops.
//!
//! All of the lab's namespaces are named `in8lab-<pid>-<lab>-<role>`: the prefix lets
//! [`crate::clean`] find leftovers of a killed run, the pid tells whether their owner still
//! lives.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::command::{self, in_netns, run};
use crate::{Error, Result};

/// The prefix of every namespace the lab creates.
pub const PREFIX: &str = "in8lab-";

/// A unique name stem for a new lab of this process: `in8lab-<pid>-<n>`.
pub fn new_stem() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace the lab owns. Dropping it kills the processes left inside and
/// deletes it (and with it the veth ends it holds, which removes their peers too).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (`ip netns add`) with its loopback up and IPv6 off (the
    /// lab is IPv4; this keeps router solicitations and DAD out of captures and queues).
    pub fn create(name: impl Into<String>) -> Result<Self> {
        command::require_root("creating a network namespace")?;
        let name = name.into();
        if !name.starts_with(PREFIX) {
            return Err(Error::Config(format!(
                "namespace {name} must start with {PREFIX} so that clean-up finds it"
            )));
        }
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self { name };
        command::ip_batch(&ns.name, "link set lo up\n")?;
        ns.sysctl("net/ipv6/conf/all/disable_ipv6", "1")?;
        ns.sysctl("net/ipv6/conf/default/disable_ipv6", "1")?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`, `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <name> <program>`: add arguments, then run or spawn it.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        in_netns(&self.name, program)
    }

    /// Runs `ip -n <name> -batch -` with these lines.
    pub fn ip(&self, batch: &str) -> Result<()> {
        command::ip_batch(&self.name, batch)
    }

    /// Writes a sysctl of this namespace, e.g. `sysctl("net/ipv4/ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{key}");
        let value = value.to_owned();
        self.run(move || std::fs::write(&path, value).map_err(|e| Error::io(path.clone(), e)))?
    }

    /// Runs `f` on a thread that has joined this namespace and returns its result. Sockets
    /// created inside `f` stay in the namespace for their whole life, whichever thread then
    /// uses them.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = self.open()?;
        let name = self.name.clone();
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                    name: name.clone(),
                    detail: e.to_string(),
                })?;
                Ok(f())
            })
            .join()
            .map_err(|_| Error::Netns {
                name: self.name.clone(),
                detail: "the thread inside the namespace panicked".into(),
            })?
        })
    }

    /// Starts a named thread inside this namespace running `f` (used by the delayer).
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        thread_name: String,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<Result<T>>> {
        let file = self.open()?;
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                    name,
                    detail: e.to_string(),
                })?;
                Ok(f())
            })
            .map_err(|e| Error::io("spawning a thread", e))
    }

    /// A UDP socket bound to `addr` inside this namespace.
    pub fn udp_socket(&self, addr: SocketAddr) -> Result<UdpSocket> {
        self.run(move || UdpSocket::bind(addr))?
            .map_err(|e| Error::io(format!("binding UDP {addr} in {}", self.name), e))
    }

    fn open(&self) -> Result<File> {
        let path = format!("/run/netns/{}", self.name);
        File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))
    }

    /// Kills every process left in the namespace and deletes it.
    pub fn delete(self) -> Result<()> {
        let r = delete_named(&self.name);
        std::mem::forget(self);
        r
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = delete_named(&self.name);
    }
}

/// The ids of the processes inside namespace `name` (`ip netns pids`).
pub fn pids(name: &str) -> Vec<i32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills the processes inside `name` (SIGTERM, then SIGKILL after a second) and deletes the
/// namespace. Used by the guards and by [`crate::clean`].
pub fn delete_named(name: &str) -> Result<()> {
    let mut left = pids(name);
    for p in &left {
        let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = pids(name);
    }
    for p in &left {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    if command::exists(format!("/run/netns/{name}")) {
        run(Command::new("ip").args(["netns", "del", name]))?;
    }
    Ok(())
}

/// The names of the lab's namespaces that exist now (all owners).
pub fn list_lab_namespaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    names.sort();
    names
}

/// The owner pid encoded in a lab namespace name (`in8lab-<pid>-...`).
pub fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_and_carry_the_pid() {
        let a = new_stem();
        let b = new_stem();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(owner_pid(&format!("{a}-inet")), Some(std::process::id()));
    }

    #[test]
    fn owner_pid_rejects_foreign_names() {
        assert_eq!(owner_pid("other-123-0-inet"), None);
        assert_eq!(owner_pid("in8lab-x-0-inet"), None);
        assert_eq!(owner_pid("in8lab-42-7-s1"), Some(42));
    }
}
