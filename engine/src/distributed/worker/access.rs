//! What a task body on a worker sees of its run ([`RunAccess`] over Redis): its inputs (read
//! once when the attempt starts), any other result and the tasks added at run time (read on
//! demand), log lines and feedback requests sent through the run's outbox, and the control
//! calls recorded for the coordinator to replay. Immediate checkpoints are refused: only the
//! coordinator can stop the whole run to write one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::Value;

use crate::context::{FeedbackAsk, RunAccess};
use crate::distributed::keys::RunKeys;
use crate::distributed::wire::FeedbackReply;
use crate::events::LogStream;
use crate::hitl::{FeedbackError, FeedbackResponse};
use crate::workflow::{TaskDef, Workflow};

use super::WorkerInner;
use super::outbox::Entry;
use crate::checkpoint::CheckpointError;

/// Log lines longer than this are cut (at a character boundary) and marked.
const MAX_LINE: usize = 64 * 1024;

/// The run as one attempt on a worker sees it.
pub(crate) struct WorkerAccess {
    pub worker: Arc<WorkerInner>,
    pub keys: RunKeys,
    pub tid: String,
    pub epoch: u64,
    /// The workflow the task comes from, when it came from a file.
    pub workflow: Option<Arc<Workflow>>,
    /// The attempt's inputs, read when it started.
    pub inputs: BTreeMap<String, Value>,
    /// Specs of tasks this body added inline, by id.
    pub specs: Mutex<BTreeMap<String, Value>>,
    /// The sequence number of the last entry this attempt sent to the outbox.
    pub last_sent: AtomicU64,
    /// Cancelled when the attempt ends: waits it started (a feedback request in a script's
    /// thread) end with it.
    pub ended: tokio_util::sync::CancellationToken,
}

fn cut(line: String) -> String {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut at {MAX_LINE} bytes]", &line[..end])
}

impl WorkerAccess {
    /// Tell the coordinator the attempt waits for a pool or a rate limit (it emits
    /// `task_waiting`).
    pub(crate) fn send_wait(&self, wait: &crate::pool::Wait) {
        self.send(vec![
            ("k", "wait".into()),
            ("tid", self.tid.clone()),
            ("ep", self.epoch.to_string()),
            ("r", wait.reason.name().into()),
            ("p", wait.pool.as_deref().unwrap_or_default().into()),
            ("d", cut(wait.detail.clone())),
            ("w", self.worker.id.clone()),
        ]);
    }

    /// Tell the coordinator the attempt took its slots and tokens and starts its body (it
    /// emits `task_started`).
    pub(crate) fn send_started(&self) {
        self.send(vec![
            ("k", "go".into()),
            ("tid", self.tid.clone()),
            ("ep", self.epoch.to_string()),
            ("w", self.worker.id.clone()),
        ]);
    }

    fn send(&self, fields: Vec<(&'static str, String)>) -> u64 {
        let seq = self.worker.outbox.push(Entry {
            stream: self.keys.out(),
            fields,
        });
        self.last_sent.fetch_max(seq, Ordering::AcqRel);
        seq
    }

    /// Run a synchronous Redis lookup from inside a task body (rare: a result that is not an
    /// input, a task added at run time by another task).
    fn lookup<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut crate::distributed::conn::SyncConn) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let run = || {
            let mut slot = self.worker.sync_conn.lock();
            if slot.is_none() {
                *slot = self.worker.link.sync().ok();
            }
            let conn = slot.as_mut()?;
            match f(conn) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!("{what}: {e}");
                    *slot = None;
                    None
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }
}

impl RunAccess for WorkerAccess {
    fn result(&self, task: &str) -> Option<Value> {
        if let Some(v) = self.inputs.get(task) {
            return Some(v.clone());
        }
        let key = self.keys.results();
        let text: Option<String> = self.lookup("reading a result", |c| {
            redis::cmd("HGET").arg(&key).arg(task).query(c)
        })?;
        serde_json::from_str(&text?).ok()
    }

    fn inputs(&self, _task: &str) -> BTreeMap<String, Value> {
        self.inputs.clone()
    }

