//! The run event stream: every state change of a run, in order. The studio, the `graflow run`
//! printer and the distributed event stream all consume these. Serialized, an event is one JSON
//! object with `event`, `run_id`, `ts` (RFC 3339) and the fields of its kind (DESIGN §5).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// A child process's standard output.
    Stdout,
    /// A child process's standard error.
    Stderr,
    /// A line the task logged through its context.
    Log,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every scheduled task finished, or a task called `terminate_workflow`.
    Succeeded,
    /// A task or group failed, or a limit was reached.
    Failed,
    /// `cancel_workflow` was called, or the host cancelled the run.
    Cancelled,
    /// The run waits for human feedback; a checkpoint holds its state.
    Paused,
}

impl RunStatus {
    /// The process exit code DESIGN §5 assigns to this status.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Succeeded => 0,
            RunStatus::Failed => 1,
            RunStatus::Paused => 3,
            RunStatus::Cancelled => 4,
        }
    }
}

/// What happened. Field names are part of the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The run began.
    RunStarted {
        /// Workflow name.
        workflow: String,
        /// The start node.
        start: Arc<str>,
        /// The checkpoint this run resumed from, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed_from: Option<String>,
    },
    /// A task execution began.
    TaskStarted {
        /// Task id.
        task: Arc<str>,
        /// 1-based execution count of this task.
        cycle: u32,
        /// 0-based retry attempt.
        attempt: u32,
    },
    /// A task execution is ready but waits before it starts: for free slots of its pool
    /// (`reason: "pool_slots"`) or for a rate limit (`reason: "rate_limit"`). Its
    /// `task_started` follows once it may go; the wait does not count against its timeout.
    TaskWaiting {
        /// Task id.
        task: Arc<str>,
        /// 1-based execution count of this task.
        cycle: u32,
        /// 0-based retry attempt.
        attempt: u32,
        /// `pool_slots` or `rate_limit`.
        reason: String,
        /// The pool concerned, when a pool is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<Arc<str>>,
        /// Which limit, in words.
        #[serde(default)]
        detail: String,
    },
    /// A line of task output.
    TaskLog {
        /// Task id.
        task: Arc<str>,
        /// Where the line came from.
        stream: LogStream,
        /// The line, without its newline.
        line: String,
        /// The worker that did the work, when a fleet worker did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<Arc<str>>,
    },
    /// A task execution succeeded.
    TaskSucceeded {
        /// Task id.
        task: Arc<str>,
        /// Its result.
        result: Value,
        /// Wall time of the execution.
        duration_ms: f64,
        /// 1-based execution count.
        cycle: u32,
        /// The worker that did the work, when a fleet worker did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<Arc<str>>,
    },
    /// A task execution failed.
    TaskFailed {
        /// Task id.
        task: Arc<str>,
        /// The error message.
        error: String,
        /// 0-based attempt that failed.
        attempt: u32,
        /// Whether another attempt follows.
        will_retry: bool,
        /// The worker that did the work, when a fleet worker did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<Arc<str>>,
    },
    /// A parallel group began; its members start now.
    GroupStarted {
        /// Group id.
        group: Arc<str>,
        /// Member ids.
        members: Vec<Arc<str>>,
    },
    /// A parallel group's members all ended and its policy was applied.
    GroupFinished {
        /// Group id.
        group: Arc<str>,
        /// Policy name.
        policy: String,
        /// Members that succeeded, in completion order.
        succeeded: Vec<String>,
        /// Members that failed, with their messages.
        failed: Vec<(String, String)>,
        /// Whether the policy accepted the outcome.
        ok: bool,
    },
    /// Tasks were added to the graph at run time.
    GraphChanged {
        /// The new task ids.
        added: Vec<Arc<str>>,
        /// The task that added them.
        by: Arc<str>,
    },
    /// A checkpoint was written.
    CheckpointSaved {
        /// Path of its `.ckpt` file.
        path: String,
        /// Its size in bytes.
        #[serde(default)]
        size_bytes: u64,
        /// Its payload's JSON length when it is stored compressed (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_bytes: Option<u64>,
    },
    /// A task asked a human for feedback.
    FeedbackRequested {
        /// Request id.
        id: String,
        /// Task id.
        task: Arc<str>,
        /// approval, text, selection, multi_selection or custom.
        kind: String,
        /// The question.
        prompt: String,
    },
    /// A feedback request was answered.
    FeedbackAnswered {
        /// Request id.
        id: String,
    },
    /// Events a slow event stream (the run's Redis stream) had to leave out: only readers of
    /// that stream see this, in place of the `count` events it lost.
    EventsDropped {
        /// How many events were left out since the previous such event.
        count: u64,
    },
    /// An event of a sub-run (the run of a `Workflow` task), forwarded into its parent's
    /// stream. Its JSON is the inner event's, under the parent's `run_id`, with one more field
    /// after `ts`: `sub_run`, the ids of the `Workflow` tasks from the top run down to the
    /// sub-run (`["outer"]`, or `["outer", "inner"]` two levels down). Events of the top run
    /// have no `sub_run`.
    #[serde(skip)]
    Nested {
        /// The `Workflow` task ids from the top run down to the sub-run (never empty).
        path: Vec<Arc<str>>,
        /// The sub-run's event (never itself `Nested`).
        event: Box<EventKind>,
    },
    /// The run ended; always the last event.
    RunFinished {
        /// How it ended.
        status: RunStatus,
        /// The error message, when it failed or was cancelled.
        error: Option<String>,
        /// The last finished task's result.
        result: Option<Value>,
        /// Each task's last result.
        results: BTreeMap<String, Value>,
        /// The channel's final content.
        channel: BTreeMap<String, Value>,
        /// The checkpoint to resume, when the run paused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkpoint: Option<String>,
    },
}

