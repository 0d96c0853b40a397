//! The studio's runtime: the [`Driver`] owns the [`App`] and carries out its effects (loads,
//! runs, layouts, watching), feeding the answers back through one bounded channel; the
//! [`event_loop`] adds the terminal. Headless tests use the driver alone.

pub mod checkpoints;
pub mod clipboard;
pub mod event_loop;
pub mod fleet;
pub mod inbox;
pub mod jobs;
pub mod loader;
pub mod runs;
pub mod term;
pub mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use graflow_engine::Engine;
use graflow_engine::handler::Runtimes;
use tokio::sync::mpsc;

use super::action::Action;
use super::app::{App, Effect, Level, Msg};
use jobs::LayoutWorker;
use runs::RunControl;
use watch::Watcher;

/// Capacity of the channel into the app.
pub const CHANNEL: usize = 1024;

/// Owns the app and does what it asks.
pub struct Driver {
    /// The app.
    pub app: App,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    engine: Engine,
    runtimes: Runtimes,
    state_dir: PathBuf,
    runs: HashMap<String, RunControl>,
    layout: LayoutWorker,
    watcher: Option<Watcher>,
    /// Texts to copy to the clipboard (the terminal host sends them).
    pub copies: Vec<String>,
    /// A mouse capture change for the terminal host.
    pub mouse: Option<bool>,
    /// Messages handled so far.
    pub handled: u64,
    /// The fleet's Redis, when the studio is attached to one.
    fleet: Option<fleet::FleetLink>,
    /// Remote runs followed, by id.
    remote: HashMap<String, fleet::RemoteRun>,
}

impl Driver {
    /// A driver for `app`, recording runs under `state_dir`. Must run inside a tokio runtime.
    pub fn new(app: App, state_dir: PathBuf) -> Driver {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let layout = LayoutWorker::start(tx.clone());
        let mut d = Driver {
            app,
            tx,
            rx,
            engine: Engine::new(),
            runtimes: Runtimes::default(),
            state_dir,
            runs: HashMap::new(),
            layout,
            watcher: None,
            copies: Vec::new(),
            mouse: None,
            handled: 0,
            fleet: None,
            remote: HashMap::new(),
        };
        d.app.effects.push(Effect::RefreshHistory);
        d.app.want_inbox();
        d.run_effects();
        d
    }

    /// Attach the studio to a fleet's Redis: the fleet view opens on its runs, workers and
    /// queues, and the inbox lists the requests kept there.
    pub fn attach_fleet(&mut self, link: fleet::FleetLink) {
        self.app.fleet.attached = Some(link.shown.clone());
        self.fleet = Some(link);
        self.app.showing = crate::studio::screens::Screen::Fleet;
        self.app.want_fleet(true);
        self.app.want_inbox();
        self.run_effects();
    }

