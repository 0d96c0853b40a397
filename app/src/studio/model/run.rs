//! One run as the studio sees it: the engine's events folded into task states, attempts,
//! logs, the event log and the channel. The same fold serves live runs and recorded ones.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use graflow_engine::{EventKind, LogStream, RunEvent, RunStatus, Value};

use super::logbuf::LogBuffer;

/// Attempts kept per task (the oldest go first).
pub const MAX_ATTEMPTS: usize = 200;
/// Lines kept in the event log.
pub const MAX_EVENTS: usize = 5_000;

/// The state of a task in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Not started.
    Pending,
    /// Ready, waiting for free slots of its pool or for a rate limit.
    Waiting,
    /// Running now.
    Running,
    /// Its last execution succeeded.
    Succeeded,
    /// Its last attempt failed for good.
    Failed,
    /// An attempt failed; another follows.
    Retrying,
    /// Stopped by a cancellation.
    Cancelled,
    /// The run ended without running it.
    Skipped,
}

impl TaskStatus {
    /// The glyph shown for this status.
    pub fn glyph(self) -> &'static str {
        match self {
            TaskStatus::Pending => "○",
            TaskStatus::Waiting => "◷",
            TaskStatus::Running => "●",
            TaskStatus::Succeeded => "✓",
            TaskStatus::Failed => "✗",
            TaskStatus::Retrying => "↻",
            TaskStatus::Cancelled => "⊘",
            TaskStatus::Skipped => "–",
        }
    }

    /// A word for this status.
    pub fn word(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Waiting => "waiting",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Skipped => "skipped",
        }
    }
}

/// One execution attempt of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based execution count.
    pub cycle: u32,
    /// 0-based retry attempt.
    pub attempt: u32,
    /// When it started.
    pub start: SystemTime,
    /// When it ended (None while running).
    pub end: Option<SystemTime>,
    /// None while running; Ok or the error message.
    pub outcome: Option<Result<(), String>>,
}

/// A task's state in a run.
#[derive(Debug, Clone, Default)]
pub struct TaskRun {
    /// Its status.
    pub status: Option<TaskStatus>,
    /// Executions so far (1-based count of the latest).
    pub cycle: u32,
    /// Retry attempt of the latest execution.
    pub attempt: u32,
    /// Duration of the last successful execution.
    pub last_ms: Option<f64>,
    /// Total time of successful executions.
    pub total_ms: f64,
    /// The newest attempts.
    pub attempts: VecDeque<Attempt>,
    /// Attempts dropped from the front.
    pub attempts_dropped: u64,
    /// Error messages of failed attempts (newest last, at most 50).
    pub errors: VecDeque<(u32, String)>,
    /// The last result.
    pub result: Option<Value>,
    /// While it waits: why (`pool_slots` or `rate_limit`), the pool concerned, and the detail.
    pub waiting: Option<Waiting>,
    /// Its log.
    pub log: LogBuffer,
}

impl TaskRun {
    /// Its status (pending when it never started).
    pub fn status(&self) -> TaskStatus {
        self.status.unwrap_or(TaskStatus::Pending)
    }

    /// When the running attempt started.
    pub fn running_since(&self) -> Option<SystemTime> {
        self.attempts
            .back()
            .filter(|a| a.end.is_none())
            .map(|a| a.start)
    }
}

/// Why a task waits before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// `pool_slots` or `rate_limit`.
    pub reason: String,
    /// The pool concerned, if a pool is.
    pub pool: Option<Arc<str>>,
    /// Which limit, in words.
    pub detail: String,
    /// Since when.
    pub since: SystemTime,
}

/// A parallel group's state in a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRun {
    /// Whether it started.
    pub started: bool,
    /// Policy verdict, once finished.
    pub ok: Option<bool>,
    /// Members that failed, with their messages.
    pub failed: Vec<(String, String)>,
}

