//! Running workflows: the [`Engine`] starts runs on the tokio runtime; a [`RunHandle`] gives
//! the event stream, cancellation and the final [`RunOutcome`].

mod access;
mod branch;
mod checkpoint;
mod exec;
mod feedback;
mod group;
pub mod nested;
mod restore;
mod state;

#[cfg(feature = "redis")]
pub(crate) use branch::panic_message;
pub use restore::{MAX_DYNAMIC_TASKS, TaskFactory};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinHandle;

use crate::channel::Channel;
use crate::checkpoint::{CheckpointConfig, CheckpointError, Reason, RunSnapshot, Saved};
use crate::dispatch::{Fleet, FleetRunInfo};
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
    /// Results the workflow's first tasks (those without predecessors in the flow) read as
    /// their inputs, as if from predecessors outside the run: a sub-run's are the inputs of
    /// its `Workflow` task. None by default.
    pub inputs: BTreeMap<String, Value>,
    /// How a sub-run pauses when a feedback wait runs out and it has no checkpoint folder of
    /// its own: by pausing its parent run (set by a `Workflow` task). None by default.
    pub pause_parent: Option<crate::context::PauseParent>,
    /// The channel to use; a fresh memory channel when not given.
    pub channel: Option<Channel>,
    /// Whether to produce the event stream (see [`RunHandle::take_events`]).
    pub events: bool,
    /// Where checkpoints go; without it, checkpoint requests fail.
    pub checkpoints: Option<CheckpointConfig>,
    /// Write a deferred checkpoint after every completed task (needs `checkpoints`).
    pub checkpoint_every_task: bool,
    /// Human feedback: where requests live and who is told; without it requests fail.
    pub feedback: Option<Arc<crate::hitl::FeedbackManager>>,
    /// The worker fleet that tasks placed on it run on (see [`Placement`](crate::dispatch::Placement)); the run's channel
    /// is the fleet's unless [`channel`](Self::channel) names another.
    pub fleet: Option<Arc<dyn Fleet>>,
    /// Whether parallel groups that do not say where they run go to the fleet (true by
    /// default with [`fleet`](Self::fleet)); tasks with a `queue` always do.
    pub groups_on_fleet: bool,
    /// More places the run's events go (a Redis event stream, say), besides the stream of
    /// [`RunHandle::take_events`]; each is handed every event and must not block.
    pub sinks: crate::sink::Sinks,
    /// Typed values the run's tasks read with [`TaskContext::state`](crate::TaskContext::state)
    /// (one per type): a database pool, a client, settings.
    pub state: crate::shared_state::SharedState,
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

    /// Give the run's tasks `value`, read with
    /// [`ctx.state::<T>()`](crate::TaskContext::state); a second value of the same type
    /// replaces the first.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
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

    /// Write checkpoints as configured.
    pub fn checkpoints(mut self, config: CheckpointConfig) -> Self {
        self.checkpoints = Some(config);
        self
    }

    /// Send the run's events to `sink` too.
    pub fn sink(mut self, sink: Arc<dyn crate::sink::EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Write a deferred checkpoint after every completed task (needs
    /// [`checkpoints`](Self::checkpoints)).
    pub fn checkpoint_every_task(mut self, on: bool) -> Self {
        self.checkpoint_every_task = on;
        self
    }

    /// Ask humans through this feedback manager (where requests live, who is told).
    pub fn feedback(mut self, manager: Arc<crate::hitl::FeedbackManager>) -> Self {
        self.feedback = Some(manager);
        self
    }

    /// Whether parallel groups that do not say where they run go to the fleet (set by
    /// [`fleet`](Self::fleet); tasks with a `queue` go there anyway).
    pub fn groups_on_fleet(mut self, on: bool) -> Self {
        self.groups_on_fleet = on;
        self
    }

    /// Run parallel groups (and tasks with a `queue`) on this worker fleet.
    pub fn fleet(mut self, fleet: Arc<dyn Fleet>) -> Self {
        self.fleet = Some(fleet);
        self.groups_on_fleet = true;
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
    /// Why the run paused, when it did.
    pub paused: Option<Paused>,
}

/// A run paused waiting for human feedback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paused {
    /// The checkpoint to resume once answered.
    pub checkpoint: String,
    /// The request whose wait ran out.
    pub feedback_id: String,
}

impl RunOutcome {
    /// Whether the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Succeeded
    }
}

