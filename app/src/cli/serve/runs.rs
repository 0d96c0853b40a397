//! `GET /api/runs` (the run history of the state dir, newest first) and
//! `GET /api/runs/{id}/events` (a run's events as Server-Sent Events, live while it goes on).
//!
//! A run's events are the JSON lines `graflow run` (or the studio) appends to
//! `<state dir>/runs/<id>.events.jsonl`, one per event, flushed as they happen; the stream tails
//! that file. Each SSE message has `id:` the event's 0-based index in the run, `event:` its name
//! and `data:` its JSON line exactly as `graflow run --json` prints it. A `Last-Event-ID` header
//! (or `?from=N`) resumes after that index; the stream ends after `run_finished`.
//!
//! Started with `--backend redis://…`, the server also lists the fleet's runs (those the
//! state dir does not have) and streams their events from the run's Redis stream, as
//! `graflow events --attach` does; there an index counts from the first event the capped
//! stream still keeps.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::distributed::watch::{self, RunFollower, RunSummary};

use super::AppState;
use super::routes::{ApiError, json_response};
use super::streams::{self, StreamGuard};
use crate::history::{self, RunRecord};

/// Runs listed when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;
/// Most runs one `GET /api/runs` lists.
pub const MAX_LIMIT: usize = 1000;
/// How often a live run's event file is looked at for new lines.
const TAIL_POLL: Duration = Duration::from_millis(100);
/// Bytes read from an event file at a time (the events of one read are all that is held).
const READ_CHUNK: usize = 64 * 1024;
/// Longest event line followed; a longer one ends the stream with an `error` message.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// Whether `id` may name a run: letters, digits, `-`, `_`, `.`, not starting with a dot, at
/// most 200 characters. Only such ids become file names.
/// (The same rule as the feedback store's ids, which become file names too.)
pub fn valid_run_id(id: &str) -> bool {
    graflow_engine::hitl::backend::valid_id(id)
}

/// The fleet's Redis, when the server was started with `--backend redis://…`.
#[derive(Clone)]
pub struct Fleet {
    /// The connection.
    pub link: Link,
    /// Its key layout.
    pub keys: Keys,
}

impl Fleet {
    /// Events kept in the stream of a run that will write no more (it ended, or its
    /// coordinator went silent: `stale`); `None` while it is live or when Redis cannot say.
    async fn run_over(&self, run: &str) -> Option<u64> {
        let summary = watch::run_summary(&self.link, &self.keys, run)
            .await
            .ok()??;
        if summary.is_live() {
            return None;
        }
        watch::events_kept(&self.link, &self.keys, run).await.ok()
    }

    /// Whether a run's coordinator went silent before the run ended.
    async fn is_stale(&self, run: &str) -> bool {
        matches!(
            watch::run_summary(&self.link, &self.keys, run).await,
            Ok(Some(summary)) if summary.state == "stale"
        )
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fleet(…)")
    }
}

fn rfc3339_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_micros(t).to_string()
}

/// A fleet run's summary as the API shows it.
fn fleet_json(r: &RunSummary) -> Value {
    let mut v = json!({
        "id": r.run_id,
        "run_id": r.run_id,
        "workflow": r.workflow,
        "status": r.status.clone().unwrap_or_else(|| "running".into()),
        "started": rfc3339_ms(r.started_ms),
        "ended": r.ended_ms.map(rfc3339_ms),
        "error": r.error,
        "source": "fleet",
        "state": r.state,
    });
    if !r.host.is_empty()
        && let Some(m) = v.as_object_mut()
    {
        m.insert("host".into(), r.host.clone().into());
    }
    v
}

/// A run's summary as the API shows it.
pub fn run_json(r: &RunRecord, state: history::Liveness) -> Value {
    let status = match r.status {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => Value::from("running"),
    };
    json!({
        "id": r.key,
        "run_id": r.run_id,
        "workflow": r.workflow,
        "status": status,
        "started": r.started,
        "ended": r.finished,
        "error": r.error,
        "tasks_succeeded": r.tasks_succeeded,
        "tasks_failed": r.tasks_failed,
        "resumed_from": r.resumed_from,
        "source": "local",
        "state": state.as_str(),
    })
}

