//! The checkpoint browser's I/O on blocking threads: listing checkpoints, reading one, and
//! preparing one to resume (its workflow chosen by the rule `graflow resume` uses).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use graflow_engine::checkpoint::{CheckpointInfo, store};
use graflow_engine::handler::Runtimes;

use super::loader;
use crate::runsetup::{self, ResumeRefusal};
use crate::studio::model::RunSetup;
use crate::studio::screens::checkpoints::{CheckpointDetail, PreparedResume};

/// The checkpoints of `<state dir>/checkpoints` and of `dirs`, newest first.
pub fn list(state_dir: &Path, dirs: &[PathBuf]) -> Vec<CheckpointInfo> {
    let mut all_dirs = vec![loader::absolute(&state_dir.join("checkpoints"))];
    all_dirs.extend(dirs.iter().map(|d| loader::absolute(d)));
    all_dirs.sort();
    all_dirs.dedup();
    let mut out: Vec<CheckpointInfo> = all_dirs.iter().flat_map(|d| store::list(d)).collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.seq.cmp(&a.seq)));
    out
}

/// What a checkpoint holds.
pub fn detail(path: &Path) -> Result<CheckpointDetail, String> {
    let ckpt = store::load(path).map_err(|e| e.to_string())?;
    let snap = &ckpt.snapshot;
    Ok(CheckpointDetail {
        channel: snap.channel.values().map_err(|e| e.to_string())?,
        pending: snap.pending(),
        results: snap.results.clone(),
        cycles: snap.cycles.clone(),
        file: runsetup::workflow_file(&ckpt.workflow),
        open_requests: ckpt.feedback.len(),
    })
}

/// Read checkpoint `path` and load the workflow it resumes with.
pub fn prepare(
    path: &Path,
    force: bool,
    runtimes: &Runtimes,
    state_dir: &Path,
) -> Result<PreparedResume, ResumeRefusal> {
    let key = runsetup::checkpoint_key(state_dir);
    let (ckpt, signed) = store::load_trusted(path, key.as_deref())
        .map_err(|e| ResumeRefusal::DoesNotLoad(e.to_string()))?;
    let chosen = runsetup::workflow_for_resume(&ckpt, force, signed, runtimes)?;
    let loaded = chosen.loaded;
    // The resumed run writes its checkpoints next to this one, as `graflow resume` does.
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut checkpoints = loaded.checkpoint_config(dir, None);
    checkpoints.signing_key = key;
    let setup = RunSetup {
        checkpoints,
        notifiers: loaded.notifiers(),
    };
    let snapshot = ckpt.snapshot;
    let done = snapshot
        .results
        .iter()
        .map(|(id, v)| {
            let cycle = snapshot.cycles.get(id).copied().unwrap_or(1);
            (id.clone(), v.clone(), cycle)
        })
        .collect();
    let file = loader::absolute(&loaded.path);
    Ok(PreparedResume {
        checkpoint: path.to_path_buf(),
        run_id: ckpt.run_id,
        workflow: loaded.workflow.clone(),
        file_exists: file.is_file(),
        file,
        setup,
        note: chosen.note,
        done,
        parts: Mutex::new(Some((snapshot, loaded.task_factory(runtimes)))),
    })
}

/// [`prepare`], shared.
pub fn prepare_shared(
    path: &Path,
    force: bool,
    runtimes: &Runtimes,
    state_dir: &Path,
) -> Result<Arc<PreparedResume>, ResumeRefusal> {
    prepare(path, force, runtimes, state_dir).map(Arc::new)
}
