//! Removing what a killed lab run left behind: namespaces named `in8lab-*` (with the
//! processes inside them, found by `ip netns pids`) and loopback coturns whose command line
//! names an `in8lab-coturn-*` configuration. Only the lab's own names are ever touched.

use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Result;
use crate::netns::{self, PREFIX, delete_named, list_lab_namespaces, owner_pid};

/// What a clean-up removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Processes stopped (in those namespaces or loopback coturns).
    pub processes: Vec<i32>,
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the lab namespaces whose owner process is gone (and the processes still in
/// them). Safe while other labs run: a live owner's namespaces are left alone.
pub fn stale() -> Result<Cleaned> {
    remove(|name| owner_pid(name).is_none_or(|pid| !alive(pid)), false)
}

/// Removes every lab namespace and every lab coturn, whoever started them (what
/// `cargo xtask interop clean` runs).
pub fn all() -> Result<Cleaned> {
    remove(|_| true, true)
}

fn remove(select: impl Fn(&str) -> bool, coturns: bool) -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    let mut first_error = None;
    for name in list_lab_namespaces().into_iter().filter(|n| select(n)) {
        cleaned.processes.extend(netns::pids(&name));
        match delete_named(&name) {
            Ok(()) => cleaned.namespaces.push(name),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if coturns {
        for pid in lab_coturns() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            cleaned.processes.push(pid);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(cleaned),
    }
}

/// Processes whose command line is `turnserver -c .../in8lab-coturn-*/...` (lab coturns,
/// including loopback ones that no namespace holds).
fn lab_coturns() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let is_turnserver = args.first().is_some_and(|a| a.ends_with(b"turnserver"));
            is_turnserver
                && args
                    .iter()
                    .any(|a| String::from_utf8_lossy(a).contains(&format!("/{PREFIX}coturn-")))
        })
        .collect()
}

/// A summary line for people.
pub fn describe(c: &Cleaned) -> String {
    format!(
        "removed {} namespace(s), stopped {} process(es)",
        c.namespaces.len(),
        c.processes.len()
    )
}

/// The namespaces of the lab with this stem ([`crate::Lab::stem`]) that still exist: empty
/// once that lab has dropped.
pub fn left_behind(stem: &str) -> Vec<String> {
    let prefix = format!("{stem}-");
    list_lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}
