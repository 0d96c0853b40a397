//! Run history in the state dir (DESIGN §5): one `<key>.json` record per run and its events
//! as `<key>.events.jsonl`, under `<state dir>/runs/`; the key is the run id, and
//! `<run_id>.resumed-<n>` for the n-th resume of a run from a checkpoint (so the run it came
//! from keeps its own record). `graflow run` and the studio both write it, so a studio opened
//! in the same folder lists runs started anywhere.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use graflow_engine::{EventKind, RunEvent, RunStatus};
use serde::{Deserialize, Serialize};

/// The state dir: `--state-dir`, else `GRAFLOW_STATE_DIR`, else `.graflow` in the current folder.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("GRAFLOW_STATE_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(".graflow"),
    }
}

/// The folder of run records.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// A summary of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The record's key (its file name without `.json`): the run id, or
    /// `<run_id>.resumed-<n>` for a resumed run.
    #[serde(default)]
    pub key: String,
    /// The run's id.
    pub run_id: String,
    /// Workflow name.
    pub workflow: String,
    /// The workflow file, when run from one.
    pub file: Option<PathBuf>,
    /// RFC 3339 start time.
    pub started: String,
    /// RFC 3339 end time, when it ended.
    pub finished: Option<String>,
    /// How it ended (`None` while running or when the process died).
    pub status: Option<RunStatus>,
    /// The error message, if it failed.
    pub error: Option<String>,
    /// Task executions that succeeded.
    pub tasks_succeeded: u64,
    /// Task executions that failed.
    pub tasks_failed: u64,
    /// The checkpoint this run was resumed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
}

/// Writes a run's record and event log as its events arrive.
pub struct Recorder {
    record: RunRecord,
    record_path: PathBuf,
    events: Option<BufWriter<File>>,
}

impl Recorder {
    /// Start recording run `run_id` of `workflow` under `state_dir`. A run resumed from a
    /// checkpoint (`resumed_from`) gets a record of its own next to the one of the run it came
    /// from. Failing to create the folder disables recording (with a warning) rather than the
    /// run.
    pub fn start(
        state_dir: &Path,
        run_id: &str,
        workflow: &str,
        file: Option<&Path>,
        resumed_from: Option<&str>,
    ) -> Recorder {
        let dir = runs_dir(state_dir);
        let key = match resumed_from {
            None => run_id.to_string(),
            Some(_) => (1..)
                .map(|n| format!("{run_id}.resumed-{n}"))
                .find(|k| !dir.join(format!("{k}.json")).exists())
                .unwrap_or_else(|| run_id.to_string()),
        };
        let record_path = dir.join(format!("{key}.json"));
        let events = fs::create_dir_all(&dir)
            .and_then(|_| create_events_file(&dir, &key))
            .map(BufWriter::new)
            .map_err(|e| tracing::warn!("run history disabled: {}: {e}", dir.display()))
            .ok();
        let record = RunRecord {
            key,
            run_id: run_id.to_string(),
            workflow: workflow.to_string(),
            file: file.map(|f| f.canonicalize().unwrap_or_else(|_| f.to_path_buf())),
            started: now(),
            finished: None,
            status: None,
            error: None,
            tasks_succeeded: 0,
            tasks_failed: 0,
            resumed_from: resumed_from.map(str::to_string),
        };
        let mut recorder = Recorder {
            record,
            record_path,
            events,
        };
        recorder.save();
        recorder
    }

    /// Record one event and write it to the file at once; the record is rewritten when the
    /// run finishes.
    pub fn event(&mut self, event: &RunEvent) {
        let line = self.events.is_some().then(|| event.to_json_line());
        self.event_line(event, line.as_deref().unwrap_or_default());
        self.flush();
    }

    /// Write the events recorded so far to the file (`graflow serve` tails it for live
    /// streams): [`Recorder::event`] does after each event, users of
    /// [`Recorder::event_line`] after each batch.
    pub fn flush(&mut self) {
        if let Some(w) = &mut self.events {
            let _ = w.flush();
        }
    }