/// Whether a run is going on or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Asked for, no event yet.
    Starting,
    /// Running.
    Running,
    /// Ended.
    Finished(RunStatus),
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    /// When.
    pub ts: SystemTime,
    /// The event's name (`task_started`, …).
    pub name: &'static str,
    /// A one-line summary.
    pub text: String,
    /// Whether it reports a failure.
    pub is_error: bool,
}

/// A run: its tasks, groups, events and channel.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run's id.
    pub run_id: String,
    /// Going on or ended.
    pub phase: RunPhase,
    /// When it was asked for / started.
    pub started: SystemTime,
    /// When it ended.
    pub finished: Option<SystemTime>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The last finished task's result.
    pub result: Option<Value>,
    /// Per task.
    pub tasks: HashMap<Arc<str>, TaskRun>,
    /// Per group.
    pub groups: HashMap<Arc<str>, GroupRun>,
    /// Tasks added at run time: (new task, the task that added it).
    pub added: Vec<(Arc<str>, Arc<str>)>,
    /// The event log (without `task_log` lines, which go to the tasks).
    pub events: VecDeque<EventLine>,
    /// Events dropped from the log's front.
    pub events_dropped: u64,
    /// Log lines received.
    pub log_lines: u64,
    /// The channel's content: the latest snapshot, the final one at the end.
    pub channel: BTreeMap<String, Value>,
    /// The task whose failure ended the run, if any.
    pub failed_task: Option<Arc<str>>,
    /// The checkpoint to resume from, when the run paused for feedback.
    pub checkpoint: Option<String>,
    /// Feedback requests not answered yet: (request id, task, kind, prompt).
    pub pending_feedback: Vec<(String, Arc<str>, String, String)>,
    /// The sub-runs of `Workflow` tasks, by task id: the latest of each, live.
    pub sub_runs: HashMap<Arc<str>, SubRunView>,
}

/// A sub-run (of a `Workflow` task), as its nested events tell it: its tasks' statuses in the
/// order they started (a task of a deeper sub-run is named `inner › task`) and how it ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubRunView {
    /// The sub-workflow's name.
    pub workflow: String,
    /// Its tasks, in the order they started, with their latest status.
    pub tasks: Vec<(String, TaskStatus)>,
    /// How it ended, once it has.
    pub status: Option<RunStatus>,
}

impl SubRunView {
    fn set(&mut self, task: String, status: TaskStatus) {
        match self.tasks.iter_mut().find(|(t, _)| *t == task) {
            Some(entry) => entry.1 = status,
            None => self.tasks.push((task, status)),
        }
    }

    /// Fold one event of this sub-run (at `depth` 0) or of a sub-run inside it.
    fn apply(&mut self, inner_path: &[Arc<str>], kind: &EventKind) {
        let name = |task: &str| {
            inner_path
                .iter()
                .map(|p| &**p)
                .chain([task])
                .collect::<Vec<_>>()
                .join(" › ")
        };
        match kind {
            EventKind::RunStarted { workflow, .. } if inner_path.is_empty() => {
                *self = SubRunView {
                    workflow: workflow.clone(),
                    ..SubRunView::default()
                };
            }
            EventKind::RunFinished { status, .. } if inner_path.is_empty() => {
                self.status = Some(*status);
                let end = match status {
                    RunStatus::Cancelled | RunStatus::Paused => TaskStatus::Cancelled,
                    _ => TaskStatus::Failed,
                };
                for (_, s) in &mut self.tasks {
                    if matches!(s, TaskStatus::Running | TaskStatus::Retrying) {
                        *s = end;
                    }
                }
            }
            EventKind::TaskWaiting { task, .. } => self.set(name(task), TaskStatus::Waiting),
            EventKind::TaskStarted { task, .. } => self.set(name(task), TaskStatus::Running),
            EventKind::TaskSucceeded { task, .. } => self.set(name(task), TaskStatus::Succeeded),
            EventKind::TaskFailed {
                task, will_retry, ..
            } => {
                let status = match will_retry {
                    true => TaskStatus::Retrying,
                    false => TaskStatus::Failed,
                };
                self.set(name(task), status)
            }
            _ => {}
        }
    }
}

