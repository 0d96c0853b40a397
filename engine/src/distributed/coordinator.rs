//! The coordinator's side of the fleet: [`RedisFleet`] implements the engine's
//! [`Fleet`]. For each run it holds a lease (with a fencing epoch) on the run, mirrors results
//! for the workers, sends attempts to queues, reads what workers report (outcomes, log lines,
//! feedback requests) from the run's outbox stream, and replays each outcome's control calls
//! into the coordinator's task context, so scheduling happens exactly as in a local run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use redis::streams::StreamReadReply;
use redis::{RedisError, Value as Reply};
use serde_json::Value;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::channel::Channel;
use crate::checkpoint::WorkflowSource;
use crate::context::TaskContext;
use crate::dispatch::{Fleet, FleetRun, FleetRunInfo};
use crate::error::RunError;
use crate::events::{LogStream, RunStatus};
use crate::handler::{TaskError, TaskHandler, TaskResult};
use crate::hitl::FeedbackSpec;
use crate::run::TaskFactory;
use crate::workflow::{TaskDef, Workflow};

use super::channel::RedisChannel;
use super::config::FleetConfig;
use super::conn::{Link, retry, transient};
use super::keys::{self, Keys, RunKeys, attempt_id};
use super::scripts;
use super::wire::{Body, Bundle, FeedbackReply, NextCall, Payload, RemoteControl};

/// The coordinator's connection to a Redis fleet. Cheap to clone.
#[derive(Clone)]
pub struct RedisFleet {
    link: Link,
    keys: Keys,
    config: FleetConfig,
    /// The workflow file whose tasks travel by hash, and the factory that rebuilds tasks
    /// added at run time from their specs.
    source: Option<(WorkflowSource, Arc<dyn TaskFactory>)>,
    /// This process as a coordinator.
    id: Arc<str>,
}

impl RedisFleet {
    /// Connect to the fleet's Redis (waiting up to `config.connect_wait` for it).
    pub async fn connect(config: FleetConfig) -> Result<RedisFleet, String> {
        let link = Link::connect(&config.url, config.connect_wait).await?;
        Ok(RedisFleet {
            link,
            keys: Keys::new(config.prefix.clone()),
            config,
            source: None,
            id: Arc::from(super::process_id("coordinator")),
        })
    }

    /// Ship the tasks of this workflow file by its hash; `factory` rebuilds the tasks workers
    /// add at run time.
    pub fn with_workflow(mut self, source: WorkflowSource, factory: Arc<dyn TaskFactory>) -> Self {
        self.source = Some((source, factory));
        self
    }

    /// The Redis connection.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

impl Fleet for RedisFleet {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn channel(&self, run_id: &str) -> Channel {
        Channel::from_backend(Arc::new(RedisChannel::new(
            self.link.clone(),
            self.keys.run(run_id),
        )))
    }

    fn open_run(
        &self,
        info: FleetRunInfo,
    ) -> BoxFuture<'static, Result<Arc<dyn FleetRun>, String>> {
        let fleet = self.clone();
        async move {
            let run = RunInner::open(fleet, info).await?;
            Ok(Arc::new(RedisRun { inner: run }) as Arc<dyn FleetRun>)
        }
        .boxed()
    }
}

/// How an attempt ended, as the coordinator learns it.
#[derive(Debug)]
enum Outcome {
    Done {
        result: Value,
        control: RemoteControl,
    },
    Failed {
        error: String,
        run_error: Option<RunError>,
    },
}

impl Outcome {
    /// Read an outcome from the fields a worker committed (`k`, `r`, `e`, `c`, `re`).
    fn parse(kind: &str, result: &str, error: &str, control: &str, run_error: &str) -> Outcome {
        match kind {
            "done" => {
                let result = serde_json::from_str(result).unwrap_or(Value::Null);
                match serde_json::from_str::<RemoteControl>(if control.is_empty() {
                    "{}"
                } else {
                    control
                }) {
                    Ok(control) => Outcome::Done { result, control },
                    Err(e) => Outcome::Failed {
                        error: format!("the worker sent control calls that do not parse: {e}"),
                        run_error: None,
                    },
                }
            }
            _ => Outcome::Failed {
                error: if error.is_empty() {
                    "the attempt failed on its worker".into()
                } else {
                    error.to_string()
                },
                run_error: serde_json::from_str(run_error).ok(),
            },
        }
    }
}