/// Starts runs and loads workflow files. Cheap to clone (clones share): it owns the
/// resources the built-in task kinds share — the script engine, the context server of
/// processes, the HTTP and Docker clients ([`Runtimes`](crate::handler::Runtimes)).
#[derive(Default, Clone)]
pub struct Engine {
    runtimes: crate::handler::Runtimes,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}

impl Engine {
    /// A new engine with default runtimes.
    pub fn new() -> Self {
        Engine::default()
    }

    /// An engine whose workflow files use these runtimes (script limits, an HTTP client…).
    pub fn with_runtimes(runtimes: crate::handler::Runtimes) -> Self {
        Engine { runtimes }
    }

    /// The runtimes the engine's workflow files use.
    pub fn runtimes(&self) -> &crate::handler::Runtimes {
        &self.runtimes
    }

    /// Load and validate a workflow file (RON); diagnostics name the file, line and column.
    pub fn load_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<crate::file::LoadedWorkflow, crate::file::LoadError> {
        crate::file::load_file(path.as_ref(), &self.runtimes)
    }

    /// Load and validate workflow text; `path` names it in diagnostics and anchors relative
    /// paths (script files, working folders).
    pub fn load_str(
        &self,
        source: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<crate::file::LoadedWorkflow, crate::file::LoadError> {
        crate::file::load_str(source, path.as_ref(), &self.runtimes)
    }

    /// Start a run of `workflow` on the current tokio runtime.
    pub fn start(&self, workflow: Arc<Workflow>, options: RunOptions) -> RunHandle {
        let (shared, rx) = Self::prepare(workflow, &options);
        let top = shared
            .state
            .lock()
            .open_branch(Entry::new(shared.wf.start.index() as u32));
        debug_assert_eq!(top, checkpoint::TOP_BRANCH);
        let task = tokio::spawn(drive(shared.clone(), Start::Fresh(options.params)));
        RunHandle {
            run_id: shared.run_id.clone(),
            events: rx,
            shared,
            task,
        }
    }

    /// Continue a run from a checkpoint's `snapshot`: the same run id, its channel, results,
    /// counters and queues. `factory` rebuilds tasks that were added at run time from their
    /// specs. `from` names the checkpoint in the `run_started` event.
    pub fn resume(
        &self,
        workflow: Arc<Workflow>,
        run_id: &str,
        snapshot: RunSnapshot,
        factory: Option<&dyn TaskFactory>,
        from: &str,
        mut options: RunOptions,
    ) -> Result<RunHandle, CheckpointError> {
        if !valid_run_id(run_id) {
            return Err(CheckpointError::CannotResume(format!(
                "the checkpoint's run id: {}",
                invalid_run_id(run_id)
            )));
        }
        options.run_id = Some(run_id.to_string());
        let (shared, rx) = Self::prepare(workflow, &options);
        {
            let mut st = shared.state.lock();
            restore::restore(&shared, &mut st, &snapshot, factory)
                .map_err(CheckpointError::CannotResume)?;
            if st.terminated.is_some() {
                shared
                    .terminating
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
        let start = Start::Resumed {
            channel: snapshot.channel.into_values()?,
            from: from.to_string(),
        };
        let task = tokio::spawn(drive(shared.clone(), start));
        Ok(RunHandle {
            run_id: shared.run_id.clone(),
            events: rx,
            shared,
            task,
        })
    }

    fn prepare(
        workflow: Arc<Workflow>,
        options: &RunOptions,
    ) -> (Arc<RunShared>, Option<UnboundedReceiver<RunEvent>>) {
        let run_id: Arc<str> = options
            .run_id
            .clone()
            .map(Arc::from)
            .unwrap_or_else(new_run_id);
        let (tx, rx) = if options.events {
            let (tx, rx) = unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let channel = match (&options.channel, &options.fleet) {
            (Some(channel), _) => channel.clone(),
            (None, Some(fleet)) => fleet.channel(&run_id),
            (None, None) => Channel::memory(),
        };
        let shared = RunShared::new(run_id, workflow, channel, tx, options);
        if let Some(fleet) = &options.fleet {
            let _ = shared.fleet.set((fleet.clone(), options.groups_on_fleet));
        }
        (shared, rx)
    }

    /// Run `workflow` to its end.
    pub async fn run(&self, workflow: Arc<Workflow>, options: RunOptions) -> RunOutcome {
        self.start(workflow, options).wait().await
    }
}

/// How a run begins.
enum Start {
    /// From the start task, with these channel parameters.
    Fresh(BTreeMap<String, Value>),
    /// From a restored state, with this channel content.
    Resumed {
        channel: BTreeMap<String, Value>,
        from: String,
    },
}

/// Let the run's fleet (if any) take charge of the run before its first task.
async fn open_fleet(shared: &Arc<RunShared>, resumed: bool) -> Result<(), RunError> {
    let Some((fleet, _)) = shared.fleet.get() else {
        return Ok(());
    };
    let (results, dynamic) = {
        let st = shared.state.lock();
        let results = st
            .results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((shared.node(&st, i as u32).id.to_string(), r.clone()?)))
            .collect();
        let dynamic = st.dynamic.iter().map(|n| n.id.to_string()).collect();
        (results, dynamic)
    };
    let me = Arc::downgrade(shared);
    let info = FleetRunInfo {
        run_id: shared.run_id.clone(),
        workflow: shared.wf.clone(),
        resumed,
        results,
        dynamic,
        cancel: Arc::new(move |message: String| {
            if let Some(shared) = me.upgrade() {
                shared.cancel(None, message);
            }
        }),
    };
    let run = fleet
        .open_run(info)
        .await
        .map_err(|message| RunError::Internal {
            message: format!("the {} fleet cannot take the run: {message}", fleet.kind()),
        })?;
    let _ = shared.fleet_run.set(run);
    Ok(())
}

/// Longest run id.
pub const MAX_RUN_ID_LEN: usize = 128;

/// Whether `id` can be a run id: 1 to 128 ASCII letters, digits, `-` and `_`, not starting
/// with `-`. Run ids become parts of file names (checkpoints, history), so nothing else —
/// no `/`, no `.` — is accepted, from options or from a checkpoint.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_RUN_ID_LEN
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn invalid_run_id(id: &str) -> String {
    format!(
        "'{}' is not a valid run id (1 to {MAX_RUN_ID_LEN} ASCII letters, digits, '-' and '_')",
        id.chars().take(80).collect::<String>()
    )
}

fn new_run_id() -> Arc<str> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let noise: u32 = rand::random::<u32>() & 0xf_ffff;
    Arc::from(format!("{millis:011x}{noise:05x}"))
}

/// Cancels or checkpoints a run; cheap to clone.
#[derive(Clone)]
pub struct RunControl {
    shared: Arc<RunShared>,
}

impl RunControl {
    /// See [`RunHandle::cancel`].
    pub fn cancel(&self, message: impl Into<String>) {
        self.shared.cancel(None, message.into());
    }

    /// See [`RunHandle::checkpoint`].
    pub async fn checkpoint(&self, metadata: Value) -> Result<Saved, CheckpointError> {
        self.shared
            .checkpoint(Reason::Host, None, metadata, None)
            .await
    }

    /// How the run's own pools are doing: slots in use and tasks waiting for each (a run on a
    /// fleet that shares pools in Redis keeps them there instead).
    pub fn pools(&self) -> Vec<crate::pool::PoolStatus> {
        self.shared.limiter.pools()
    }
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
        self.control().cancel(message)
    }

    /// Checkpoint the running run: no new task starts, running tasks finish, the state is
    /// written, the run goes on. Needs [`RunOptions::checkpoints`].
    pub async fn checkpoint(&self, metadata: Value) -> Result<Saved, CheckpointError> {
        self.control().checkpoint(metadata).await
    }

    /// A handle that can cancel or checkpoint the run while another part of the program
    /// waits for it.
    pub fn control(&self) -> RunControl {
        RunControl {
            shared: self.shared.clone(),
        }
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
                paused: None,
            },
        }
    }
}

