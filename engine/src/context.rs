//! The task context: what a task's body sees of its run — identity, inputs, results, the
//! channel — and the control calls it makes (`next_task`, `goto`, `next_iteration`,
//! `terminate_workflow`, `cancel_workflow`).
//!
//! Control calls are recorded in [`ControlRequests`] and acted on by the scheduler after the
//! body returns; the record is plain data, so a handler that runs the body in another process
//! can fill it there and send it back.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channel::Channel;
use crate::checkpoint::CheckpointError;
use crate::error::RunError;
use crate::events::LogStream;
use crate::hitl::{FeedbackError, FeedbackKind, FeedbackResponse, FeedbackSpec, Notifier};
use crate::workflow::TaskDef;

/// A task asked to run next by `next_task` or `goto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextTask {
    /// The task id.
    pub id: String,
    /// True when this jumps (the caller's successors are skipped).
    pub jump: bool,
}

/// The control calls one execution of a task made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlRequests {
    /// Tasks to run next, in call order.
    pub next_tasks: Vec<NextTask>,
    /// `Some(data)` when `next_iteration` was called (the last call's data).
    pub iterate: Option<Value>,
    /// The message of `terminate_workflow`.
    pub terminate: Option<String>,
    /// The message of `cancel_workflow`.
    pub cancel: Option<String>,
    /// Metadata of a deferred `checkpoint` request (the last call wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Value>,
}

impl ControlRequests {
    /// Whether the caller's normal successors are skipped (a jump or an iteration).
    pub fn holds_successors(&self) -> bool {
        self.iterate.is_some() || self.next_tasks.iter().any(|n| n.jump)
    }
}

/// What a task context needs from the run it belongs to. The local scheduler implements it;
/// a remote worker implements it over its own connection to the run's state.
pub trait RunAccess: Send + Sync {
    /// The last result of any finished task (or group).
    fn result(&self, task: &str) -> Option<Value>;
    /// The results of `task`'s predecessors, keyed by id (a group predecessor contributes its
    /// own entry and one per member).
    fn inputs(&self, task: &str) -> BTreeMap<String, Value>;
    /// The typed values given to the run ([`RunOptions::state`](crate::RunOptions::state));
    /// none unless the run says otherwise.
    fn shared_state(&self) -> &crate::shared_state::SharedState {
        crate::shared_state::SharedState::none()
    }
    /// The ids [`inputs`](Self::inputs) would return, without their values.
    fn input_ids(&self, task: &str) -> Vec<String> {
        self.inputs(task).into_keys().collect()
    }
    /// Whether `task` is a node of the run's graph right now.
    fn has_node(&self, task: &str) -> bool;
    /// Add a task to the graph at run time: `def` when given, else the workflow's detached
    /// definition of `id`. Returns false when neither exists.
    fn add_task(&self, id: &str, def: Option<TaskDef>, by: &str) -> bool;
    /// Emit a log line of `task`.
    fn log(&self, task: &str, stream: LogStream, line: String);
    /// Emit a log line of `task` written on fleet worker `worker`.
    fn log_from(&self, task: &str, stream: LogStream, line: String, worker: Arc<str>) {
        let _ = worker;
        self.log(task, stream, line)
    }
    /// `task`'s execution waits for a pool or a rate limit (on a fleet worker): emit
    /// `task_waiting`. Runs that do not emit events ignore it.
    fn waiting(&self, task: &str, cycle: u32, attempt: u32, wait: crate::pool::Wait) {
        let _ = (task, cycle, attempt, wait);
    }
    /// `task`'s execution started its body where it runs (a fleet worker, after taking its
    /// pool slots and tokens): emit `task_started`.
    fn started(&self, task: &str, cycle: u32, attempt: u32) {
        let _ = (task, cycle, attempt);
    }
    /// Write a checkpoint now, while the task in execution `slot` is running (it runs again
    /// from its start when the run resumes from this checkpoint); returns the `.ckpt` path.
    fn checkpoint_now(
        &self,
        slot: u32,
        task: &str,
        metadata: Value,
    ) -> BoxFuture<'static, Result<String, CheckpointError>>;
    /// Ask a human and wait for the answer (see [`TaskContext::request_feedback`]).
    fn request_feedback(
        &self,
        ask: FeedbackAsk,
    ) -> BoxFuture<'static, Result<FeedbackResponse, FeedbackError>>;
    /// What a sub-run started by `task` (a `Workflow` task, executing in `slot`) takes from
    /// this run; nothing unless the run says otherwise.
    fn sub_run_parent(&self, task: &str, slot: u32) -> SubRunParent {
        let _ = (task, slot);
        SubRunParent::default()
    }
}

