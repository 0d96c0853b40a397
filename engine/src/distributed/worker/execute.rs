//! One queue entry on a worker: take the attempt (`start`), build its handler, run the body
//! with the task's timeout while the lease is kept alive, and commit the outcome fenced by the
//! epoch — or skip, dead-letter, hand back, or drop it, as the scripts decide.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::context::{ExecutionInfo, RunAccess, TaskContext};
use crate::distributed::channel::RedisChannel;
use crate::distributed::conn::retry;
use crate::distributed::keys::RunKeys;
use crate::distributed::wire::{Body, Bundle, Payload, RemoteControl};
use crate::distributed::{pools, scripts};
use crate::error::RunError;
use crate::file::{self, LoadedWorkflow};
use crate::handler::{TaskError, TaskHandler};
use crate::run::TaskFactory;
use crate::workflow::Workflow;

use super::access::WorkerAccess;
use super::failpoint;
use super::recording::Recording;
use super::{InFlight, WorkerInner};

/// Why a running attempt was stopped before its body finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The run or the attempt was cancelled.
    Cancelled,
    /// The lease was lost (another worker holds the attempt now, or it could not be renewed).
    Lost,
    /// The worker shuts down and hands the attempt back.
    Shutdown,
}

/// Acknowledge and delete a queue entry (batched with others: an entry acknowledged late is
/// only found finished by a reaper).
pub(crate) fn ack(inner: &WorkerInner, stream: &str, entry: &str) {
    inner.acks.push(stream, entry);
}

/// Put attempt `tid` of `run` on `stream` again and drop the old entry.
pub(crate) async fn requeue(inner: &WorkerInner, stream: &str, entry: &str, run: &str, tid: &str) {
    let _ = retry(&inner.link, "requeueing a task", None, |mut c| async move {
        redis::pipe()
            .cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("run")
            .arg(run)
            .arg("tid")
            .arg(tid)
            .ignore()
            .cmd("XACK")
            .arg(stream)
            .arg(crate::distributed::keys::GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(stream)
            .arg(entry)
            .ignore()
            .query_async::<()>(&mut c)
            .await
    })
    .await;
}

/// Handle one entry read from `stream`.
pub(crate) async fn process(
    inner: &Arc<WorkerInner>,
    stream: String,
    entry: String,
    run: String,
    tid: String,
) {
    let keys = inner.keys.run(&run);
    let task_of = |tid: &str| {
        let mut parts = tid.rsplitn(3, ':');
        parts.nth(2).unwrap_or(tid).to_string()
    };
    let task = task_of(&tid);
    failpoint::hit("after_fetch", &task);
    let started: Vec<Option<String>> = match retry(&inner.link, "starting a task", None, |mut c| {
        let keys = &keys;
        let tid = &tid;
        let entry = &entry;
        async move {
            scripts::START
                .key(keys.attempt(tid))
                .key(keys.coord())
                .key(keys.out())
                .key(keys.results())
                .arg(&inner.id)
                .arg(inner.config.lease.as_millis() as u64)
                .arg(inner.config.max_deliveries)
                .arg(tid)
                .arg(entry)
                .invoke_async(&mut c)
                .await
        }
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("worker {}: starting {run}/{tid}: {e}", inner.id);
            return; // The entry stays pending; the reaper hands it on.
        }
    };
    let field = |i: usize| started.get(i).cloned().flatten().unwrap_or_default();
    match field(0).as_str() {
        "run" => {}
        "dead" => {
            inner.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
            let error = field(1);
            tracing::warn!("worker {}: {run}/{tid} {error}", inner.id);
            dead_letter(inner, &stream, &run, &tid, &error).await;
            ack(inner, &stream, &entry);
            return;
        }
        _ => {
            ack(inner, &stream, &entry);
            return;
        }
    }
    let epoch: u64 = field(1).parse().unwrap_or(0);
    if let (Ok(enqueued), Ok(now)) = (field(4).parse::<u64>(), field(5).parse::<u64>()) {
        inner
            .metrics
            .queue_wait
            .observe(Duration::from_millis(now.saturating_sub(enqueued)));
    }
    let flight = Arc::new(InFlight {
        run: run.clone(),
        tid: tid.clone(),
        stream: stream.clone(),
        entry: entry.clone(),
        epoch,
        stop: CancellationToken::new(),
        reason: Mutex::new(None),
        extended: Mutex::new(Instant::now()),
    });
    inner.inflight.lock().insert(entry.clone(), flight.clone());
    inner.metrics.busy.fetch_add(1, Ordering::Relaxed);
    failpoint::hit("after_start", &task);
    let inputs: Vec<Option<String>> = started.iter().skip(6).cloned().collect();
    let outcome = run_attempt(inner, &keys, &flight, &field(2), inputs).await;
    inner.metrics.busy.fetch_sub(1, Ordering::Relaxed);
    inner.inflight.lock().remove(&entry);
    match outcome {
        Ended::Stopped(StopReason::Shutdown) => {
            inner.metrics.released.fetch_add(1, Ordering::Relaxed);
            release(inner, &keys, &flight).await;
        }
        Ended::Stopped(StopReason::Cancelled) => {
            inner.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
            ack(inner, &stream, &entry);
        }
        Ended::Stopped(StopReason::Lost) => {
            inner.metrics.stale.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "worker {}: lost the lease of {run}/{tid}; stopped it without committing",
                inner.id
            );
        }
        Ended::Commit(commit) => {
            failpoint::hit("after_body", &task);
            let committed = commit_outcome(inner, &keys, &flight, &commit).await;
            failpoint::hit("after_commit", &task);
            if committed {
                inner.metrics.processed.fetch_add(1, Ordering::Relaxed);
                let counter = if commit.succeeded {
                    &inner.metrics.succeeded
                } else {
                    &inner.metrics.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                inner.metrics.stale.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "worker {}: the commit of {run}/{tid} was refused: its lease had moved to another worker",
                    inner.id
                );
            }
            ack(inner, &stream, &entry);
        }
    }
}

