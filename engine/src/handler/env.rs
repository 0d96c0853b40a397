//! What handlers share: engine-wide runtimes (the script engine, the HTTP client, the task
//! context server for child processes, the Docker client) and the folder relative paths resolve against.

use std::path::PathBuf;

use super::{
    docker::DockerRuntime, http::HttpRuntime, process::ProcessRuntime, script::ScriptRuntime,
};

/// Engine-wide resources of the built-in handlers. Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct Runtimes {
    /// The Rhai engine shared by every `Script` task and custom group policy.
    pub script: ScriptRuntime,
    /// The context server and settings of `Shell` and `Command` tasks.
    pub process: ProcessRuntime,
    /// The HTTP client of `Http` tasks.
    pub http: HttpRuntime,
    /// The Docker client of `Docker` tasks.
    pub docker: DockerRuntime,
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
