//! What travels between the coordinator and the workers: the payload of one attempt, the
//! control calls a body made, the workflow text a worker loads, and the answer to a
//! feedback request relayed through the coordinator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::ControlRequests;
use crate::hitl::{FeedbackError, FeedbackResponse};

/// What a worker runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Task `task` of the workflow file stored under `workflow` (its SHA-256).
    File {
        /// The workflow's hash.
        workflow: String,
        /// The task id in that file (a task of the flow, or a definition `next_task` added).
        task: String,
    },
    /// A task added at run time from its spec (the workflow format as JSON); relative paths
    /// resolve against the workflow file's folder.
    Spec {
        /// The workflow's hash.
        workflow: String,
        /// The task's spec.
        spec: Value,
    },
    /// A handler the embedding program registered under `name` on its workers.
    Registered {
        /// The registered name.
        name: String,
    },
}

/// One task attempt as a worker receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// The run.
    pub run: String,
    /// The workflow's name.
    pub workflow: String,
    /// The task id.
    pub task: String,
    /// 1-based execution count.
    pub cycle: u32,
    /// 0-based retry attempt.
    pub attempt: u32,
    /// The task's cycle limit.
    pub max_cycles: u32,
    /// Data of the previous `next_iteration`.
    #[serde(default)]
    pub data: Value,
    /// Ids whose results are this task's inputs (read from the results mirror).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// What to run.
    pub body: Body,
    /// Time limit of the attempt, from the moment the worker starts it.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The pool slots and rate-limit tokens the worker takes before it starts the body.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
}

/// What an attempt must take before its body starts on a worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Slots of a pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolClaim>,
    /// Tokens of buckets other than the pool's (the task's own, its queue's), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<BucketClaim>,
}

impl Limits {
    /// Whether nothing is to be taken.
    pub fn is_empty(&self) -> bool {
        self.pool.is_none() && self.buckets.is_empty()
    }
}

/// Slots of a pool, and its bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolClaim {
    /// The pool's name.
    pub name: String,
    /// Slots wanted.
    pub slots: u32,
    /// The pool's size.
    pub size: u32,
    /// The pool bucket's interval in µs (0: no steady rate).
    #[serde(default)]
    pub interval_us: u64,
    /// Its burst.
    #[serde(default = "one")]
    pub burst: u32,
    /// Its rate as written, for messages.
    #[serde(default)]
    pub rate: Option<String>,
}

/// A token of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketClaim {
    /// The bucket (`task:<workflow>:<task>`, `queue:<queue>`).
    pub key: String,
    /// What it limits, for messages: `rate limit of queue 'io' (5/s)`.
    pub label: String,
    /// Interval in µs.
    pub interval_us: u64,
    /// Burst.
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// A `next_task` / `goto` call made on a worker, replayed by the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum NextCall {
    /// `next_task(id)`; `spec` when the task was given inline.
    Next {
        /// The task id.
        id: String,
        /// The inline spec, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spec: Option<Value>,
    },
    /// `goto(id)` (or `next_task` of a task already in the graph).
    Goto {
        /// The task id.
        id: String,
    },
}

/// The control calls of one execution on a worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteControl {
    /// `next_task` / `goto` calls in order.
    #[serde(default)]
    pub next: Vec<NextCall>,
    /// `next_iteration(data)`.
    #[serde(default)]
    pub iterate: Option<Value>,
    /// `terminate_workflow(message)`.
    #[serde(default)]
    pub terminate: Option<String>,
    /// `cancel_workflow(message)`.
    #[serde(default)]
    pub cancel: Option<String>,
    /// A deferred `checkpoint(metadata)`.
    #[serde(default)]
    pub checkpoint: Option<Value>,
}

impl RemoteControl {
    /// The calls recorded in `control`, with the specs of tasks given inline.
    pub fn from_requests(control: ControlRequests, specs: &BTreeMap<String, Value>) -> Self {
        RemoteControl {
            next: control
                .next_tasks
                .into_iter()
                .map(|n| {
                    if n.jump {
                        NextCall::Goto { id: n.id }
                    } else {
                        let spec = specs.get(&n.id).cloned();
                        NextCall::Next { id: n.id, spec }
                    }
                })
                .collect(),
            iterate: control.iterate,
            terminate: control.terminate,
            cancel: control.cancel,
            checkpoint: control.checkpoint,
        }
    }