/// One event of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// The run.
    pub run_id: Arc<str>,
    /// When it happened.
    pub ts: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

impl EventKind {
    /// This kind forwarded from the sub-run of task `task`: `Nested` with `task` in front of
    /// the path (a kind that is already nested gains one level).
    pub fn nested_in(self, task: Arc<str>) -> EventKind {
        match self {
            EventKind::Nested { mut path, event } => {
                path.insert(0, task);
                EventKind::Nested { path, event }
            }
            other => EventKind::Nested {
                path: vec![task],
                event: Box::new(other),
            },
        }
    }

    /// The sub-run path and the event itself: an empty path for an event of the top run.
    pub fn unnested(&self) -> (&[Arc<str>], &EventKind) {
        match self {
            EventKind::Nested { path, event } => (path, event),
            other => (&[], other),
        }
    }

    /// The event's name as in the JSON contract, e.g. `task_started` (a nested event's is its
    /// inner event's).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Nested { event, .. } => event.name(),
            EventKind::RunStarted { .. } => "run_started",
            EventKind::TaskStarted { .. } => "task_started",
            EventKind::TaskWaiting { .. } => "task_waiting",
            EventKind::TaskLog { .. } => "task_log",
            EventKind::TaskSucceeded { .. } => "task_succeeded",
            EventKind::TaskFailed { .. } => "task_failed",
            EventKind::GroupStarted { .. } => "group_started",
            EventKind::GroupFinished { .. } => "group_finished",
            EventKind::GraphChanged { .. } => "graph_changed",
            EventKind::CheckpointSaved { .. } => "checkpoint_saved",
            EventKind::FeedbackRequested { .. } => "feedback_requested",
            EventKind::FeedbackAnswered { .. } => "feedback_answered",
            EventKind::EventsDropped { .. } => "events_dropped",
            EventKind::RunFinished { .. } => "run_finished",
        }
    }
}

/// Whether the JSON form of an event (a line of `graflow run --json`, parsed) is the run's own
/// `run_finished`: the last event of its stream. A sub-run's `run_finished`, forwarded with a
/// `sub_run` path, is not.
pub fn ends_its_run(event: &Value) -> bool {
    event.get("event").and_then(Value::as_str) == Some("run_finished")
        && event.get("sub_run").is_none()
}