    /// Whether events are written to the run's history (and need their JSON line).
    pub fn records_events(&self) -> bool {
        self.events.is_some()
    }

    /// [`Recorder::event`] with the event's JSON line already made, buffered: call
    /// [`Recorder::flush`] after a batch.
    pub fn event_line(&mut self, event: &RunEvent, line: &str) {
        if let Some(w) = &mut self.events {
            let _ = writeln!(w, "{line}");
        }
        match &event.kind {
            EventKind::TaskSucceeded { .. } => self.record.tasks_succeeded += 1,
            EventKind::TaskFailed { .. } => self.record.tasks_failed += 1,
            EventKind::RunFinished { status, error, .. } => {
                self.record.status = Some(*status);
                self.record.error = error.clone();
                self.record.finished = Some(now());
                if let Some(w) = &mut self.events {
                    let _ = w.flush();
                }
                self.save();
            }
            _ => {}
        }
    }

    fn save(&mut self) {
        if self.events.is_none() {
            return;
        }
        let tmp = self.record_path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&self.record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| fs::write(&tmp, bytes))
            .and_then(|_| fs::rename(&tmp, &self.record_path));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", self.record_path.display());
        }
    }
}

/// Create the event file of the run recorded under `key`, holding an exclusive advisory lock
/// on it for as long as the file stays open: the operating system releases it when the
/// recording process ends, however it ends (even `kill -9`), which is how a reader tells a
/// live run from one whose process died ([`writer_gone`]). The file is created under a
/// temporary name and renamed once locked, so a reader never finds it unlocked while its
/// writer lives. Where the file system has no locks the file is written all the same.
fn create_events_file(dir: &Path, key: &str) -> std::io::Result<File> {
    let tmp = dir.join(format!(".{key}.events.jsonl.{}.tmp", std::process::id()));
    let file = File::create(&tmp)?;
    if let Err(e) = file.lock() {
        tracing::debug!("no lock on {}: {e}", tmp.display());
    }
    fs::rename(&tmp, dir.join(format!("{key}.events.jsonl")))?;
    Ok(file)
}

/// Whether the process that wrote the event file at `path` is gone: nobody holds the lock
/// [`Recorder`] takes for as long as it records. `false` when it cannot be told (no such
/// file, a file system without locks).
pub fn writer_gone(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| f.try_lock_shared().is_ok())
}

/// Where a recorded run stands, in the words the fleet uses for its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its process is recording it.
    Live,
    /// It finished (`run_finished` was recorded).
    Ended,
    /// Its process died before the run finished: no more events will come.
    Stale,
}

impl Liveness {
    /// `live`, `ended` or `stale`.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Ended => "ended",
            Liveness::Stale => "stale",
        }
    }
}

/// Where the run of `record` (recorded under `state_dir`) stands; it opens the run's event
/// file, so async callers check it off their threads.
pub fn liveness(state_dir: &Path, record: &RunRecord) -> Liveness {
    if record.status.is_some() {
        return Liveness::Ended;
    }
    let events = runs_dir(state_dir).join(format!("{}.events.jsonl", record.key));
    if writer_gone(&events) {
        Liveness::Stale
    } else {
        Liveness::Live
    }
}

/// How a run's status reads to a person: its end status, `running`, or `stale` for a run
/// whose process died before it finished.
pub fn status_word(record: &RunRecord, state: Liveness) -> String {
    match (record.status, state) {
        (Some(st), _) => serde_json::to_value(st)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        (None, Liveness::Stale) => "stale (its process died)".into(),
        (None, _) => "running".into(),
    }
}

