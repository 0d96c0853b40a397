//! The run history pane as a component: the state dir's recorded runs, newest first, the
//! selected one, and opening it (its recorded events are read by the runtime and replayed
//! into a run view the graph shows).

use std::sync::Arc;
use std::time::SystemTime;

use graflow_engine::{RunEvent, Value};
use serde::Deserialize;

use crate::history::RunRecord;
use crate::studio::messages::Effect;
use crate::studio::model::RunView;

/// The run history's state.
#[derive(Debug, Clone, Default)]
pub struct RunHistory {
    /// Runs of the state dir, newest first.
    pub records: Vec<RunRecord>,
    /// The selected row.
    pub selected: usize,
}

/// What the run history is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryAction {
    /// Move the selection by this many rows.
    Move(i64),
    /// Open the selected run (read its recorded events).
    Open,
    /// A click on this row of a pane with `height` rows inside.
    Click {
        /// The row clicked, from the pane's first inside row.
        row: usize,
        /// Rows inside the pane.
        height: usize,
    },
}

/// A recorded run replayed from its events.
#[derive(Debug)]
pub struct Replayed {
    /// The run as its events leave it.
    pub run: RunView,
    /// Tasks its events added to the graph: (id, added by).
    pub added: Vec<(Arc<str>, Arc<str>)>,
}

impl RunHistory {
    /// Do `action`; returns what the runtime should do.
    pub fn handle(&mut self, action: HistoryAction) -> Vec<Effect> {
        match action {
            HistoryAction::Move(delta) => {
                let n = self.records.len();
                if n > 0 {
                    self.selected = (self.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
                }
            }
            HistoryAction::Open => {
                if let Some(r) = self.records.get(self.selected) {
                    return vec![Effect::LoadRecordedRun(r.key.clone())];
                }
            }
            HistoryAction::Click { row, height } => {
                let row = self.offset(height) + row;
                if row < self.records.len() {
                    self.selected = row;
                }
            }
        }
        Vec::new()
    }

    /// The first row shown in a pane with `height` rows inside (the selection stays on
    /// screen; drawing and clicks share it).
    pub fn offset(&self, height: usize) -> usize {
        self.selected.saturating_sub(height.saturating_sub(1))
    }

    /// A fresh listing; the selection stays in it.
    pub fn set(&mut self, records: Vec<RunRecord>) {
        self.records = records;
        self.selected = self.selected.min(self.records.len().saturating_sub(1));
    }

    /// The record with this key.
    pub fn record(&self, key: &str) -> Option<&RunRecord> {
        self.records.iter().find(|r| r.key == key)
    }
}

/// Replay a recorded run's events (those that do not decode are skipped).
pub fn replay(run_id: &str, events: &[Value]) -> Replayed {
    let mut run = RunView::new(run_id, SystemTime::UNIX_EPOCH);
    let mut added = Vec::new();
    for v in events {
        if let Ok(ev) = RunEvent::deserialize(v) {
            added.extend(run.apply(&ev).added);
        }
    }
    Replayed { run, added }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<RunRecord> {
        (0..n)
            .map(|i| RunRecord {
                key: format!("k{i}"),
                run_id: format!("r{i}"),
                workflow: "etl".into(),
                file: None,
                started: String::new(),
                finished: None,
                status: None,
                error: None,
                tasks_succeeded: 0,
                tasks_failed: 0,
                resumed_from: None,
            })
            .collect()
    }

    #[test]
    fn moves_and_clicks_stay_inside_the_list() {
        let mut h = RunHistory::default();
        h.set(records(5));
        h.handle(HistoryAction::Move(10));
        assert_eq!(h.selected, 4);
        // Five rows in a pane of three: rows 2..5 show, the second is run 3.
        assert_eq!(h.offset(3), 2);
        h.handle(HistoryAction::Click { row: 1, height: 3 });
        assert_eq!(h.selected, 3);
        h.handle(HistoryAction::Click { row: 9, height: 3 });
        assert_eq!(h.selected, 3, "below the last row");
        h.set(records(2));
        assert_eq!(h.selected, 1, "the selection stays in a shorter list");
    }

    #[test]
    fn opening_asks_for_the_recorded_events() {
        let mut h = RunHistory::default();
        assert!(h.handle(HistoryAction::Open).is_empty());
        h.set(records(2));
        h.handle(HistoryAction::Move(1));
        let fx = h.handle(HistoryAction::Open);
        assert!(matches!(&fx[..], [Effect::LoadRecordedRun(k)] if k == "k1"));
        assert_eq!(h.record("k0").map(|r| r.run_id.as_str()), Some("r0"));
    }

    #[test]
    fn a_replay_skips_what_does_not_decode() {
        let started = RunEvent {
            run_id: "r1".into(),
            ts: SystemTime::UNIX_EPOCH,
            kind: graflow_engine::EventKind::RunStarted {
                workflow: "etl".into(),
                start: "a".into(),
                resumed_from: None,
            },
        };
        let events = vec![
            serde_json::json!({"nonsense": true}),
            serde_json::to_value(&started).unwrap_or_default(),
        ];
        let r = replay("r1", &events);
        assert_eq!(r.run.run_id, "r1");
        assert!(r.run.is_active(), "started, not ended");
        assert!(r.added.is_empty());
    }
}
