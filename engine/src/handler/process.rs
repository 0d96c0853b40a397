//! `Shell` and `Command` tasks: a child process per execution, its output streamed line by line
//! as `task_log` events, and the task context reachable from the child through `graflow ctx`.
//!
//! (Placeholder: the implementation lands with the process-handler work.)

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{HandlerEnv, TaskError, TaskHandler, TaskResult};
use crate::context::TaskContext;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// A command line for `sh -c`.
    Shell(String),
    /// A program and its arguments, run without a shell.
    Argv(Vec<String>),
}

/// A process task's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// What to run.
    pub program: Program,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory (relative paths resolved against the workflow's folder).
    pub cwd: Option<PathBuf>,
}

/// Engine-wide state of process tasks.
#[derive(Clone, Default)]
pub struct ProcessRuntime {}

/// Runs `Shell` and `Command` tasks.
pub struct ProcessHandler {
    spec: ProcessSpec,
}

impl ProcessHandler {
    /// A handler for `spec`.
    pub fn new(spec: ProcessSpec, env: &HandlerEnv) -> Self {
        let _ = env;
        ProcessHandler { spec }
    }
}

impl TaskHandler for ProcessHandler {
    fn kind(&self) -> &'static str {
        match self.spec.program {
            Program::Shell(_) => "shell",
            Program::Argv(_) => "command",
        }
    }
    fn execute(&self, _ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        futures::future::ready(Err(TaskError::msg("process tasks are not available yet"))).boxed()
    }
}
