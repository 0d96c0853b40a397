//! The branch loop: pop the next queued node, run it (a task with retries and timeout, or a
//! group), then queue what comes next according to the control calls, in priority
//! cancel > terminate > goto/iteration > normal successors. A deferred checkpoint asked for by
//! the task is written once its successors are queued.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::checkpoint::Reason;
use crate::context::{ExecutionInfo, RunAccess, TaskContext};
use crate::dispatch::Placement;
use crate::error::RunError;
use crate::events::EventKind;
use crate::handler::{TaskError, TaskHandler};
use crate::pool::{Admission, RetryAfter, Wait};
use crate::workflow::{PlanKind, TaskDef};

use super::group::run_group;
use super::state::{Entry, RunShared};

/// What the branch does next.
enum Step {
    /// The queue is empty: the branch ends with this last result.
    Done(Option<Value>),
    /// The gate is closed: wait until it opens.
    Wait,
    Task {
        entry: Entry,
        slot: u32,
        def: Arc<TaskDef>,
        id: Arc<str>,
        cycle: u32,
        max_cycles: u32,
        on_fleet: bool,
    },
    Group {
        entry: Entry,
        id: Arc<str>,
        members: Vec<u32>,
        placement: Placement,
    },
}

/// Run a branch until its queue is empty; returns the last result produced in it. The branch
/// stays in the run state (the caller removes it, together with recording the outcome).
pub(crate) fn run_branch(
    shared: Arc<RunShared>,
    branch: u32,
) -> BoxFuture<'static, Result<Option<Value>, RunError>> {
    async move { branch_loop(&shared, branch).await }.boxed()
}

/// The last result produced in `branch`.
fn last_result(shared: &RunShared, branch: u32) -> Option<Value> {
    shared
        .state
        .lock()
        .branch(branch)
        .and_then(|b| b.last.clone())
}

async fn branch_loop(shared: &Arc<RunShared>, branch: u32) -> Result<Option<Value>, RunError> {
    loop {
        match next_step(shared, branch)? {
            Step::Done(last) => return Ok(last),
            Step::Wait => {
                let mut open = shared.gate.subscribe();
                tokio::select! {
                    _ = shared.stop.cancelled() => return Err(shared.cancel_error()),
                    _ = open.wait_for(|open| *open) => {}
                }
                continue;
            }
            Step::Task {
                entry,
                slot,
                def,
                id,
                cycle,
                max_cycles,
                on_fleet,
            } => {
                let exec = Exec {
                    branch,
                    slot,
                    cycle,
                    max_cycles,
                    on_fleet,
                };
                let outcome = run_task(shared, exec, entry, def, id.clone()).await?;
                if let Some(metadata) = outcome {
                    {
                        shared
                            .checkpoint(Reason::Deferred, Some((&id, cycle)), metadata, None)
                            .await
                            .map_err(|e| RunError::TaskFailed {
                                task: id.to_string(),
                                message: format!("its checkpoint could not be written: {e}"),
                            })?;
                    }
                }
            }
            Step::Group {
                entry,
                id,
                members,
                placement,
            } => {
                run_group(shared, branch, entry, id, members, placement).await?;
            }
        }
        if shared.is_terminating() {
            return Ok(last_result(shared, branch));
        }
    }
}

