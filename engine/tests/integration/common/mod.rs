//! Helpers shared by the engine's scenario tests.
#![allow(dead_code)]

use std::sync::Arc;

use graflow_engine::prelude::*;
use graflow_engine::{TaskHandle, WorkflowBuilder};
use parking_lot::Mutex;
use serde_json::json;

/// Records the order in which tasks ran.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().push(s.into());
    }
    pub fn get(&self) -> Vec<String> {
        self.0.lock().clone()
    }
    pub fn count(&self, id: &str) -> usize {
        self.0.lock().iter().filter(|s| *s == id).count()
    }
    pub fn position(&self, id: &str) -> usize {
        self.0
            .lock()
            .iter()
            .position(|s| s == id)
            .unwrap_or_else(|| panic!("{id} never ran"))
    }
}

/// A task that records its id and returns it as a string.
pub fn rec(wf: &mut WorkflowBuilder, trace: &Trace, id: &str) -> TaskHandle {
    let trace = trace.clone();
    wf.task(id, move |ctx: TaskContext| {
        let trace = trace.clone();
        async move {
            trace.push(ctx.task_id());
            anyhow::Ok(json!(ctx.task_id()))
        }
    })
}

/// Several recording tasks.
pub fn recs<const N: usize>(
    wf: &mut WorkflowBuilder,
    trace: &Trace,
    ids: [&str; N],
) -> [TaskHandle; N] {
    ids.map(|id| rec(wf, trace, id))
}

/// A task that records its id and fails.
pub fn failing(wf: &mut WorkflowBuilder, trace: &Trace, id: &str) -> TaskHandle {
    let trace = trace.clone();
    wf.task(id, move |ctx: TaskContext| {
        let trace = trace.clone();
        async move {
            trace.push(ctx.task_id());
            Err::<Value, _>(anyhow::anyhow!("{} broke", ctx.task_id()))
        }
    })
}

/// Build and run a workflow, collecting its events.
pub async fn run(mut wf: WorkflowBuilder) -> (RunOutcome, Vec<RunEvent>) {
    let wf = Arc::new(wf.build().expect("workflow builds"));
    let mut handle = Engine::new().start(wf, RunOptions::new().with_events());
    let mut rx = handle.take_events().expect("events requested");
    let outcome = handle.wait().await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

/// Names of the events, in order.
pub fn names(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.name()).collect()
}