/// Parse `?limit=N` (1 to [`MAX_LIMIT`]).
fn limit_of(query: Option<&str>) -> Result<usize, String> {
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "limit" {
            limit = match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "limit={v}: expected a number from 1 to {MAX_LIMIT}"
                    ));
                }
            };
        }
    }
    Ok(limit)
}

/// Every run of the state dir, newest first.
pub async fn records(s: &AppState) -> Vec<RunRecord> {
    let dir = s.state_dir.clone();
    tokio::task::spawn_blocking(move || history::list(&dir))
        .await
        .unwrap_or_default()
}

/// `GET /api/runs?limit=N`.
pub async fn list(State(s): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let limit = match limit_of(query.as_deref()) {
        Ok(l) => l,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "bad query", e).into_response(),
    };
    let local = records(&s).await;
    let shown: Vec<RunRecord> = local.iter().take(limit).cloned().collect();
    let dir = s.state_dir.clone();
    let mut runs: Vec<(String, Value)> = tokio::task::spawn_blocking(move || {
        shown
            .iter()
            .map(|r| (r.started.clone(), run_json(r, history::liveness(&dir, r))))
            .collect()
    })
    .await
    .unwrap_or_default();
    let mut fleet_error = None;
    if let Some(f) = &s.fleet {
        match watch::list_runs(&f.link, &f.keys, limit).await {
            Ok(found) => {
                for r in found
                    .iter()
                    .filter(|r| !local.iter().any(|l| l.key == r.run_id))
                {
                    runs.push((rfc3339_ms(r.started_ms), fleet_json(r)));
                }
            }
            Err(e) => {
                tracing::warn!("listing the fleet's runs: {e}");
                fleet_error = Some(e.to_string());
            }
        }
    }
    runs.sort_by(|a, b| b.0.cmp(&a.0));
    runs.truncate(limit);
    let runs: Vec<Value> = runs.into_iter().map(|(_, v)| v).collect();
    let mut body = json!({"count": runs.len(), "runs": runs});
    if let (Some(e), Some(m)) = (fleet_error, body.as_object_mut()) {
        m.insert("fleet_error".into(), e.into());
    }
    json_response(StatusCode::OK, &body)
}

/// Where a run's events are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// In the state dir, under this key.
    Local(String),
    /// On the fleet's Redis, run id.
    Fleet(String),
}

/// The run of the path: 400 when it cannot be a run id, 404 when neither the state dir nor
/// the fleet (when there is one) has it.
pub async fn find(
    s: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<Found, ApiError> {
    match run_of(s, path) {
        Ok(id) => Ok(Found::Local(id)),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            let Some(f) = &s.fleet else {
                return Err(e);
            };
            let id = e.id().unwrap_or_default();
            let mut conn = f.link.conn();
            let exists: Result<bool, _> = redis::cmd("EXISTS")
                .arg(f.keys.run(&id).events())
                .query_async(&mut conn)
                .await;
            match exists {
                Ok(true) => Ok(Found::Fleet(id)),
                Ok(false) => Err(e),
                Err(err) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "fleet unreachable",
                    format!("looking for run '{id}' on the fleet's Redis: {err}"),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The run id of the path: 400 when it cannot be one, 404 when no such run was recorded.
pub fn run_of(s: &AppState, path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let id = path
        .map(|Path(id)| id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad run id", e.body_text()))?;
    if !valid_run_id(&id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad run id",
            format!(
                "{:?} is not a run id (letters, digits, '-', '_' and '.', not starting with '.')",
                shorten(&id)
            ),
        )
        .with("id", shorten(&id)));
    }
    let dir = history::runs_dir(&s.state_dir);
    let known = dir.join(format!("{id}.json")).is_file()
        || dir.join(format!("{id}.events.jsonl")).is_file();
    if !known {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, "not found", format!("no run '{id}'"))
                .with("id", id),
        );
    }
    Ok(id)
}

/// At most 200 characters of untrusted text, for messages.
fn shorten(s: &str) -> String {
    s.chars().take(200).collect()
}

/// An event index as given by a client: 1 to 19 digits, nothing else (no sign, no spaces).
fn index(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Where to resume: after the index of `Last-Event-ID`, else of `?from=`; `None` from the start.
pub fn resume_after(headers: &HeaderMap, query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let bad = |what: &str, v: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad resume point",
            format!(
                "{what} {:?}: expected an event index (a number)",
                shorten(v)
            ),
        )
    };
    // `from` must be well-formed even when the header wins.
    let mut from = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "from" {
            from = Some(index(&v).ok_or_else(|| bad("from", &v))?);
        }
    }
    if let Some(v) = headers.get("last-event-id") {
        let text = v.to_str().map_err(|_| bad("Last-Event-ID", "…"))?.trim();
        if !text.is_empty() {
            return index(text)
                .map(Some)
                .ok_or_else(|| bad("Last-Event-ID", text));
        }
    }
    Ok(from)
}