/// Pop the next entry and do the bookkeeping that precedes running it: the gate,
/// cancellation, the step limit and the cycle limit. An empty queue ends the branch, with its
/// last result read under the same lock.
fn next_step(shared: &RunShared, branch: u32) -> Result<Step, RunError> {
    if shared.stop.is_cancelled() {
        return Err(shared.cancel_error());
    }
    let mut st = shared.state.lock();
    if st.gate_closed {
        return Ok(Step::Wait);
    }
    let Some(b) = st.branch(branch) else {
        return Ok(Step::Done(None));
    };
    let Some(entry) = b.queue.pop_front() else {
        return Ok(Step::Done(b.last.clone()));
    };
    let node = shared.node(&st, entry.node);
    let id = node.id.clone();
    let max_cycles = node.max_cycles;
    let kind = node.kind.clone();
    drop(node);
    if matches!(kind, PlanKind::Task(_)) && st.steps >= shared.wf.max_steps {
        return Err(RunError::StepLimitExceeded {
            task: id.to_string(),
            limit: shared.wf.max_steps,
        });
    }
    let cycles = &mut st.cycles[entry.node as usize];
    // A group resumed from a checkpoint was counted when it first started.
    if entry.attempt == 0 && entry.resume.is_none() {
        if *cycles >= max_cycles {
            return Err(RunError::CycleLimitExceeded {
                task: id.to_string(),
                count: *cycles,
                limit: max_cycles,
            });
        }
        *cycles += 1;
    }
    let cycle = *cycles;
    Ok(match kind {
        PlanKind::Task(def) => {
            let slot = shared.begin_exec(&mut st, branch);
            let mut on_fleet = false;
            if let Some(b) = st.branch(branch) {
                b.current = Some(entry.clone());
                on_fleet = b.fleet;
            }
            Step::Task {
                entry,
                slot,
                def,
                id,
                cycle,
                max_cycles,
                on_fleet,
            }
        }
        PlanKind::Group {
            members, placement, ..
        } => Step::Group {
            entry,
            id,
            members,
            placement,
        },
    })
}

/// Where one attempt runs: its branch, its slot (see `exec.rs`), its cycle and limit, and
/// whether its branch is placed on the worker fleet.
#[derive(Debug, Clone, Copy)]
struct Exec {
    branch: u32,
    slot: u32,
    cycle: u32,
    max_cycles: u32,
    on_fleet: bool,
}

/// Ends the attempt's slot when dropped (failure, cancellation, a panic), unless its
/// completion already did under the state lock. Ending a slot twice does nothing.
struct Running<'a> {
    shared: &'a RunShared,
    slot: u32,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        self.shared.end_exec(&mut st, self.slot);
    }
}

