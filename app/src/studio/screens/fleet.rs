//! The fleet view: the runs of the fleet's Redis (live and recent, any one attached to and
//! followed like a local run), its workers (state, slots, counts, heartbeat age) and its
//! queues (depth, in flight, dead letters with their errors), with throughput and latency
//! sparklines over the last minutes. Refreshed at most twice a second, and only while shown.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::Workflow;
use graflow_engine::distributed::watch::{DeadLetter, FleetSnapshot, RunSummary, carry_records};

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
    /// The selection is on the dead letters (not on the runs).
    pub on_letters: bool,
    /// The selected dead letter (in [`FleetView::dead_letters`] order).
    pub letter: usize,
}

impl FleetView {
    /// The selected run.
    pub fn selected_run(&self) -> Option<&RunSummary> {
        self.data.as_ref()?.runs.get(self.selected)
    }

    /// The dead letters shown, queue by queue (newest first in each), with their queue.
    pub fn dead_letters(&self) -> Vec<(&str, &DeadLetter)> {
        self.data
            .iter()
            .flat_map(|d| &d.fleet.queues)
            .flat_map(|q| q.dead_letters.iter().map(move |l| (q.name.as_str(), l)))
            .collect()
    }

    /// The selected dead letter, when the selection is on them.
    pub fn selected_letter(&self) -> Option<(&str, &DeadLetter)> {
        if !self.on_letters {
            return None;
        }
        self.dead_letters().get(self.letter).copied()
    }

    /// Move the selection between the runs and the dead letters.
    pub fn switch_list(&mut self) {
        self.on_letters = !self.on_letters;
    }

    /// Move the selection (in the runs or the dead letters) by `delta` rows.
    pub fn move_by(&mut self, delta: i64) {
        let (n, at) = if self.on_letters {
            (self.dead_letters().len(), &mut self.letter)
        } else {
            (
                self.data.as_ref().map_or(0, |d| d.runs.len()),
                &mut self.selected,
            )
        };
        if n > 0 {
            *at = (*at as i64 + delta).clamp(0, n as i64 - 1) as usize;
        }
    }

    /// A refresh, when attached and none is on its way, and (unless `now`) the last was
    /// asked at least [`REFRESH_GAP`] ago.
    pub fn want_refresh(&mut self, now: bool) -> Option<Effect> {
        if self.attached.is_none() || self.refreshing {
            return None;
        }
        if !now && self.asked.is_some_and(|t| t.elapsed() < REFRESH_GAP) {
            return None;
        }
        self.refreshing = true;
        self.asked = Some(Instant::now());
        Some(Effect::RefreshFleet)
    }

