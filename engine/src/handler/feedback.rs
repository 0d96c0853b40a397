//! `Approval` and `Feedback` tasks: ask a human, wait, and use the answer. An approval task
//! succeeds with the response when approved and fails with the reason when rejected; a
//! feedback task's result is the answer (text, selection, selections or custom data).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{TaskError, TaskHandler, TaskResult};
use crate::context::TaskContext;
use crate::hitl::{FeedbackError, FeedbackKind, FeedbackSpec, Notifier};

/// Runs `Approval` and `Feedback` tasks.
pub struct FeedbackHandler {
    spec: FeedbackSpec,
    notifiers: Option<Vec<Arc<dyn Notifier>>>,
}

impl FeedbackHandler {
    /// A task asking `spec`; `notifiers` replace the workflow's when given.
    pub fn new(
        spec: FeedbackSpec,
        notifiers: Option<Vec<Arc<dyn Notifier>>>,
    ) -> Result<Self, FeedbackError> {
        spec.check()?;
        Ok(FeedbackHandler { spec, notifiers })
    }
}

impl TaskHandler for FeedbackHandler {
    fn kind(&self) -> &'static str {
        if self.spec.kind == FeedbackKind::Approval {
            "approval"
        } else {
            "feedback"
        }
    }

    fn feedback_notifiers(&self) -> Option<Vec<Arc<dyn Notifier>>> {
        self.notifiers.clone()
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let spec = self.spec.clone();
        let notifiers = self.notifiers.clone();
        async move {
            let response = ctx.request_feedback_with(spec.clone(), notifiers).await?;
            if spec.kind != FeedbackKind::Approval {
                return Ok(response.value());
            }
            if response.answer.approved == Some(true) {
                Ok(serde_json::to_value(&response)?)
            } else {
                let who = response
                    .answer
                    .responded_by
                    .as_deref()
                    .map(|w| format!(" by {w}"))
                    .unwrap_or_default();
                let why = response
                    .answer
                    .reason
                    .as_deref()
                    .unwrap_or("no reason given");
                Err(TaskError::msg(format!("rejected{who}: {why}")))
            }
        }
        .boxed()
    }
}
