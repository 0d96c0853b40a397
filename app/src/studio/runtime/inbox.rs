//! The inbox's I/O: listing the pending feedback requests and answering one through the
//! backend (which checks the answer) — the state dir's files on blocking threads, or the
//! fleet's Redis when the studio is attached to one.

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
    block_on(respond_in(&backend, id, answer))
}

/// The pending requests of `backend` (the fleet's Redis), oldest first.
pub async fn list_in(backend: &dyn FeedbackBackend) -> Result<Vec<FeedbackRequest>, String> {
    backend.list(None, true).await.map_err(|e| e.to_string())
}

/// Answer request `id` in `backend`.
pub async fn respond_in(
    backend: &dyn FeedbackBackend,
    id: &str,
    answer: Answer,
) -> Result<Responded, String> {
    let response = backend
        .respond(id, answer)
        .await
        .map_err(|e| e.to_string())?;
    let request = backend
        .get(id)
        .await
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
