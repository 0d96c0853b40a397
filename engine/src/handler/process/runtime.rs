//! Engine-wide state of process tasks: where the graflow executable is (so children can call
//! `graflow ctx` without it on their PATH) and the context server, started once, lazily.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::server::Server;

/// Engine-wide state of `Shell` and `Command` tasks. Cheap to clone; clones share the context
/// server.
#[derive(Clone, Default)]
pub struct ProcessRuntime {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set by [`ProcessRuntime::with_graflow_bin`]; otherwise the current executable.
    explicit_bin: Option<PathBuf>,
    paths: OnceLock<Paths>,
    server: Mutex<Option<Arc<Server>>>,
}

/// What every child's environment gets, computed once.
pub(super) struct Paths {
    /// Absolute path of the graflow executable, when known.
    pub bin: Option<PathBuf>,
    /// Its folder.
    pub bin_dir: Option<PathBuf>,
    /// The engine's own PATH.
    pub parent_path: Option<OsString>,
}

impl Paths {
    /// `PATH` for a child: the graflow folder first, then `base` (the task's own PATH, else
    /// the engine's).
    pub fn child_path(&self, base: Option<&OsString>) -> Option<OsString> {
        let base = base.or(self.parent_path.as_ref());
        match (&self.bin_dir, base) {
            (Some(dir), Some(base)) if !base.is_empty() => {
                let mut p = OsString::from(dir.as_os_str());
                p.push(":");
                p.push(base);
                Some(p)
            }
            (Some(dir), _) => Some(dir.as_os_str().to_owned()),
            (None, base) => base.cloned(),
        }
    }
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("graflow_bin", &self.graflow_bin())
            .finish()
    }
}

impl ProcessRuntime {
    /// A runtime whose children call the graflow executable at `path` (for tests and embedders
    /// whose own executable is not graflow). A relative path is taken from the current folder.
    pub fn with_graflow_bin(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let path = if path.is_relative() {
            std::env::current_dir()
                .map(|d| d.join(&path))
                .unwrap_or(path)
        } else {
            path
        };
        ProcessRuntime {
            inner: Arc::new(Inner {
                explicit_bin: Some(path),
                ..Inner::default()
            }),
        }
    }

    /// The graflow executable children see as `GRAFLOW_BIN`: the one given to
    /// [`with_graflow_bin`](Self::with_graflow_bin), else the running executable.
    pub fn graflow_bin(&self) -> Option<&Path> {
        self.paths().bin.as_deref()
    }

    pub(super) fn paths(&self) -> &Paths {
        self.inner.paths.get_or_init(|| {
            let bin = self
                .inner
                .explicit_bin
                .clone()
                .or_else(|| std::env::current_exe().ok());
            let bin_dir = bin
                .as_deref()
                .and_then(Path::parent)
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf);
            Paths {
                bin,
                bin_dir,
                parent_path: std::env::var_os("PATH"),
            }
        })
    }

    /// The context server, started on the current tokio runtime at first use (and again if
    /// the runtime it ran on has shut down).
    pub(in crate::handler) fn server(&self) -> io::Result<Arc<Server>> {
        let mut slot = self.inner.server.lock();
        if let Some(s) = slot.as_ref().filter(|s| s.alive()) {
            return Ok(s.clone());
        }
        let server = Arc::new(Server::start()?);
        *slot = Some(server.clone());
        Ok(server)
    }

    /// The context server's socket path, once a process task has started it.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.inner
            .server
            .lock()
            .as_ref()
            .map(|s| s.socket().to_path_buf())
    }
}
