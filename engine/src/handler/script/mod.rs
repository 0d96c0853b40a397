//! `Script` tasks: Rhai code with the task-context API of DESIGN §4 (`ctx.…`), sandboxed; and
//! custom group policies written in Rhai.
//!
//! One Rhai engine serves the whole process run ([`ScriptRuntime`]); each script is compiled
//! once, when the workflow is loaded ([`ScriptHandler::new`], [`ScriptPolicy::new`]).
//! Modules: `sandbox` (the engine, its limits and per-execution stop/budget), `api` (the `ctx`
//! object), `exec` (where and how a compiled script runs, error messages), `convert`
//! (Rhai ↔ JSON), `policy` (custom group policies). The API is described in
//! `docs/script-api.md`.

mod api;
mod convert;
mod exec;
mod policy;
mod sandbox;

pub use policy::ScriptPolicy;
pub use sandbox::Limits;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use rhai::Engine;

use super::{HandlerEnv, TaskHandler, TaskResult};
use crate::context::TaskContext;
use exec::Compiled;

/// Where a script's code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptSource {
    /// Code written in the workflow file.
    Inline(String),
    /// A file (relative paths resolved against the workflow's folder).
    File(PathBuf),
}

/// A script that does not compile or cannot be read (or, inside the engine, a failed
/// evaluation).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    /// What is wrong, without the position.
    pub message: String,
    /// 1-based line within the script, when known.
    pub line: Option<usize>,
    /// 1-based column within the script, when known.
    pub column: Option<usize>,
}

impl ScriptError {
    fn plain(message: impl Into<String>) -> Self {
        ScriptError {
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// The message followed by the position, e.g. `… (line 2, column 7)`, or
    /// `… (merge.rhai, line 2, column 7)` when `file` is given.
    pub fn located(&self, file: Option<&str>) -> String {
        let place = match (self.line, self.column) {
            (Some(l), Some(c)) => Some(format!("line {l}, column {c}")),
            (Some(l), None) => Some(format!("line {l}")),
            _ => None,
        };
        match (file, place) {
            (Some(f), Some(p)) => format!("{} ({f}, {p})", self.message),
            (Some(f), None) => format!("{} ({f})", self.message),
            (None, Some(p)) => format!("{} ({p})", self.message),
            (None, None) => self.message.clone(),
        }
    }

    fn describe(&self) -> String {
        self.located(None)
    }
}

#[derive(Default)]
struct RuntimeInner {
    limits: Limits,
    engine: OnceLock<Engine>,
}

/// The Rhai engine shared by every `Script` task and custom policy built with it, created on
/// first use (creating one costs about a millisecond). Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct ScriptRuntime {
    inner: Arc<RuntimeInner>,
}

impl ScriptRuntime {
    /// A runtime whose sandbox has these limits (the default has [`Limits::default`]).
    pub fn with_limits(limits: Limits) -> Self {
        ScriptRuntime {
            inner: Arc::new(RuntimeInner {
                limits,
                engine: OnceLock::new(),
            }),
        }
    }

    /// The sandbox's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    fn engine(&self) -> &Engine {
        self.inner
            .engine
            .get_or_init(|| sandbox::build_engine(&self.inner.limits))
    }

    fn compile(&self, code: &str) -> Result<rhai::AST, ScriptError> {
        self.engine().compile(code).map_err(|e| {
            let pos = e.position();
            ScriptError {
                message: e.err_type().to_string(),
                line: pos.line(),
                column: pos.position(),
            }
        })
    }
}

impl std::fmt::Debug for ScriptRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRuntime")
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// What scripts are compiled with: the runtime and the folder files resolve against.
#[derive(Clone)]
struct ScriptEnv {
    runtime: ScriptRuntime,
    base_dir: Arc<Path>,
}

/// Runs a compiled script as a task's body (kind `script`).
pub struct ScriptHandler {
    script: Arc<Compiled>,
}

impl ScriptHandler {
    /// Read (files: relative to `env`'s base folder) and compile `source`. A compile error
    /// carries its line and column within the script.
    pub fn new(source: ScriptSource, env: &HandlerEnv) -> Result<Self, ScriptError> {
        let env = ScriptEnv {
            runtime: env.runtimes.script.clone(),
            base_dir: Arc::from(env.base_dir.as_path()),
        };
        Self::compile(source, &env)
    }

    fn compile(source: ScriptSource, env: &ScriptEnv) -> Result<Self, ScriptError> {
        let (code, label) = match source {
            ScriptSource::Inline(code) => (code, None),
            ScriptSource::File(path) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    env.base_dir.join(&path)
                };
                let code = std::fs::read_to_string(&full).map_err(|e| {
                    ScriptError::plain(format!("cannot read script file '{}': {e}", full.display()))
                })?;
                (code, Some(path.display().to_string()))
            }
        };
        let ast = env.runtime.compile(&code)?;
        let straight = exec::straight_line(&code, &ast);
        Ok(ScriptHandler {
            script: Arc::new(Compiled {
                ast,
                straight,
                label,
                env: env.clone(),
            }),
        })
    }

    /// Whether the script is straight-line and so may run inline (see `docs/script-api.md`).
    pub fn runs_inline(&self) -> bool {
        self.script.straight
    }
}

impl std::fmt::Debug for ScriptHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHandler")
            .field("file", &self.script.label)
            .field("straight_line", &self.script.straight)
            .finish()
    }
}

impl TaskHandler for ScriptHandler {
    fn kind(&self) -> &'static str {
        "script"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        exec::execute(self.script.clone(), ctx)
    }
}
