//! Task handlers: how a task's body is executed. A handler receives the [`TaskContext`] and
//! returns the task's result; it may run the body in this process (closures), in a child
//! process, a container or a remote worker, as long as it reports the result back and copies
//! the body's control calls into the context ([`TaskContext::merge_control`]).

pub mod builtin;
pub mod docker;
mod env;
pub mod feedback;
pub mod http;
mod in_process;
pub mod process;
#[cfg(feature = "script")]
pub mod script;

pub use env::{HandlerEnv, Runtimes};
pub use in_process::FnHandler;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::context::TaskContext;

/// A task's spec cannot be run: which setting is wrong and why.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A setting of the spec is wrong.
    #[error("{field}: {reason}")]
    Field {
        /// The setting, as named in a workflow file (`image`, `url`, `volumes`, …).
        field: &'static str,
        /// What is wrong with it and what would be right.
        reason: String,
    },
    /// A duration or a value is past one of the engine's limits.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// The task's HTTP client (for its `ca_file`) could not be set up.
    #[cfg(feature = "http")]
    #[error(transparent)]
    Client(#[from] crate::net::ClientError),
}

impl SpecError {
    /// The setting `field` is wrong because of `reason`.
    pub fn field(field: &'static str, reason: impl Into<String>) -> SpecError {
        SpecError::Field {
            field,
            reason: reason.into(),
        }
    }
}

impl From<SpecError> for String {
    fn from(e: SpecError) -> String {
        e.to_string()
    }
}

/// The error a task body returns. Any error type converts into it with `?`.
pub type TaskError = anyhow::Error;

/// What a task body returns.
pub type TaskResult = Result<Value, TaskError>;

/// Executes task bodies of one kind.
pub trait TaskHandler: Send + Sync + 'static {
    /// The kind's name, e.g. `rust`, `shell`, `script`, `http`, `docker`.
    fn kind(&self) -> &'static str;

    /// Run the body once. The future must not borrow the handler; clone what it needs.
    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult>;

    /// The notifiers this task's own feedback requests use instead of the run's (an
    /// `Approval` or `Feedback` task with its own `notify`), so a request asked on a worker is
    /// announced the same way by the coordinator.
    fn feedback_notifiers(&self) -> Option<Vec<std::sync::Arc<dyn crate::hitl::Notifier>>> {
        None
    }
}
