//! Runs in the embedded engine: start one (fresh, or resumed from a checkpoint) with the event
//! stream on, record it in the run history, and forward its events in batches to the app's
//! bounded channel; cancel or checkpoint it on request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow_engine::checkpoint::RunSnapshot;
use graflow_engine::file::FileTaskFactory;
use graflow_engine::{Channel, Engine, RunControl as EngineControl, RunOptions, Workflow};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::history::Recorder;
use crate::runsetup;
use crate::studio::app::Msg;
use crate::studio::model::RunSetup;

/// Events forwarded to the app in one message, at most.
const BATCH: usize = 512;

/// A run going on.
pub struct RunControl {
    cancel: mpsc::Sender<()>,
    /// The engine's handle on the run (host checkpoints).
    pub control: EngineControl,
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

/// How a run begins.
pub enum Begin {
    /// From the workflow's start.
    Fresh,
    /// From a checkpoint's state.
    Resume {
        /// The state.
        snapshot: Box<RunSnapshot>,
        /// Rebuilds tasks that were added at run time.
        factory: FileTaskFactory,
        /// The checkpoint's path (named in the `run_started` event).
        from: String,
    },
}

/// A run to start.
pub struct RunRequest {
    /// Its id (a resumed run keeps the id it had).
    pub run_id: String,
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// Its file, for the history.
    pub file: Option<PathBuf>,
    /// Checkpoints and notifiers (workflow files).
    pub setup: Option<RunSetup>,
    /// Fresh or resumed.
    pub begin: Begin,
}

/// Start a run; its events go to `tx`, its record and feedback requests to `state_dir`.
pub fn start(
    engine: &Engine,
    request: RunRequest,
    state_dir: &Path,
    tx: mpsc::Sender<Msg>,
) -> Result<RunControl, String> {
    let RunRequest {
        run_id,
        workflow,
        file,
        setup,
        begin,
    } = request;
    let channel = Channel::memory();
    let mut options = RunOptions::new()
        .with_events()
        .run_id(run_id.clone())
        .channel(channel.clone());
    // As `graflow run` does: feedback requests as files in the state dir (so the inbox,
    // `graflow feedback` and `graflow serve` answer them), checkpoints where the file says.
    let notifiers = setup
        .as_ref()
        .map(|s| s.notifiers.clone())
        .unwrap_or_default();
    options.feedback = Some(Arc::new(runsetup::feedback_manager(state_dir, notifiers)));
    if let Some(s) = setup {
        options = options.checkpoints(s.checkpoints);
    }
    let resumed_from = match &begin {
        Begin::Fresh => None,
        Begin::Resume { from, .. } => Some(from.clone()),
    };
    let mut handle = match begin {
        Begin::Fresh => engine.start(workflow.clone(), options),
        Begin::Resume {
            snapshot,
            factory,
            from,
        } => engine
            .resume(
                workflow.clone(),
                &run_id,
                *snapshot,
                Some(&factory),
                &from,
                options,
            )
            .map_err(|e| e.to_string())?,
    };
    let events = handle.take_events();
    let control = handle.control();
    let (cancel_tx, mut cancel_rx) = mpsc::channel::<()>(1);
    let state_dir = state_dir.to_path_buf();
    let task = tokio::spawn(async move {
        let mut recorder = Recorder::start(
            &state_dir,
            &run_id,
            workflow.name(),
            file.as_deref(),
            resumed_from.as_deref(),
        );
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
    Ok(RunControl {
        cancel: cancel_tx,
        control,
        channel,
        task,
    })
}