/// Run the body once with `handler`, bounded by `timeout`, stopped by cancellation, panics
/// caught.
async fn call_body(
    shared: &RunShared,
    handler: &Arc<dyn TaskHandler>,
    timeout: Option<Duration>,
    ctx: TaskContext,
) -> Result<Value, Failure> {
    let body = AssertUnwindSafe(handler.execute(ctx)).catch_unwind();
    let timed = async {
        match timeout {
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
    tokio::select! {
        biased;
        _ = shared.stop.cancelled() => Err(Failure::Cancelled),
        out = timed => match out {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Error(e)),
            Err(panic) => Err(Failure::Error(TaskError::msg(format!(
                "task panicked: {}",
                panic_message(&panic)
            )))),
        },
    }
}

enum Failure {
    Cancelled,
    Error(TaskError),
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}

/// One execution of a task. `Ok(Some(meta))` means it completed and asked for a deferred
/// checkpoint with `meta`; `Ok(None)` that it completed without one, or that a retry was queued.
async fn run_task(
    shared: &Arc<RunShared>,
    exec: Exec,
    entry: Entry,
    def: Arc<TaskDef>,
    id: Arc<str>,
) -> Result<Option<Value>, RunError> {
    let Exec {
        branch,
        slot,
        cycle,
        max_cycles,
        on_fleet,
    } = exec;
    let running = Running { shared, slot };
    let attempt = entry.attempt;
    // On the fleet the worker takes the slots and tokens, in Redis, shared by the fleet.
    let remote = shared.fleet_handler(on_fleet, &def);
    let is_remote = remote.is_some();
    let admission = match remote {
        Some(_) => None,
        None => admit(shared, slot, &def, &id, cycle, attempt).await?,
    };
    let run: Arc<dyn RunAccess> = shared.clone();
    let ctx = TaskContext::new(
        ExecutionInfo {
            task_id: id.clone(),
            run_id: shared.run_id.clone(),
            cycle,
            attempt,
            max_cycles,
            data: entry.data.clone(),
            slot,
        },
        shared.channel.clone(),
        run,
    );
    // A fleet attempt that takes pool slots or tokens on its worker starts there: the
    // worker's report emits `task_started` (after its `task_waiting`).
    let started_remotely = is_remote
        && shared
            .fleet_run
            .get()
            .is_some_and(|r| r.starts_when_admitted(&def));
    if shared.emitting() && !started_remotely {
        shared.emit(EventKind::TaskStarted {
            task: id.clone(),
            cycle,
            attempt,
        });
    }
    let started = Instant::now();
    // On the fleet the worker enforces the timeout, from the moment it starts the body.
    let (handler, timeout) = match remote {
        Some(remote) => (remote, None),
        None => (def.handler().clone(), def.options.timeout),
    };
    let error = match call_body(shared, &handler, timeout, ctx.clone()).await {
        Ok(value) => {
            let done = Done {
                branch,
                slot,
                node: entry.node,
                cycle,
                started,
            };
            let out = complete(shared, done, &id, ctx, value);
            drop(admission);
            drop(running);
            return out;
        }
        Err(Failure::Cancelled) => return Err(shared.cancel_error()),
        // The run was stopped (cancelled, or paused for feedback) while the body ended.
        Err(Failure::Error(_)) if shared.stop.is_cancelled() => return Err(shared.cancel_error()),
        Err(Failure::Error(e)) => e,
    };
    drop(admission);
    let message = format!("{error:#}");
    let retry_after = error
        .chain()
        .find_map(|e| e.downcast_ref::<RetryAfter>())
        .map(|r| r.delay);
    if let Some(delay) = retry_after {
        match shared.fleet_run.get() {
            // A worker that ran it has held the fleet's bucket already.
            Some(_) if is_remote => {}
            Some(run) => {
                if let Some(holding) = run.hold_here(&def, delay) {
                    holding.await;
                }
            }
            None => shared.limiter.hold(&id, &def.options, delay),
        }
    }
    let policy = &def.options.retry;
    let will_retry = attempt < policy.max_retries && !shared.stop.is_cancelled();
    shared.emit(EventKind::TaskFailed {
        task: id.clone(),
        error: message.clone(),
        attempt,
        will_retry,
        worker: ctx.worker(),
    });
    if will_retry {
        let retry = Entry {
            attempt: attempt + 1,
            ..entry
        };
        {
            // The attempt is over (its waits end with it); while the retry waits for its
            // delay, a checkpoint taken meanwhile queues it at the back of its branch.
            drop(running);
            let mut st = shared.state.lock();
            if let Some(b) = st.branch(branch) {
                b.retry = Some(Box::new(retry));
            }
        }
        let delay = match retry_after {
            // The server said when to come back: then, but never later than the policy's cap.
            Some(after) => after.min(policy.max_backoff),
            None => policy.delay(attempt, rand::random::<f64>()),
        };
        if !sleep_unless_cancelled(shared, delay).await {
            return Err(shared.cancel_error());
        }
        let mut st = shared.state.lock();
        if let Some(b) = st.branch(branch)
            && let Some(retry) = b.retry.take()
        {
            b.queue.push_back(*retry);
        }
        return Ok(None);
    }
    if attempt > 0 {
        return Err(RunError::RetryLimitExceeded {
            task: id.to_string(),
            attempts: attempt + 1,
            max_retries: policy.max_retries,
            last_error: message,
        });
    }
    Err(match error.downcast::<RunError>() {
        Ok(run_error) => run_error,
        Err(_) => RunError::TaskFailed {
            task: id.to_string(),
            message,
        },
    })
}

/// Wait until the task's pool and rate limits let it start: parked (not running, not timed)
/// meanwhile, with a `task_waiting` event for each wait. With a fleet that shares limits
/// (Redis), the slots and tokens are the fleet's; otherwise the run's own. `None` when no
/// limit applies.
async fn admit(
    shared: &Arc<RunShared>,
    slot: u32,
    def: &Arc<TaskDef>,
    id: &Arc<str>,
    cycle: u32,
    attempt: u32,
) -> Result<Option<Admission>, RunError> {
    // Most tasks have no limit: nothing to allocate for them.
    if !shared.limiter.applies(id, &def.options) {
        return Ok(None);
    }
    let parked = Arc::new(AtomicBool::new(false));
    let on_wait = {
        let (shared, id, parked) = (shared.clone(), id.clone(), parked.clone());
        move |wait: Wait| {
            if !parked.swap(true, Ordering::AcqRel) {
                shared.park_exec(slot);
            }
            if shared.emitting() {
                shared.emit(EventKind::TaskWaiting {
                    task: id.clone(),
                    cycle,
                    attempt,
                    reason: wait.reason.name().to_string(),
                    pool: wait.pool,
                    detail: wait.detail,
                });
            }
        }
    };
    let holder = format!("{}:{id}:{cycle}:{attempt}:{slot}", shared.run_id);
    let shared_limits = shared
        .fleet_run
        .get()
        .and_then(|run| run.admit_here(def, holder, Box::new(on_wait.clone())));
    let admission = match shared_limits {
        Some(admitting) => tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return Err(shared.cancel_error()),
            admission = admitting => admission.map_err(|e| RunError::TaskFailed {
                task: id.to_string(),
                message: e.to_string(),
            })?,
        },
        None => tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return Err(shared.cancel_error()),
            admission = shared.limiter.admit(id, &def.options, on_wait) => admission,
        },
    };
    if parked.load(Ordering::Acquire) && !shared.unpark_exec(slot).await {
        return Err(shared.cancel_error());
    }
    Ok(Some(admission))
}