/// An attempt the coordinator waits for.
struct Waiter {
    outcome: Option<oneshot::Sender<Outcome>>,
    ctx: TaskContext,
    def: Arc<TaskDef>,
    queue: String,
    payload: String,
    /// The epoch of the worker execution whose log lines are shown (a later one replaces an
    /// earlier, lost one).
    log_epoch: u64,
    /// Feedback requests being relayed, by request number.
    asks: HashMap<u32, Relay>,
}

/// A feedback request being relayed: the asking task, and the reply keys the answer goes to
/// (one per execution that asked: a redelivered execution asks again under a new epoch).
struct Relay {
    task: JoinHandle<()>,
    /// Reply keys, and whether the answer was already sent (then a new ask starts anew).
    to: Arc<Mutex<(Vec<String>, bool)>>,
}

/// What the coordinator writes so workers see it before any attempt sent later: results and
/// tasks added at run time.
enum MirrorOp {
    Result(String, Value),
    Added(String),
}

/// Writes [`MirrorOp`]s in batches; [`flushed`](Mirror::flushed) waits until everything
/// recorded so far is in Redis.
struct Mirror {
    ops: Mutex<Vec<MirrorOp>>,
    recorded: AtomicU64,
    written: watch::Sender<u64>,
    wake: Notify,
}

impl Mirror {
    fn new() -> Self {
        Mirror {
            ops: Mutex::new(Vec::new()),
            recorded: AtomicU64::new(0),
            written: watch::Sender::new(0),
            wake: Notify::new(),
        }
    }

    fn push(&self, op: MirrorOp) {
        let mut ops = self.ops.lock();
        ops.push(op);
        self.recorded.fetch_add(1, Ordering::AcqRel);
        drop(ops);
        self.wake.notify_one();
    }

    async fn flushed(&self) {
        let target = self.recorded.load(Ordering::Acquire);
        let mut written = self.written.subscribe();
        let _ = written.wait_for(|w| *w >= target).await;
    }
}