/// Lines of the event file of a run that will write no more: it finished, or the process
/// recording it is gone (`None` while it runs or when unknown).
fn final_count(s: &AppState, id: &str) -> Option<u64> {
    let dir = history::runs_dir(&s.state_dir);
    let mut record: RunRecord =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).ok()?).ok()?;
    record.key = id.to_string();
    if history::liveness(&s.state_dir, &record) == history::Liveness::Live {
        return None;
    }
    let text = std::fs::read(dir.join(format!("{id}.events.jsonl"))).ok()?;
    Some(text.iter().filter(|b| **b == b'\n').count() as u64)
}

/// What the stream says last about a run whose process stopped before `run_finished`.
const WRITER_GONE: &str = "the process running this run stopped before the run finished: \
                           no more events will come";

/// `GET /api/runs/{id}/events` (and the web pages' `/ui/runs/{id}/events`).
pub async fn events(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let found = find(&s, path).await?;
    let after = resume_after(&headers, query.as_deref())?;
    let start = after.map_or(0, |i| i.saturating_add(1));
    let id = match found {
        Found::Local(id) => id,
        Found::Fleet(id) => {
            let Some(f) = &s.fleet else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not found",
                    "no fleet",
                ));
            };
            // As for a local run: nothing more will come after the end of a run that ended
            // or whose coordinator went silent.
            if after.is_some() && f.run_over(&id).await.is_some_and(|kept| start >= kept) {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let guard = streams::acquire(&s)?;
            let tail = FleetTail {
                follower: RunFollower::new(f.link.clone(), &f.keys, &id),
                fleet: f.clone(),
                next_index: 0,
                start,
                queue: VecDeque::new(),
                finished: false,
                quiet_since: Instant::now(),
                guard,
            };
            return Ok(streams::respond(tail, |mut t| async move {
                let event = t.next().await?;
                Some((event, t))
            }));
        }
    };
    // Resuming past the end of a finished run (or of one whose process died): nothing more
    // will come. 204 tells an `EventSource` to stop reconnecting.
    if after.is_some() && final_count(&s, &id).is_some_and(|n| start >= n) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let guard = streams::acquire(&s)?;
    let tail = Tail {
        path: history::runs_dir(&s.state_dir).join(format!("{id}.events.jsonl")),
        file: None,
        offset: 0,
        next_index: 0,
        start,
        partial: Vec::new(),
        buf: Vec::new(),
        queue: VecDeque::new(),
        finished: false,
        writer_gone: false,
        guard,
    };
    Ok(streams::respond(tail, |mut t| async move {
        let event = t.next().await?;
        Some((event, t))
    }))
}

