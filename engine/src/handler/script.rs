//! `Script` tasks: Rhai code with the task-context API of DESIGN §4, sandboxed; and custom
//! group policies written as Rhai expressions.
//!
//! (Placeholder: the implementation lands with the script-handler work.)

use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{HandlerEnv, TaskError, TaskHandler, TaskResult};
use crate::context::TaskContext;
use crate::group::{CustomPolicy, MemberOutcome};

/// Where a script's code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptSource {
    /// Code written in the workflow file.
    Inline(String),
    /// A file (relative paths resolved against the workflow's folder).
    File(PathBuf),
}

/// A script that does not compile or cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    /// What is wrong.
    pub message: String,
    /// 1-based line within the script, when known.
    pub line: Option<usize>,
    /// 1-based column within the script, when known.
    pub column: Option<usize>,
}

/// The shared Rhai engine.
#[derive(Clone, Default)]
pub struct ScriptRuntime {}

/// Runs a compiled script.
pub struct ScriptHandler {}

impl ScriptHandler {
    /// Compile `source`.
    pub fn new(source: ScriptSource, env: &HandlerEnv) -> Result<Self, ScriptError> {
        let _ = (source, env);
        Ok(ScriptHandler {})
    }
}

impl TaskHandler for ScriptHandler {
    fn kind(&self) -> &'static str {
        "script"
    }
    fn execute(&self, _ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        futures::future::ready(Err(TaskError::msg("script tasks are not available yet"))).boxed()
    }
}

/// A group policy written as a Rhai expression over the members' outcomes.
#[derive(Debug)]
pub struct ScriptPolicy {}

impl ScriptPolicy {
    /// Compile `expression`.
    pub fn new(expression: &str, runtime: &ScriptRuntime) -> Result<Self, ScriptError> {
        let _ = (expression, runtime);
        Ok(ScriptPolicy {})
    }
}

impl CustomPolicy for ScriptPolicy {
    fn evaluate(&self, _group: &str, _outcomes: &[MemberOutcome]) -> Result<(), String> {
        Err("custom script policies are not available yet".into())
    }
}