/// What a sub-run (the run of a `Workflow` task) takes from the run of its task: nothing
/// else — its channel is its own unless the task shares the parent's, its checkpoints and
/// its `terminate_workflow` / `cancel_workflow` are its own.
#[derive(Clone, Default)]
pub struct SubRunParent {
    /// Where the sub-run's human-feedback requests go (the parent's).
    pub feedback: Option<Arc<crate::hitl::FeedbackManager>>,
    /// The typed values the parent's tasks read, for the sub-run's tasks too.
    pub state: crate::shared_state::SharedState,
    /// Where the sub-run's events go: into the parent's stream, nested under the task.
    pub events: Option<Arc<dyn crate::sink::EventSink>>,
    /// How the sub-run pauses (a feedback wait that runs out): by pausing the parent.
    pub pause: Option<PauseParent>,
}

/// Pauses the parent run of a sub-run: checkpoints the parent (its `Workflow` task runs again
/// on resume) and stops it as paused. Given the feedback request whose wait ran out; returns
/// the path of the checkpoint to resume, or why the parent could not pause.
#[derive(Clone)]
pub struct PauseParent(
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<String, String>> + Send + Sync>,
);

impl PauseParent {
    /// A pause that calls `f` with the feedback request's id.
    pub fn new(
        f: impl Fn(String) -> BoxFuture<'static, Result<String, String>> + Send + Sync + 'static,
    ) -> Self {
        PauseParent(Arc::new(f))
    }

    /// Pause the parent for feedback request `feedback_id`; the checkpoint's path.
    pub async fn pause(&self, feedback_id: String) -> Result<String, String> {
        (self.0)(feedback_id).await
    }
}

impl std::fmt::Debug for PauseParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PauseParent")
    }
}

impl std::fmt::Debug for SubRunParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubRunParent")
            .field("feedback", &self.feedback.is_some())
            .field("events", &self.events.is_some())
            .field("pause", &self.pause.is_some())
            .finish()
    }
}

/// One feedback request of one execution, as the run receives it.
#[derive(Clone)]
pub struct FeedbackAsk {
    /// The execution's slot.
    pub slot: u32,
    /// The task.
    pub task: String,
    /// Its cycle.
    pub cycle: u32,
    /// Its attempt.
    pub attempt: u32,
    /// The request's number within the execution (0, 1, …): with the rest, it names the
    /// request, so a task that runs again after a pause finds its earlier request.
    pub ordinal: u32,
    /// What is asked.
    pub spec: FeedbackSpec,
    /// Notifiers replacing the run's defaults.
    pub notifiers: Option<Vec<Arc<dyn Notifier>>>,
}

struct Inner {
    task_id: Arc<str>,
    run_id: Arc<str>,
    cycle: u32,
    attempt: u32,
    max_cycles: u32,
    data: Value,
    slot: u32,
    channel: Channel,
    run: Arc<dyn RunAccess>,
    control: Mutex<ControlRequests>,
    feedback_asked: std::sync::atomic::AtomicU32,
    /// The fleet worker that ran this execution, once known.
    worker: Mutex<Option<Arc<str>>>,
}

/// The context handed to a task's body. Cheap to clone; clones share the control record.
#[derive(Clone)]
pub struct TaskContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("task_id", &self.inner.task_id)
            .field("run_id", &self.inner.run_id)
            .field("cycle", &self.inner.cycle)
            .field("attempt", &self.inner.attempt)
            .finish()
    }
}

/// Identity and limits of one task execution, used to build its [`TaskContext`].
#[derive(Debug, Clone)]
pub struct ExecutionInfo {
    /// The task.
    pub task_id: Arc<str>,
    /// The run.
    pub run_id: Arc<str>,
    /// 1-based execution count.
    pub cycle: u32,
    /// 0-based retry attempt.
    pub attempt: u32,
    /// The task's cycle limit.
    pub max_cycles: u32,
    /// Data from the previous `next_iteration` (null on the first execution).
    pub data: Value,
    /// The scheduler's handle of this execution (opaque).
    pub slot: u32,
}

impl TaskContext {
    /// A context for one execution.
    pub fn new(info: ExecutionInfo, channel: Channel, run: Arc<dyn RunAccess>) -> Self {
        TaskContext {
            inner: Arc::new(Inner {
                task_id: info.task_id,
                run_id: info.run_id,
                cycle: info.cycle,
                attempt: info.attempt,
                max_cycles: info.max_cycles,
                data: info.data,
                slot: info.slot,
                channel,
                run,
                control: Mutex::new(ControlRequests::default()),
                feedback_asked: std::sync::atomic::AtomicU32::new(0),
                worker: Mutex::new(None),
            }),
        }
    }