/// What the body's run came to.
enum Ended {
    Stopped(StopReason),
    Commit(Commit),
}

/// An outcome to commit.
struct Commit {
    succeeded: bool,
    result: String,
    error: String,
    control: String,
    run_error: String,
    duration_ms: f64,
    /// The last outbox entry of the attempt (its lines go before the outcome).
    last_sent: u64,
    /// The body's channel writes (JSON), for a resumed run that reuses the outcome.
    writes: String,
}

fn failed(
    error: String,
    run_error: Option<&RunError>,
    duration: Duration,
    last_sent: u64,
) -> Commit {
    Commit {
        succeeded: false,
        result: "null".into(),
        error,
        control: String::new(),
        run_error: run_error
            .and_then(|e| serde_json::to_string(e).ok())
            .unwrap_or_default(),
        duration_ms: duration.as_secs_f64() * 1000.0,
        last_sent,
        writes: String::new(),
    }
}

async fn run_attempt(
    inner: &Arc<WorkerInner>,
    keys: &RunKeys,
    flight: &Arc<InFlight>,
    payload: &str,
    input_values: Vec<Option<String>>,
) -> Ended {
    let payload: Payload = match serde_json::from_str(payload) {
        Ok(p) => p,
        Err(e) => {
            return Ended::Commit(failed(
                format!("the attempt's payload does not parse: {e}"),
                None,
                Duration::ZERO,
                0,
            ));
        }
    };
    if payload.attempt > 0 {
        inner.metrics.retried.fetch_add(1, Ordering::Relaxed);
    }
    let (handler, workflow) = match build(inner, &payload).await {
        Ok(b) => b,
        Err(message) => return Ended::Commit(failed(message, None, Duration::ZERO, 0)),
    };
    let inputs = payload
        .inputs
        .iter()
        .zip(input_values)
        .filter_map(|(id, v)| Some((id.clone(), serde_json::from_str(&v?).ok()?)))
        .collect();
    let access = Arc::new(WorkerAccess {
        worker: inner.clone(),
        keys: keys.clone(),
        tid: flight.tid.clone(),
        epoch: flight.epoch,
        workflow,
        inputs,
        specs: Mutex::new(BTreeMap::new()),
        last_sent: AtomicU64::new(0),
        ended: flight.stop.child_token(),
    });
    // However the attempt ends, waits its body started end too.
    let _end_waits = access.ended.clone().drop_guard();
    let writes = Recording::new(Arc::new(RedisChannel::new(
        inner.link.clone(),
        keys.clone(),
    )));
    let channel = Channel::from_backend(writes.clone());
    let ctx = TaskContext::new(
        ExecutionInfo {
            task_id: Arc::from(payload.task.as_str()),
            run_id: Arc::from(payload.run.as_str()),
            cycle: payload.cycle,
            attempt: payload.attempt,
            max_cycles: payload.max_cycles,
            data: payload.data.clone(),
            slot: 0,
        },
        channel,
        access.clone() as Arc<dyn RunAccess>,
    );
    // Slots and tokens first: the time spent waiting for them is not the body's.
    let holder = format!(
        "{}:{}:{}:{}",
        inner.id, payload.run, flight.tid, flight.epoch
    );
    let admitted = tokio::select! {
        biased;
        _ = flight.stop.cancelled() => {
            let reason = (*flight.reason.lock()).unwrap_or(StopReason::Cancelled);
            return Ended::Stopped(reason);
        }
        admitted = pools::admit(
            &inner.link,
            &inner.keys,
            &payload.limits,
            &holder,
            inner.config.lease,
            |wait| access.send_wait(&wait),
        ) => admitted,
    };
    let _slots = match admitted {
        Ok(slots) => slots,
        Err(e) => {
            return Ended::Commit(failed(
                format!("taking the task's pool slots or rate-limit tokens: {e}"),
                None,
                Duration::ZERO,
                access.last_sent.load(Ordering::Acquire),
            ));
        }
    };
    if !payload.limits.is_empty() {
        access.send_started();
    }
    let started = Instant::now();
    let body = AssertUnwindSafe(handler.execute(ctx.clone())).catch_unwind();
    let limit = payload.timeout_ms.map(Duration::from_millis);
    let timed = async {
        match limit {
            None => body.await,
            Some(limit) => match tokio::time::timeout(limit, body).await {
                Ok(r) => r,
                Err(_) => Ok(Err(TaskError::msg(format!(
                    "timed out after {}",
                    humantime::format_duration(limit)
                )))),
            },
        }
    };
    let out = tokio::select! {
        biased;
        _ = flight.stop.cancelled() => {
            let reason = (*flight.reason.lock()).unwrap_or(StopReason::Cancelled);
            return Ended::Stopped(reason);
        }
        out = timed => out,
    };
    let duration = started.elapsed();
    inner.metrics.duration.observe(duration);
    let last_sent = access.last_sent.load(Ordering::Acquire);
    Ended::Commit(match out {
        Ok(Ok(value)) => {
            let control = RemoteControl::from_requests(ctx.take_control(), &access.specs.lock());
            Commit {
                succeeded: true,
                result: serde_json::to_string(&value).unwrap_or_else(|_| "null".into()),
                error: String::new(),
                control: if control.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&control).unwrap_or_default()
                },
                run_error: String::new(),
                duration_ms: duration.as_secs_f64() * 1000.0,
                last_sent,
                writes: serde_json::to_string(&writes.take()).unwrap_or_else(|_| "[]".into()),
            }
        }
        Ok(Err(e)) => {
            let retry_after = e
                .chain()
                .find_map(|c| c.downcast_ref::<crate::pool::RetryAfter>())
                .map(|r| r.delay);
            if let Some(delay) = retry_after {
                // Every worker and coordinator taking from the pool's bucket slows down.
                let task_bucket = format!("task:{}:{}", payload.workflow, payload.task);
                if let Err(err) = pools::hold(
                    &inner.link,
                    &inner.keys,
                    &payload.limits,
                    &task_bucket,
                    delay,
                )
                .await
                {
                    tracing::warn!("worker {}: holding the pool's bucket: {err}", inner.id);
                }
            }
            Commit {
                writes: serde_json::to_string(&writes.take()).unwrap_or_else(|_| "[]".into()),
                control: retry_after
                    .map(|d| {
                        serde_json::json!({"retry_after_ms": d.as_millis() as u64}).to_string()
                    })
                    .unwrap_or_default(),
                ..failed(
                    format!("{e:#}"),
                    e.downcast_ref::<RunError>(),
                    duration,
                    last_sent,
                )
            }
        }
        Err(panic) => Commit {
            writes: serde_json::to_string(&writes.take()).unwrap_or_else(|_| "[]".into()),
            ..failed(
                format!("task panicked: {}", crate::run::panic_message(&panic)),
                None,
                duration,
                last_sent,
            )
        },
    })
}