/// What applying an event changed, beyond the run's own state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Tasks added to the graph.
    pub added: Vec<(Arc<str>, Arc<str>)>,
    /// The run ended.
    pub finished: bool,
}

impl RunView {
    /// A run asked for at `started`.
    pub fn new(run_id: impl Into<String>, started: SystemTime) -> Self {
        RunView {
            run_id: run_id.into(),
            phase: RunPhase::Starting,
            started,
            finished: None,
            error: None,
            result: None,
            tasks: HashMap::new(),
            groups: HashMap::new(),
            added: Vec::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            log_lines: 0,
            channel: BTreeMap::new(),
            failed_task: None,
            checkpoint: None,
            pending_feedback: Vec::new(),
            sub_runs: HashMap::new(),
        }
    }

    /// Whether the run is still going.
    pub fn is_active(&self) -> bool {
        !matches!(self.phase, RunPhase::Finished(_))
    }

    /// A task's state, if it has one.
    pub fn task(&self, id: &str) -> Option<&TaskRun> {
        self.tasks.get(id)
    }

    /// A task's status (pending when unknown).
    pub fn status_of(&self, id: &str) -> TaskStatus {
        self.tasks
            .get(id)
            .map_or(TaskStatus::Pending, TaskRun::status)
    }

    fn task_mut(&mut self, id: &Arc<str>) -> &mut TaskRun {
        self.tasks.entry(id.clone()).or_default()
    }

