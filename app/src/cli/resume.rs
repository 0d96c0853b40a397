//! `graflow resume CHECKPOINT`: continue a run from a checkpoint. The workflow comes from its
//! file when unchanged (a changed file is refused unless `--force`), or from the copy saved in
//! the checkpoint when the file is gone. With `--backend redis://…` (or `GRAFLOW_BACKEND`), a
//! checkpoint that is not on this machine is read from the fleet's Redis by its name.

use std::path::{Path, PathBuf};

use clap::Args;
use graflow_engine::Engine;
use graflow_engine::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, store};
use graflow_engine::file::LoadedWorkflow;
use graflow_engine::handler::Runtimes;

use super::backend::BackendArgs;
use super::exit;
use super::run::{CheckpointArgs, follow};
use super::style::Style;
use crate::history;
use crate::runsetup::{self, ResumeNote, ResumeRefusal};

/// Arguments of `graflow resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The checkpoint (`.ckpt`, its `.meta.json`, or the name without extension); with a
    /// fleet backend, a checkpoint that is not on this machine is fetched from the fleet's
    /// Redis by its name (as `graflow checkpoints --backend …` lists it).
    pub checkpoint: PathBuf,
    /// Print the run's events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Resume even though the workflow file changed since the checkpoint (the file as it is
    /// now is used).
    #[arg(long)]
    pub force: bool,
    /// Where parallel groups run.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Checkpoints and state.
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
}

/// The workflow of a checkpoint, by the rule shared with the studio
/// ([`runsetup::workflow_for_resume`]), with the CLI's words for its notes and refusals.
fn workflow_of(
    ckpt: &Checkpoint,
    force: bool,
    signed: bool,
    runtimes: &Runtimes,
    err: &Style,
) -> Result<LoadedWorkflow, String> {
    match runsetup::workflow_for_resume(ckpt, force, signed, runtimes) {
        Ok(chosen) => {
            match &chosen.note {
                Some(ResumeNote::UsingChanged(p)) => eprintln!(
                    "{}",
                    err.warning(&format!(
                        "note: {} changed since the checkpoint; using it as it is now (--force)",
                        p.display()
                    ))
                ),
                Some(ResumeNote::UsingSavedCopy(p)) => eprintln!(
                    "{}",
                    err.warning(&format!(
                        "note: {} is gone; using the copy of the workflow saved in the checkpoint",
                        p.display()
                    ))
                ),
                None => {}
            }
            Ok(chosen.loaded)
        }
        Err(refusal @ ResumeRefusal::Changed(_)) => Err(format!(
            "{refusal}; resume with --force to use it as it is now"
        )),
        Err(refusal) => Err(refusal.to_string()),
    }
}

/// Where the checkpoint came from: a file here, or the fleet's Redis.
enum Source {
    /// The `.ckpt` file.
    File(PathBuf),
    /// The checkpoint of this name in the fleet's Redis (`where_` says which Redis).
    Fleet { reference: String, where_: String },
}

/// Read the checkpoint `args` name: the file when it is on this machine; else, with a fleet
/// backend (`--backend` or `GRAFLOW_BACKEND`), the checkpoint of that name in its Redis.
async fn read_checkpoint(
    args: &ResumeArgs,
    key: Option<&[u8]>,
) -> Result<(Checkpoint, bool, Source), String> {
    let path = store::resolve(&args.checkpoint);
    let url = runsetup::backend_url(args.backend.backend.as_deref());
    let local = store::load_trusted(&path, key).map(|(c, s)| (c, s, Source::File(path.clone())));
    let (Some(url), Err(CheckpointError::Io { .. })) = (url, &local) else {
        return local.map_err(|e| format!("refused: {e}"));
    };
    if path.exists() {
        return local.map_err(|e| format!("refused: {e}"));
    }
    // Not on this machine: the fleet's copy, by its name (the file name without `.ckpt`).
    let reference = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let fleet = super::backend::checkpoint_store(&url).await?;
    match fleet.load(&reference, key).await {
        Ok((ckpt, signed)) => Ok((
            ckpt,
            signed,
            Source::Fleet {
                reference,
                where_: fleet.describe(),
            },
        )),
        Err(e @ CheckpointError::NotFound { .. }) => Err(format!(
            "{} is not on this machine, and {e}",
            path.display()
        )),
        Err(e) => Err(format!("refused: {e}")),
    }
}

/// Resume; returns the exit code.
pub async fn run(args: ResumeArgs) -> anyhow::Result<i32> {
    let err = Style::stderr();
    let state_dir = history::state_dir(args.checkpoints.state_dir.as_deref());
    let key = runsetup::checkpoint_key(&state_dir);
    let (ckpt, signed, source) = match read_checkpoint(&args, key.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow resume: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let path = match &source {
        Source::File(path) => path.clone(),
        Source::Fleet { reference, .. } => PathBuf::from(format!("{reference}.ckpt")),
    };
    let runtimes = Runtimes::default();
    let loaded = match workflow_of(&ckpt, args.force, signed, &runtimes, &err) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "{}",
                err.error(&format!("graflow resume: {}: {e}", path.display()))
            );
            return Ok(exit::BAD_INPUT);
        }
    };
    let dir = match (&args.checkpoints.checkpoint_dir, &source) {
        (Some(dir), _) => dir.clone(),
        (None, Source::File(path)) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        // Fetched from the fleet: new checkpoints go where this machine keeps them.
        (None, Source::Fleet { reference, where_ }) => {
            eprintln!(
                "{}",
                err.warning(&format!(
                    "note: checkpoint {reference} is not on this machine; resuming from its copy in {where_}"
                ))
            );
            args.checkpoints.dir(&loaded)
        }
    };
    let mut options = args.checkpoints.options(&loaded, dir);
    let watch = match args
        .backend
        .apply(&loaded, &runtimes, &mut options, &err)
        .await
    {
        Ok(watch) => watch,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow resume: {e}")));
            return Ok(exit::BAD_INPUT);
        }
    };
    let from = match &source {
        Source::File(path) => path.display().to_string(),
        Source::Fleet { reference, where_ } => format!("{reference} ({where_})"),
    };
    let factory = loaded.task_factory(&runtimes);
    let handle = match Engine::new().resume(
        loaded.workflow.clone(),
        &ckpt.run_id,
        ckpt.snapshot,
        Some(&factory),
        &from,
        options,
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "{}",
                err.error(&format!("graflow resume: {}: {e}", path.display()))
            );
            return Ok(exit::BAD_INPUT);
        }
    };
    let file = loaded.path.clone();
    follow(
        handle,
        &loaded,
        &file,
        &state_dir,
        args.json,
        Some(from.as_str()),
        watch,
    )
    .await
}
