//! The context server: a Unix socket in a private folder (mode 0700) that answers the requests
//! of child processes. Each execution registers its [`TaskContext`] under a fresh random token
//! for as long as it runs; a request naming an unknown or expired token is refused.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::protocol::{MAX_REQUEST_BYTES, Op, Request, Response};
use crate::context::TaskContext;

/// What the server knows about one running execution.
pub(in crate::handler) struct Registration {
    /// The execution's context; control calls go straight into it.
    pub ctx: TaskContext,
    /// The value given by `set-result`, if any.
    pub result: Mutex<Option<Value>>,
}

type Registry = Arc<Mutex<HashMap<String, Arc<Registration>>>>;

/// A running context server. Dropping it stops the accept loop and removes its folder.
pub(in crate::handler) struct Server {
    dir: PathBuf,
    socket: PathBuf,
    registry: Registry,
    next_id: AtomicU64,
    accept: JoinHandle<()>,
}

impl Server {
    /// Create the private folder, bind the socket and start accepting on the current tokio
    /// runtime.
    pub fn start() -> io::Result<Server> {
        let dir = private_dir()?;
        let socket = dir.join("ctx.sock");
        let listener = match UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot listen on {}: {e}", socket.display()),
                ));
            }
        };
        // Containers may run as another user than the engine; the private folder keeps the
        // other users of this machine away from the socket, and the token does the rest.
        {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o777);
            if let Err(e) = std::fs::set_permissions(&socket, open) {
                tracing::warn!(
                    "task context server: cannot open up {}: {e}",
                    socket.display()
                );
            }
        }
        let registry = Registry::default();
        let accept = tokio::spawn(accept_loop(listener, registry.clone()));
        Ok(Server {
            dir,
            socket,
            registry,
            next_id: AtomicU64::new(0),
            accept,
        })
    }

    /// False once the accept loop has stopped (its tokio runtime shut down).
    pub fn alive(&self) -> bool {
        !self.accept.is_finished()
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Register `ctx` under a fresh token for the lifetime of the returned guard.
    pub fn begin(self: &Arc<Self>, ctx: TaskContext) -> Execution {
        let token = format!("{:032x}", rand::random::<u128>());
        let reg = Arc::new(Registration {
            ctx,
            result: Mutex::new(None),
        });
        self.registry.lock().insert(token.clone(), reg.clone());
        Execution {
            server: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            token,
            reg,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One execution's registration and scratch files. Dropping it (the execution ended, timed
/// out or was cancelled) retires the token and removes the files.
pub(in crate::handler) struct Execution {
    server: Arc<Server>,
    id: u64,
    token: String,
    reg: Arc<Registration>,
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Execution {
    /// The execution's secret.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The socket the child talks to.
    pub fn socket(&self) -> &Path {
        &self.server.socket
    }

    /// The value given by `set-result`, if any.
    pub fn set_result(&self) -> Option<Value> {
        self.reg.result.lock().take()
    }

    /// A path in the private folder for this execution's file named `suffix`; removed when the
    /// execution ends. The file is not created.
    pub fn file(&mut self, suffix: &str) -> PathBuf {
        let path = self.server.dir.join(format!("{}.{suffix}", self.id));
        self.files.push(path.clone());
        path
    }

    /// Create a folder in the private folder for this execution's files named `suffix`; it and
    /// its contents are removed when the execution ends. Its mode is 0777 so that a container
    /// running as another user can write its result there; the private folder around it keeps
    /// the other users of this machine out.
    #[cfg(feature = "docker")]
    pub fn dir(&mut self, suffix: &str) -> io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.server.dir.join(format!("{}.{suffix}", self.id));
        std::fs::create_dir(&path)?;
        self.dirs.push(path.clone());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        Ok(path)
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.server.registry.lock().remove(&self.token);
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh folder only this user can enter, with a path short enough for a socket.
fn private_dir() -> io::Result<PathBuf> {
    let mut base = std::env::temp_dir();
    // sun_path holds 108 bytes; leave room for the folder and socket names.
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    sweep_stale(&base);
    let mut last = None;
    for _ in 0..8 {
        let dir = base.join(format!(
            "graflow-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create a private folder in {}: {e}", base.display()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a private folder")))
}

/// Remove the folders of engines that died without cleaning up (killed, crashed): ours by name
/// and owner, whose process is gone.
fn sweep_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("graflow-"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(_, hex)| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid || pid <= 0 || pid == std::process::id() as i32 {
            continue;
        }
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Most connections served at once (each may buffer one request line of up to
/// [`MAX_REQUEST_BYTES`]); past it a connection is answered with an error and closed.
pub(in crate::handler) const MAX_CONNECTIONS: usize = 256;

async fn accept_loop(listener: UnixListener, registry: Registry) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((mut stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        serve(stream, registry).await;
                        drop(slot);
                    });
                }
                Err(_) => {
                    let refusal = Response::Err(format!(
                        "too many connections to the task context server (at most \
                         {MAX_CONNECTIONS}); close some and retry"
                    ));
                    tokio::spawn(async move {
                        let line = format!("{}\n", refusal.to_line());
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            stream.write_all(line.as_bytes()),
                        )
                        .await;
                    });
                }
            },
            Err(e) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                tracing::warn!("task context server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Answer the requests of one connection, one line each, until it closes.
async fn serve(stream: UnixStream, registry: Registry) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = MAX_REQUEST_BYTES as u64 + 1;
        let n = match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let response = if line.len() > MAX_REQUEST_BYTES && line.last() != Some(&b'\n') {
            if !skip_line(&mut reader).await {
                return;
            }
            Response::Err(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
        } else {
            handle(&line, &registry).await
        };
        let mut out = response.to_line();
        out.push('\n');
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Discard input up to and including the next newline; false at the end of the stream.
async fn skip_line(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> bool {
    loop {
        let buf = match reader.fill_buf().await {
            Ok(b) => b,
            Err(_) => return false,
        };
        if buf.is_empty() {
            return false;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                reader.consume(pos + 1);
                return true;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Answer one request line.
async fn handle(line: &[u8], registry: &Registry) -> Response {
    let Ok(text) = std::str::from_utf8(line) else {
        return Response::Err("malformed request: not UTF-8".into());
    };
    let text = text.trim();
    if text.is_empty() {
        return Response::Err(
            "malformed request: empty line; expected {\"token\": ..., \"op\": ..., \"args\": [...]}"
                .into(),
        );
    }
    let request: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return Response::Err(format!(
                "malformed request: {e}; expected {{\"token\": ..., \"op\": ..., \"args\": [...]}}"
            ));
        }
    };
    let Some(reg) = registry.lock().get(&request.token).cloned() else {
        return Response::Err(
            "unknown or expired token: the execution it belonged to has ended".into(),
        );
    };
    let op = match Op::parse(&request.op, request.args) {
        Ok(op) => op,
        Err(e) => return Response::Err(e.to_string()),
    };
    match dispatch(&reg, op).await {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Err(e),
    }
}

/// Carry out one operation for one execution.
async fn dispatch(reg: &Registration, op: Op) -> Result<Value, String> {
    let ctx = &reg.ctx;
    let ch = ctx.channel();
    let text = |e: &dyn std::fmt::Display| e.to_string();
    Ok(match op {
        Op::Get { key, default } => ch
            .get(&key)
            .await
            .map_err(|e| text(&e))?
            .or(default)
            .unwrap_or(Value::Null),
        Op::Set { key, value } => {
            ch.set(&key, value).await.map_err(|e| text(&e))?;
            Value::Null
        }
        Op::Delete { key } => Value::Bool(ch.delete(&key).await.map_err(|e| text(&e))?),
        Op::Exists { key } => Value::Bool(ch.exists(&key).await.map_err(|e| text(&e))?),
        Op::Keys => json!(ch.keys().await.map_err(|e| text(&e))?),
        Op::Append { key, value } => json!(ch.append(&key, value).await.map_err(|e| text(&e))?),
        Op::Prepend { key, value } => {
            json!(ch.prepend(&key, value).await.map_err(|e| text(&e))?)
        }
        Op::Incr { key, by } => ch.atomic_add(&key, by).await.map_err(|e| text(&e))?,
        Op::Input { id } => ctx.input(&id).unwrap_or(Value::Null),
        Op::Inputs => json!(ctx.inputs()),
        Op::Result { id } => ctx.result(&id).unwrap_or(Value::Null),
        Op::Data => ctx.data().clone(),
        Op::Info => json!({
            "task_id": ctx.task_id(),
            "run_id": ctx.run_id(),
            "cycle": ctx.cycle(),
            "attempt": ctx.attempt(),
            "max_cycles": ctx.max_cycles(),
        }),
        Op::Log { message } => {
            ctx.log(message);
            Value::Null
        }
        Op::NextIteration { data } => {
            ctx.next_iteration(data).map_err(|e| text(&e))?;
            Value::Null
        }
        Op::CanIterate => Value::Bool(ctx.can_iterate()),
        Op::NextTask { id } => {
            ctx.next_task(&id).map_err(|e| text(&e))?;
            Value::Null
        }
        Op::Goto { id } => {
            ctx.goto(&id).map_err(|e| text(&e))?;
            Value::Null
        }
        Op::Terminate { message } => {
            ctx.terminate_workflow(or_default(message, "terminate called"));
            Value::Null
        }
        Op::Cancel { message } => {
            ctx.cancel_workflow(or_default(message, "cancel called"));
            Value::Null
        }
        Op::SetResult { value } => {
            *reg.result.lock() = Some(value);
            Value::Null
        }
        Op::Checkpoint { meta } => {
            ctx.checkpoint(meta);
            Value::Null
        }
        Op::CheckpointNow { meta } => {
            Value::from(ctx.checkpoint_now(meta).await.map_err(|e| e.to_string())?)
        }
        Op::Request { spec, whole } => {
            let response = ctx.request_feedback(spec).await.map_err(|e| text(&e))?;
            if whole {
                serde_json::to_value(&response).unwrap_or(Value::Null)
            } else {
                response.value()
            }
        }
    })
}

fn or_default(message: String, default: &str) -> String {
    if message.is_empty() {
        default.to_string()
    } else {
        message
    }
}