    fn log_event(&mut self, ts: SystemTime, name: &'static str, text: String, is_error: bool) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(EventLine {
            ts,
            name,
            text,
            is_error,
        });
    }

    /// Fold one event into the run.
    pub fn apply(&mut self, event: &RunEvent) -> Applied {
        let ts = event.ts;
        let mut applied = Applied::default();
        match &event.kind {
            EventKind::RunStarted {
                workflow,
                start,
                resumed_from,
            } => {
                self.phase = RunPhase::Running;
                self.started = ts;
                let text = match resumed_from {
                    Some(ckpt) => format!("{workflow} resumed from {ckpt}"),
                    None => format!("{workflow} from {start}"),
                };
                self.log_event(ts, "run_started", text, false);
            }
            EventKind::TaskStarted {
                task,
                cycle,
                attempt,
            } => {
                if self.phase == RunPhase::Starting {
                    self.phase = RunPhase::Running;
                }
                let t = self.task_mut(task);
                t.status = Some(TaskStatus::Running);
                t.waiting = None;
                t.cycle = *cycle;
                t.attempt = *attempt;
                if t.attempts.len() == MAX_ATTEMPTS {
                    t.attempts.pop_front();
                    t.attempts_dropped += 1;
                }
                t.attempts.push_back(Attempt {
                    cycle: *cycle,
                    attempt: *attempt,
                    start: ts,
                    end: None,
                    outcome: None,
                });
                let text = format!("{task} cycle {cycle} attempt {attempt}");
                self.log_event(ts, "task_started", text, false);
            }
            EventKind::TaskWaiting {
                task,
                cycle,
                attempt,
                reason,
                pool,
                detail,
            } => {
                if self.phase == RunPhase::Starting {
                    self.phase = RunPhase::Running;
                }
                let t = self.task_mut(task);
                t.status = Some(TaskStatus::Waiting);
                t.cycle = *cycle;
                t.attempt = *attempt;
                let since = t.waiting.as_ref().map_or(ts, |w| w.since);
                t.waiting = Some(Waiting {
                    reason: reason.clone(),
                    pool: pool.clone(),
                    detail: detail.clone(),
                    since,
                });
                self.log_event(ts, "task_waiting", format!("{task}: {detail}"), false);
            }
            EventKind::TaskLog {
                task, stream, line, ..
            } => {
                self.log_lines += 1;
                self.task_mut(task).log.push(*stream, line);
            }
            EventKind::TaskSucceeded {
                task,
                result,
                duration_ms,
                cycle,
                ..
            } => {
                let t = self.task_mut(task);
                t.status = Some(TaskStatus::Succeeded);
                t.cycle = (*cycle).max(t.cycle);
                t.last_ms = Some(*duration_ms);
                t.total_ms += duration_ms;
                t.result = Some(result.clone());
                if let Some(a) = t.attempts.back_mut().filter(|a| a.end.is_none()) {
                    a.end = Some(ts);
                    a.outcome = Some(Ok(()));
                }
                let text = format!("{task} in {}", crate::text::duration_ms(*duration_ms));
                self.log_event(ts, "task_succeeded", text, false);
            }
            EventKind::TaskFailed {
                task,
                error,
                attempt,
                will_retry,
                ..
            } => {
                let t = self.task_mut(task);
                t.status = Some(if *will_retry {
                    TaskStatus::Retrying
                } else {
                    TaskStatus::Failed
                });
                t.attempt = *attempt;
                if t.errors.len() == 50 {
                    t.errors.pop_front();
                }
                t.errors.push_back((*attempt, error.clone()));
                if let Some(a) = t.attempts.back_mut().filter(|a| a.end.is_none()) {
                    a.end = Some(ts);
                    a.outcome = Some(Err(error.clone()));
                }
                if !will_retry {
                    self.failed_task = Some(task.clone());
                }
                let retry = if *will_retry { " (will retry)" } else { "" };
                let text = format!("{task} attempt {attempt}: {}{retry}", first_line(error));
                self.log_event(ts, "task_failed", text, !will_retry);
            }
            EventKind::GroupStarted { group, members } => {
                self.groups.entry(group.clone()).or_default().started = true;
                let names: Vec<&str> = members.iter().map(|m| &**m).collect();
                let text = format!("{group}: {}", names.join(" | "));
                self.log_event(ts, "group_started", text, false);
            }
            EventKind::GroupFinished {
                group,
                policy,
                succeeded,
                failed,
                ok,
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                g.ok = Some(*ok);
                g.failed = failed.clone();
                let text = format!(
                    "{group} ({}): {} succeeded, {} failed{}",
                    graflow_engine::group::label_of_name(policy),
                    succeeded.len(),
                    failed.len(),
                    if *ok { "" } else { " — policy not met" }
                );
                self.log_event(ts, "group_finished", text, !ok);
            }
            EventKind::GraphChanged { added, by } => {
                for a in added {
                    self.added.push((a.clone(), by.clone()));
                    applied.added.push((a.clone(), by.clone()));
                }
                let names: Vec<&str> = added.iter().map(|a| &**a).collect();
                self.log_event(
                    ts,
                    "graph_changed",
                    format!("{by} added {}", names.join(", ")),
                    false,
                );
            }
            EventKind::CheckpointSaved { path, .. } => {
                self.log_event(ts, "checkpoint_saved", path.clone(), false);
            }
            EventKind::FeedbackRequested {
                id,
                task,
                kind,
                prompt,
            } => {
                self.pending_feedback.push((
                    id.clone(),
                    task.clone(),
                    kind.clone(),
                    prompt.clone(),
                ));
                self.log_event(
                    ts,
                    "feedback_requested",
                    format!("{task} asks ({kind}, {id}): {prompt}"),
                    false,
                );
            }
            EventKind::FeedbackAnswered { id } => {
                self.pending_feedback.retain(|p| p.0 != *id);
                self.log_event(ts, "feedback_answered", id.clone(), false);
            }
            EventKind::Nested { path, event: inner } => {
                if let Some((task, rest)) = path.split_first() {
                    self.sub_runs
                        .entry(task.clone())
                        .or_default()
                        .apply(rest, inner);
                }
                // A sub-run's event: its questions can be answered here; the rest is logged.
                match inner.as_ref() {
                    EventKind::FeedbackRequested {
                        id,
                        task,
                        kind,
                        prompt,
                    } => self.pending_feedback.push((
                        id.clone(),
                        task.clone(),
                        kind.clone(),
                        prompt.clone(),
                    )),
                    EventKind::FeedbackAnswered { id } => {
                        self.pending_feedback.retain(|p| p.0 != *id)
                    }
                    _ => {}
                }
                let (text, is_error) = nested_summary(inner);
                let at = path.iter().map(|p| &**p).collect::<Vec<_>>().join(" › ");
                self.log_event(ts, inner.name(), format!("[{at}] {text}"), is_error);
            }
            EventKind::EventsDropped { count } => {
                let text = match count {
                    1 => "1 event was dropped by a slow event stream".to_string(),
                    n => format!("{n} events were dropped by a slow event stream"),
                };
                self.log_event(ts, "events_dropped", text, true);
            }
            EventKind::RunFinished {
                status,
                error,
                result,
                results,
                channel,
                checkpoint,
            } => {
                self.phase = RunPhase::Finished(*status);
                self.checkpoint = checkpoint.clone();
                self.finished = Some(ts);
                self.error = error.clone();
                self.result = result.clone();
                self.channel = channel.clone();
                let end_state = match status {
                    RunStatus::Cancelled => TaskStatus::Cancelled,
                    _ => TaskStatus::Failed,
                };
                for (id, value) in results {
                    if let Some(t) = self.tasks.get_mut(id.as_str()) {
                        t.result.get_or_insert_with(|| value.clone());
                    }
                }
                for t in self.tasks.values_mut() {
                    if matches!(
                        t.status,
                        Some(TaskStatus::Running) | Some(TaskStatus::Retrying)
                    ) {
                        t.status = Some(end_state);
                        if let Some(a) = t.attempts.back_mut().filter(|a| a.end.is_none()) {
                            a.end = Some(ts);
                            a.outcome = Some(Err(format!("run {}", status_word(*status))));
                        }
                    }
                }
                let mut text = status_word(*status).to_string();
                if let Some(c) = checkpoint {
                    text.push_str(&format!(" (resume from {c})"));
                }
                if let Some(e) = error {
                    text.push_str(": ");
                    text.push_str(first_line(e));
                }
                self.log_event(ts, "run_finished", text, *status != RunStatus::Succeeded);
                applied.finished = true;
            }
        }
        applied
    }

    /// Start a resumed run from what its checkpoint had done: each finished task or group with
    /// its result and execution count (`is_group` tells groups from tasks).
    pub fn seed(&mut self, done: &[(String, Value, u32)], is_group: impl Fn(&str) -> bool) {
        for (id, result, cycle) in done {
            let id: Arc<str> = Arc::from(id.as_str());
            if is_group(&id) {
                let g = self.groups.entry(id).or_default();
                g.started = true;
                g.ok = Some(true);
            } else {
                let t = self.task_mut(&id);
                t.status = Some(TaskStatus::Succeeded);
                t.cycle = *cycle;
                t.result = Some(result.clone());
            }
        }
    }

    /// How long the run has taken (until `now` while it runs).
    pub fn elapsed(&self, now: SystemTime) -> f64 {
        let end = self.finished.unwrap_or(now);
        end.duration_since(self.started)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Counts of tasks per status among `ids`.
    pub fn counts<'a>(&self, ids: impl Iterator<Item = &'a str>) -> StatusCounts {
        let mut c = StatusCounts::default();
        for id in ids {
            c.add(self.status_of(id));
        }
        c
    }
}