struct RunInner {
    fleet: RedisFleet,
    keys: RunKeys,
    run_id: Arc<str>,
    workflow: Arc<Workflow>,
    bundle: Option<String>,
    epoch: u64,
    pending: Mutex<HashMap<String, Waiter>>,
    mirror: Mirror,
    /// Queues whose consumer group this process made sure of.
    queues: Mutex<HashSet<String>>,
    /// Set when pending attempts must be checked again (Redis restarted or was away).
    reconcile: Notify,
    cancel_run: Arc<dyn Fn(String) + Send + Sync>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

/// The fleet side of one run.
struct RedisRun {
    inner: Arc<RunInner>,
}

impl RunInner {
    async fn open(fleet: RedisFleet, info: FleetRunInfo) -> Result<Arc<RunInner>, String> {
        let keys = fleet.keys.run(&info.run_id);
        let bundle = match &fleet.source {
            Some((source, _)) => Some(store_bundle(&fleet, source).await?),
            None => None,
        };
        let epoch = claim(&fleet, &keys, info.resumed).await?;
        let cursor = outbox_cursor(&fleet.link, &keys).await?;
        seed_mirror(&fleet.link, &keys, &info).await?;
        let inner = Arc::new(RunInner {
            fleet,
            keys,
            run_id: info.run_id,
            workflow: info.workflow,
            bundle,
            epoch,
            pending: Mutex::new(HashMap::new()),
            mirror: Mirror::new(),
            queues: Mutex::new(HashSet::new()),
            reconcile: Notify::new(),
            cancel_run: info.cancel,
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let tasks = vec![
            tokio::spawn(read_outbox(inner.clone(), cursor)),
            tokio::spawn(keep_lease(inner.clone())),
            tokio::spawn(write_mirror(inner.clone())),
            tokio::spawn(reconcile_when_asked(inner.clone())),
        ];
        *inner.tasks.lock() = tasks;
        Ok(inner)
    }

    fn link(&self) -> &Link {
        &self.fleet.link
    }

    /// What a worker needs to run `def`, if it can run there.
    fn body_of(&self, def: &Arc<TaskDef>) -> Option<Body> {
        if let Some(name) = &def.remote_name {
            return Some(Body::Registered {
                name: name.to_string(),
            });
        }
        let workflow = self.bundle.clone()?;
        if let Some(spec) = &def.spec {
            return Some(Body::Spec {
                workflow,
                spec: spec.clone(),
            });
        }
        let own = self.workflow.task(def.id())?;
        Arc::ptr_eq(own, def).then(|| Body::File {
            workflow,
            task: def.id().to_string(),
        })
    }

    /// Send one attempt of `def` away and wait for its outcome.
    async fn execute(
        self: Arc<Self>,
        def: Arc<TaskDef>,
        body: Body,
        ctx: TaskContext,
    ) -> TaskResult {
        let tid = attempt_id(ctx.task_id(), ctx.cycle(), ctx.attempt());
        let queue = def
            .options
            .queue
            .clone()
            .unwrap_or_else(|| keys::DEFAULT_QUEUE.to_string());
        let payload = Payload {
            run: self.run_id.to_string(),
            workflow: self.workflow.name().to_string(),
            task: ctx.task_id().to_string(),
            cycle: ctx.cycle(),
            attempt: ctx.attempt(),
            max_cycles: ctx.max_cycles(),
            data: ctx.data().clone(),
            inputs: ctx.input_ids(),
            body,
            timeout_ms: def.options.timeout.map(|t| t.as_millis() as u64),
        };
        let payload = serde_json::to_string(&payload)?;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(
            tid.clone(),
            Waiter {
                outcome: Some(tx),
                ctx: ctx.clone(),
                def: def.clone(),
                queue: queue.clone(),
                payload: payload.clone(),
                log_epoch: 0,
                asks: HashMap::new(),
            },
        );
        let mut guard = Abandon {
            run: self.clone(),
            tid: tid.clone(),
            armed: true,
        };
        // Results and added tasks recorded before this attempt are visible to its worker.
        self.mirror.flushed().await;
        self.send(&tid, &queue, &payload).await?;
        let outcome = rx.await.map_err(|_| {
            TaskError::msg(format!(
                "the coordinator stopped waiting for attempt {tid} of run {}",
                self.run_id
            ))
        })?;
        guard.armed = false;
        self.finish_waiter(&tid);
        match outcome {
            Outcome::Done { result, control } => {
                self.replay(&ctx, control)?;
                Ok(result)
            }
            Outcome::Failed { error, run_error } => Err(match run_error {
                Some(e) => TaskError::new(e),
                None => TaskError::msg(error),
            }),
        }
    }

    /// Enqueue attempt `tid` (idempotently) and put it on its queue's stream when it is
    /// waiting there. A committed outcome found on the way is delivered at once.
    async fn send(&self, tid: &str, queue: &str, payload: &str) -> Result<(), TaskError> {
        let coord = self.keys.coord();
        let attempt = self.keys.attempt(tid);
        let retention = self.fleet.config.retention.as_millis() as u64;
        let epoch = self.epoch;
        let reply: Vec<String> = retry(self.link(), "queueing a task", None, |mut c| {
            let (coord, attempt) = (coord.clone(), attempt.clone());
            async move {
                scripts::ENQUEUE
                    .key(coord)
                    .key(attempt)
                    .arg(epoch)
                    .arg(payload)
                    .arg(queue)
                    .arg(retention)
                    .invoke_async(&mut c)
                    .await
            }
        })
        .await
        .map_err(|e| self.redis_error("queueing a task", e))?;
        match reply.first().map(String::as_str) {
            Some("fenced") => {
                let message = format!(
                    "another coordinator took over run {} (its epoch is {}, this one's {epoch})",
                    self.run_id,
                    reply.get(1).map(String::as_str).unwrap_or("?")
                );
                (self.cancel_run)(message.clone());
                Err(TaskError::msg(message))
            }
            Some("terminal") => {
                let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
                let outcome = Outcome::parse(field(1), field(2), field(3), field(4), field(7));
                self.deliver(tid, outcome);
                Ok(())
            }
            Some("pending") if reply.get(1).map(String::as_str) == Some("running") => Ok(()),
            Some("pending") | Some("queued") => self.push_to_queue(tid, queue).await,
            other => Err(TaskError::msg(format!(
                "unexpected reply from the enqueue script: {other:?}"
            ))),
        }
    }

    /// Add attempt `tid` to `queue`'s stream (a duplicate entry is harmless: workers skip
    /// attempts that are running or finished).
    async fn push_to_queue(&self, tid: &str, queue: &str) -> Result<(), TaskError> {
        let stream = self.fleet.keys.queue(queue).stream();
        let known = self.queues.lock().contains(queue);
        if !known {
            ensure_group(self.link(), &stream)
                .await
                .map_err(|e| self.redis_error("creating the queue's consumer group", e))?;
            let queues = self.fleet.keys.queues();
            let _: Result<(), _> = retry(self.link(), "recording a queue", None, |mut c| {
                let queues = queues.clone();
                async move {
                    redis::cmd("SADD")
                        .arg(queues)
                        .arg(queue)
                        .query_async(&mut c)
                        .await
                }
            })
            .await;
            self.queues.lock().insert(queue.to_string());
        }
        let run = self.run_id.clone();
        retry(self.link(), "queueing a task", None, |mut c| {
            let (stream, run) = (stream.clone(), run.clone());
            async move {
                redis::cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg("run")
                    .arg(&*run)
                    .arg("tid")
                    .arg(tid)
                    .query_async::<String>(&mut c)
                    .await
            }
        })
        .await
        .map(|_| ())
        .map_err(|e| self.redis_error("queueing a task", e))
    }

    fn redis_error(&self, what: &str, e: RedisError) -> TaskError {
        TaskError::msg(format!("{what} on Redis at {}: {e}", self.link().address()))
    }

    /// Hand `outcome` to the attempt's waiter, if it still waits.
    fn deliver(&self, tid: &str, outcome: Outcome) {
        let sender = self
            .pending
            .lock()
            .get_mut(tid)
            .and_then(|w| w.outcome.take());
        if let Some(tx) = sender {
            let _ = tx.send(outcome);
        }
    }

    /// The attempt is over: forget it and stop relaying its feedback requests.
    fn finish_waiter(&self, tid: &str) {
        if let Some(w) = self.pending.lock().remove(tid) {
            for (_, relay) in w.asks {
                relay.task.abort();
            }
        }
    }

    /// Apply a worker's control calls to the coordinator's context, as the body would have.
    fn replay(&self, ctx: &TaskContext, control: RemoteControl) -> Result<(), TaskError> {
        for call in control.next {
            match call {
                NextCall::Next {
                    id,
                    spec: Some(spec),
                } => {
                    let Some((_, factory)) = &self.fleet.source else {
                        return Err(TaskError::msg(format!(
                            "task '{id}' was added on a worker and cannot be built here"
                        )));
                    };
                    let def = factory.build(&id, &spec).map_err(|e| {
                        TaskError::msg(format!("task '{id}' added at run time: {e}"))
                    })?;
                    ctx.next_task_def(def)?;
                }
                NextCall::Next { id, spec: None } => ctx.next_task(&id)?,
                NextCall::Goto { id } => ctx.goto(&id)?,
            }
        }
        if let Some(data) = control.iterate {
            ctx.next_iteration(data)?;
        }
        if let Some(message) = control.terminate {
            ctx.terminate_workflow(message);
        }
        if let Some(message) = control.cancel {
            ctx.cancel_workflow(message);
        }
        if let Some(meta) = control.checkpoint {
            ctx.checkpoint(meta);
        }
        Ok(())
    }

    /// One entry of the outbox.
    fn handle(self: &Arc<Self>, fields: &HashMap<String, Reply>) {
        let get = |k: &str| fields.get(k).and_then(reply_text).unwrap_or_default();
        let tid = get("tid");
        match get("k").as_str() {
            "log" => {
                let epoch: u64 = get("ep").parse().unwrap_or(0);
                let stream = match get("s").as_str() {
                    "stdout" => LogStream::Stdout,
                    "stderr" => LogStream::Stderr,
                    _ => LogStream::Log,
                };
                let ctx = {
                    let mut pending = self.pending.lock();
                    let Some(w) = pending.get_mut(&tid) else {
                        return;
                    };
                    if epoch < w.log_epoch {
                        return; // a lost execution's late line
                    }
                    w.log_epoch = epoch;
                    w.ctx.clone()
                };
                ctx.log_stream(stream, get("l"));
            }
            "ask" => {
                self.relay_feedback(&tid, &get("ep"), &get("o"), &get("spec"), get("n") == "1")
            }
            kind @ ("done" | "failed" | "dead") => {
                let outcome = Outcome::parse(kind, &get("r"), &get("e"), &get("c"), &get("re"));
                self.deliver(&tid, outcome);
            }
            _ => {}
        }
    }

    /// A body on a worker asked a human: ask through the coordinator's own context (events,
    /// notifiers, the pause on timeout all work as locally) and send the answer back.
    fn relay_feedback(
        self: &Arc<Self>,
        tid: &str,
        epoch: &str,
        ordinal: &str,
        spec: &str,
        own: bool,
    ) {
        let Ok(ordinal) = ordinal.parse::<u32>() else {
            return;
        };
        let reply_key = self.keys.reply(&format!("{tid}:{epoch}"), ordinal);
        let spec: Result<FeedbackSpec, _> = serde_json::from_str(spec);
        let mut pending = self.pending.lock();
        let Some(w) = pending.get_mut(tid) else {
            return;
        };
        if let Some(relay) = w.asks.get(&ordinal) {
            let mut to = relay.to.lock();
            if !to.1 {
                // A redelivered execution asks again: the relay under way answers it too.
                to.0.push(reply_key);
                return;
            }
        }
        let ctx = w.ctx.clone();
        let notifiers = if own {
            w.def.handler().feedback_notifiers()
        } else {
            None
        };
        let to = Arc::new(Mutex::new((vec![reply_key], false)));
        let run = self.clone();
        let keys = to.clone();
        let task = tokio::spawn(async move {
            let result = match spec {
                Ok(spec) => {
                    ctx.request_feedback_numbered(ordinal, spec, notifiers)
                        .await
                }
                Err(e) => Err(crate::hitl::FeedbackError::Invalid(format!(
                    "the worker sent a request that does not parse: {e}"
                ))),
            };
            if let Err(crate::hitl::FeedbackError::Paused(_)) = &result {
                // The run paused: the attempt is cancelled, so no outcome (a failure "paused")
                // may be committed in its name; the body's wait ends with the cancellation.
                return;
            }
            let reply = serde_json::to_string(&FeedbackReply::from_result(result))
                .unwrap_or_else(|_| "{}".into());
            let targets = {
                let mut to = keys.lock();
                to.1 = true;
                std::mem::take(&mut to.0)
            };
            let _ = retry(run.link(), "answering a worker", None, |mut c| {
                let mut pipe = redis::pipe();
                for key in &targets {
                    pipe.cmd("LPUSH").arg(key).arg(&reply).ignore();
                    pipe.cmd("PEXPIRE").arg(key).arg(3_600_000).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await;
        });
        w.asks.insert(ordinal, Relay { task, to });
    }

    /// Check every pending attempt again: enqueue it (idempotent), put it back on its stream
    /// when Redis lost the entry, and take outcomes whose report was lost.
    async fn reconcile(&self) {
        let pending: Vec<(String, String, String)> = self
            .pending
            .lock()
            .iter()
            .filter(|(_, w)| w.outcome.is_some())
            .map(|(tid, w)| (tid.clone(), w.queue.clone(), w.payload.clone()))
            .collect();
        if !pending.is_empty() {
            tracing::info!(
                "run {}: checking {} attempts in flight after Redis was away",
                self.run_id,
                pending.len()
            );
        }
        self.queues.lock().clear();
        for (tid, queue, payload) in pending {
            if let Err(e) = self.send(&tid, &queue, &payload).await {
                tracing::warn!("run {}: attempt {tid}: {e}", self.run_id);
            }
        }
    }

    async fn close(&self, status: RunStatus) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let tids: Vec<String> = self.pending.lock().keys().cloned().collect();
        for tid in tids {
            self.finish_waiter(&tid);
            cancel_attempt(self.link(), &self.keys, &tid).await;
        }
        let state = if status == RunStatus::Cancelled {
            "cancelled"
        } else {
            "ended"
        };
        let retention = self.fleet.config.retention.as_millis() as u64;
        let (coord, owner, epoch) = (self.keys.coord(), self.fleet.id.clone(), self.epoch);
        let _ = retry(
            self.link(),
            "ending the run",
            Some(Duration::from_secs(30)),
            |mut c| {
                let (coord, owner) = (coord.clone(), owner.clone());
                async move {
                    scripts::FINISH
                        .key(coord)
                        .arg(&*owner)
                        .arg(epoch)
                        .arg(state)
                        .arg(retention)
                        .invoke_async::<String>(&mut c)
                        .await
                }
            },
        )
        .await;
        let keys = [
            self.keys.results(),
            self.keys.dynamic(),
            self.keys.out(),
            self.keys.channel_index(),
        ];
        let prefix = self.keys.channel("");
        let _ = retry(
            self.link(),
            "ending the run",
            Some(Duration::from_secs(30)),
            |mut c| {
                let (keys, prefix) = (keys.clone(), prefix.clone());
                async move {
                    let mut call = scripts::EXPIRE_RUN.prepare_invoke();
                    for k in keys {
                        call.key(k);
                    }
                    call.arg(prefix)
                        .arg(retention)
                        .invoke_async::<()>(&mut c)
                        .await
                }
            },
        )
        .await;
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// Drops a waiter whose execution was stopped (the run was cancelled or paused, a sibling
/// failed): the attempt is cancelled in Redis so a worker skips or stops it.
struct Abandon {
    run: Arc<RunInner>,
    tid: String,
    armed: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.run.finish_waiter(&self.tid);
        let (run, tid) = (self.run.clone(), std::mem::take(&mut self.tid));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { cancel_attempt(run.link(), &run.keys, &tid).await });
        }
    }
}

async fn cancel_attempt(link: &Link, keys: &RunKeys, tid: &str) {
    let attempt = keys.attempt(tid);
    let _ = retry(
        link,
        "cancelling a task",
        Some(Duration::from_secs(30)),
        |mut c| {
            let attempt = attempt.clone();
            async move {
                scripts::CANCEL
                    .key(attempt)
                    .invoke_async::<String>(&mut c)
                    .await
            }
        },
    )
    .await;
}

impl FleetRun for RedisRun {
    fn remote_handler(&self, def: &Arc<TaskDef>) -> Option<Arc<dyn TaskHandler>> {
        let body = self.inner.body_of(def)?;
        Some(Arc::new(RemoteHandler {
            run: self.inner.clone(),
            def: def.clone(),
            body,
        }))
    }

    fn result_recorded(&self, task: &str, value: &Value) {
        self.inner
            .mirror
            .push(MirrorOp::Result(task.to_string(), value.clone()));
    }

    fn task_added(&self, task: &str) {
        self.inner.mirror.push(MirrorOp::Added(task.to_string()));
    }

    fn close(&self, status: RunStatus) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        async move { inner.close(status).await }.boxed()
    }
}

/// Runs one task attempt on the fleet.
struct RemoteHandler {
    run: Arc<RunInner>,
    def: Arc<TaskDef>,
    body: Body,
}

impl TaskHandler for RemoteHandler {
    fn kind(&self) -> &'static str {
        "fleet"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        self.run
            .clone()
            .execute(self.def.clone(), self.body.clone(), ctx)
            .boxed()
    }
}

fn reply_text(v: &Reply) -> Option<String> {
    match v {
        Reply::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Reply::SimpleString(s) => Some(s.clone()),
        Reply::VerbatimString { text, .. } => Some(text.clone()),
        Reply::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Store the workflow text under its hash for workers (kept for the retention time).
async fn store_bundle(fleet: &RedisFleet, source: &WorkflowSource) -> Result<String, String> {
    let text = source
        .source
        .clone()
        .ok_or("the workflow's text is not known, so workers cannot load it")?;
    let hash = source
        .hash
        .clone()
        .unwrap_or_else(|| crate::file::sha256_hex(&text));
    let bundle = Bundle {
        name: source.name.clone(),
        path: source.path.clone().unwrap_or_default(),
        text,
    };
    let json = serde_json::to_string(&bundle).map_err(|e| e.to_string())?;
    let key = fleet.keys.workflow(&hash);
    let secs = fleet.config.retention.as_secs().max(60);
    retry(
        &fleet.link,
        "storing the workflow",
        Some(fleet.config.connect_wait),
        |mut c| {
            let (key, json) = (key.clone(), json.clone());
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("EX")
                    .arg(secs)
                    .query_async::<()>(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "storing the workflow on Redis at {}: {e}",
            fleet.link.address()
        )
    })?;
    Ok(hash)
}

/// Take the run's coordinator lease. A resumed run waits for a previous coordinator's lease
/// to run out (it may have died a moment ago); a fresh run takes it at once.
async fn claim(fleet: &RedisFleet, keys: &RunKeys, resumed: bool) -> Result<u64, String> {
    let lease = fleet.config.lease.as_millis() as u64;
    let coord = keys.coord();
    let mut told = false;
    loop {
        let reply: Vec<String> = retry(
            &fleet.link,
            "taking the run's lease",
            Some(fleet.config.connect_wait),
            |mut c| {
                let coord = coord.clone();
                let id = fleet.id.clone();
                async move {
                    scripts::CLAIM
                        .key(coord)
                        .arg(&*id)
                        .arg(lease)
                        .invoke_async(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| {
            format!(
                "taking the run's lease on Redis at {}: {e}",
                fleet.link.address()
            )
        })?;
        match reply.first().map(String::as_str) {
            Some("ok") => {
                return reply
                    .get(1)
                    .and_then(|e| e.parse().ok())
                    .ok_or_else(|| "the lease script returned no epoch".to_string());
            }
            Some("busy") if resumed => {
                let left: u64 = reply.get(2).and_then(|m| m.parse().ok()).unwrap_or(1000);
                if !told {
                    told = true;
                    tracing::warn!(
                        "coordinator {} still holds this run's lease; waiting {:.1} s for it to run out",
                        reply.get(1).map(String::as_str).unwrap_or("?"),
                        left as f64 / 1000.0
                    );
                }
                tokio::time::sleep(Duration::from_millis(left.clamp(50, 5_000))).await;
            }
            Some("busy") => {
                return Err(format!(
                    "coordinator {} is already running this run",
                    reply.get(1).map(String::as_str).unwrap_or("?")
                ));
            }
            other => return Err(format!("unexpected reply from the lease script: {other:?}")),
        }
    }
}

/// The id after which this coordinator reads the outbox: its current end.
async fn outbox_cursor(link: &Link, keys: &RunKeys) -> Result<String, String> {
    let out = keys.out();
    let last: Vec<(String, HashMap<String, Reply>)> = retry(
        link,
        "reading the run's outbox",
        Some(Duration::from_secs(30)),
        |mut c| {
            let out = out.clone();
            async move {
                let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(out)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut c)
                    .await?;
                Ok(reply.ids.into_iter().map(|s| (s.id, s.map)).collect())
            }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "reading the run's outbox on Redis at {}: {e}",
            link.address()
        )
    })?;
    Ok(last
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .unwrap_or_else(|| "0-0".into()))
}

/// Write the results and added tasks known at the start (a resumed run's), replacing what a
/// previous coordinator left.
async fn seed_mirror(link: &Link, keys: &RunKeys, info: &FleetRunInfo) -> Result<(), String> {
    let (results, dynamic) = (keys.results(), keys.dynamic());
    let values: Vec<(String, String)> = info
        .results
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
        .collect();
    retry(
        link,
        "writing the run's results",
        Some(Duration::from_secs(30)),
        |mut c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("DEL").arg(&results).arg(&dynamic).ignore();
            for chunk in values.chunks(1000) {
                pipe.cmd("HSET").arg(&results);
                for (k, v) in chunk {
                    pipe.arg(k).arg(v);
                }
                pipe.ignore();
            }
            for chunk in info.dynamic.chunks(1000) {
                pipe.cmd("SADD").arg(&dynamic).arg(chunk).ignore();
            }
            async move { pipe.query_async::<()>(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "writing the run's results on Redis at {}: {e}",
            link.address()
        )
    })
}

/// Create `stream` and its consumer group if needed, reading from its start so entries added
/// before any worker came are delivered.
pub(crate) async fn ensure_group(link: &Link, stream: &str) -> Result<(), RedisError> {
    let result: Result<(), RedisError> = retry(
        link,
        "creating a consumer group",
        None,
        |mut c| async move {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(keys::GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async::<()>(&mut c)
                .await
        },
    )
    .await;
    match result {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Read the run's outbox until the run closes.
async fn read_outbox(run: Arc<RunInner>, mut cursor: String) {
    let out = run.keys.out();
    let mut delay = Duration::from_millis(50);
    loop {
        let mut conn = match run.link().blocking().await {
            Ok(c) => c,
            Err(e) => {
                if !transient(&e) {
                    tracing::warn!("run {}: reading the outbox: {e}", run.run_id);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            let read: Result<Option<StreamReadReply>, RedisError> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(2000)
                .arg("STREAMS")
                .arg(&out)
                .arg(&cursor)
                .query_async(&mut conn)
                .await;
            match read {
                Ok(Some(reply)) => {
                    delay = Duration::from_millis(50);
                    for key in reply.keys {
                        for entry in key.ids {
                            run.handle(&entry.map);
                            cursor = entry.id;
                        }
                    }
                    let trim = redis::cmd("XTRIM")
                        .arg(&out)
                        .arg("MINID")
                        .arg(&cursor)
                        .query_async::<i64>(&mut conn)
                        .await;
                    if let Err(e) = trim
                        && transient(&e)
                    {
                        run.reconcile.notify_one();
                        break;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    if !transient(&e) {
                        tracing::warn!("run {}: reading the outbox: {e}", run.run_id);
                    }
                    run.reconcile.notify_one();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    break;
                }
            }
        }
    }
}

/// Renew the coordinator's lease every third of it; notice when another coordinator took the
/// run (the run stops) and when Redis restarted or the lease lapsed (pending attempts are
/// checked again).
async fn keep_lease(run: Arc<RunInner>) {
    let lease = run.fleet.config.lease;
    let every = lease / 3;
    let coord = run.keys.coord();
    let mut server: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        let owner = run.fleet.id.clone();
        let epoch = run.epoch;
        let reply: Result<(Vec<String>, String), RedisError> =
            retry(run.link(), "renewing the run's lease", None, |mut c| {
                let (coord, owner) = (coord.clone(), owner.clone());
                async move {
                    let renewed: Vec<String> = scripts::RENEW
                        .key(coord)
                        .arg(&*owner)
                        .arg(epoch)
                        .arg(lease.as_millis() as u64)
                        .invoke_async(&mut c)
                        .await?;
                    let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
                    Ok((renewed, info))
                }
            })
            .await;
        let Ok((renewed, info)) = reply else {
            continue;
        };
        let id = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_string());
        let restarted = server.is_some() && id != server;
        server = id;
        match renewed.first().map(String::as_str) {
            Some("fenced") => {
                (run.cancel_run)(format!(
                    "coordinator {} took over run {}",
                    renewed.get(1).map(String::as_str).unwrap_or("?"),
                    run.run_id
                ));
                return;
            }
            Some("ok") if restarted || renewed.get(1).map(String::as_str) == Some("1") => {
                run.reconcile.notify_one();
            }
            _ => {}
        }
    }
}

/// Write mirrored results and added tasks in batches.
async fn write_mirror(run: Arc<RunInner>) {
    let (results, dynamic) = (run.keys.results(), run.keys.dynamic());
    loop {
        let ops = std::mem::take(&mut *run.mirror.ops.lock());
        if ops.is_empty() {
            run.mirror.wake.notified().await;
            continue;
        }
        let upto = {
            // Every op taken above was counted before it was pushed.
            let taken = ops.len() as u64;
            *run.mirror.written.borrow() + taken
        };
        let mut values: Vec<(String, String)> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        for op in ops {
            match op {
                MirrorOp::Result(k, v) => values.push((
                    k,
                    serde_json::to_string(&v).unwrap_or_else(|_| "null".into()),
                )),
                MirrorOp::Added(k) => added.push(k),
            }
        }
        let written = retry(
            run.link(),
            "writing results for the workers",
            None,
            |mut c| {
                let mut pipe = redis::pipe();
                for chunk in values.chunks(1000) {
                    pipe.cmd("HSET").arg(&results);
                    for (k, v) in chunk {
                        pipe.arg(k).arg(v);
                    }
                    pipe.ignore();
                }
                for chunk in added.chunks(1000) {
                    pipe.cmd("SADD").arg(&dynamic).arg(chunk).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            },
        )
        .await;
        if let Err(e) = written {
            tracing::warn!("run {}: writing results for the workers: {e}", run.run_id);
        }
        run.mirror.written.send_replace(upto);
    }
}

async fn reconcile_when_asked(run: Arc<RunInner>) {
    loop {
        run.reconcile.notified().await;
        // Let a burst of notices settle into one pass.
        tokio::time::sleep(Duration::from_millis(100)).await;
        run.reconcile.notified().now_or_never();
        run.reconcile().await;
    }
}
