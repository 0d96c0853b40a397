//! Human in the loop: tasks ask people for approvals, text, selections or any data and wait;
//! answers come from the studio, `graflow feedback`, the REST API or its web form. A wait that
//! runs out pauses the whole run into a checkpoint; a later answer lets `graflow resume` go on.

pub mod backend;
pub mod notify;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

pub use backend::{FeedbackBackend, FeedbackError, FileBackend};
#[cfg(feature = "http")]
pub use notify::WebhookNotifier;
pub use notify::{
    CallbackNotifier, ConsoleNotifier, FeedbackEvent, Notifier, WebhookConfig, WebhookError,
    flush_deliveries,
};
pub use types::{
    Answer, FeedbackKind, FeedbackRequest, FeedbackResponse, FeedbackSpec, FeedbackStatus,
};

/// Default wait of a request before the run pauses.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// The feedback setup of a run: where requests live, who is told, and where people answer.
#[derive(Clone)]
pub struct FeedbackManager {
    /// The storage.
    pub backend: Arc<dyn FeedbackBackend>,
    /// Notifiers used when a task names none of its own.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// Base URL of `graflow serve` (answer links point at `<base>/ui/feedback/<id>`).
    pub answer_base_url: String,
    /// Wait of requests that set none.
    pub default_timeout: Duration,
}

impl std::fmt::Debug for FeedbackManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackManager")
            .field("backend", &self.backend.kind())
            .field("notifiers", &self.notifiers.len())
            .field("answer_base_url", &self.answer_base_url)
            .finish()
    }
}

impl FeedbackManager {
    /// A manager over `backend`, with no notifier.
    pub fn new(backend: Arc<dyn FeedbackBackend>) -> Self {
        FeedbackManager {
            backend,
            notifiers: Vec::new(),
            answer_base_url: "http://127.0.0.1:8000".into(),
            default_timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Where a person answers request `id`.
    pub fn answer_url(&self, id: &str) -> String {
        format!(
            "{}/ui/feedback/{id}",
            self.answer_base_url.trim_end_matches('/')
        )
    }

    /// Tell `notifiers` (or the default ones) about `event`.
    pub fn notify(
        &self,
        notifiers: Option<&[Arc<dyn Notifier>]>,
        event: FeedbackEvent,
        request: &FeedbackRequest,
        response: Option<&FeedbackResponse>,
    ) {
        let url = self.answer_url(&request.id);
        for n in notifiers.unwrap_or(&self.notifiers) {
            n.notify(event, request, response, &url);
        }
    }
}
