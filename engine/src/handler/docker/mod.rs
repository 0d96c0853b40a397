//! `Docker` tasks: a container per execution, created from a local image (never pulled), its
//! output streamed line by line as `task_log` events, the result taken by the rules of process
//! tasks, the container removed afterwards (killed and removed when the execution is dropped).
//!
//! The task context reaches the container as in process tasks (`docs/task-context.md`): the
//! `GRAFLOW_*` variables, the context server's socket mounted at [`CONTAINER_SOCKET`], and a
//! per-execution folder mounted at [`CONTAINER_DIR`] for the result file and large JSON.
//!
//! - `runtime`: [`DockerRuntime`], where the engine is and the shared client.
//! - `container`: one container's life and its cleanup.

#[cfg(feature = "docker")]
mod container;
#[cfg(feature = "docker")]
mod handler;
#[cfg(feature = "docker")]
mod runtime;
mod spec;

#[cfg(feature = "docker")]
pub use container::wait_for_cleanups;
#[cfg(feature = "docker")]
pub use handler::DockerHandler;
#[cfg(feature = "docker")]
pub use runtime::{DEFAULT_SOCKET, DockerRuntime};
pub use spec::DockerSpec;

/// Where the context server's socket appears inside the container.
pub const CONTAINER_SOCKET: &str = "/graflow/ctx.sock";
/// Where the execution's folder (result file, large JSON) appears inside the container.
pub const CONTAINER_DIR: &str = "/graflow/exec";
/// Label naming the run a container belongs to.
pub const LABEL_RUN_ID: &str = "graflow.run_id";
/// Label naming the task a container belongs to.
pub const LABEL_TASK_ID: &str = "graflow.task_id";
