//! Run history in the state dir (DESIGN §5): one `<run_id>.json` record per run and its events
//! as `<run_id>.events.jsonl`, under `<state dir>/runs/`. `graflow run` and the studio both
//! write it, so a studio opened in the same folder lists runs started anywhere.

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
}

/// Writes a run's record and event log as its events arrive.
pub struct Recorder {
    record: RunRecord,
    record_path: PathBuf,
    events: Option<BufWriter<File>>,
}

impl Recorder {
    /// Start recording run `run_id` of `workflow` under `state_dir`; a run resumed from a
    /// checkpoint goes on with its record and event log. Failing to create the folder disables
    /// recording (with a warning) rather than the run.
    pub fn start(state_dir: &Path, run_id: &str, workflow: &str, file: Option<&Path>) -> Recorder {
        let dir = runs_dir(state_dir);
        let record_path = dir.join(format!("{run_id}.json"));
        let earlier: Option<RunRecord> = fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let events = fs::create_dir_all(&dir)
            .and_then(|_| {
                fs::OpenOptions::new()
                    .create(true)
                    .append(earlier.is_some())
                    .write(true)
                    .truncate(earlier.is_none())
                    .open(dir.join(format!("{run_id}.events.jsonl")))
            })
            .map(BufWriter::new)
            .map_err(|e| tracing::warn!("run history disabled: {}: {e}", dir.display()))
            .ok();
        let record = match earlier {
            Some(r) => RunRecord {
                finished: None,
                status: None,
                error: None,
                ..r
            },
            None => RunRecord {
                run_id: run_id.to_string(),
                workflow: workflow.to_string(),
                file: file.map(|f| f.canonicalize().unwrap_or_else(|_| f.to_path_buf())),
                started: now(),
                finished: None,
                status: None,
                error: None,
                tasks_succeeded: 0,
                tasks_failed: 0,
            },
        };
        let mut recorder = Recorder {
            record,
            record_path,
            events,
        };
        recorder.save();
        recorder
    }

    /// Record one event; the record is rewritten when the run finishes.
    pub fn event(&mut self, event: &RunEvent) {
        if let Some(w) = &mut self.events {
            let _ = writeln!(w, "{}", event.to_json_line());
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

/// Every run record under `state_dir`, newest first; unreadable records are skipped.
pub fn list(state_dir: &Path) -> Vec<RunRecord> {
    let Ok(entries) = fs::read_dir(runs_dir(state_dir)) else {
        return Vec::new();
    };
    let mut records: Vec<RunRecord> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| fs::read(&p).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    records.sort_by(|a, b| b.started.cmp(&a.started));
    records
}

/// The recorded events of a run (lines that do not parse are skipped).
pub fn events(state_dir: &Path, run_id: &str) -> Vec<serde_json::Value> {
    let path = runs_dir(state_dir).join(format!("{run_id}.events.jsonl"));
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

    #[test]
    fn records_and_lists_runs() {
        let dir = std::env::temp_dir().join(format!("graflow-history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut rec = Recorder::start(&dir, "r1", "wf", None);
        rec.event(&event(EventKind::TaskSucceeded {
            task: "a".into(),
            result: serde_json::Value::Null,
            duration_ms: 1.0,
            cycle: 1,
        }));
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
        // The same run resumed goes on with its record and events.
        let mut again = Recorder::start(&dir, "r1", "wf", None);
        again.event(&event(EventKind::TaskSucceeded {
            task: "b".into(),
            result: serde_json::Value::Null,
            duration_ms: 1.0,
            cycle: 1,
        }));
        assert_eq!(list(&dir)[0].status, None, "running again");
        again.event(&event(EventKind::RunFinished {
            status: RunStatus::Succeeded,
            error: None,
            result: None,
            results: Default::default(),
            channel: Default::default(),
            checkpoint: None,
        }));
        let runs = list(&dir);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].tasks_succeeded, 2);
        assert_eq!(runs[0].status, Some(RunStatus::Succeeded));
        assert_eq!(
            events(&dir, "r1").len(),
            4,
            "the first part of the run is kept"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
