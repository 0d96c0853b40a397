//! One run on the fleet: sending attempts (idempotently), waiting for their outcomes,
//! replaying their control calls into the coordinator's context, and closing the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::RedisError;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::context::TaskContext;
use crate::dispatch::FleetRunInfo;
use crate::error::RunError;
use crate::events::RunStatus;
use crate::handler::{TaskError, TaskResult};
use crate::workflow::{TaskDef, Workflow};

use crate::distributed::channel::RedisChannel;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::{self, RunKeys, attempt_id};
use crate::distributed::scripts;
use crate::distributed::wire::{Body, NextCall, Payload, RemoteControl};

use super::inbox::{Relay, outbox_cursor, read_outbox};
use super::lease::{claim, keep_lease, reconcile_when_asked, settle, sweep};
use super::mirror::{Mirror, seed_mirror, write_mirror};
use super::{RedisFleet, ensure_group, store_bundle};
use crate::dispatch::FleetError;

/// How an attempt ended, as the coordinator learns it.
#[derive(Debug)]
pub(super) enum Outcome {
    Done {
        result: Value,
        control: RemoteControl,
    },
    Failed {
        error: String,
        run_error: Option<RunError>,
        /// The service the body called asked to be called again after this long.
        retry_after: Option<std::time::Duration>,
    },
}

impl Outcome {
    /// Read an outcome from the fields a worker committed (`k`, `r`, `e`, `c`, `re`).
    pub(super) fn parse(
        kind: &str,
        result: &str,
        error: &str,
        control: &str,
        run_error: &str,
    ) -> Outcome {
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
                        retry_after: None,
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
                // A failure's control field carries only `retry_after_ms`, when there is one.
                retry_after: serde_json::from_str::<Value>(control)
                    .ok()
                    .and_then(|c| c.get("retry_after_ms").and_then(Value::as_u64))
                    .map(std::time::Duration::from_millis),
            },
        }
    }
}

/// An attempt the coordinator waits for.
pub(super) struct Waiter {
    pub(super) outcome: Option<oneshot::Sender<Outcome>>,
    pub(super) ctx: TaskContext,
    pub(super) def: Arc<TaskDef>,
    pub(super) sent: Arc<Sent>,
    /// The epoch of the worker execution whose log lines are shown (a later one replaces an
    /// earlier, lost one).
    pub(super) log_epoch: u64,
    /// Feedback requests being relayed, by request number.
    pub(super) asks: HashMap<u32, Relay>,
    /// When it was sent.
    pub(super) since: std::time::Instant,
}

pub(super) struct RunInner {
    pub(super) fleet: RedisFleet,
    pub(super) keys: RunKeys,
    pub(super) run_id: Arc<str>,
    pub(super) workflow: Arc<Workflow>,
    pub(super) bundle: Option<String>,
    pub(super) epoch: u64,
    /// Redis time when this coordinator had settled what a previous one left: outcomes
    /// committed before it are replayed (their channel writes) when reused.
    pub(super) settled_ms: u64,
    pub(super) pending: Mutex<HashMap<String, Waiter>>,
    pub(super) mirror: Mirror,
    /// Queues whose consumer group this process made sure of (or is making sure of).
    pub(super) queues: Mutex<HashMap<String, QueueCell>>,
    /// Set when pending attempts must be checked again (Redis restarted or was away).
    pub(super) reconcile: Notify,
    /// The id of the last outbox entry the outbox reader handled.
    pub(super) outbox_read: tokio::sync::watch::Sender<(u64, u64)>,
    pub(super) cancel_run: Arc<dyn Fn(String) + Send + Sync>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(super) closed: AtomicBool,
}