    /// Whether no call was made.
    pub fn is_empty(&self) -> bool {
        self == &RemoteControl::default()
    }
}

/// A channel write a body on a worker made, kept with its committed outcome: a resumed run
/// that reuses the outcome (instead of running the body again) replays them onto the channel
/// it restored from its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChannelWrite {
    /// `set` (with its time to live in ms).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Time to live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// `delete`.
    Delete {
        /// The key.
        key: String,
    },
    /// `append` (`front`: `prepend`).
    Push {
        /// The key.
        key: String,
        /// The element.
        value: Value,
        /// Time to live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
        /// Prepended rather than appended.
        #[serde(default)]
        front: bool,
    },
    /// `atomic_add`.
    Add {
        /// The key.
        key: String,
        /// The amount.
        amount: f64,
    },
    /// `clear`.
    Clear,
}

/// A workflow file as workers load it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// The workflow's name.
    pub name: String,
    /// Where the file is on the coordinator's machine (relative paths in it resolve against
    /// its folder).
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// The answer to a feedback request a worker relayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedbackReply {
    /// The answer.
    Answer {
        /// The response.
        response: FeedbackResponse,
    },
    /// The request failed.
    Error {
        /// Which failure (`not_found`, `cancelled`, `timeout`, `paused`, …).
        error: String,
        /// The request id or a message.
        detail: String,
        /// The wait, for timeouts.
        #[serde(default)]
        secs: f64,
    },
}

impl FeedbackReply {
    /// The reply for a request's result.
    pub fn from_result(result: Result<FeedbackResponse, FeedbackError>) -> Self {
        let error = |error: &str, detail: String| FeedbackReply::Error {
            error: error.into(),
            detail,
            secs: 0.0,
        };
        match result {
            Ok(response) => FeedbackReply::Answer { response },
            Err(FeedbackError::NotFound(id)) => error("not_found", id),
            Err(FeedbackError::NotPending { id, status }) => {
                error("not_pending", format!("{id}\n{status}"))
            }
            Err(FeedbackError::Invalid(m)) => error("invalid", m),
            Err(FeedbackError::Cancelled(id)) => error("cancelled", id),
            Err(FeedbackError::Timeout { id, secs }) => FeedbackReply::Error {
                error: "timeout".into(),
                detail: id,
                secs,
            },
            Err(FeedbackError::Paused(id)) => error("paused", id),
            Err(FeedbackError::NotConfigured) => error("not_configured", String::new()),
            Err(FeedbackError::Backend(m)) => error("backend", m),
        }
    }

    /// Back to the result the asking body sees.
    pub fn into_result(self) -> Result<FeedbackResponse, FeedbackError> {
        match self {
            FeedbackReply::Answer { response } => Ok(response),
            FeedbackReply::Error {
                error,
                detail,
                secs,
            } => Err(match error.as_str() {
                "not_found" => FeedbackError::NotFound(detail),
                "not_pending" => {
                    let (id, status) = detail.split_once('\n').unwrap_or((&detail, ""));
                    FeedbackError::NotPending {
                        id: id.to_string(),
                        status: status.to_string(),
                    }
                }
                "invalid" => FeedbackError::Invalid(detail),
                "cancelled" => FeedbackError::Cancelled(detail),
                "timeout" => FeedbackError::Timeout { id: detail, secs },
                "paused" => FeedbackError::Paused(detail),
                "not_configured" => FeedbackError::NotConfigured,
                _ => FeedbackError::Backend(detail),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_errors_survive_the_trip() {
        let errors = [
            FeedbackError::NotFound("x".into()),
            FeedbackError::NotPending {
                id: "x".into(),
                status: "answered".into(),
            },
            FeedbackError::Invalid("bad".into()),
            FeedbackError::Cancelled("x".into()),
            FeedbackError::Timeout {
                id: "x".into(),
                secs: 1.5,
            },
            FeedbackError::Paused("x".into()),
            FeedbackError::NotConfigured,
            FeedbackError::Backend("down".into()),
        ];
        for e in errors {
            let reply = FeedbackReply::from_result(Err(e.clone()));
            let text = serde_json::to_string(&reply).unwrap_or_default();
            let back: FeedbackReply = serde_json::from_str(&text).unwrap_or(reply);
            assert_eq!(back.into_result(), Err(e));
        }
    }
}
