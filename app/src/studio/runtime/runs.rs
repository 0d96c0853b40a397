//! Runs in the embedded engine: start one with the event stream on, record it in the run
//! history, and forward its events in batches to the app's bounded channel; cancel on request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow_engine::hitl::{FeedbackManager, FileBackend, Notifier};
use graflow_engine::{Channel, Engine, RunOptions, Workflow};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::history::Recorder;
use crate::studio::app::Msg;
use crate::studio::model::RunSetup;

/// Events forwarded to the app in one message, at most.
const BATCH: usize = 512;

/// A run going on.
pub struct RunControl {
    cancel: mpsc::Sender<()>,
    /// The run's channel (for the inspector's snapshots).
    pub channel: Channel,
    /// The forwarding task; it ends after the run's last event.
    pub task: JoinHandle<()>,
}

impl RunControl {
    /// Ask the run to stop.
    pub fn cancel(&self) {
        let _ = self.cancel.try_send(());
    }
}

/// Start `workflow` as run `run_id`; its events go to `tx`, its record to `state_dir`.
pub fn start(
    engine: &Engine,
    run_id: String,
    workflow: Arc<Workflow>,
    file: Option<PathBuf>,
    setup: Option<RunSetup>,
    state_dir: &Path,
    tx: mpsc::Sender<Msg>,
) -> RunControl {
    let channel = Channel::memory();
    let mut options = RunOptions::new()
        .with_events()
        .run_id(run_id.clone())
        .channel(channel.clone());
    // As `graflow run` does: feedback requests as files in the state dir (so `graflow feedback`
    // and `graflow serve` answer them), checkpoints where the file says.
    let notifiers = setup
        .as_ref()
        .map(|s| s.notifiers.clone())
        .unwrap_or_default();
    options.feedback = Some(Arc::new(feedback_manager(state_dir, notifiers)));
    if let Some(s) = setup {
        options = options.checkpoints(s.checkpoints);
    }
    let mut handle = engine.start(workflow.clone(), options);
    let events = handle.take_events();
    let (cancel_tx, mut cancel_rx) = mpsc::channel::<()>(1);
    let state_dir = state_dir.to_path_buf();
    let task = tokio::spawn(async move {
        let mut recorder = Recorder::start(&state_dir, &run_id, workflow.name(), file.as_deref());
        if let Some(mut events) = events {
            let mut buf = Vec::with_capacity(BATCH);
            let mut cancelled = false;
            loop {
                tokio::select! {
                    n = events.recv_many(&mut buf, BATCH) => {
                        if n == 0 {
                            break;
                        }
                        for e in &buf {
                            recorder.event(e);
                        }
                        if tx.send(Msg::Engine(std::mem::take(&mut buf))).await.is_err() {
                            // The studio is gone: stop the run rather than run unwatched.
                            handle.cancel("the studio closed");
                            cancelled = true;
                        }
                    }
                    r = cancel_rx.recv(), if !cancelled => {
                        cancelled = true;
                        if r.is_some() {
                            handle.cancel("cancelled in the studio");
                        }
                    }
                }
            }
        }
        let _ = handle.wait().await;
        let _ = tx.send(Msg::RunEnded(run_id)).await;
    });
    RunControl {
        cancel: cancel_tx,
        channel,
        task,
    }
}

/// The feedback setup of runs started in `state_dir`, the same as `graflow run`'s: requests
/// as files in `<state dir>/feedback`, answer links at `GRAFLOW_SERVE_URL` when set.
pub fn feedback_manager(state_dir: &Path, notifiers: Vec<Arc<dyn Notifier>>) -> FeedbackManager {
    let mut manager = FeedbackManager::new(Arc::new(FileBackend::new(state_dir.join("feedback"))));
    manager.notifiers = notifiers;
    if let Ok(url) = std::env::var("GRAFLOW_SERVE_URL")
        && !url.trim().is_empty()
    {
        manager.answer_base_url = url;
    }
    manager
}
