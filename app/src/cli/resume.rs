//! `graflow resume CHECKPOINT`: continue a run from a checkpoint. The workflow comes from its
//! file when unchanged (a changed file is refused unless `--force`), or from the copy saved in
//! the checkpoint when the file is gone.

use std::path::{Path, PathBuf};

use clap::Args;
use graflow_engine::Engine;
use graflow_engine::checkpoint::{Checkpoint, store};
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
    /// The checkpoint (`.ckpt`, its `.meta.json`, or the name without extension).
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

/// Resume; returns the exit code.
pub async fn run(args: ResumeArgs) -> anyhow::Result<i32> {
    let err = Style::stderr();
    let path = store::resolve(&args.checkpoint);
    let state_dir = history::state_dir(args.checkpoints.state_dir.as_deref());
    let key = runsetup::checkpoint_key(&state_dir);
    let (ckpt, signed) = match store::load_trusted(&path, key.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow resume: refused: {e}")));
            return Ok(exit::BAD_INPUT);
        }
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
    let dir = args
        .checkpoints
        .checkpoint_dir
        .clone()
        .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
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
    let factory = loaded.task_factory(&runtimes);
    let handle = match Engine::new().resume(
        loaded.workflow.clone(),
        &ckpt.run_id,
        ckpt.snapshot,
        Some(&factory),
        &path.display().to_string(),
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
    let from = path.display().to_string();
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