impl RunInner {
    pub(super) async fn open(
        fleet: RedisFleet,
        info: FleetRunInfo,
    ) -> Result<Arc<RunInner>, FleetError> {
        let keys = fleet.keys.run(&info.run_id);
        let bundle = match &fleet.source {
            Some((source, _)) => Some(
                store_bundle(&fleet, source)
                    .await
                    .map_err(FleetError::Store)?,
            ),
            None => None,
        };
        let epoch = claim(&fleet, &keys, info.resumed).await?;
        let settled_ms = settle(&fleet, &keys, info.resumed)
            .await
            .map_err(FleetError::Store)?;
        let cursor = outbox_cursor(&fleet.link, &keys)
            .await
            .map_err(FleetError::Store)?;
        seed_mirror(&fleet.link, &keys, &info)
            .await
            .map_err(FleetError::Store)?;
        let inner = Arc::new(RunInner {
            fleet,
            keys,
            run_id: info.run_id,
            workflow: info.workflow,
            bundle,
            epoch,
            settled_ms,
            pending: Mutex::new(HashMap::new()),
            mirror: Mirror::new(),
            queues: Mutex::new(HashMap::new()),
            reconcile: Notify::new(),
            outbox_read: tokio::sync::watch::Sender::new(super::inbox::entry_id(&cursor)),
            cancel_run: info.cancel,
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let tasks = vec![
            tokio::spawn(read_outbox(inner.clone(), cursor)),
            tokio::spawn(keep_lease(inner.clone())),
            tokio::spawn(write_mirror(inner.clone())),
            tokio::spawn(reconcile_when_asked(inner.clone())),
            tokio::spawn(sweep(inner.clone())),
        ];
        *inner.tasks.lock() = tasks;
        // The default queue is ready before the first dispatch, which can then send the
        // attempt and its queue entry in one round trip.
        inner
            .queue_ready(keys::DEFAULT_QUEUE)
            .await
            .map_err(|e| FleetError::Store(e.to_string()))?;
        Ok(inner)
    }

    pub(super) fn link(&self) -> &Link {
        &self.fleet.link
    }

    /// What a worker needs to run `def`, if it can run there.
    pub(super) fn body_of(&self, def: &Arc<TaskDef>) -> Option<Body> {
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
    pub(super) async fn execute(
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
        let inputs = ctx.input_ids();
        let payload = Payload {
            run: self.run_id.to_string(),
            workflow: self.workflow.name().to_string(),
            task: ctx.task_id().to_string(),
            cycle: ctx.cycle(),
            attempt: ctx.attempt(),
            max_cycles: ctx.max_cycles(),
            data: ctx.data().clone(),
            inputs: Vec::new(),
            body,
            timeout_ms: def.options.timeout.map(|t| t.as_millis() as u64),
            limits: crate::distributed::pools::claims(&self.workflow, &def),
        };
        let sent = Arc::new(Sent {
            tid: tid.clone(),
            queue,
            inputs: serde_json::to_string(&inputs)?,
            payload: serde_json::to_string(&Payload { inputs, ..payload })?,
        });
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(
            tid.clone(),
            Waiter {
                outcome: Some(tx),
                ctx: ctx.clone(),
                def: def.clone(),
                sent: sent.clone(),
                log_epoch: 0,
                asks: HashMap::new(),
                since: std::time::Instant::now(),
            },
        );
        let mut guard = Abandon {
            run: self.clone(),
            tid: tid.clone(),
            armed: true,
        };
        // Results and added tasks recorded before this attempt are visible to its worker.
        self.mirror.flushed().await;
        self.send(&sent, Why::Dispatch).await?;
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
            Outcome::Failed {
                error,
                run_error,
                retry_after,
            } => Err(match (run_error, retry_after) {
                (Some(e), _) => TaskError::new(e),
                (None, Some(delay)) => TaskError::new(crate::pool::RetryAfter {
                    message: crate::pool::RetryAfter::strip_suffix(&error).to_string(),
                    delay,
                }),
                (None, None) => TaskError::msg(error),
            }),
        }
    }

    /// Enqueue attempt `tid` (idempotently) and put it on its queue's stream when it is
    /// waiting there (a sweep adds an entry only for an attempt it found lost). A committed
    /// outcome found on the way is delivered at once.
    pub(super) async fn send(&self, sent: &Sent, why: Why) -> Result<(), TaskError> {
        let (tid, queue) = (sent.tid.as_str(), sent.queue.as_str());
        let mut reply: Vec<String>;
        let mut lost_lease = 0;
        let mut reloads = 0;
        let mut pushed;
        loop {
            // A first dispatch adds the queue entry in the same round trip, betting that the
            // attempt is new (a duplicate entry is harmless: workers skip it).
            let optimistic = why == Why::Dispatch && lost_lease == 0 && self.queue_known(queue);
            let result: Result<Vec<String>, RedisError> =
                retry(self.link(), "queueing a task", None, |mut c| {
                    let mut pipe = redis::pipe();
                    self.enqueue_cmd(&mut pipe, sent);
                    if optimistic {
                        self.xadd_cmd(&mut pipe, sent);
                    }
                    async move {
                        let mut replies: Vec<redis::Value> = pipe.query_async(&mut c).await?;
                        let first = if replies.is_empty() {
                            redis::Value::Nil
                        } else {
                            replies.swap_remove(0)
                        };
                        Ok(redis::from_redis_value::<Vec<String>>(first)?)
                    }
                })
                .await;
            reply = match result {
                Ok(r) => r,
                Err(e)
                    if reloads < 3
                        && e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    // Redis restarted and forgot the script: load it and go again.
                    reloads += 1;
                    let mut c = self.link().conn();
                    let _ = scripts::ENQUEUE.prepare_invoke().load_async(&mut c).await;
                    continue;
                }
                Err(e) => return Err(self.redis_error("queueing a task", e)),
            };
            pushed = optimistic;
            if reply.first().map(String::as_str) != Some("nolease") || lost_lease >= 50 {
                break;
            }
            // Redis lost the lease record: renew it (as it was), then enqueue again.
            lost_lease += 1;
            let _ = self.renew().await;
            self.reconcile.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match reply.first().map(String::as_str) {
            Some("fenced") => {
                let message = format!(
                    "another coordinator took over run {} (its epoch is {}, this one's {})",
                    self.run_id,
                    reply.get(1).map(String::as_str).unwrap_or("?"),
                    self.epoch
                );
                (self.cancel_run)(message.clone());
                Err(TaskError::msg(message))
            }
            Some("terminal") => {
                if why != Why::Dispatch {
                    // Found by a check after Redis was away: what the worker reported before
                    // its outcome (log lines) is read from the outbox first.
                    self.outbox_caught_up(Duration::from_secs(10)).await;
                }
                let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
                let outcome = Outcome::parse(field(1), field(2), field(3), field(4), field(7));
                let ended: u64 = field(8).parse().unwrap_or(0);
                if ended <= self.settled_ms {
                    // Committed before this coordinator restored the run's channel: the body
                    // is not run again, so its channel writes are applied again.
                    self.replay_writes(tid, field(9)).await;
                }
                self.deliver(tid, outcome);
                Ok(())
            }
            Some("pending")
                if matches!(
                    reply.get(1).map(String::as_str),
                    Some("running") | Some("held")
                ) =>
            {
                Ok(())
            }
            Some("pending") if why == Why::Sweep => Ok(()),
            Some("pending") | Some("queued") if pushed => Ok(()),
            Some("pending") | Some("queued") => self.push_to_queue(tid, queue).await,
            other => Err(TaskError::msg(format!(
                "unexpected reply from the enqueue script: {other:?}"
            ))),
        }
    }

    /// Apply the channel writes recorded with a reused outcome.
    pub(super) async fn replay_writes(&self, tid: &str, writes: &str) {
        if writes.is_empty() {
            return;
        }
        let writes: Vec<crate::distributed::wire::ChannelWrite> = match serde_json::from_str(writes)
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(
                    "run {}: the channel writes of {tid} do not parse: {e}",
                    self.run_id
                );
                return;
            }
        };
        let channel = RedisChannel::new(self.link().clone(), self.keys.clone());
        if let Err(e) = crate::distributed::channel::replay(&channel, writes).await {
            tracing::warn!(
                "run {}: replaying the channel writes of reused attempt {tid}: {e}",
                self.run_id
            );
        }
    }

