//! The inbox's I/O on blocking threads: listing the pending feedback requests of the state
//! dir and answering one through the file backend (which checks the answer).

use std::path::Path;

use graflow_engine::hitl::{Answer, FeedbackBackend, FeedbackRequest};

use crate::runsetup;
use crate::studio::screens::inbox::Responded;

/// The pending requests of `state_dir`, oldest first.
pub fn list(state_dir: &Path) -> Result<Vec<FeedbackRequest>, String> {
    let backend = runsetup::feedback_backend(state_dir);
    block_on(backend.list(None, true)).map_err(|e| e.to_string())
}

/// Answer request `id`; the backend's refusal comes back as its message.
pub fn respond(state_dir: &Path, id: &str, answer: Answer) -> Result<Responded, String> {
    let backend = runsetup::feedback_backend(state_dir);
    let response = block_on(backend.respond(id, answer)).map_err(|e| e.to_string())?;
    let request = block_on(backend.get(id))
        .map_err(|e| e.to_string())?
        .map(|(r, _)| r);
    Ok(Responded {
        value: response.value(),
        run_id: request
            .as_ref()
            .map(|r| r.run_id.clone())
            .unwrap_or_default(),
        task: request.as_ref().map(|r| r.task.clone()).unwrap_or_default(),
        workflow: request
            .as_ref()
            .map(|r| r.workflow.clone())
            .unwrap_or_default(),
        checkpoint: request.and_then(|r| r.checkpoint),
    })
}

/// The file backend's futures do their file work synchronously: run them on this (blocking)
/// thread.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}