/// The handler for the attempt, and the workflow it comes from (when it comes from one).
async fn build(
    inner: &Arc<WorkerInner>,
    payload: &Payload,
) -> Result<(Arc<dyn TaskHandler>, Option<Arc<Workflow>>), String> {
    match &payload.body {
        Body::Registered { name } => inner
            .registry
            .get(name)
            .cloned()
            .map(|h| (h, None))
            .ok_or_else(|| {
                format!(
                    "no handler is registered as '{name}' on worker {} (register it in the workers' TaskRegistry)",
                    inner.id
                )
            }),
        Body::File { workflow, task } => {
            let loaded = workflow_for(inner, workflow).await?;
            let def = loaded.workflow.task(task).ok_or_else(|| {
                format!("workflow '{}' has no task '{task}'", loaded.workflow.name())
            })?;
            Ok((def.handler().clone(), Some(loaded.workflow.clone())))
        }
        Body::Spec { workflow, spec } => {
            let loaded = workflow_for(inner, workflow).await?;
            let def = loaded
                .task_factory(&inner.runtimes)
                .build(&payload.task, spec)
                .map_err(|e| format!("task '{}' added at run time: {e}", payload.task))?;
            Ok((def.handler().clone(), Some(loaded.workflow.clone())))
        }
    }
}