    /// Make sure `queue`'s stream and consumer group exist, once per queue (attempts sent
    /// meanwhile wait for that one check).
    pub(super) async fn queue_ready(&self, queue: &str) -> Result<(), TaskError> {
        let cell = self
            .queues
            .lock()
            .entry(queue.to_string())
            .or_default()
            .clone();
        let ready = cell
            .get_or_init(|| async {
                let stream = self.fleet.keys.queue(queue).stream();
                ensure_group(self.link(), &stream).await.map_err(|e| {
                    self.redis_error("creating the queue's consumer group", e)
                        .to_string()
                })?;
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
                Ok(())
            })
            .await
            .clone();
        if ready.is_err() {
            self.queues.lock().remove(queue);
        }
        ready.map_err(TaskError::msg)
    }

    /// Whether `queue` was made ready already.
    fn queue_known(&self, queue: &str) -> bool {
        self.queues
            .lock()
            .get(queue)
            .is_some_and(|cell| cell.get().is_some_and(Result::is_ok))
    }

    /// The `EVALSHA` of the enqueue script for `sent`, added to `pipe`.
    fn enqueue_cmd(&self, pipe: &mut redis::Pipeline, sent: &Sent) {
        pipe.cmd("EVALSHA")
            .arg(scripts::ENQUEUE.get_hash())
            .arg(3)
            .arg(self.keys.coord())
            .arg(self.keys.attempt(&sent.tid))
            .arg(self.keys.attempts())
            .arg(self.epoch)
            .arg(&sent.payload)
            .arg(&sent.queue)
            .arg(self.fleet.config.retention.as_millis() as u64)
            .arg(&sent.tid)
            .arg(self.fleet.config.lease.as_millis() as u64)
            .arg(&sent.inputs);
    }