/// A run's event file being followed.
struct Tail {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    /// Bytes of the file read so far.
    offset: u64,
    /// Index of the next complete line.
    next_index: u64,
    /// First index sent.
    start: u64,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
    /// The read buffer, kept between reads.
    buf: Vec<u8>,
    /// Messages read and not sent yet (those of one read at most).
    queue: VecDeque<Event>,
    /// `run_finished` was read: the stream ends when the queue is empty.
    finished: bool,
    /// The process recording the run is gone: what the file holds now is all there is.
    writer_gone: bool,
    guard: StreamGuard,
}

/// An event name fit for an SSE `event:` field (the JSON's `event`, else `message`).
fn event_name(v: &Value) -> &str {
    match v.get("event").and_then(Value::as_str) {
        Some(n)
            if !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            n
        }
        _ => "message",
    }
}

impl Tail {
    /// The next message, waiting for the run to write it; `None` when the stream is over.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.finished || self.guard.stopping() {
                return None;
            }
            match self.read().await {
                Ok(true) => continue,
                // Everything it wrote was read: say why the stream ends without
                // `run_finished`.
                Ok(false) if self.writer_gone => {
                    self.finished = true;
                    return Some(Event::default().event("error").data(WRITER_GONE));
                }
                // Caught up: is anyone still writing? If not, read once more (the last
                // lines may have landed just before it went), then stop.
                Ok(false) if self.file.is_some() && self.is_writer_gone().await => {
                    self.writer_gone = true;
                    continue;
                }
                Ok(false) => {}
                Err(message) => {
                    self.finished = true;
                    return Some(Event::default().event("error").data(message));
                }
            }
            if !self.guard.wait(TAIL_POLL).await {
                return None;
            }
        }
    }

    /// Whether the process recording the run is gone (checked off the async threads: it
    /// opens the file).
    async fn is_writer_gone(&self) -> bool {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || history::writer_gone(&path))
            .await
            .unwrap_or(false)
    }

    /// Read what was appended; `Ok(true)` when anything was.
    async fn read(&mut self) -> Result<bool, String> {
        if self.file.is_none() {
            match tokio::fs::File::open(&self.path).await {
                Ok(f) => self.file = Some(f),
                // Not written yet: the run is starting.
                Err(_) => return Ok(false),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let buf = &mut self.buf;
        buf.resize(READ_CHUNK, 0);
        file.seek(SeekFrom::Start(self.offset))
            .await
            .map_err(|e| format!("reading the run's events: {e}"))?;
        let n = file
            .read(buf)
            .await
            .map_err(|e| format!("reading the run's events: {e}"))?;
        if n == 0 {
            return Ok(false);
        }
        self.offset += n as u64;
        let chunk = std::mem::take(&mut self.buf);
        let mut rest = &chunk[..n];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
            if self.finished {
                return Ok(true);
            }
        }
        self.partial.extend_from_slice(rest);
        self.buf = chunk;
        if self.partial.len() > MAX_LINE {
            return Err(format!(
                "event {} is longer than {} MiB; the stream stops here",
                self.next_index,
                MAX_LINE / (1024 * 1024)
            ));
        }
        Ok(true)
    }

    /// One complete line: queued when at or after the start.
    fn line(&mut self, line: &[u8]) {
        let index = self.next_index;
        self.next_index += 1;
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        if let Some((event, finished)) = message(index, text) {
            self.finished |= finished;
            if index >= self.start {
                self.queue.push_back(event);
            }
        }
    }
}

/// The SSE message of the event line `text`, the run's `index`-th, and whether it is the
/// run's own `run_finished` (not a sub-run's); `None` for a line that is not an event. (A JSON line holds no raw line
/// break; one with a stray `\r`, which would end the SSE field early, is not sent.)
fn message(index: u64, text: &str) -> Option<(Event, bool)> {
    let value = serde_json::from_str::<Value>(text).ok()?;
    let name = event_name(&value).to_string();
    let finished = graflow_engine::events::ends_its_run(&value);
    if text.contains('\r') || text.contains('\n') {
        return None;
    }
    let event = Event::default()
        .id(index.to_string())
        .event(name)
        .data(text);
    Some((event, finished))
}