/// How many tasks are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Succeeded.
    pub succeeded: usize,
    /// Failed or cancelled.
    pub failed: usize,
    /// Running or waiting to retry.
    pub running: usize,
    /// Waiting for a pool's slots or a rate limit.
    pub waiting: usize,
    /// Not started.
    pub pending: usize,
}

impl StatusCounts {
    /// Count one more task.
    pub fn add(&mut self, s: TaskStatus) {
        match s {
            TaskStatus::Succeeded => self.succeeded += 1,
            TaskStatus::Failed | TaskStatus::Cancelled => self.failed += 1,
            TaskStatus::Running | TaskStatus::Retrying => self.running += 1,
            TaskStatus::Waiting => self.waiting += 1,
            TaskStatus::Pending | TaskStatus::Skipped => self.pending += 1,
        }
    }

    /// `✓3 ✗1 ●2 ◷5 ○4`, leaving out zeros.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (n, g) in [
            (self.succeeded, "✓"),
            (self.failed, "✗"),
            (self.running, "●"),
            (self.waiting, "◷"),
            (self.pending, "○"),
        ] {
            if n > 0 {
                parts.push(format!("{g}{n}"));
            }
        }
        parts.join(" ")
    }
}

/// One line about an event of a sub-run, and whether it reports a failure.
fn nested_summary(kind: &EventKind) -> (String, bool) {
    match kind {
        EventKind::RunStarted { workflow, .. } => (format!("{workflow} started"), false),
        EventKind::TaskStarted { task, cycle, .. } => {
            (format!("{task} started (cycle {cycle})"), false)
        }
        EventKind::TaskSucceeded { task, .. } => (format!("{task} succeeded"), false),
        EventKind::TaskFailed { task, error, .. } => {
            (format!("{task} failed: {}", first_line(error)), true)
        }
        EventKind::TaskLog { task, line, .. } => (format!("{task}: {line}"), false),
        EventKind::FeedbackRequested { task, prompt, .. } => {
            (format!("{task} asks: {prompt}"), false)
        }
        EventKind::RunFinished { status, error, .. } => {
            let mut text = format!("sub-run {}", status_word(*status));
            if let Some(e) = error {
                text.push_str(": ");
                text.push_str(first_line(e));
            }
            (text, *status != RunStatus::Succeeded)
        }
        other => (other.name().replace('_', " "), false),
    }
}