async fn drive(shared: Arc<RunShared>, how: Start) -> RunOutcome {
    let wf = shared.wf.clone();
    let start = wf.plan.nodes[wf.start.index()].id.clone();
    // A resumed channel can be big: its values move from the snapshot into the channel one by
    // one (the map frees its nodes as it goes), never copied into a list first.
    type Values = Box<dyn Iterator<Item = (String, Value)> + Send>;
    let (values, resumed): (Values, Option<String>) = match how {
        Start::Fresh(params) => {
            let defaults: Vec<(String, Value)> = wf
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (Box::new(defaults.into_iter().chain(params)), None)
        }
        Start::Resumed { channel, from } => (Box::new(channel.into_iter()), Some(from)),
    };
    let resuming = resumed.is_some();
    shared.emit(EventKind::RunStarted {
        workflow: wf.name.clone(),
        start: start.clone(),
        resumed_from: resumed,
    });
    // A run id becomes part of file names and keys: check it before anything uses it.
    let mut setup_error = if valid_run_id(&shared.run_id) {
        open_fleet(&shared, resuming).await.err()
    } else {
        Some(RunError::Internal {
            message: invalid_run_id(&shared.run_id),
        })
    };
    if resuming && setup_error.is_none() {
        // A shared channel may hold what the run wrote after its checkpoint.
        if let Err(e) = shared.channel.clear().await {
            setup_error = Some(RunError::Internal {
                message: format!("could not clear the run's channel before restoring it: {e}"),
            });
        }
    }
    if setup_error.is_none() {
        shared.channel.reserve(values.size_hint().0);
    }
    for (k, v) in values {
        if setup_error.is_some() {
            break;
        }
        if let Err(e) = shared.channel.set(&k, v).await {
            setup_error = Some(RunError::Internal {
                message: format!("could not set channel key '{k}': {e}"),
            });
            break;
        }
    }
    let outcome = match setup_error {
        Some(e) => Err(e),
        None if shared.is_terminating() => Ok(None),
        None => branch::run_branch(shared.clone(), checkpoint::TOP_BRANCH).await,
    };
    shared
        .finished
        .store(true, std::sync::atomic::Ordering::Release);
    let (terminated, steps, paused) = {
        let st = shared.state.lock();
        (st.terminated.clone(), st.steps, st.paused.clone())
    };
    let (status, error, mut result) = match (outcome, &paused) {
        (_, Some(_)) => (RunStatus::Paused, None, None),
        (Ok(last), None) => (RunStatus::Succeeded, None, last),
        (Err(e), None) if e.is_cancel() => (RunStatus::Cancelled, Some(e), None),
        (Err(e), None) => (RunStatus::Failed, Some(e), None),
    };
    if let (RunStatus::Succeeded, Some((_, _, value))) = (status, &terminated) {
        result = Some(value.clone());
    }
    // Questions of a run that ended (not paused) can no longer be answered usefully.
    if let (true, Some(manager)) = (status != RunStatus::Paused, &shared.feedback) {
        for request in manager
            .backend
            .list(Some(&shared.run_id), true)
            .await
            .unwrap_or_default()
        {
            if let Err(e) = manager.backend.cancel(&request.id).await {
                tracing::warn!("cannot withdraw feedback request {}: {e}", request.id);
            }
        }
    }
    let results = shared.take_task_results();
    let channel = shared.channel.final_snapshot().await.unwrap_or_default();
    if let Some(fleet_run) = shared.fleet_run.get() {
        fleet_run.close(status).await;
    }
    let outcome = RunOutcome {
        run_id: shared.run_id.to_string(),
        status,
        error,
        terminated: terminated.map(|(_, message, _)| message),
        result,
        results,
        channel,
        steps,
        paused: paused.map(|(checkpoint, feedback_id)| Paused {
            checkpoint,
            feedback_id,
        }),
    };
    // The event carries copies of the results and the channel: made only when heard.
    if shared.emitting() {
        shared.emit(EventKind::RunFinished {
            status: outcome.status,
            error: outcome.error.as_ref().map(|e| e.to_string()),
            result: outcome.result.clone(),
            results: outcome.results.clone(),
            channel: outcome.channel.clone(),
            checkpoint: outcome.paused.as_ref().map(|p| p.checkpoint.clone()),
        });
    }
    shared.close_events();
    outcome
}