impl RunEvent {
    /// The event's name as in the JSON contract, e.g. `task_started`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Read an event back from its JSON form (one line of `graflow run --json`, or an entry of
    /// a run's Redis stream).
    pub fn from_json(text: &str) -> Result<RunEvent, EventDecodeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EventDecodeError::NotJson(e.to_string()))?;
        RunEvent::from_value(value)
    }

    /// Read an event back from its JSON value: `run_id` and `ts` (RFC 3339) beside the kind's
    /// fields, as [`RunEvent`]'s `Serialize` writes them.
    pub fn from_value(value: Value) -> Result<RunEvent, EventDecodeError> {
        let field = |name: &'static str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .ok_or(EventDecodeError::MissingField(name))
        };
        let run_id: Arc<str> = Arc::from(field("run_id")?);
        let ts = humantime::parse_rfc3339_weak(field("ts")?)
            .map_err(|e| EventDecodeError::BadTime(e.to_string()))?;
        let mut value = value;
        let path = match value
            .as_object_mut()
            .and_then(|o| o.shift_remove("sub_run"))
        {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(Arc::from(s)),
                    _ => Err(EventDecodeError::NotAnEvent(
                        "`sub_run` holds something other than task ids".into(),
                    )),
                })
                .collect::<Result<Vec<Arc<str>>, _>>()?,
            Some(_) => {
                return Err(EventDecodeError::NotAnEvent(
                    "`sub_run` is not a list of task ids".into(),
                ));
            }
        };
        let kind: EventKind = serde_json::from_value(value)
            .map_err(|e| EventDecodeError::NotAnEvent(e.to_string()))?;
        let kind = match path.is_empty() {
            true => kind,
            false => EventKind::Nested {
                path,
                event: Box::new(kind),
            },
        };
        Ok(RunEvent { run_id, ts, kind })
    }

    /// The event as one line of JSON (no trailing newline): the same text as serializing the
    /// event, made in one pass (the kind's JSON with `run_id` and `ts` spliced in after its
    /// `event` name).
    pub fn to_json_line(&self) -> String {
        let fail =
            |e: serde_json::Error| format!(r#"{{"event":"serialization_error","error":"{e}"}}"#);
        let (path, inner) = self.kind.unnested();
        let kind = match serde_json::to_string(inner) {
            Ok(kind) => kind,
            Err(e) => return fail(e),
        };
        // `{"event":"<name>"` opens the kind's JSON (the tag comes first); names need no escape.
        let opening = format!(r#"{{"event":"{}""#, self.name());
        let Some(rest) = kind.strip_prefix(&opening) else {
            return serde_json::to_string(self).unwrap_or_else(fail);
        };
        let mut line = String::with_capacity(kind.len() + self.run_id.len() + 64);
        line.push_str(&opening);
        line.push_str(",\"run_id\":");
        crate::checkpoint::json::push_json_str(&mut line, &self.run_id);
        line.push_str(",\"ts\":\"");
        line.push_str(&humantime::format_rfc3339_micros(self.ts).to_string());
        line.push('"');
        if !path.is_empty() {
            line.push_str(",\"sub_run\":[");
            for (i, task) in path.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                crate::checkpoint::json::push_json_str(&mut line, task);
            }
            line.push(']');
        }
        line.push_str(rest);
        line
    }
}

