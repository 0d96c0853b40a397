//! The fleet view: the runs of the fleet's Redis (live and recent, any one attached to and
//! followed like a local run), its workers (state, slots, counts, heartbeat age) and its
//! queues (depth, in flight, dead letters with their errors), with throughput and latency
//! sparklines over the last minutes. Refreshed at most twice a second, and only while shown.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::Workflow;
use graflow_engine::distributed::watch::{FleetSnapshot, RunSummary, carry_records};

use super::Screen;
use crate::studio::app::{App, Effect, Level, Pane};
use crate::studio::model::{RunView, WorkflowEntry};

/// Samples kept for the sparklines (one per refresh: about five minutes at two a second).
pub const HISTORY: usize = 600;

/// The least time between two refreshes.
pub const REFRESH_GAP: Duration = Duration::from_millis(500);

/// What one refresh read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetData {
    /// Live and recent runs, newest first.
    pub runs: Vec<RunSummary>,
    /// Workers and queues.
    pub fleet: FleetSnapshot,
}

/// A remote run ready to follow: its summary and its workflow, loaded.
#[derive(Debug, Clone)]
pub struct AttachedRun {
    /// The run.
    pub summary: RunSummary,
    /// Its workflow, loaded from the copy its coordinator stored.
    pub workflow: Arc<Workflow>,
    /// The file's path on the coordinator's machine.
    pub path: PathBuf,
}

/// The fleet view's state.
#[derive(Debug, Default)]
pub struct FleetView {
    /// The Redis the studio is attached to (no password), when it is.
    pub attached: Option<String>,
    /// The last refresh.
    pub data: Option<FleetData>,
    /// Why the last refresh failed.
    pub error: Option<String>,
    /// The selected run.
    pub selected: usize,
    /// A refresh is on its way.
    pub refreshing: bool,
    /// When the last refresh was asked.
    pub asked: Option<Instant>,
    /// Attempts processed per second, one sample per refresh.
    pub throughput: VecDeque<u64>,
    /// Mean task latency (ms) between two refreshes, one sample per refresh.
    pub latency: VecDeque<u64>,
    /// The run being attached.
    pub attaching: Option<String>,
}

impl FleetView {
    /// The selected run.
    pub fn selected_run(&self) -> Option<&RunSummary> {
        self.data.as_ref()?.runs.get(self.selected)
    }

    /// Fold a fresh snapshot in: the sparklines get a sample from the difference with the
    /// previous one (processed attempts and their total time).
    pub fn absorb(&mut self, mut data: FleetData) {
        if let Some(prev) = &self.data {
            carry_records(&prev.fleet, &mut data.fleet);
            let secs = data.fleet.at_ms.saturating_sub(prev.fleet.at_ms) as f64 / 1000.0;
            let (done, sum_us) = totals(&data.fleet);
            let (done0, sum0) = totals(&prev.fleet);
            if secs > 0.0 {
                let rate = done.saturating_sub(done0) as f64 / secs;
                push(&mut self.throughput, rate.round() as u64);
            }
            let n = done.saturating_sub(done0);
            let mean_ms = if n > 0 {
                sum_us.saturating_sub(sum0) / n / 1000
            } else {
                0
            };
            push(&mut self.latency, mean_ms);
        }
        let n = data.runs.len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.data = Some(data);
        self.error = None;
    }
}

