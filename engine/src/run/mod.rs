//! Running workflows: the [`Engine`] starts runs on the tokio runtime; a [`RunHandle`] gives
//! the event stream, cancellation and the final [`RunOutcome`].

mod branch;
mod group;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;

use crate::channel::Channel;
use crate::error::RunError;
use crate::events::{EventKind, RunEvent, RunStatus};
use crate::workflow::Workflow;

use state::{Entry, RunShared};

/// How to start a run.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// The run's id; a time-ordered random id when not given.
    pub run_id: Option<String>,
    /// Channel values set before the first task, over the workflow's own `params`.
    pub params: BTreeMap<String, Value>,
    /// The channel to use; a fresh memory channel when not given.
    pub channel: Option<Channel>,
    /// Whether to produce the event stream (see [`RunHandle::take_events`]).
    pub events: bool,
}

impl RunOptions {
    /// Default options: no events, a memory channel, a generated id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Produce the event stream.
    pub fn with_events(mut self) -> Self {
        self.events = true;
        self
    }

    /// Set a channel value before the first task.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Use this channel.
    pub fn channel(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Use this run id.
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }
}

/// How a run ended and what it produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The run.
    pub run_id: String,
    /// Succeeded, failed or cancelled.
    pub status: RunStatus,
    /// Why it failed or was cancelled.
    pub error: Option<RunError>,
    /// The message of the `terminate_workflow` call that ended it, if one did.
    pub terminated: Option<String>,
    /// The last finished task's result (the terminating task's on terminate).
    pub result: Option<Value>,
    /// Each task's last result.
    pub results: BTreeMap<String, Value>,
    /// The channel's final content.
    pub channel: BTreeMap<String, Value>,
    /// Completed task executions.
    pub steps: u64,
}

impl RunOutcome {
    /// Whether the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Succeeded
    }
}

/// Starts runs. Cheap to clone; holds nothing yet but is where engine-wide resources
/// (handler registries, script engines) live.
#[derive(Debug, Default, Clone)]
pub struct Engine {}

impl Engine {
    /// A new engine.
    pub fn new() -> Self {
        Engine {}
    }

    /// Start a run of `workflow` on the current tokio runtime.
    pub fn start(&self, workflow: Arc<Workflow>, options: RunOptions) -> RunHandle {
        let run_id: Arc<str> = options.run_id.map(Arc::from).unwrap_or_else(new_run_id);
        let (tx, rx) = if options.events {
            let (tx, rx) = unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let channel = options.channel.unwrap_or_else(Channel::memory);
        let shared = Arc::new(RunShared::new(run_id.clone(), workflow, channel, tx));
        let task = tokio::spawn(drive(shared.clone(), options.params));
        RunHandle {
            run_id,
            events: rx,
            shared,
            task,
        }
    }

    /// Run `workflow` to its end.
    pub async fn run(&self, workflow: Arc<Workflow>, options: RunOptions) -> RunOutcome {
        self.start(workflow, options).wait().await
    }
}

fn new_run_id() -> Arc<str> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let noise: u32 = rand::random::<u32>() & 0xf_ffff;
    Arc::from(format!("{millis:011x}{noise:05x}"))
}

/// A running workflow.
pub struct RunHandle {
    run_id: Arc<str>,
    events: Option<UnboundedReceiver<RunEvent>>,
    shared: Arc<RunShared>,
    task: JoinHandle<RunOutcome>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The event stream (once; `None` without [`RunOptions::with_events`]). It ends after
    /// `run_finished`.
    pub fn take_events(&mut self) -> Option<UnboundedReceiver<RunEvent>> {
        self.events.take()
    }

    /// Cancel the run from outside: running tasks are stopped, the run ends as cancelled.
    pub fn cancel(&self, message: impl Into<String>) {
        self.shared.cancel(None, message.into());
    }

    /// Wait for the run to end.
    pub async fn wait(self) -> RunOutcome {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(e) => RunOutcome {
                run_id: self.run_id.to_string(),
                status: RunStatus::Failed,
                error: Some(RunError::Internal {
                    message: format!("the run task stopped abnormally: {e}"),
                }),
                terminated: None,
                result: None,
                results: BTreeMap::new(),
                channel: BTreeMap::new(),
                steps: 0,
            },
        }
    }
}

async fn drive(shared: Arc<RunShared>, params: BTreeMap<String, Value>) -> RunOutcome {
    let wf = shared.wf.clone();
    let start = wf.plan.nodes[wf.start.index()].id.clone();
    shared.emit(EventKind::RunStarted {
        workflow: wf.name.clone(),
        start: start.clone(),
    });
    let mut setup_error = None;
    for (k, v) in wf.params.iter().chain(params.iter()) {
        if let Err(e) = shared.channel.set(k, v.clone()).await {
            setup_error = Some(RunError::Internal {
                message: format!("could not set channel parameter '{k}': {e}"),
            });
            break;
        }
    }
    let outcome = match setup_error {
        Some(e) => Err(e),
        None => {
            let top = shared
                .state
                .lock()
                .open_branch(Entry::new(wf.start.index() as u32));
            branch::run_branch(shared.clone(), top).await
        }
    };
    let (terminated, steps) = {
        let st = shared.state.lock();
        (st.terminated.clone(), st.steps)
    };
    let (status, error, mut result) = match outcome {
        Ok(last) => (RunStatus::Succeeded, None, last),
        Err(e) if e.is_cancel() => (RunStatus::Cancelled, Some(e), None),
        Err(e) => (RunStatus::Failed, Some(e), None),
    };
    if let (RunStatus::Succeeded, Some((_, _, value))) = (status, &terminated) {
        result = Some(value.clone());
    }
    let results = shared.task_results();
    let channel = shared.channel.snapshot().await.unwrap_or_default();
    let outcome = RunOutcome {
        run_id: shared.run_id.to_string(),
        status,
        error,
        terminated: terminated.map(|(_, message, _)| message),
        result,
        results,
        channel,
        steps,
    };
    shared.emit(EventKind::RunFinished {
        status: outcome.status,
        error: outcome.error.as_ref().map(|e| e.to_string()),
        result: outcome.result.clone(),
        results: outcome.results.clone(),
        channel: outcome.channel.clone(),
    });
    outcome
}
