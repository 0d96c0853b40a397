//! What handlers share: engine-wide runtimes (the script engine, the HTTP client, the task
//! context server for child processes, the Docker client) and the folder relative paths resolve against.

use std::path::PathBuf;

#[cfg(feature = "docker")]
use super::docker::DockerRuntime;
#[cfg(feature = "http")]
use super::http::HttpRuntime;
use super::process::ProcessRuntime;
#[cfg(feature = "script")]
use super::script::ScriptRuntime;

/// Engine-wide resources of the built-in handlers. Cheap to clone; clones share. The fields
/// of left-out cargo features are absent: build one from `Runtimes::default()`.
#[derive(Clone, Default)]
pub struct Runtimes {
    #[cfg(feature = "script")]
    /// The Rhai engine shared by every `Script` task and custom group policy.
    pub script: ScriptRuntime,
    /// The context server and settings of `Shell` and `Command` tasks.
    pub process: ProcessRuntime,
    #[cfg(feature = "http")]
    /// The HTTP client of `Http` tasks.
    pub http: HttpRuntime,
    #[cfg(feature = "docker")]
    /// The Docker client of `Docker` tasks.
    pub docker: DockerRuntime,
}

impl Runtimes {
    /// These runtimes with `process` for `Shell` and `Command` tasks (and `Docker` tasks' context
    /// server), e.g. one that points tasks at another `graflow` binary.
    pub fn with_process(mut self, process: ProcessRuntime) -> Self {
        self.process = process;
        self
    }
}

/// The environment a handler is built in.
#[derive(Clone, Default)]
pub struct HandlerEnv {
    /// Folder that relative paths (script files, `cwd`) resolve against: the workflow file's
    /// folder.
    pub base_dir: PathBuf,
    /// Shared runtimes.
    pub runtimes: Runtimes,
}

impl HandlerEnv {
    /// An environment rooted at `base_dir`, sharing `runtimes`.
    pub fn new(base_dir: impl Into<PathBuf>, runtimes: Runtimes) -> Self {
        HandlerEnv {
            base_dir: base_dir.into(),
            runtimes,
        }
    }

    /// Resolve a path written in a workflow file against the base folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }
}