    /// Open workflow files and folders: find the workflows (off this task) and watch them.
    pub fn open(&mut self, paths: Vec<PathBuf>, watch: bool) {
        if watch {
            match Watcher::new(self.tx.clone()) {
                Ok(mut w) => {
                    for p in &paths {
                        let abs = loader::absolute(p);
                        let r = if abs.is_dir() {
                            w.watch_dir(&abs)
                        } else {
                            w.watch_file(&abs)
                        };
                        if let Err(e) = r {
                            self.app.message = Some((e, Level::Error));
                        }
                    }
                    // Runs recorded by `graflow run` in the same state dir join the list as
                    // they start and end.
                    let runs = crate::history::runs_dir(&self.state_dir);
                    let watched = std::fs::create_dir_all(&runs)
                        .map_err(|e| format!("cannot watch {}: {e}", runs.display()))
                        .and_then(|()| w.watch_dir(&loader::absolute(&runs)));
                    if let Err(e) = watched {
                        tracing::warn!("{e}");
                    }
                    self.watcher = Some(w);
                }
                Err(e) => self.app.message = Some((e, Level::Error)),
            }
        }
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let found = loader::discover(&paths, true);
            let _ = tx.blocking_send(Msg::Discovered(found));
        });
    }

    /// Apply a user action and carry out its effects.
    pub fn dispatch(&mut self, action: Action) {
        self.app.update(action);
        self.run_effects();
    }

    /// Apply a runtime message and carry out its effects.
    pub fn handle(&mut self, msg: Msg) {
        self.handled += 1;
        if let Msg::RunEnded(id) = &msg {
            self.runs.remove(id);
            self.remote.remove(id);
        }
        let msg = match msg {
            Msg::FilesChanged(paths) => {
                // Changes in the run history re-read it; the rest are workflow files.
                let runs = loader::absolute(&crate::history::runs_dir(&self.state_dir));
                let (history, files): (Vec<PathBuf>, Vec<PathBuf>) =
                    paths.into_iter().partition(|p| p.starts_with(&runs));
                if history
                    .iter()
                    .any(|p| p.extension().is_some_and(|x| x == "json"))
                {
                    self.app.effects.push(Effect::RefreshHistory);
                }
                if files.is_empty() {
                    self.run_effects();
                    return;
                }
                Msg::FilesChanged(files)
            }
            other => other,
        };
        self.app.on_msg(msg);
        self.run_effects();
    }

    /// Wait for the next message (cancel-safe).
    pub async fn recv(&mut self) -> Option<Msg> {
        self.rx.recv().await
    }

    /// Handle messages until `done` holds or `timeout` passes; returns whether it held.
    pub async fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&App) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.app) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(msg)) => {
                    self.app.now = std::time::SystemTime::now();
                    self.handle(msg);
                }
                Ok(None) | Err(_) => return done(&self.app),
            }
        }
    }

    /// Cancel every run and wait (up to `grace`) for their records to be written.
    pub async fn shutdown(&mut self, grace: Duration) {
        for r in self.runs.values() {
            r.cancel();
        }
        fleet::stop_all(&mut self.remote);
        let tasks: Vec<_> = self.runs.drain().map(|(_, r)| r.task).collect();
        let _ = tokio::time::timeout(grace, futures::future::join_all(tasks)).await;
    }

    /// Carry out the app's pending effects.
    pub fn run_effects(&mut self) {
        // Carrying out an effect can report back at once (a run that cannot start), which
        // may ask for more.
        loop {
            let effects = std::mem::take(&mut self.app.effects);
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                self.run_effect(effect);
            }
        }
    }

    fn run_effect(&mut self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::Discover(paths) => {
                tokio::task::spawn_blocking(move || {
                    let found = loader::discover(&paths, false);
                    if !found.is_empty() {
                        let _ = tx.blocking_send(Msg::Discovered(found));
                    }
                });
            }
            Effect::Load {
                index,
                path,
                generation,
            } => {
                let runtimes = self.runtimes.clone();
                let state_dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let result = loader::load(&path, &runtimes, &state_dir);
                    let _ = tx.blocking_send(Msg::Loaded {
                        index,
                        generation,
                        result,
                    });
                });
            }
            Effect::Watch(files) => {
                if let Some(w) = &mut self.watcher {
                    for f in files {
                        if let Err(e) = w.watch_file(&f) {
                            self.app.message = Some((e, Level::Error));
                        }
                    }
                }
            }
            Effect::StartRun {
                run_id,
                workflow,
                file,
                setup,
            } => {
                let request = runs::RunRequest {
                    run_id,
                    workflow,
                    file,
                    setup,
                    begin: runs::Begin::Fresh,
                };
                self.start_run(request);
            }
            Effect::StartResume(prepared) => {
                let parts = prepared.parts.lock().ok().and_then(|mut p| p.take());
                let Some((snapshot, factory)) = parts else {
                    self.app.on_msg(Msg::RunNotStarted {
                        run_id: prepared.run_id.clone(),
                        error: "this resume was started already".into(),
                    });
                    return;
                };
                let request = runs::RunRequest {
                    run_id: prepared.run_id.clone(),
                    workflow: prepared.workflow.clone(),
                    file: Some(prepared.file.clone()),
                    setup: Some(prepared.setup.clone()),
                    begin: runs::Begin::Resume {
                        snapshot: Box::new(snapshot),
                        factory,
                        from: prepared.checkpoint.display().to_string(),
                    },
                };
                self.start_run(request);
            }
            Effect::CancelRun(run_id) => {
                if let Some(r) = self.runs.get(&run_id) {
                    r.cancel();
                } else if let (Some(f), true) = (&self.fleet, self.remote.contains_key(&run_id)) {
                    let request = graflow_engine::distributed::watch::ControlRequest::Cancel {
                        message: "cancelled in a studio".into(),
                    };
                    fleet::control(f, run_id, request, tx);
                }
            }
            Effect::RefreshFleet => match &self.fleet {
                Some(f) => fleet::refresh(f, tx),
                None => self
                    .app
                    .on_msg(Msg::Fleet(Err("not attached to a fleet".into()))),
            },
            Effect::AttachRun(run_id) => {
                if let Some(f) = &self.fleet {
                    if let Some(old) = self.remote.remove(&run_id) {
                        old.task.abort();
                    }
                    let remote = fleet::attach(f, run_id.clone(), self.runtimes.clone(), tx);
                    self.remote.insert(run_id, remote);
                }
            }
            Effect::RequeueDeadLetter { queue, letter } => match &self.fleet {
                Some(f) => fleet::requeue(f, queue, letter, tx),
                None => self
                    .app
                    .on_msg(Msg::Requeued(Err("not attached to a fleet".into()))),
            },
            Effect::Layout { index, view } => self.layout.request(index, view),
            Effect::SnapshotChannel(run_id) => {
                let channel = self
                    .runs
                    .get(&run_id)
                    .map(|r| r.channel.clone())
                    .or_else(|| self.remote.get(&run_id).map(|r| r.channel.clone()));
                if let Some(channel) = channel {
                    tokio::spawn(async move {
                        let values = channel.snapshot().await.unwrap_or_default();
                        let _ = tx.send(Msg::Channel { run_id, values }).await;
                    });
                } else {
                    self.app.inspector.snapshot_pending = false;
                }
            }
            Effect::RefreshHistory => {
                let dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send(Msg::History(crate::history::list(&dir)));
                });
            }
            Effect::LoadRecordedRun(key) => {
                let dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let events = crate::history::events(&dir, &key);
                    let _ = tx.blocking_send(Msg::RecordedRun { key, events });
                });
            }
            Effect::Copy(text) => self.copies.push(text),
            Effect::SetMouse(on) => self.mouse = Some(on),
            Effect::RefreshInbox if self.fleet.is_some() => {
                if let Some(f) = &self.fleet {
                    let backend = f.feedback.clone();
                    tokio::spawn(async move {
                        let listed = inbox::list_in(&*backend).await;
                        let _ = tx.send(Msg::Inbox(listed)).await;
                    });
                }
            }
            Effect::RespondFeedback { id, answer } if self.fleet.is_some() => {
                if let Some(f) = &self.fleet {
                    let backend = f.feedback.clone();
                    tokio::spawn(async move {
                        let result = inbox::respond_in(&*backend, &id, answer).await;
                        let _ = tx.send(Msg::Responded { id, result }).await;
                    });
                }
            }
            Effect::RefreshInbox => {
                let dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.blocking_send(Msg::Inbox(inbox::list(&dir)));
                });
            }
            Effect::RespondFeedback { id, answer } => {
                let dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let result = inbox::respond(&dir, &id, answer);
                    let _ = tx.blocking_send(Msg::Responded { id, result });
                });
            }
            Effect::RefreshCheckpoints(dirs) => {
                let dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let list = checkpoints::list(&dir, &dirs);
                    let _ = tx.blocking_send(Msg::Checkpoints(list));
                });
            }
            Effect::LoadCheckpoint(path) => {
                tokio::task::spawn_blocking(move || {
                    let result = checkpoints::detail(&path);
                    let _ = tx.blocking_send(Msg::CheckpointDetail { path, result });
                });
            }
            Effect::PrepareResume { checkpoint, force } => {
                let runtimes = self.runtimes.clone();
                let state_dir = self.state_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let result =
                        checkpoints::prepare_shared(&checkpoint, force, &runtimes, &state_dir);
                    let _ = tx.blocking_send(Msg::ResumePrepared { checkpoint, result });
                });
            }
            Effect::CheckpointRun(run_id)
                if !self.runs.contains_key(&run_id) && self.remote.contains_key(&run_id) =>
            {
                if let Some(f) = &self.fleet {
                    let request = graflow_engine::distributed::watch::ControlRequest::Checkpoint;
                    fleet::control(f, run_id, request, tx);
                }
            }
            Effect::CheckpointRun(run_id) => match self.runs.get(&run_id) {
                Some(r) => {
                    let control = r.control.clone();
                    tokio::spawn(async move {
                        let meta = serde_json::json!({"by": "studio"});
                        let result = control
                            .checkpoint(meta)
                            .await
                            .map(|saved| saved.path)
                            .map_err(|e| e.to_string());
                        let _ = tx.send(Msg::CheckpointTaken { run_id, result }).await;
                    });
                }
                None => self.app.on_msg(Msg::CheckpointTaken {
                    run_id,
                    result: Err("the run is no longer going".into()),
                }),
            },
        }
    }

    /// Start a run in the embedded engine; a run that cannot start is reported to the app.
    fn start_run(&mut self, request: runs::RunRequest) {
        let run_id = request.run_id.clone();
        match runs::start(&self.engine, request, &self.state_dir, self.tx.clone()) {
            Ok(control) => {
                self.runs.insert(run_id, control);
            }
            Err(error) => self.app.on_msg(Msg::RunNotStarted { run_id, error }),
        }
    }

    /// Runs not finished yet.
    pub fn active_runs(&self) -> usize {
        self.runs.values().filter(|r| !r.task.is_finished()).count()
    }
}