/// The workflow stored under `hash`, loaded once per worker: attempts that need it while it
/// loads wait for that one load (a burst of attempts of a big workflow loads it once).
async fn workflow_for(inner: &Arc<WorkerInner>, hash: &str) -> Result<Arc<LoadedWorkflow>, String> {
    let cell = {
        let mut cache = inner.workflows.lock();
        if cache.len() >= 64 && !cache.contains_key(hash) {
            cache.clear();
        }
        cache.entry(hash.to_string()).or_default().clone()
    };
    let loaded = cell
        .get_or_init(|| load_workflow(inner, hash))
        .await
        .clone();
    if loaded.is_err() {
        // A failed load (Redis away, a missing key) is tried again by the next attempt.
        inner.workflows.lock().remove(hash);
    }
    loaded
}

/// Read and load the workflow stored under `hash`.
async fn load_workflow(
    inner: &Arc<WorkerInner>,
    hash: &str,
) -> Result<Arc<LoadedWorkflow>, String> {
    let key = inner.keys.workflow(hash);
    let json: Option<String> = retry(
        &inner.link,
        "reading a workflow",
        Some(Duration::from_secs(60)),
        |mut c| {
            let key = key.clone();
            async move { redis::cmd("GET").arg(key).query_async(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "reading workflow {hash} from Redis at {}: {e}",
            inner.link.address()
        )
    })?;
    let json = json.ok_or_else(|| {
        format!("workflow {hash} is not in Redis (its run is older than the retention time, or the prefix differs)")
    })?;
    let bundle: Bundle =
        serde_json::from_str(&json).map_err(|e| format!("workflow {hash} does not parse: {e}"))?;
    let runtimes = inner.runtimes.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        file::load_str(&bundle.text, Path::new(&bundle.path), &runtimes)
    })
    .await
    .map_err(|e| format!("loading workflow {hash}: {e}"))?
    .map_err(|e| format!("workflow {hash} does not load on worker {}:\n{e}", inner.id))?;
    Ok(Arc::new(loaded))
}

/// Commit the outcome once the attempt's lines are written; false when the lease had moved on.
async fn commit_outcome(
    inner: &Arc<WorkerInner>,
    keys: &RunKeys,
    flight: &InFlight,
    commit: &Commit,
) -> bool {
    inner.outbox.flushed(commit.last_sent).await;
    let state = if commit.succeeded { "done" } else { "failed" };
    let reply: Result<String, _> =
        retry(&inner.link, "committing a task", None, |mut c| async move {
            scripts::COMPLETE
                .key(keys.attempt(&flight.tid))
                .key(keys.out())
                .arg(&inner.id)
                .arg(flight.epoch)
                .arg(state)
                .arg(&commit.result)
                .arg(&commit.error)
                .arg(&commit.control)
                .arg(format!("{:.3}", commit.duration_ms))
                .arg(&flight.tid)
                .arg(&commit.run_error)
                .arg(&commit.writes)
                .invoke_async(&mut c)
                .await
        })
        .await;
    matches!(reply.as_deref(), Ok("ok"))
}

/// Hand an attempt back on shutdown so another worker takes it at once.
async fn release(inner: &Arc<WorkerInner>, keys: &RunKeys, flight: &InFlight) {
    let reply: Result<String, _> = retry(
        &inner.link,
        "handing a task back",
        Some(Duration::from_secs(10)),
        |mut c| async move {
            scripts::RELEASE
                .key(keys.attempt(&flight.tid))
                .arg(&inner.id)
                .arg(flight.epoch)
                .invoke_async(&mut c)
                .await
        },
    )
    .await;
    if matches!(reply.as_deref(), Ok("requeue")) {
        requeue(
            inner,
            &flight.stream,
            &flight.entry,
            &flight.run,
            &flight.tid,
        )
        .await;
    }
}

/// Record a dead letter on the queue's dead-letter stream.
async fn dead_letter(inner: &WorkerInner, stream: &str, run: &str, tid: &str, error: &str) {
    let dlq = stream
        .strip_suffix(":s")
        .map(|base| format!("{base}:dlq"))
        .unwrap_or_else(|| format!("{stream}:dlq"));
    let _ = retry(&inner.link, "dead-lettering a task", None, |mut c| {
        let dlq = dlq.clone();
        async move {
            redis::cmd("XADD")
                .arg(dlq)
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg("*")
                .arg("run")
                .arg(run)
                .arg("tid")
                .arg(tid)
                .arg("error")
                .arg(error)
                .arg("worker")
                .arg(&inner.id)
                .query_async::<String>(&mut c)
                .await
        }
    })
    .await;
}
