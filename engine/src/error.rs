//! Error types: [`BuildError`] when a workflow is assembled, [`RunError`] when it runs.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::group::GroupFailure;

/// A position in a flow string: byte offset plus 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes (at least 1 for a token, 0 at the end of input).
    pub len: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

fn at(span: &Option<Span>) -> String {
    span.map(|s| format!(" at {s}")).unwrap_or_default()
}

/// Why a workflow could not be built. Every variant names the offending task, group or place.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BuildError {
    /// Two task definitions share an id.
    #[error("duplicate task id '{0}'")]
    DuplicateTask(String),
    /// Two groups share an id.
    #[error("duplicate group id '{0}'")]
    DuplicateGroup(String),
    /// A name is used for both a task and a group.
    #[error("'{0}' names both a task and a group")]
    NameClash(String),
    /// A flow names a task or group that is not defined.
    #[error("unknown task or group '{name}' in flow{}", at(span))]
    UnknownName {
        /// The name as written.
        name: String,
        /// Where it was written, for string flows.
        span: Option<Span>,
    },
    /// A flow string does not parse.
    #[error("flow syntax error at {span}: {message}")]
    FlowSyntax {
        /// What was expected and what was found.
        message: String,
        /// Where.
        span: Span,
    },
    /// The workflow has no flow statement.
    #[error("the flow is empty: name at least one task")]
    EmptyFlow,
    /// The explicit start task is not in the graph.
    #[error("unknown start task '{0}'")]
    UnknownStart(String),
    /// No node lacks a predecessor, so the start cannot be inferred.
    #[error("no start task: every task has a predecessor; name one with `start`")]
    NoStart,
    /// Several nodes lack a predecessor.
    #[error("several tasks could start the workflow ({}); name one with `start`", .0.join(", "))]
    MultipleStarts(Vec<String>),
    /// A group policy does not fit its group.
    #[error("group '{group}': {message}")]
    PolicyConfig {
        /// The group.
        group: String,
        /// What is wrong.
        message: String,
    },
    /// A group has no members.
    #[error("group '{0}' has no members")]
    EmptyGroup(String),
    /// A task or group is a member of two groups.
    #[error("'{member}' is a member of both group '{first}' and group '{second}'")]
    MemberOfTwoGroups {
        /// The member.
        member: String,
        /// The first group.
        first: String,
        /// The second group.
        second: String,
    },
    /// A group member also has a predecessor edge; members start when their group starts.
    #[error("'{member}' is a member of group '{group}' and cannot also follow '{predecessor}'")]
    MemberWithPredecessor {
        /// The member.
        member: String,
        /// Its group.
        group: String,
        /// The predecessor that points at it.
        predecessor: String,
    },
    /// A group contains itself, directly or through other groups.
    #[error("group '{0}' contains itself")]
    GroupContainsItself(String),
    /// A task option is invalid.
    #[error("task '{task}': {message}")]
    InvalidTask {
        /// The task.
        task: String,
        /// What is wrong.
        message: String,
    },
    /// A pool definition is invalid.
    #[error("pool '{pool}': {message}")]
    InvalidPool {
        /// The pool.
        pool: String,
        /// What is wrong.
        message: String,
    },
    /// A handle from another builder was used.
    #[error("a task or group handle from another workflow builder was used in '{0}'")]
    ForeignHandle(String),
}

/// Why a run failed or was cancelled. Serializable so it can travel in events and checkpoints.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunError {
    /// A task's body returned an error (and it had no retries left, or none).
    #[error("task '{task}' failed: {message}")]
    TaskFailed {
        /// The task.
        task: String,
        /// The error, with its causes.
        message: String,
    },
    /// A task failed on every attempt its retry budget allowed.
    #[error(
        "retry limit exceeded for task '{task}': attempts 0 to {} all failed ({max_retries} retries); last error: {last_error}", .attempts.saturating_sub(1)
    )]
    RetryLimitExceeded {
        /// The task.
        task: String,
        /// Attempts made (retries + 1).
        attempts: u32,
        /// The retry budget.
        max_retries: u32,
        /// The last attempt's error.
        last_error: String,
    },
    /// A task would have run more often than its cycle limit allows.
    #[error("cycle limit exceeded for task '{task}': {count}/{limit} cycles")]
    CycleLimitExceeded {
        /// The task.
        task: String,
        /// Executions so far.
        count: u32,
        /// The limit.
        limit: u32,
    },
    /// The run reached its step limit.
    #[error("step limit of {limit} reached before running task '{task}'")]
    StepLimitExceeded {
        /// The task that would have run next.
        task: String,
        /// The limit.
        limit: u64,
    },
    /// A parallel group's policy rejected its members' outcomes.
    #[error(transparent)]
    GroupFailed(GroupFailure),
    /// `cancel_workflow` was called, or the host cancelled the run.
    #[error("workflow cancelled{}: {message}", .task.as_ref().map(|t| format!(" by task '{t}'")).unwrap_or_default())]
    Cancelled {
        /// The task that cancelled, if a task did.
        task: Option<String>,
        /// The message given.
        message: String,
    },
    /// `next_task` or `goto` named a task that is neither in the graph nor defined.
    #[error("task '{by}' asked for unknown task '{task}'")]
    UnknownTask {
        /// The unknown id.
        task: String,
        /// The task that asked.
        by: String,
    },
    /// The engine itself failed (a bug); the message says where.
    #[error("internal engine error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

impl RunError {
    /// The task this error is about, when there is one.
    pub fn task(&self) -> Option<&str> {
        match self {
            RunError::TaskFailed { task, .. }
            | RunError::RetryLimitExceeded { task, .. }
            | RunError::CycleLimitExceeded { task, .. }
            | RunError::StepLimitExceeded { task, .. }
            | RunError::UnknownTask { by: task, .. } => Some(task),
            RunError::GroupFailed(g) => Some(&g.group),
            RunError::Cancelled { task, .. } => task.as_deref(),
            RunError::Internal { .. } => None,
        }
    }

    /// True for a cancellation (as opposed to a failure).
    pub fn is_cancel(&self) -> bool {
        matches!(self, RunError::Cancelled { .. })
    }
}
