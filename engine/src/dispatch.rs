//! Sending task executions to a worker fleet. The scheduler stays where the run is (the
//! coordinator) and asks a [`Fleet`] for a handler when a task is placed on the fleet: the
//! handler sends one attempt away, waits for its outcome, and replays the control calls the
//! body made into the coordinator's [`TaskContext`](crate::TaskContext), so every scheduling
//! decision is taken exactly as in a local run. The Redis fleet (`distributed`) implements
//! these traits; the engine knows nothing of Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::channel::Channel;
use crate::events::RunStatus;
use crate::handler::TaskHandler;
use crate::workflow::{TaskDef, Workflow};

/// A fleet could not be reached, or did not do what was asked. Each variant's message says
/// what was being done and where (the backend's address, without its password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// The backend URL does not parse.
    #[error("'{url}' is not a Redis URL: {reason}")]
    BadUrl {
        /// The URL, without its password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend cannot be reached (within the time allowed).
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable {
        /// The URL, without its password.
        url: String,
        /// The last connection error.
        reason: String,
    },
    /// A request to the backend failed (the connection dropped, a timeout, an error reply);
    /// asking again may succeed.
    #[error("{0}")]
    Store(String),
    /// The fleet refused: the run, attempt or worker is not in a state that allows the
    /// request (the run ended, another coordinator owns it, the dead letter was requeued
    /// already…). Asking again will not help.
    #[error("{0}")]
    Refused(String),
    /// A setting given to the fleet (a worker's or a coordinator's) cannot be used.
    #[error("{0}")]
    Config(String),
}

impl From<FleetError> for String {
    fn from(e: FleetError) -> String {
        e.to_string()
    }
}

/// Where the members of a parallel group run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Like the enclosing group; at the top level, as the run says ([`crate::RunOptions`]).
    #[default]
    Inherit,
    /// In the coordinator's process.
    Local,
    /// On the worker fleet.
    Fleet,
}

/// What a fleet learns about a run it serves.
pub struct FleetRunInfo {
    /// The run.
    pub run_id: Arc<str>,
    /// Its workflow.
    pub workflow: Arc<Workflow>,
    /// True when the run continues from a checkpoint.
    pub resumed: bool,
    /// Results already known (a resumed run's), by task id.
    pub results: BTreeMap<String, Value>,
    /// Tasks added at run time so far (a resumed run's).
    pub dynamic: Vec<String>,
    /// Stops the run with this message (used when the fleet can no longer serve it, e.g.
    /// another coordinator took the run over).
    pub cancel: Arc<dyn Fn(String) + Send + Sync>,
}

/// A worker fleet runs can send task attempts to.
pub trait Fleet: Send + Sync {
    /// A short name for messages (`redis`).
    fn kind(&self) -> &'static str;

    /// The channel of run `run_id`, shared with the workers.
    fn channel(&self, run_id: &str) -> Channel;

    /// Take charge of a run before its first task (leases, the outcome reader).
    fn open_run(
        &self,
        info: FleetRunInfo,
    ) -> BoxFuture<'static, Result<Arc<dyn FleetRun>, FleetError>>;
}

/// The fleet side of one run.
pub trait FleetRun: Send + Sync {
    /// A handler that runs `def` on the fleet, or `None` when the task cannot travel (a Rust
    /// closure with no registered name): it then runs in the coordinator.
    fn remote_handler(&self, def: &Arc<TaskDef>) -> Option<Arc<dyn TaskHandler>>;

    /// A task's (or group's) result was recorded: workers reading results see it before any
    /// attempt sent later.
    fn result_recorded(&self, task: &str, value: &Value);

    /// A task was added to the graph at run time.
    fn task_added(&self, task: &str);

    /// The run ended: release what the fleet holds for it.
    fn close(&self, status: RunStatus) -> BoxFuture<'static, ()>;

    /// Take the pool slots and rate-limit tokens `def` asks for, shared with the fleet, before
    /// `def` runs in the coordinator itself; `holder` names this execution. `on_wait` is told
    /// before each wait. The future's guard gives the slots back when dropped. `None` when the
    /// fleet does not share limits (the run's own pools and buckets apply).
    fn admit_here(
        &self,
        def: &Arc<TaskDef>,
        holder: String,
        on_wait: Box<dyn FnMut(crate::pool::Wait) + Send>,
    ) -> Option<BoxFuture<'static, Result<crate::pool::Admission, FleetError>>> {
        let _ = (def, holder, on_wait);
        None
    }

    /// Whether the fleet reports when `def`'s attempts start (once their worker took the
    /// pool slots and tokens they wait for): the coordinator then emits `task_started` on that
    /// report instead of when it sends the attempt, so `task_waiting` comes first as locally.
    fn starts_when_admitted(&self, def: &Arc<TaskDef>) -> bool {
        let _ = def;
        false
    }

    /// A task the coordinator ran itself was told to come back after `delay` (`Retry-After`):
    /// hold its pool's bucket (or its own) for the whole fleet. `None` when the fleet does not
    /// share limits.
    fn hold_here(
        &self,
        def: &Arc<TaskDef>,
        delay: std::time::Duration,
    ) -> Option<BoxFuture<'static, ()>> {
        let _ = (def, delay);
        None
    }
}

impl std::fmt::Debug for dyn Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fleet({})", self.kind())
    }
}
