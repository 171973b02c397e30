//! A Python virtual environment for the foreign peers (aiortc / aioice from PyPI), created
//! once and reused: `python3 -m venv DIR`, then `DIR/bin/pip install` of the pinned
//! requirements. Only PyPI is contacted, through pip.
//!
//! ```no_run
//! # fn main() -> in8_interop::Result<()> {
//! let venv = in8_interop::venv::Venv::ensure(
//!     &in8_interop::venv::default_dir(),
//!     in8_interop::venv::FOREIGN_PEERS,
//! )?;
//! let python = venv.python(); // run scripts with it, e.g. inside a lab host
//! # let _ = python;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{find_tool, run};
use crate::{Error, Result};

/// The requirements of the foreign-peer tests (pinned, so runs are comparable).
pub const FOREIGN_PEERS: &[&str] = &["aioice==0.13.0", "aiortc==1.16.0"];

/// Where `cargo xtask interop` keeps the venv: `target/interop-venv` of the workspace.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("target")
        .join("interop-venv")
}

/// A virtual environment with its requirements installed.
#[derive(Debug, Clone)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// Creates the venv in `dir` if needed and installs `requirements` unless a marker file
    /// says exactly these are installed already. Needs `python3` with the `venv` module
    /// (Debian: `python3-venv`).
    pub fn ensure(dir: &Path, requirements: &[&str]) -> Result<Self> {
        let venv = Self {
            dir: dir.to_path_buf(),
        };
        let marker = dir.join("in8-requirements.txt");
        let wanted = requirements.join("\n");
        if venv.python().is_file()
            && std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted)
        {
            return Ok(venv);
        }
        // Tests run in parallel threads and processes: one creates the venv while the
        // others wait on this lock, then find it ready.
        let _lock = lock(dir)?;
        if venv.python().is_file()
            && std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted)
        {
            return Ok(venv);
        }
        let python = find_tool("python3").ok_or(Error::MissingTool {
            tool: "python3".into(),
            package: "python3-venv",
        })?;
        if !venv.python().is_file() {
            run(Command::new(python).args(["-m", "venv"]).arg(dir))?;
        }
        if !requirements.is_empty() {
            run(Command::new(venv.pip())
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(requirements))?;
        }
        std::fs::write(&marker, wanted)
            .map_err(|e| Error::io(format!("writing {}", marker.display()), e))?;
        Ok(venv)
    }

    /// The venv's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    /// Its pip.
    pub fn pip(&self) -> PathBuf {
        self.dir.join("bin").join("pip")
    }
}

/// An exclusive lock on `DIR.lock` beside the venv, released when the file is dropped.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.with_extension("lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.lock()
        .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}