fn totals(f: &FleetSnapshot) -> (u64, u64) {
    f.workers
        .iter()
        .filter_map(|w| w.record.as_ref())
        .fold((0, 0), |(n, s), r| {
            (n + r.duration_count, s + r.duration_sum_us)
        })
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

impl App {
    /// Open the fleet view, or go back to the workflows.
    pub(crate) fn toggle_fleet(&mut self) {
        if self.showing == Screen::Fleet {
            self.showing = Screen::Main;
            return;
        }
        if self.fleet.attached.is_none() {
            self.message = Some((
                "not attached to a fleet: start the studio with --attach redis://host:port".into(),
                Level::Info,
            ));
            return;
        }
        self.showing = Screen::Fleet;
        self.want_fleet(true);
    }

    /// Ask for a refresh (unless one is on its way, or the last was asked less than
    /// [`REFRESH_GAP`] ago and `now` is not set).
    pub(crate) fn want_fleet(&mut self, now: bool) {
        if self.fleet.attached.is_none() || self.fleet.refreshing {
            return;
        }
        if !now && self.fleet.asked.is_some_and(|t| t.elapsed() < REFRESH_GAP) {
            return;
        }
        self.fleet.refreshing = true;
        self.fleet.asked = Some(Instant::now());
        self.effects.push(Effect::RefreshFleet);
    }

    pub(crate) fn fleet_move(&mut self, delta: i64) {
        let n = self.fleet.data.as_ref().map_or(0, |d| d.runs.len());
        if n > 0 {
            self.fleet.selected =
                (self.fleet.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
        }
    }

    /// A refresh came back; returns whether anything changed.
    pub(crate) fn on_fleet(&mut self, result: Result<FleetData, String>) -> bool {
        self.fleet.refreshing = false;
        match result {
            Ok(data) => {
                let changed = self.fleet.data.as_ref() != Some(&data);
                self.fleet.absorb(data);
                changed || self.showing == Screen::Fleet
            }
            Err(e) => {
                let changed = self.fleet.error.as_ref() != Some(&e);
                self.fleet.error = Some(e);
                changed
            }
        }
    }

    /// Enter: follow the selected run.
    pub(crate) fn attach_selected(&mut self) {
        let Some(run) = self.fleet.selected_run().map(|r| r.run_id.clone()) else {
            self.message = Some(("no run to attach to".into(), Level::Info));
            return;
        };
        if self.runs.contains_key(&run) {
            // Already followed: show it.
            if let Some(&i) = self.runs.get(&run) {
                self.showing = Screen::Main;
                self.select_workflow(i);
            }
            return;
        }
        self.fleet.attaching = Some(run.clone());
        self.message = Some((format!("attaching to run {run}…"), Level::Info));
        self.effects.push(Effect::AttachRun(run));
    }

    /// A remote run's workflow is loaded: show it like a local run, its events to come.
    pub(crate) fn on_attached(&mut self, attached: Result<AttachedRun, String>) {
        let attached = match attached {
            Ok(a) => a,
            Err(e) => {
                self.fleet.attaching = None;
                self.message = Some((e, Level::Error));
                return;
            }
        };
        let run_id = attached.summary.run_id.clone();
        self.fleet.attaching = None;
        let index = self
            .entries
            .iter()
            .position(|e| e.path.as_ref() == Some(&attached.path))
            .or_else(|| {
                let name = attached.workflow.name();
                self.entries
                    .iter()
                    .position(|e| e.path.is_none() && e.name == name)
            })
            .unwrap_or_else(|| {
                let entry = WorkflowEntry::from_workflow(attached.workflow.clone());
                self.entries.push(entry);
                self.entries.len() - 1
            });
        let now = self.now;
        let e = &mut self.entries[index];
        if e.is_running()
            && let Some(old) = e.run.as_ref().map(|r| r.run_id.clone())
        {
            self.message = Some((
                format!("{} is showing run {old}; it goes on unseen", e.name),
                Level::Info,
            ));
        }
        e.run = None;
        e.set_workflow(attached.workflow.clone());
        e.run = Some(RunView::new(run_id.clone(), now));
        self.runs.insert(run_id.clone(), index);
        self.remote_runs.insert(run_id.clone());
        self.showing = Screen::Main;
        self.select_workflow(index);
        self.focus = Pane::Graph;
        self.log.follow = true;
        self.events_scroll = None;
        let state = match attached.summary.state.as_str() {
            "live" => "live".to_string(),
            other => format!("{other}, {}", attached.summary.status.unwrap_or_default()),
        };
        self.message = Some((
            format!(
                "following run {run_id} of {} ({state})",
                attached.summary.workflow
            ),
            Level::Info,
        ));
        self.want_layout();
    }
}