/// Every run record under `state_dir`, newest first; unreadable records are skipped.
pub fn list(state_dir: &Path) -> Vec<RunRecord> {
    let Ok(entries) = fs::read_dir(runs_dir(state_dir)) else {
        return Vec::new();
    };
    let mut records: Vec<RunRecord> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let mut r: RunRecord = serde_json::from_slice(&fs::read(&p).ok()?).ok()?;
            r.key = p.file_stem()?.to_string_lossy().into_owned();
            Some(r)
        })
        .collect();
    records.sort_by(|a, b| b.started.cmp(&a.started));
    records
}

/// The recorded events of the run recorded under `key` (lines that do not parse are skipped).
pub fn events(state_dir: &Path, key: &str) -> Vec<serde_json::Value> {
    let path = runs_dir(state_dir).join(format!("{key}.events.jsonl"));
    fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::SystemTime;

    fn event(kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: Arc::from("r1"),
            ts: SystemTime::now(),
            kind,
        }
    }

    fn succeeded(task: &str) -> RunEvent {
        event(EventKind::TaskSucceeded {
            worker: None,
            task: task.into(),
            result: serde_json::Value::Null,
            duration_ms: 1.0,
            cycle: 1,
        })
    }

    #[test]
    fn records_and_lists_runs() {
        let dir = std::env::temp_dir().join(format!("graflow-history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut rec = Recorder::start(&dir, "r1", "wf", None, None);
        rec.event(&succeeded("a"));
        rec.event(&event(EventKind::RunFinished {
            status: RunStatus::Succeeded,
            error: None,
            result: None,
            results: Default::default(),
            channel: Default::default(),
            checkpoint: None,
        }));
        let runs = list(&dir);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, Some(RunStatus::Succeeded));
        assert_eq!(runs[0].tasks_succeeded, 1);
        assert!(runs[0].finished.is_some());
        assert_eq!(events(&dir, "r1").len(), 2);
        // The same run resumed gets a record of its own; the first one stays as it was.
        let mut again = Recorder::start(&dir, "r1", "wf", None, Some("r1-001.ckpt"));
        again.event(&succeeded("b"));
        assert_eq!(list(&dir)[0].status, None, "the resumed run is going");
        assert_eq!(list(&dir)[1].status, Some(RunStatus::Succeeded));
        again.event(&event(EventKind::RunFinished {
            status: RunStatus::Succeeded,
            error: None,
            result: None,
            results: Default::default(),
            channel: Default::default(),
            checkpoint: None,
        }));
        let runs = list(&dir);
        assert_eq!(runs.len(), 2, "both runs are kept");
        assert_eq!(runs[0].key, "r1.resumed-1");
        assert_eq!(runs[0].resumed_from.as_deref(), Some("r1-001.ckpt"));
        assert_eq!(runs[0].tasks_succeeded, 1);
        assert_eq!(runs[1].key, "r1");
        assert_eq!(runs[1].tasks_succeeded, 1);
        assert_eq!(
            events(&dir, "r1").len(),
            2,
            "the first run's events are kept"
        );
        assert_eq!(events(&dir, "r1.resumed-1").len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reader_tells_a_live_recording_from_one_whose_writer_is_gone() {
        let dir = std::env::temp_dir().join(format!("graflow-history-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = runs_dir(&dir).join("r9.events.jsonl");
        assert!(!writer_gone(&path), "no file: cannot be told");
        let mut rec = Recorder::start(&dir, "r9", "wf", None, None);
        rec.event(&succeeded("a"));
        assert!(!writer_gone(&path), "the recorder holds its lock");
        assert_eq!(liveness(&dir, &list(&dir)[0]), Liveness::Live);
        drop(rec);
        assert!(writer_gone(&path), "the lock went with the recorder");
        assert_eq!(liveness(&dir, &list(&dir)[0]), Liveness::Stale);
        assert_eq!(events(&dir, "r9").len(), 1);
        // Only the record and its events: no temporary file is left behind.
        let names: Vec<String> = fs::read_dir(runs_dir(&dir))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
