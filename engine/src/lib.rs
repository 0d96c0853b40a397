//! # graflow-engine
//!
//! A workflow execution engine: task graphs written with `>>` (sequence) and `|` (parallel),
//! run on tokio, with dynamic tasks, state-machine loops, parallel-group policies, retries,
//! timeouts and a shared channel. Every state change of a run is a [`RunEvent`].
//!
//! ```
//! use std::sync::Arc;
//! use graflow_engine::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut wf = Workflow::builder("hello");
//! let fetch = wf.task("fetch", |_ctx| async { anyhow::Ok(vec![1, 2, 3]) });
//! let double = wf.task("double", |ctx| async move {
//!     let rows: Vec<i64> = serde_json::from_value(ctx.input("fetch").unwrap_or_default())?;
//!     anyhow::Ok(rows.iter().map(|r| r * 2).collect::<Vec<_>>())
//! });
//! let count = wf.task("count", |ctx| async move {
//!     anyhow::Ok(ctx.input("fetch").and_then(|v| v.as_array().map(|a| a.len())))
//! });
//! let report = wf.task("report", |ctx| async move { anyhow::Ok(ctx.inputs()) });
//! wf.flow(fetch >> (double | count) >> report);
//! let outcome = Engine::new().run(Arc::new(wf.build().unwrap()), RunOptions::new()).await;
//! assert!(outcome.succeeded());
//! assert_eq!(outcome.results["double"], serde_json::json!([2, 4, 6]));
//! # }
//! ```
//!
//! Layout: [`flow`] (operators and string parser) and [`graph`] build a [`workflow`];
//! [`run`] schedules it; tasks see a [`context`]; handlers ([`handler`]) execute bodies;
//! [`channel`] is the shared store; [`group`] holds group policies; [`events`] the stream.

#![warn(missing_docs)]

/// The README's Rust example, compiled and run as a doctest so it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The examples of docs/embedding.md, compiled and run as doctests (a workflow file there
/// runs `Script` tasks).
#[cfg(all(doctest, feature = "script"))]
#[doc = include_str!("../../docs/embedding.md")]
pub struct EmbeddingExamples;

pub mod channel;
pub mod checkpoint;
pub mod context;
pub mod dispatch;
#[cfg(feature = "redis")]
pub mod distributed;
pub mod error;
pub mod events;
pub mod file;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod group;
pub mod handler;
pub mod hitl;
pub mod limits;
#[cfg(feature = "http")]
pub mod net;
pub mod pool;
pub mod render;
pub mod run;
pub mod shared_state;
pub mod sink;
pub mod suggest;
pub mod template;
pub mod workflow;

pub use channel::{Channel, ChannelBackend, ChannelError, MemoryChannel};
pub use context::{ControlRequests, ReadError, TaskContext};
pub use dispatch::{Fleet, FleetError, FleetRun, Placement};
pub use error::{BuildError, RunError, Span};
pub use events::{EventKind, LogStream, RunEvent, RunStatus};
pub use flow::{Flow, GroupHandle, TaskHandle, parse_flow};
pub use graph::{EdgeKind, NodeId, NodeKind, TaskGraph};
pub use group::{CustomPolicy, GroupFailure, GroupPolicy, MemberOutcome, Rejection};
pub use handler::{FnHandler, TaskError, TaskHandler, TaskResult};
pub use pool::{PoolDef, QueueDef, RateLimit};
pub use run::{Engine, RunControl, RunHandle, RunOptions, RunOutcome, TaskFactory, valid_run_id};
pub use serde_json::Value;
pub use sink::{EventSink, FnSink};
pub use workflow::{GroupDef, RetryPolicy, TaskDef, TaskOptions, Workflow, WorkflowBuilder};

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        Channel, Engine, EventKind, Flow, GroupPolicy, RetryPolicy, RunError, RunEvent, RunOptions,
        RunOutcome, RunStatus, TaskContext, TaskDef, Value, Workflow,
    };
}
