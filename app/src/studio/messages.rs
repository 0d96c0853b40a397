//! What the app and the runtime say to each other: the [`Effect`]s the app asks for (loads,
//! runs, layouts, answers, resumes, …) and the [`Msg`]s the runtime reports back.

use std::path::PathBuf;
use std::sync::Arc;

use graflow_engine::checkpoint::CheckpointInfo;
use graflow_engine::file::Diagnostic;
use graflow_engine::hitl::{Answer, FeedbackRequest};
use graflow_engine::{RunEvent, Value, Workflow};

use super::graph::layout::CanvasLayout;
use super::graph::model::ViewGraph;
use super::screens::checkpoints::{CheckpointDetail, PreparedResume};
use super::screens::inbox::Responded;
use crate::history::RunRecord;
use crate::runsetup::ResumeRefusal;

/// Something the runtime should do for the app.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Look for workflow files at these paths (files or folders).
    Discover(Vec<PathBuf>),
    /// Load entry `index`'s file as load number `generation`.
    Load {
        /// Entry.
        index: usize,
        /// The file.
        path: PathBuf,
        /// Load number.
        generation: u64,
    },
    /// Watch these files' folders (workflow files and the scripts they name).
    Watch(Vec<PathBuf>),
    /// Start a run.
    StartRun {
        /// Its id.
        run_id: String,
        /// The workflow.
        workflow: Arc<Workflow>,
        /// Its file, for the history.
        file: Option<PathBuf>,
        /// Checkpoints and notifiers (workflow files).
        setup: Option<super::model::RunSetup>,
    },
    /// Cancel a run.
    CancelRun(String),
    /// Lay out a graph for the canvas (newest request wins).
    Layout {
        /// Entry.
        index: usize,
        /// The graph.
        view: ViewGraph,
    },
    /// Read a running run's channel.
    SnapshotChannel(String),
    /// Re-read the run history.
    RefreshHistory,
    /// Read the events of the run recorded under this key.
    LoadRecordedRun(String),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Turn mouse capture on or off.
    SetMouse(bool),
    /// List the pending feedback requests of the state dir.
    RefreshInbox,
    /// Answer a feedback request (the backend checks it).
    RespondFeedback {
        /// The request.
        id: String,
        /// The answer.
        answer: Answer,
    },
    /// List the checkpoints of the state dir and of these folders.
    RefreshCheckpoints(Vec<PathBuf>),
    /// Read a checkpoint's content.
    LoadCheckpoint(PathBuf),
    /// Read a checkpoint and choose its workflow, to resume it.
    PrepareResume {
        /// The `.ckpt`.
        checkpoint: PathBuf,
        /// A changed workflow file is fine (the user said yes).
        force: bool,
    },
    /// Start a prepared resume as a live run.
    StartResume(Arc<PreparedResume>),
    /// Write a host checkpoint of a running run.
    CheckpointRun(String),
    /// Read the fleet: its runs, workers and queues.
    RefreshFleet,
    /// Load a remote run's workflow and follow its event stream.
    AttachRun(String),
    /// Put a dead letter of a queue back on its queue.
    RequeueDeadLetter {
        /// Its queue.
        queue: String,
        /// The dead letter.
        letter: graflow_engine::distributed::watch::DeadLetter,
    },
}

/// What the runtime reports back.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Workflow files found (absolute paths).
    Discovered(Vec<PathBuf>),
    /// A load finished.
    Loaded {
        /// Entry.
        index: usize,
        /// Load number.
        generation: u64,
        /// The workflow, the problems and the scripts, or the errors.
        result: Result<Loaded, Failed>,
    },
    /// Watched files changed (absolute paths).
    FilesChanged(Vec<PathBuf>),
    /// Engine events (in order).
    Engine(Vec<RunEvent>),
    /// A layout finished.
    Layout {
        /// Entry.
        index: usize,
        /// The layout.
        layout: Arc<CanvasLayout>,
    },
    /// A channel snapshot.
    Channel {
        /// The run.
        run_id: String,
        /// Its content.
        values: std::collections::BTreeMap<String, Value>,
    },
    /// The run history.
    History(Vec<RunRecord>),
    /// A recorded run's events (JSON objects).
    RecordedRun {
        /// The record's key.
        key: String,
        /// Its events.
        events: Vec<Value>,
    },
    /// A run's engine task ended (its events are all delivered).
    RunEnded(String),
    /// Something went wrong in the runtime.
    Problem(String),
    /// The pending feedback requests (or why they could not be listed).
    Inbox(Result<Vec<FeedbackRequest>, String>),
    /// An answer was taken, or refused with the engine's message.
    Responded {
        /// The request.
        id: String,
        /// What came of it.
        result: Result<Responded, String>,
    },
    /// The checkpoints, newest first.
    Checkpoints(Vec<CheckpointInfo>),
    /// A checkpoint's content.
    CheckpointDetail {
        /// The `.ckpt`.
        path: PathBuf,
        /// What it holds, or why it could not be read.
        result: Result<CheckpointDetail, String>,
    },
    /// A checkpoint is ready to resume, or cannot resume.
    ResumePrepared {
        /// The `.ckpt`.
        checkpoint: PathBuf,
        /// The prepared run, or why not.
        result: Result<Arc<PreparedResume>, ResumeRefusal>,
    },
    /// A run the app announced could not start.
    RunNotStarted {
        /// The run.
        run_id: String,
        /// Why.
        error: String,
    },
    /// A fleet refresh: its runs, workers and queues, or why not.
    Fleet(Result<crate::studio::screens::fleet::FleetData, String>),
    /// A dead letter was requeued (what to say), or why not.
    Requeued(Result<String, String>),
    /// A remote run's workflow is loaded (its events follow as [`Msg::Engine`]), or why not.
    Attached(Box<Result<crate::studio::screens::fleet::AttachedRun, String>>),
    /// A host checkpoint was written (its `.ckpt`), or not.
    CheckpointTaken {
        /// The run.
        run_id: String,
        /// The `.ckpt`, or why not.
        result: Result<PathBuf, String>,
    },
}

/// A successful load.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
    /// Script files it names.
    pub scripts: Vec<PathBuf>,
    /// How its runs are set up.
    pub setup: Option<super::model::RunSetup>,
}

/// A failed load.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The errors.
    pub diagnostics: Vec<Diagnostic>,
    /// The file is gone.
    pub missing: bool,
}