    /// This task's id.
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// 1-based count of this task's executions, this one included.
    pub fn cycle(&self) -> u32 {
        self.inner.cycle
    }

    /// 0-based retry attempt of this execution.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// This task's cycle limit.
    pub fn max_cycles(&self) -> u32 {
        self.inner.max_cycles
    }

    /// Data passed by the previous execution's `next_iteration` (null on the first).
    pub fn data(&self) -> &Value {
        &self.inner.data
    }

    /// The value of type `T` given to the run with
    /// [`RunOptions::state`](crate::RunOptions::state) (on a fleet worker, with
    /// [`WorkerConfig::state`](crate::distributed::worker::WorkerConfig::state)), like axum's
    /// `State`: `let db = ctx.state::<Db>()?;`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, crate::shared_state::MissingState> {
        self.inner
            .run
            .shared_state()
            .get::<T>()
            .ok_or_else(crate::shared_state::MissingState::of::<T>)
    }

    /// The run's channel.
    pub fn channel(&self) -> &Channel {
        &self.inner.channel
    }

    /// The result of predecessor `id` (or of a member of a predecessor group).
    pub fn input(&self, id: &str) -> Option<Value> {
        self.inputs().remove(id)
    }

    /// All predecessors' results, keyed by id.
    pub fn inputs(&self) -> BTreeMap<String, Value> {
        self.inner.run.inputs(&self.inner.task_id)
    }

    /// The ids of the predecessors whose results [`inputs`](Self::inputs) holds.
    pub fn input_ids(&self) -> Vec<String> {
        self.inner.run.input_ids(&self.inner.task_id)
    }

    /// The last result of any finished task.
    pub fn result(&self, id: &str) -> Option<Value> {
        self.inner.run.result(id)
    }

    /// The result of predecessor `id` as a `T` (`ctx.input_as::<Order>("fetch")?`).
    pub fn input_as<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T, ReadError> {
        typed(id, "input", self.input(id))
    }

    /// The last result of finished task `id` as a `T`.
    pub fn result_as<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T, ReadError> {
        typed(id, "result", self.result(id))
    }

    /// Write a line to this task's log.
    pub fn log(&self, line: impl Into<String>) {
        self.inner
            .run
            .log(&self.inner.task_id, LogStream::Log, line.into());
    }

    /// Write a line to this task's log, tagged with a stream.
    pub fn log_stream(&self, stream: LogStream, line: impl Into<String>) {
        self.inner.run.log(&self.inner.task_id, stream, line.into());
    }

    /// A line of this task's log written on fleet worker `worker` (which is then recorded as
    /// the execution's worker, see [`worker`](Self::worker)).
    pub fn log_from_worker(&self, stream: LogStream, line: impl Into<String>, worker: &str) {
        let worker = self.set_worker(worker);
        self.inner
            .run
            .log_from(&self.inner.task_id, stream, line.into(), worker);
    }

    /// This execution waits for a pool or a rate limit where it runs (a fleet worker):
    /// a `task_waiting` event tells why.
    pub fn waiting(&self, wait: crate::pool::Wait) {
        self.inner.run.waiting(
            &self.inner.task_id,
            self.inner.cycle,
            self.inner.attempt,
            wait,
        );
    }

    /// This execution's body started where it runs (a fleet worker that took its pool slots
    /// and tokens): a `task_started` event says so.
    pub fn started(&self) {
        self.inner
            .run
            .started(&self.inner.task_id, self.inner.cycle, self.inner.attempt);
    }

    /// Record that fleet worker `worker` ran this execution: its `task_succeeded` /
    /// `task_failed` event names it. Returns the id as shared text.
    pub fn set_worker(&self, worker: &str) -> Arc<str> {
        let mut slot = self.inner.worker.lock();
        match slot.as_ref() {
            Some(w) if &**w == worker => w.clone(),
            _ => {
                let w: Arc<str> = Arc::from(worker);
                *slot = Some(w.clone());
                w
            }
        }
    }

    /// The fleet worker that ran this execution, when one did.
    pub fn worker(&self) -> Option<Arc<str>> {
        self.inner.worker.lock().clone()
    }

    fn unknown(&self, id: &str) -> RunError {
        RunError::UnknownTask {
            task: id.to_string(),
            by: self.inner.task_id.to_string(),
        }
    }

    /// Run task `id` next. When `id` is already in the graph this is a jump and this task's
    /// successors are skipped; otherwise `id` is added from the workflow's definitions as a new
    /// task and this task's successors still run.
    pub fn next_task(&self, id: &str) -> Result<(), RunError> {
        let jump = self.inner.run.has_node(id);
        if !jump && !self.inner.run.add_task(id, None, &self.inner.task_id) {
            return Err(self.unknown(id));
        }
        self.push_next(id, jump);
        Ok(())
    }

    /// Add `def` as a new task and run it next; if its id is already in the graph, jump to
    /// that task instead (like [`next_task`](Self::next_task)).
    pub fn next_task_def(&self, def: TaskDef) -> Result<(), RunError> {
        let id = def.id().to_string();
        let jump = self.inner.run.has_node(&id);
        if !jump && !self.inner.run.add_task(&id, Some(def), &self.inner.task_id) {
            return Err(self.unknown(&id));
        }
        self.push_next(&id, jump);
        Ok(())
    }

    /// Jump to task `id`: it runs next and this task's successors are skipped. A defined task
    /// that is not yet in the graph is added first.
    pub fn goto(&self, id: &str) -> Result<(), RunError> {
        if !self.inner.run.has_node(id) && !self.inner.run.add_task(id, None, &self.inner.task_id) {
            return Err(self.unknown(id));
        }
        self.push_next(id, true);
        Ok(())
    }

    fn push_next(&self, id: &str, jump: bool) {
        self.inner.control.lock().next_tasks.push(NextTask {
            id: id.to_string(),
            jump,
        });
    }

    /// Whether another execution fits within this task's cycle limit.
    pub fn can_iterate(&self) -> bool {
        self.inner.cycle < self.inner.max_cycles
    }

    /// Run this task again with `data` (see [`data`](Self::data)); its successors wait until
    /// an execution ends without iterating. Fails with a cycle-limit error when the limit is
    /// reached.
    pub fn next_iteration(&self, data: impl Serialize) -> Result<(), RunError> {
        if !self.can_iterate() {
            return Err(RunError::CycleLimitExceeded {
                task: self.inner.task_id.to_string(),
                count: self.inner.cycle,
                limit: self.inner.max_cycles,
            });
        }
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        self.inner.control.lock().iterate = Some(data);
        Ok(())
    }

    /// End the run successfully once this task completes: nothing new starts, running tasks
    /// finish.
    pub fn terminate_workflow(&self, message: impl Into<String>) {
        self.inner.control.lock().terminate = Some(message.into());
    }

    /// Cancel the whole run: this task does not complete, running tasks are stopped.
    pub fn cancel_workflow(&self, message: impl Into<String>) {
        self.inner.control.lock().cancel = Some(message.into());
    }

    /// Ask for a checkpoint once this task completes (after its successors are queued); the
    /// last call wins; dropped if the task fails. `metadata` is stored with it.
    pub fn checkpoint(&self, metadata: Value) {
        self.inner.control.lock().checkpoint = Some(metadata);
    }

    /// Write a checkpoint now. When the run resumes from it, this task runs again from its
    /// start (write the body so that is safe). Returns the `.ckpt` path.
    pub async fn checkpoint_now(&self, metadata: Value) -> Result<String, CheckpointError> {
        self.inner
            .run
            .checkpoint_now(self.inner.slot, &self.inner.task_id, metadata)
            .await
    }

    /// Ask a human and wait for the answer, up to the request's timeout. When the wait runs
    /// out and the run has a checkpoint folder, the whole run pauses into a checkpoint (the
    /// process exits with code 3) and this call does not return; after an answer, resuming
    /// runs this task again and the same request returns the stored answer at once.
    pub async fn request_feedback(
        &self,
        spec: FeedbackSpec,
    ) -> Result<FeedbackResponse, FeedbackError> {
        self.request_feedback_with(spec, None).await
    }

    /// [`request_feedback`](Self::request_feedback) with its own notifiers.
    pub async fn request_feedback_with(
        &self,
        spec: FeedbackSpec,
        notifiers: Option<Vec<Arc<dyn Notifier>>>,
    ) -> Result<FeedbackResponse, FeedbackError> {
        let ordinal = self
            .inner
            .feedback_asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.request_feedback_numbered(ordinal, spec, notifiers)
            .await
    }

    /// Ask as request number `ordinal` of this execution (0, 1, …): the coordinator relays the
    /// requests a body on a worker makes under the worker's own numbering, so a redelivered
    /// execution finds its earlier requests.
    pub async fn request_feedback_numbered(
        &self,
        ordinal: u32,
        spec: FeedbackSpec,
        notifiers: Option<Vec<Arc<dyn Notifier>>>,
    ) -> Result<FeedbackResponse, FeedbackError> {
        let ask = FeedbackAsk {
            slot: self.inner.slot,
            task: self.inner.task_id.to_string(),
            cycle: self.inner.cycle,
            attempt: self.inner.attempt,
            ordinal,
            spec,
            notifiers,
        };
        self.inner.run.request_feedback(ask).await
    }

    /// Ask for an approval; true when approved.
    pub async fn request_approval(
        &self,
        prompt: &str,
        timeout_secs: Option<f64>,
    ) -> Result<bool, FeedbackError> {
        let mut spec = FeedbackSpec::new(FeedbackKind::Approval, prompt);
        spec.timeout_secs = timeout_secs;
        Ok(self
            .request_feedback(spec)
            .await?
            .answer
            .approved
            .unwrap_or(false))
    }

    /// Ask for text.
    pub async fn request_text(
        &self,
        prompt: &str,
        timeout_secs: Option<f64>,
    ) -> Result<String, FeedbackError> {
        let mut spec = FeedbackSpec::new(FeedbackKind::Text, prompt);
        spec.timeout_secs = timeout_secs;
        Ok(self
            .request_feedback(spec)
            .await?
            .answer
            .text
            .unwrap_or_default())
    }

    /// Ask to pick one of `options`.
    pub async fn request_selection(
        &self,
        prompt: &str,
        options: Vec<String>,
        timeout_secs: Option<f64>,
    ) -> Result<String, FeedbackError> {
        let mut spec = FeedbackSpec::new(FeedbackKind::Selection, prompt).options(options);
        spec.timeout_secs = timeout_secs;
        Ok(self
            .request_feedback(spec)
            .await?
            .answer
            .selected
            .unwrap_or_default())
    }

    /// Ask to pick any of `options`.
    pub async fn request_multi_selection(
        &self,
        prompt: &str,
        options: Vec<String>,
        timeout_secs: Option<f64>,
    ) -> Result<Vec<String>, FeedbackError> {
        let mut spec = FeedbackSpec::new(FeedbackKind::MultiSelection, prompt).options(options);
        spec.timeout_secs = timeout_secs;
        Ok(self
            .request_feedback(spec)
            .await?
            .answer
            .selected_multiple
            .unwrap_or_default())
    }

    /// What a sub-run started by this task takes from this task's run (see [`SubRunParent`]).
    pub fn sub_run_parent(&self) -> SubRunParent {
        self.inner
            .run
            .sub_run_parent(&self.inner.task_id, self.inner.slot)
    }

    /// A copy of the control calls made so far.
    pub fn control(&self) -> ControlRequests {
        self.inner.control.lock().clone()
    }

    /// Take the control calls made so far (the scheduler does this after the body).
    pub fn take_control(&self) -> ControlRequests {
        std::mem::take(&mut *self.inner.control.lock())
    }

    /// Merge control calls made elsewhere (by a body in another process) into this context.
    pub fn merge_control(&self, other: ControlRequests) {
        let mut c = self.inner.control.lock();
        c.next_tasks.extend(other.next_tasks);
        if other.iterate.is_some() {
            c.iterate = other.iterate;
        }
        if other.terminate.is_some() {
            c.terminate = other.terminate;
        }
        if other.cancel.is_some() {
            c.cancel = other.cancel;
        }
        if other.checkpoint.is_some() {
            c.checkpoint = other.checkpoint;
        }
    }
}

/// Why a typed read of an input or a result ([`TaskContext::input_as`],
/// [`TaskContext::result_as`]) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such value is known to the task.
    #[error("no {what} of '{id}' is known to this task")]
    Missing {
        /// The task whose value was asked for.
        id: String,
        /// `input` or `result`.
        what: &'static str,
    },
    /// The value is not of the asked type.
    #[error("the {what} of '{id}' is not a {expected}: {source}")]
    WrongType {
        /// The task whose value was asked for.
        id: String,
        /// `input` or `result`.
        what: &'static str,
        /// The Rust type asked for.
        expected: &'static str,
        /// What did not fit.
        source: serde_json::Error,
    },
}

fn typed<T: serde::de::DeserializeOwned>(
    id: &str,
    what: &'static str,
    value: Option<Value>,
) -> Result<T, ReadError> {
    let value = value.ok_or_else(|| ReadError::Missing {
        id: id.to_string(),
        what,
    })?;
    serde_json::from_value(value).map_err(|source| ReadError::WrongType {
        id: id.to_string(),
        what,
        expected: std::any::type_name::<T>(),
        source,
    })
}