async fn sleep_unless_cancelled(shared: &RunShared, delay: Duration) -> bool {
    tokio::select! {
        biased;
        _ = shared.stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// A body that returned: where it ran and when it started.
struct Done {
    branch: u32,
    slot: u32,
    node: u32,
    cycle: u32,
    started: Instant,
}

/// The body returned a value: apply its control calls and queue what follows.
fn complete(
    shared: &Arc<RunShared>,
    done: Done,
    id: &Arc<str>,
    ctx: TaskContext,
    value: Value,
) -> Result<Option<Value>, RunError> {
    let Done {
        branch,
        slot,
        node,
        cycle,
        started,
    } = done;
    let control = ctx.take_control();
    if let Some(message) = control.cancel {
        {
            let mut st = shared.state.lock();
            shared.end_exec(&mut st, slot);
        }
        return Err(shared.cancel(Some(id), message));
    }
    let duration = started.elapsed();
    let holds = control.holds_successors();
    {
        let mut st = shared.state.lock();
        shared.end_exec(&mut st, slot);
        st.results[node as usize] = Some(value.clone());
        shared.result_recorded(id, &value);
        st.steps += 1;
        if let Some(b) = st.branch(branch) {
            b.last = Some(value.clone());
        }
        if let Some(message) = control.terminate {
            if st.terminated.is_none() {
                st.terminated = Some((id.clone(), message, value.clone()));
            }
            shared.terminating.store(true, Ordering::Release);
        } else {
            for next in &control.next_tasks {
                if let Some(target) = shared.lookup(&st, &next.id) {
                    st.push(branch, Entry::new(target));
                }
            }
            if let Some(data) = control.iterate {
                st.push(
                    branch,
                    Entry {
                        node,
                        data,
                        attempt: 0,
                        resume: None,
                    },
                );
            }
            if !holds {
                shared.schedule_successors(&mut st, branch, node);
            }
        }
    }
    if shared.emitting() {
        shared.emit(EventKind::TaskSucceeded {
            task: id.clone(),
            result: value.clone(),
            duration_ms: duration.as_secs_f64() * 1000.0,
            cycle,
            worker: ctx.worker(),
        });
    }
    let automatic = shared.checkpoint_every_task.load(Ordering::Relaxed);
    Ok(control
        .checkpoint
        .or_else(|| automatic.then(|| serde_json::json!({"automatic": true}))))
}