    fn input_ids(&self, _task: &str) -> Vec<String> {
        self.inputs.keys().cloned().collect()
    }

    fn shared_state(&self) -> &crate::shared_state::SharedState {
        &self.worker.config.state
    }

    fn has_node(&self, task: &str) -> bool {
        if self
            .workflow
            .as_ref()
            .is_some_and(|wf| wf.graph().find(task).is_some())
        {
            return true;
        }
        if self.specs.lock().contains_key(task) {
            return true;
        }
        let key = self.keys.dynamic();
        self.lookup("reading the run's added tasks", |c| {
            redis::cmd("SISMEMBER").arg(&key).arg(task).query::<bool>(c)
        })
        .unwrap_or(false)
    }

    fn add_task(&self, id: &str, def: Option<TaskDef>, _by: &str) -> bool {
        match def {
            Some(def) => match def.spec {
                Some(spec) => {
                    self.specs.lock().insert(id.to_string(), spec);
                    true
                }
                // A Rust task made inside a body cannot travel to the coordinator.
                None => false,
            },
            // Without the workflow here, the coordinator decides when it replays the call.
            None => self
                .workflow
                .as_ref()
                .is_none_or(|wf| wf.task(id).is_some()),
        }
    }

    fn log(&self, _task: &str, stream: LogStream, line: String) {
        let stream = match stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Log => "log",
        };
        self.send(vec![
            ("k", "log".into()),
            ("tid", self.tid.clone()),
            ("ep", self.epoch.to_string()),
            ("s", stream.into()),
            ("w", self.worker.id.clone()),
            ("l", cut(line)),
        ]);
    }

    fn checkpoint_now(
        &self,
        _slot: u32,
        task: &str,
        _metadata: Value,
    ) -> BoxFuture<'static, Result<String, CheckpointError>> {
        let message = format!(
            "task '{task}' runs on a worker of the fleet and cannot checkpoint the run now: \
             use ctx.checkpoint() (written by the coordinator once the task completes), or \
             place the task in the coordinator (a group with backend: Local)"
        );
        futures::future::ready(Err(CheckpointError::Unsupported(message))).boxed()
    }

    fn request_feedback(
        &self,
        ask: FeedbackAsk,
    ) -> BoxFuture<'static, Result<FeedbackResponse, FeedbackError>> {
        let spec = match serde_json::to_string(&ask.spec) {
            Ok(s) => s,
            Err(e) => {
                return futures::future::ready(Err(FeedbackError::Invalid(e.to_string()))).boxed();
            }
        };
        let seq = self.send(vec![
            ("k", "ask".into()),
            ("tid", self.tid.clone()),
            ("ep", self.epoch.to_string()),
            ("o", ask.ordinal.to_string()),
            ("spec", spec),
            ("n", if ask.notifiers.is_some() { "1" } else { "0" }.into()),
        ]);
        let worker = self.worker.clone();
        // Per epoch: a lost execution's wait can never take a later execution's answer.
        let key = self
            .keys
            .reply(&format!("{}:{}", self.tid, self.epoch), ask.ordinal);
        let ended = self.ended.clone();
        let id = format!("{}/{}", self.tid, ask.ordinal);
        async move {
            worker.outbox.flushed(seq).await;
            loop {
                if ended.is_cancelled() {
                    return Err(FeedbackError::Cancelled(id));
                }
                let mut conn = match worker.link.blocking().await {
                    Ok(c) => c,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let mut blpop = redis::cmd("BLPOP");
                blpop.arg(&key).arg(1);
                let popped: Result<Option<(String, String)>, _> = tokio::select! {
                    _ = ended.cancelled() => return Err(FeedbackError::Cancelled(id)),
                    r = blpop.query_async(&mut conn) => r,
                };
                match popped {
                    Ok(Some((_, json))) => {
                        return serde_json::from_str::<FeedbackReply>(&json)
                            .map_err(|e| {
                                FeedbackError::Backend(format!(
                                    "the coordinator's answer does not parse: {e}"
                                ))
                            })?
                            .into_result();
                    }
                    Ok(None) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
        .boxed()
    }
}