/// A fleet run's event stream in Redis being followed.
struct FleetTail {
    follower: RunFollower,
    fleet: Fleet,
    next_index: u64,
    start: u64,
    queue: VecDeque<Event>,
    finished: bool,
    /// Since when nothing came (or the run's record was last checked).
    quiet_since: Instant,
    guard: StreamGuard,
}

/// How long a fleet run's stream may stay quiet before the run's record is checked for a
/// coordinator that went away.
const FLEET_QUIET_CHECK: Duration = Duration::from_secs(5);

/// What the stream says last about a fleet run whose coordinator went silent before
/// `run_finished`.
const COORDINATOR_GONE: &str = "the process coordinating this run went silent before the run \
                                finished: no more events will come";

impl FleetTail {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.finished || self.guard.stopping() {
                return None;
            }
            let read = self
                .guard
                .until(self.follower.next_lines(Duration::from_secs(1)))
                .await?;
            match read {
                Ok(lines) if lines.is_empty() => {
                    self.finished = self.follower.ended();
                    if self.finished || self.quiet_since.elapsed() < FLEET_QUIET_CHECK {
                        continue;
                    }
                    self.quiet_since = Instant::now();
                    if self.fleet.is_stale(self.follower.run_id()).await {
                        self.finished = true;
                        return Some(Event::default().event("error").data(COORDINATOR_GONE));
                    }
                }
                Ok(lines) => {
                    self.quiet_since = Instant::now();
                    for line in lines {
                        let index = self.next_index;
                        self.next_index += 1;
                        if let Some((event, _)) = message(index, &line)
                            && index >= self.start
                        {
                            self.queue.push_back(event);
                        }
                    }
                    self.finished = self.follower.ended();
                }
                Err(e) => {
                    // Redis went away for a moment: the follower reconnects on the next read.
                    tracing::warn!("{e}");
                    if !self.guard.wait(Duration::from_millis(500)).await {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked_before_they_name_files() {
        for ok in ["r1", "0b5f-aa_x", "run.resumed-2"] {
            assert!(valid_run_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            "é",
            &"x".repeat(201),
        ] {
            assert!(!valid_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn limits_and_resume_points_are_parsed() {
        assert_eq!(limit_of(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit_of(Some("limit=3")), Ok(3));
        assert!(limit_of(Some("limit=0")).is_err());
        assert!(limit_of(Some("limit=1001")).is_err());
        assert!(limit_of(Some("limit=x")).is_err());
        let mut h = HeaderMap::new();
        assert_eq!(resume_after(&h, Some("from=4")).unwrap(), Some(4));
        assert!(resume_after(&h, Some("from=-1")).is_err());
        assert!(resume_after(&h, Some("from=%2B1")).is_err(), "no sign");
        assert!(resume_after(&h, Some("from=10000000000000000000")).is_err());
        assert_eq!(
            resume_after(&h, Some("from=9999999999999999999")).unwrap(),
            Some(9_999_999_999_999_999_999)
        );
        h.insert("last-event-id", "7".parse().unwrap());
        assert_eq!(resume_after(&h, Some("from=4")).unwrap(), Some(7));
        assert!(
            resume_after(&h, Some("from=-1")).is_err(),
            "a bad from is refused too"
        );
        h.insert("last-event-id", "x".parse().unwrap());
        assert!(resume_after(&h, None).is_err());
        h.insert("last-event-id", "".parse().unwrap());
        assert_eq!(resume_after(&h, Some("from=2")).unwrap(), Some(2));
    }

    #[test]
    fn event_names_are_safe_sse_fields() {
        assert_eq!(
            event_name(&json!({"event": "task_started"})),
            "task_started"
        );
        assert_eq!(event_name(&json!({"event": "a\nb"})), "message");
        assert_eq!(event_name(&json!({"x": 1})), "message");
    }
}