impl Serialize for RunEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (path, inner) = self.kind.unnested();
        let fields = serde_json::to_value(inner).map_err(serde::ser::Error::custom)?;
        let Value::Object(fields) = fields else {
            return Err(serde::ser::Error::custom("event kind is not an object"));
        };
        let mut map = serializer.serialize_map(Some(fields.len() + 3))?;
        if let Some(name) = fields.get("event") {
            map.serialize_entry("event", name)?;
        }
        map.serialize_entry("run_id", &self.run_id)?;
        map.serialize_entry("ts", &humantime::format_rfc3339_micros(self.ts).to_string())?;
        if !path.is_empty() {
            map.serialize_entry("sub_run", path)?;
        }
        for (k, v) in &fields {
            if k != "event" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The JSON form back into an event (see [`RunEvent::from_value`]): events round-trip.
impl<'de> Deserialize<'de> for RunEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        RunEvent::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// A text or value that is not a [`RunEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// The text is not JSON.
    #[error("an event is not JSON: {0}")]
    NotJson(String),
    /// `run_id` or `ts` is missing or not text.
    #[error("an event has no `{0}` text")]
    MissingField(&'static str),
    /// `ts` is not an RFC 3339 time.
    #[error("an event's `ts`: {0}")]
    BadTime(String),
    /// The fields do not form one of the events of the contract.
    #[error("an event does not fit the contract: {0}")]
    NotAnEvent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_carries_event_run_id_and_ts_first() {
        let e = RunEvent {
            run_id: "r1".into(),
            ts: SystemTime::UNIX_EPOCH,
            kind: EventKind::TaskStarted {
                task: "a".into(),
                cycle: 1,
                attempt: 0,
            },
        };
        assert_eq!(
            e.to_json_line(),
            r#"{"event":"task_started","run_id":"r1","ts":"1970-01-01T00:00:00.000000Z","task":"a","cycle":1,"attempt":0}"#
        );
        assert_eq!(e.name(), "task_started");
    }

    #[test]
    fn json_line_is_the_serialized_event() {
        let kinds = vec![
            EventKind::TaskStarted {
                task: "a\"b".into(),
                cycle: 1,
                attempt: 2,
            },
            EventKind::TaskSucceeded {
                task: "t".into(),
                result: serde_json::json!({"x": [1, "y\n"], "z": null}),
                duration_ms: 1.25,
                cycle: 3,
                worker: Some("w \"2\"".into()),
            },
            EventKind::GroupStarted {
                group: "g".into(),
                members: vec!["a".into(), "b".into()],
            },
        ];
        for kind in kinds {
            let e = RunEvent {
                run_id: "run \"1\" \u{1}".into(),
                ts: SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_234_567),
                kind,
            };
            assert_eq!(
                e.to_json_line(),
                serde_json::to_string(&e).expect("serializes")
            );
        }
    }

    /// One event of every kind, with text that needs escaping.
    fn every_kind() -> Vec<EventKind> {
        let t: Arc<str> = "t \"1\" ☃".into();
        vec![
            EventKind::RunStarted {
                workflow: "w".into(),
                start: t.clone(),
                resumed_from: Some("c.ckpt".into()),
            },
            EventKind::TaskStarted {
                task: t.clone(),
                cycle: 1,
                attempt: 2,
            },
            EventKind::TaskWaiting {
                task: t.clone(),
                cycle: 1,
                attempt: 0,
                reason: "pool_slots".into(),
                pool: Some("api".into()),
                detail: "2 of 4 slots".into(),
            },
            EventKind::TaskLog {
                task: t.clone(),
                stream: LogStream::Stderr,
                line: "a\tb\u{1}".into(),
                worker: Some("w-1".into()),
            },
            EventKind::TaskSucceeded {
                task: t.clone(),
                result: serde_json::json!({"x": [1, 2.5, null]}),
                duration_ms: 1.5,
                cycle: 1,
                worker: None,
            },
            EventKind::TaskFailed {
                task: t.clone(),
                error: "boom\nline 2".into(),
                attempt: 1,
                will_retry: true,
                worker: Some("w-2".into()),
            },
            EventKind::GroupStarted {
                group: "g".into(),
                members: vec![t.clone(), "b".into()],
            },
            EventKind::GroupFinished {
                group: "g".into(),
                policy: "best_effort".into(),
                succeeded: vec!["b".into()],
                failed: vec![("a".into(), "no".into())],
                ok: true,
            },
            EventKind::GraphChanged {
                added: vec!["d".into()],
                by: t.clone(),
            },
            EventKind::CheckpointSaved {
                path: "/x/y.ckpt".into(),
                size_bytes: 42,
                content_bytes: Some(4200),
            },
            EventKind::FeedbackRequested {
                id: "r.t.1-0-1".into(),
                task: t.clone(),
                kind: "approval".into(),
                prompt: "Ship?".into(),
            },
            EventKind::FeedbackAnswered {
                id: "r.t.1-0-1".into(),
            },
            EventKind::EventsDropped { count: 7 },
            EventKind::RunFinished {
                status: RunStatus::Failed,
                error: Some("e".into()),
                result: None,
                results: [("a".to_string(), serde_json::json!(1))].into(),
                channel: [("k".to_string(), serde_json::json!({"v": "é"}))].into(),
                checkpoint: None,
            },
        ]
    }

    #[test]
    fn every_kind_of_event_round_trips_through_json() {
        for kind in every_kind() {
            let e = RunEvent {
                run_id: "r1".into(),
                ts: SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_234_567),
                kind,
            };
            let line = e.to_json_line();
            let back: RunEvent =
                serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
            assert_eq!(back, e, "{line}");
            assert_eq!(serde_json::to_string(&back).ok(), Some(line));
        }
    }

    #[test]
    fn an_event_reads_back_from_its_json_line() {
        let e = RunEvent {
            run_id: "r1".into(),
            ts: SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_500_000),
            kind: EventKind::TaskSucceeded {
                task: "a".into(),
                result: serde_json::json!({"n": 1}),
                duration_ms: 2.5,
                cycle: 1,
                worker: Some("w-1".into()),
            },
        };
        let line = e.to_json_line();
        assert!(line.contains(r#""worker":"w-1""#), "{line}");
        assert_eq!(RunEvent::from_json(&line), Ok(e));
        assert!(RunEvent::from_json("{}").is_err());
        assert!(RunEvent::from_json("not json").is_err());
    }

    #[test]
    fn nested_events_carry_their_sub_run_and_round_trip() {
        let inner = EventKind::CheckpointSaved {
            path: "/x/y.ckpt".into(),
            size_bytes: 1,
            content_bytes: None,
        };
        let one = inner.clone().nested_in("sub \"1\"".into());
        let two = one.clone().nested_in("outer".into());
        assert_eq!(
            two.unnested(),
            (&["outer".into(), "sub \"1\"".into()][..], &inner)
        );
        let e = RunEvent {
            run_id: "r1".into(),
            ts: SystemTime::UNIX_EPOCH,
            kind: two,
        };
        assert_eq!(e.name(), "checkpoint_saved");
        let line = e.to_json_line();
        assert_eq!(
            line,
            r#"{"event":"checkpoint_saved","run_id":"r1","ts":"1970-01-01T00:00:00.000000Z","sub_run":["outer","sub \"1\""],"path":"/x/y.ckpt","size_bytes":1}"#
        );
        assert_eq!(serde_json::to_string(&e).ok(), Some(line.clone()));
        assert_eq!(RunEvent::from_json(&line), Ok(e));
        for kind in every_kind() {
            let e = RunEvent {
                run_id: "r1".into(),
                ts: SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(7),
                kind: kind.nested_in("t".into()),
            };
            let line = e.to_json_line();
            assert!(line.contains(r#","sub_run":["t"],"#), "{line}");
            assert_eq!(serde_json::to_string(&e).ok(), Some(line.clone()));
            assert_eq!(RunEvent::from_json(&line), Ok(e), "{line}");
        }
    }

    #[test]
    fn top_level_events_have_no_sub_run() {
        for kind in every_kind() {
            let e = RunEvent {
                run_id: "r1".into(),
                ts: SystemTime::UNIX_EPOCH,
                kind,
            };
            assert!(!e.to_json_line().contains("sub_run"));
        }
        let bad = r#"{"event":"feedback_answered","run_id":"r","ts":"1970-01-01T00:00:00Z","id":"x","sub_run":[1]}"#;
        assert!(RunEvent::from_json(bad).is_err());
        let empty = r#"{"event":"feedback_answered","run_id":"r","ts":"1970-01-01T00:00:00Z","id":"x","sub_run":[]}"#;
        assert!(matches!(
            RunEvent::from_json(empty).map(|e| e.kind),
            Ok(EventKind::FeedbackAnswered { .. })
        ));
    }
}