    /// The `XADD` that puts `sent` on its queue's stream, added to `pipe`.
    fn xadd_cmd(&self, pipe: &mut redis::Pipeline, sent: &Sent) {
        pipe.cmd("XADD")
            .arg(self.fleet.keys.queue(&sent.queue).stream())
            .arg("*")
            .arg("run")
            .arg(&*self.run_id)
            .arg("tid")
            .arg(&sent.tid);
    }

    /// Add attempt `tid` to `queue`'s stream (a duplicate entry is harmless: workers skip
    /// attempts that are running or finished).
    pub(super) async fn push_to_queue(&self, tid: &str, queue: &str) -> Result<(), TaskError> {
        let stream = self.fleet.keys.queue(queue).stream();
        self.queue_ready(queue).await?;
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

    pub(super) fn redis_error(&self, what: &str, e: RedisError) -> TaskError {
        TaskError::msg(format!("{what} on Redis at {}: {e}", self.link().address()))
    }

    /// Hand `outcome` to the attempt's waiter, if it still waits.
    pub(super) fn deliver(&self, tid: &str, outcome: Outcome) {
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
    pub(super) fn finish_waiter(&self, tid: &str) {
        if let Some(w) = self.pending.lock().remove(tid) {
            for (_, relay) in w.asks {
                relay.task.abort();
            }
        }
    }

    /// Apply a worker's control calls to the coordinator's context, as the body would have.
    pub(super) fn replay(
        &self,
        ctx: &TaskContext,
        control: RemoteControl,
    ) -> Result<(), TaskError> {
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
}

impl RunInner {
    pub(super) async fn close(&self, status: RunStatus) {
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
            self.keys.attempts(),
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

/// A queue being made ready or ready (or the reason it could not be).
pub(super) type QueueCell = Arc<tokio::sync::OnceCell<Result<(), String>>>;

/// An attempt as sent: its id, queue, payload, and the ids of its inputs (JSON).
pub(super) struct Sent {
    pub(super) tid: String,
    pub(super) queue: String,
    pub(super) payload: String,
    pub(super) inputs: String,
}

/// Drops a waiter whose execution was stopped (the run was cancelled or paused, a sibling
/// failed): the attempt is cancelled in Redis so a worker skips or stops it.
pub(super) struct Abandon {
    pub(super) run: Arc<RunInner>,
    pub(super) tid: String,
    pub(super) armed: bool,
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

pub(super) async fn cancel_attempt(link: &Link, keys: &RunKeys, tid: &str) {
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

/// Why an attempt is sent to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Its first dispatch.
    Dispatch,
    /// Redis restarted or was away: everything in flight is checked and re-queued as needed.
    Reconcile,
    /// The periodic check of old attempts (no entry is added for one still queued).
    Sweep,
}