/// `succeeded`, `failed`, `cancelled`, `paused`.
pub fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Paused => "paused",
    }
}

/// The first line of a message.
pub fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Whether a log line mentions `needle` (case-insensitive; `needle` is lower case).
pub fn matches(line: &str, needle_lower: &str) -> bool {
    !needle_lower.is_empty() && line.to_lowercase().contains(needle_lower)
}

/// A log stream's short name.
pub fn stream_tag(s: LogStream) -> &'static str {
    match s {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
        LogStream::Log => "log",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ev(secs: u64, kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            kind,
        }
    }

    #[test]
    fn a_sub_runs_events_fold_into_its_task_and_leave_the_run_alone() {
        let mut r = RunView::new("r", SystemTime::UNIX_EPOCH);
        let nested = |task: &str, kind: EventKind| kind.nested_in(task.into());
        let started = |task: &str| EventKind::TaskStarted {
            task: task.into(),
            cycle: 1,
            attempt: 0,
        };
        let succeeded = |task: &str| EventKind::TaskSucceeded {
            task: task.into(),
            result: Value::Null,
            duration_ms: 1.0,
            cycle: 1,
            worker: None,
        };
        r.apply(&ev(0, started("n")));
        let run_started = EventKind::RunStarted {
            workflow: "sub".into(),
            start: "a".into(),
            resumed_from: None,
        };
        r.apply(&ev(1, nested("n", run_started)));
        r.apply(&ev(1, nested("n", started("a"))));
        r.apply(&ev(2, nested("n", succeeded("a"))));
        r.apply(&ev(2, nested("n", nested("deeper", started("x")))));
        let sub = &r.sub_runs["n"];
        assert_eq!(sub.workflow, "sub");
        assert_eq!(
            sub.tasks,
            [
                ("a".to_string(), TaskStatus::Succeeded),
                ("deeper › x".to_string(), TaskStatus::Running)
            ]
        );
        assert_eq!(sub.status, None);
        let finished = EventKind::RunFinished {
            status: RunStatus::Failed,
            error: Some("boom".into()),
            result: None,
            results: BTreeMap::new(),
            channel: BTreeMap::new(),
            checkpoint: None,
        };
        let applied = r.apply(&ev(3, nested("n", finished)));
        // The sub-run's end is not the run's.
        assert!(!applied.finished);
        assert!(r.is_active());
        assert!(!r.tasks.contains_key("a"));
        let sub = &r.sub_runs["n"];
        assert_eq!(sub.status, Some(RunStatus::Failed));
        assert_eq!(sub.tasks[1].1, TaskStatus::Failed);
        assert_eq!(r.status_of("n"), TaskStatus::Running);
    }

    #[test]
    fn folds_a_retry_then_a_failure() {
        let mut r = RunView::new("r", SystemTime::UNIX_EPOCH);
        r.apply(&ev(
            0,
            EventKind::RunStarted {
                workflow: "w".into(),
                start: "a".into(),
                resumed_from: None,
            },
        ));
        r.apply(&ev(
            1,
            EventKind::TaskStarted {
                task: "a".into(),
                cycle: 1,
                attempt: 0,
            },
        ));
        r.apply(&ev(
            2,
            EventKind::TaskFailed {
                worker: None,
                task: "a".into(),
                error: "boom".into(),
                attempt: 0,
                will_retry: true,
            },
        ));
        assert_eq!(r.status_of("a"), TaskStatus::Retrying);
        r.apply(&ev(
            3,
            EventKind::TaskStarted {
                task: "a".into(),
                cycle: 1,
                attempt: 1,
            },
        ));
        r.apply(&ev(
            3,
            EventKind::TaskLog {
                worker: None,
                task: "a".into(),
                stream: LogStream::Stderr,
                line: "bad".into(),
            },
        ));
        r.apply(&ev(
            4,
            EventKind::TaskFailed {
                worker: None,
                task: "a".into(),
                error: "boom again".into(),
                attempt: 1,
                will_retry: false,
            },
        ));
        let applied = r.apply(&ev(
            5,
            EventKind::RunFinished {
                status: RunStatus::Failed,
                error: Some("task a failed".into()),
                result: None,
                results: BTreeMap::new(),
                channel: BTreeMap::from([("k".to_string(), Value::from(1))]),
                checkpoint: None,
            },
        ));
        assert!(applied.finished);
        let a = r.task("a").unwrap_or_else(|| panic!("no task a"));
        assert_eq!(a.status(), TaskStatus::Failed);
        assert_eq!(a.attempts.len(), 2);
        assert_eq!(a.errors.len(), 2);
        assert_eq!(a.log.len(), 1);
        assert_eq!(r.failed_task.as_deref(), Some("a"));
        assert_eq!(r.phase, RunPhase::Finished(RunStatus::Failed));
        assert_eq!(r.channel["k"], Value::from(1));
        assert_eq!(r.elapsed(SystemTime::now()), 5.0);
        assert_eq!(
            r.events.len(),
            6,
            "task_log lines stay out of the event log"
        );
    }

    #[test]
    fn cancelled_runs_mark_running_tasks() {
        let mut r = RunView::new("r", SystemTime::UNIX_EPOCH);
        r.apply(&ev(
            1,
            EventKind::TaskStarted {
                task: "a".into(),
                cycle: 1,
                attempt: 0,
            },
        ));
        r.apply(&ev(
            2,
            EventKind::RunFinished {
                status: RunStatus::Cancelled,
                error: Some("cancelled".into()),
                result: None,
                results: BTreeMap::new(),
                channel: BTreeMap::new(),
                checkpoint: None,
            },
        ));
        assert_eq!(r.status_of("a"), TaskStatus::Cancelled);
        assert_eq!(r.status_of("b"), TaskStatus::Pending);
    }
}
