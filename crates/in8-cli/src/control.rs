//! The control socket of a running node: `<home>/control.sock`, a Unix socket only the
//! node's user may open (0600 in the 0700 home). One JSON object per line each way: a
//! request `{"cmd": "status", ...}` and its answer `{"ok": true, ...}` or
//! `{"ok": false, "error": "..."}` (docs/cli.md "Control socket"). `in8 net` is its
//! client; `in8 up` and `in8 chat` serve it.

pub(crate) mod commands;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::home::Home;

/// Longest request or answer line (bytes).
pub(crate) const MAX_LINE: usize = 256 * 1024;
/// Clients served at once; more wait in the listen backlog.
pub(crate) const MAX_CLIENTS: usize = 16;
/// A client that sends nothing for this long is disconnected (its slot is freed).
const IDLE: Duration = Duration::from_secs(60);
/// Longest path a Unix socket can have on Linux (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where the node of `home` listens.
pub(crate) fn socket_path(home: &Home) -> PathBuf {
    home.dir().join("control.sock")
}

/// The listening side, removed again when dropped.
pub(crate) struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Arc<tokio::sync::Semaphore>,
}

impl Server {
    /// Listens at `path`. A stale socket left by a node that crashed is replaced; a live
    /// one (another node runs for this home) or anything that is not a socket (a file, a
    /// planted symlink) is an error naming the path.
    pub(crate) async fn bind(path: &Path) -> Result<Self> {
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the control socket path {} is longer than {MAX_SOCKET_PATH} bytes: use a shorter --home",
                path.display()
            );
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(path).await.is_ok() {
                    bail!(
                        "a node is already running for this home (it answers on {}): use `in8 net`, or stop it with `in8 net stop`",
                        path.display()
                    );
                }
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the stale socket {}", path.display()))?;
            }
            Ok(_) => bail!(
                "{} exists and is not a control socket (a file or a link): move it away",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
        }
        // Bound in a fresh private directory, restricted, then moved into place: nobody
        // else can connect in between, whatever the umask.
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", dir.display()))?;
        let private = dir.join(format!(".control-{:016x}", rand::random::<u64>()));
        in8_core::state::make_dir(&private)?;
        let staged = private.join("s");
        let bound = UnixListener::bind(&staged)
            .with_context(|| format!("listening on {}", staged.display()))
            .and_then(|l| {
                std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {}", staged.display()))?;
                std::fs::rename(&staged, path)
                    .with_context(|| format!("moving the socket to {}", path.display()))?;
                Ok(l)
            });
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_dir(&private);
        let listener = bound?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            clients: Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS)),
        })
    }

    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the next client and serves it on a task of its own with `handle`.
    pub(crate) async fn serve_next(&self, ctx: &commands::Ctx) {
        // A slot first: beyond MAX_CLIENTS, clients wait in the listen backlog.
        let Ok(permit) = self.clients.clone().acquire_owned().await else {
            return;
        };
        let stream = match self.listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors, say: do not spin.
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            serve(stream, &ctx).await;
            drop(permit);
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at end of input.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        bail!("a line longer than {MAX_LINE} bytes");
    }
    Ok(Some(buf))
}

async fn serve(stream: UnixStream, ctx: &commands::Ctx) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut last = false;
        let answer = match tokio::time::timeout(IDLE, read_line(&mut r)).await {
            Err(_) | Ok(Ok(None)) => return,
            Ok(Ok(Some(line))) => match serde_json::from_slice::<Value>(&line) {
                Ok(req) => commands::handle(ctx, &req).await,
                Err(e) => Err(anyhow!("the request is not JSON: {e}")),
            },
            Ok(Err(e)) => {
                // The framing is lost (an over-long line): answer, then hang up.
                last = true;
                Err(e)
            }
        };
        let mut v = match answer {
            Ok(mut v) => {
                if let Some(o) = v.as_object_mut() {
                    o.insert("ok".into(), json!(true));
                }
                v
            }
            Err(e) => json!({"ok": false, "error": format!("{e:#}")}),
        };
        let mut text = v.to_string();
        if text.len() > MAX_LINE {
            v = json!({"ok": false, "error": "the answer is too large to send"});
            text = v.to_string();
        }
        text.push('\n');
        if w.write_all(text.as_bytes()).await.is_err() || last {
            return;
        }
    }
}

/// Sends one request to the node of `home` and returns its answer (an error when it
/// says `ok: false`, or nothing answers within `timeout`).
pub(crate) async fn request(home: &Home, req: Value, timeout: Duration) -> Result<Value> {
    let path = socket_path(home);
    let stream = UnixStream::connect(&path).await.map_err(|e| {
        anyhow!(
            "no node is running for {} ({}: {e}): start one with `in8 up`",
            home.dir().display(),
            path.display()
        )
    })?;
    let mut line = req.to_string();
    if line.len() > MAX_LINE {
        bail!(
            "the request is {} bytes as JSON: at most {MAX_LINE} go over the control socket",
            line.len()
        );
    }
    line.push('\n');
    let exchange = async {
        let (r, mut w) = stream.into_split();
        w.write_all(line.as_bytes()).await?;
        let mut r = BufReader::new(r);
        read_line(&mut r).await
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow!("the node did not answer within {timeout:?}"))??
        .ok_or_else(|| anyhow!("the node closed the control socket without answering"))?;
    let v: Value = serde_json::from_slice(&answer).context("the node's answer is not JSON")?;
    if v["ok"] == json!(true) {
        Ok(v)
    } else {
        Err(anyhow!(
            "{}",
            v["error"]
                .as_str()
                .unwrap_or("the node refused the request")
        ))
    }
}