    /// A refresh came back; returns whether it changed what is shown.
    pub fn on_refresh(&mut self, result: Result<FleetData, String>) -> bool {
        self.refreshing = false;
        match result {
            Ok(data) => {
                let changed = self.data.as_ref() != Some(&data);
                self.absorb(data);
                changed
            }
            Err(e) => {
                let changed = self.error.as_ref() != Some(&e);
                self.error = Some(e);
                changed
            }
        }
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
            let mean_ms = sum_us
                .saturating_sub(sum0)
                .checked_div(n)
                .map_or(0, |us| us / 1000);
            push(&mut self.latency, mean_ms);
        }
        let n = data.runs.len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.data = Some(data);
        self.error = None;
        let letters = self.dead_letters().len();
        self.letter = self.letter.min(letters.saturating_sub(1));
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
        let fx = self.fleet.want_refresh(now);
        self.effects.extend(fx);
    }

    /// Requeue the selected dead letter.
    pub(crate) fn requeue_selected(&mut self) {
        let Some((queue, letter)) = self.fleet.selected_letter() else {
            let tab = self.key_name(crate::studio::action::ActionId::SwitchFleetList);
            self.message = Some((
                format!("no dead letter selected ({tab} moves the selection to them)"),
                Level::Info,
            ));
            return;
        };
        if letter.held_until_ms.is_none() {
            self.message = Some((
                format!(
                    "{} of run {} cannot be requeued: its run no longer waits for it (the attempt failed; hold dead letters with GRAFLOW_DEAD_LETTER_HOLD on the run's coordinator)",
                    letter.attempt, letter.run
                ),
                Level::Error,
            ));
            return;
        }
        self.message = Some((
            format!("requeuing {} of run {}…", letter.attempt, letter.run),
            Level::Info,
        ));
        self.effects.push(Effect::RequeueDeadLetter {
            queue: queue.to_string(),
            letter: letter.clone(),
        });
    }

    /// A requeue came back: say how it went and read the fleet again.
    pub(crate) fn on_requeued(&mut self, result: Result<String, String>) {
        self.message = Some(match result {
            Ok(text) => (text, Level::Info),
            Err(e) => (e, Level::Error),
        });
        self.want_fleet(true);
    }

    /// A refresh came back; returns whether anything changed (the open view always
    /// redraws: its ages move on).
    pub(crate) fn on_fleet(&mut self, result: Result<FleetData, String>) -> bool {
        let ok = result.is_ok();
        let changed = self.fleet.on_refresh(result);
        changed || (ok && self.showing == Screen::Fleet)
    }

    /// Enter: follow the selected run (or the selected dead letter's run).
    pub(crate) fn attach_selected(&mut self) {
        let selected = match self.fleet.selected_letter() {
            Some((_, letter)) => Some(letter.run.clone()),
            None if self.fleet.on_letters => None,
            None => self.fleet.selected_run().map(|r| r.run_id.clone()),
        };
        let Some(run) = selected else {
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
            .workflows
            .entries
            .iter()
            .position(|e| e.path.as_ref() == Some(&attached.path))
            .or_else(|| {
                let name = attached.workflow.name();
                self.workflows
                    .entries
                    .iter()
                    .position(|e| e.path.is_none() && e.name == name)
            })
            .unwrap_or_else(|| {
                let entry = WorkflowEntry::from_workflow(attached.workflow.clone());
                self.workflows.entries.push(entry);
                self.workflows.entries.len() - 1
            });
        let now = self.now;
        let e = &mut self.workflows.entries[index];
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
        self.inspector.handle(
            crate::studio::panes::inspector::InspectorAction::RunStarted,
            Default::default(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::studio::action::Action;
    use crate::studio::app::{Msg, Settings};
    use graflow_engine::distributed::metrics::WorkerRecord;
    use graflow_engine::distributed::watch::WorkerView;

    fn record(processed: u64, sum_us: u64) -> WorkerRecord {
        WorkerRecord {
            id: "w".into(),
            host: "h".into(),
            pid: 1,
            queues: vec!["default".into()],
            concurrency: 4,
            busy: 1,
            processed,
            succeeded: processed,
            failed: 0,
            retried: 0,
            reclaimed: 0,
            dead_lettered: 0,
            uptime_secs: 1.0,
            beat_ms: 0,
            state: "busy".into(),
            duration_sum_us: sum_us,
            duration_count: processed,
        }
    }

    fn data(at_ms: u64, processed: u64, sum_us: u64, runs: &[&str]) -> FleetData {
        FleetData {
            runs: runs
                .iter()
                .map(|r| RunSummary {
                    run_id: r.to_string(),
                    state: "live".into(),
                    ..RunSummary::default()
                })
                .collect(),
            fleet: FleetSnapshot {
                at_ms,
                workers: vec![WorkerView {
                    id: "w".into(),
                    record: Some(record(processed, sum_us)),
                    beat_age_ms: 0,
                    state: "busy".into(),
                }],
                queues: Vec::new(),
            },
        }
    }

    #[test]
    fn the_view_needs_a_fleet_and_refreshes_only_when_shown() {
        let mut app = App::new(Settings::default());
        app.effects.clear();
        app.update(Action::ToggleFleet);
        assert_eq!(app.showing, Screen::Main, "not attached: it says so");
        assert!(app.message.is_some());
        app.fleet.attached = Some("redis://127.0.0.1:6379".into());
        app.update(Action::ToggleFleet);
        assert_eq!(app.showing, Screen::Fleet);
        assert!(
            app.effects
                .iter()
                .any(|e| matches!(e, Effect::RefreshFleet))
        );
        app.effects.clear();
        // A refresh on its way: no second one.
        app.tick(std::time::SystemTime::now());
        assert!(app.effects.is_empty());
        app.on_msg(Msg::Fleet(Ok(data(1_000, 10, 10_000, &["r1", "r2"]))));
        app.update(Action::ToggleFleet);
        assert_eq!(app.showing, Screen::Main);
        app.fleet.asked = None;
        app.tick(std::time::SystemTime::now());
        assert!(
            !app.effects
                .iter()
                .any(|e| matches!(e, Effect::RefreshFleet)),
            "hidden, it reads nothing"
        );
    }

    fn letter(run: &str, held: Option<u64>) -> DeadLetter {
        DeadLetter {
            entry: format!("{run}-0"),
            run: run.into(),
            attempt: "poison:0:0".into(),
            error: "dead-lettered: delivered 3 times".into(),
            held_until_ms: held,
        }
    }

    #[test]
    fn tab_selects_dead_letters_and_r_requeues_only_a_held_one() {
        let mut app = App::new(Settings::default());
        app.fleet.attached = Some("redis://127.0.0.1:6379".into());
        app.update(Action::ToggleFleet);
        let mut d = data(1_000, 1, 1, &["r1"]);
        d.fleet.queues = vec![
            graflow_engine::distributed::watch::QueueView {
                name: "default".into(),
                dead: 1,
                dead_letters: vec![letter("r1", None)],
                ..Default::default()
            },
            graflow_engine::distributed::watch::QueueView {
                name: "gpu".into(),
                dead: 1,
                dead_letters: vec![letter("r2", Some(9_000))],
                ..Default::default()
            },
        ];
        app.on_msg(Msg::Fleet(Ok(d)));
        app.effects.clear();
        app.update(Action::RequeueDeadLetter);
        assert!(app.effects.is_empty(), "the selection is on the runs");
        app.update(Action::SwitchFleetList);
        app.update(Action::RequeueDeadLetter);
        assert!(app.effects.is_empty(), "the first letter is not held");
        assert!(
            app.message
                .as_ref()
                .is_some_and(|(m, _)| m.contains("GRAFLOW_DEAD_LETTER_HOLD")),
            "{:?}",
            app.message
        );
        app.update(Action::Down);
        app.update(Action::RequeueDeadLetter);
        assert!(
            app.effects.iter().any(|e| matches!(
                e,
                Effect::RequeueDeadLetter { queue, letter } if queue == "gpu" && letter.run == "r2"
            )),
            "{:?}",
            app.effects
        );
        app.effects.clear();
        app.on_msg(Msg::Requeued(Ok("requeued".into())));
        assert!(
            app.effects
                .iter()
                .any(|e| matches!(e, Effect::RefreshFleet)),
            "the view reads the fleet again"
        );
        app.update(Action::AttachRun);
        assert!(
            app.effects
                .iter()
                .any(|e| matches!(e, Effect::AttachRun(r) if r == "r2")),
            "enter follows the dead letter's run"
        );
    }

    #[test]
    fn the_view_alone_moves_and_refreshes_at_most_twice_a_second() {
        let mut f = FleetView::default();
        assert!(f.want_refresh(true).is_none(), "not attached");
        f.attached = Some("redis://localhost".into());
        assert!(matches!(f.want_refresh(false), Some(Effect::RefreshFleet)));
        assert!(f.want_refresh(true).is_none(), "one on its way");
        assert!(f.on_refresh(Ok(data(1_000, 0, 0, &["r1", "r2"]))));
        assert!(f.want_refresh(false).is_none(), "asked just now");
        assert!(f.want_refresh(true).is_some(), "unless asked at once");
        f.move_by(5);
        assert_eq!(f.selected_run().map(|r| r.run_id.as_str()), Some("r2"));
        assert!(
            !f.on_refresh(Ok(data(1_000, 0, 0, &["r1", "r2"]))),
            "the same"
        );
        assert!(f.on_refresh(Err("gone".into())));
        assert!(!f.on_refresh(Err("gone".into())), "the same error");
    }

    #[test]
    fn sparklines_get_the_rate_and_mean_latency_between_refreshes() {
        let mut view = FleetView::default();
        view.absorb(data(1_000, 10, 100_000, &[]));
        view.absorb(data(3_000, 30, 500_000, &[]));
        assert_eq!(view.throughput.back(), Some(&10), "20 attempts in 2 s");
        assert_eq!(view.latency.back(), Some(&20), "400 ms over 20 attempts");
    }

    #[test]
    fn enter_attaches_to_the_selected_run_and_the_run_shows_like_a_local_one() {
        let mut app = App::new(Settings::default());
        app.fleet.attached = Some("redis://127.0.0.1:6379".into());
        app.update(Action::ToggleFleet);
        app.on_msg(Msg::Fleet(Ok(data(1_000, 1, 1, &["r1", "r2"]))));
        app.update(Action::Down);
        app.effects.clear();
        app.update(Action::AttachRun);
        assert!(
            app.effects
                .iter()
                .any(|e| matches!(e, Effect::AttachRun(r) if r == "r2")),
            "{:?}",
            app.effects
        );
        let mut wf = Workflow::builder("remote");
        let a = wf.task("a", |_ctx| async { anyhow::Ok(1) });
        wf.flow(a);
        let workflow = Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")));
        app.on_msg(Msg::Attached(Box::new(Ok(AttachedRun {
            summary: RunSummary {
                run_id: "r2".into(),
                workflow: "remote".into(),
                state: "live".into(),
                ..RunSummary::default()
            },
            workflow,
            path: "/elsewhere/remote.ron".into(),
        }))));
        assert_eq!(app.showing, Screen::Main);
        assert_eq!(app.runs.get("r2"), Some(&app.workflows.selected));
        assert!(app.remote_runs.contains("r2"));
        assert_eq!(
            app.entry()
                .and_then(|e| e.run.as_ref())
                .map(|r| r.run_id.as_str()),
            Some("r2")
        );
    }
}
