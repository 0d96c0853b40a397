//! Human feedback inside a run: a task asks, waits parked (checkpoints and other tasks go on),
//! takes the answer at once when it comes; when the wait runs out, the whole run pauses into a
//! checkpoint and ends with status `paused`. A task that runs again after the pause asks the
//! same request (same id) and gets the stored answer.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::checkpoint::Reason;
use crate::context::FeedbackAsk;
use crate::events::EventKind;
use crate::hitl::{
    FeedbackError, FeedbackEvent, FeedbackManager, FeedbackRequest, FeedbackResponse,
    FeedbackStatus,
};

use super::state::RunShared;

/// The id of a request: the same for the same run, task, cycle, attempt and request number.
pub(crate) fn feedback_id(run_id: &str, ask: &FeedbackAsk) -> String {
    let task: String = ask
        .task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{run_id}-{task}-{}-{}-{}",
        ask.cycle, ask.attempt, ask.ordinal
    )
}

fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

impl RunShared {
    pub(crate) fn ask_feedback(
        &self,
        ask: FeedbackAsk,
    ) -> BoxFuture<'static, Result<FeedbackResponse, FeedbackError>> {
        let Some(shared) = self.me.upgrade() else {
            return futures::future::ready(Err(FeedbackError::NotConfigured)).boxed();
        };
        async move { shared.ask(ask).await }.boxed()
    }

    async fn ask(self: Arc<Self>, ask: FeedbackAsk) -> Result<FeedbackResponse, FeedbackError> {
        let manager = self.feedback.clone().ok_or(FeedbackError::NotConfigured)?;
        ask.spec.check().map_err(FeedbackError::Invalid)?;
        let id = feedback_id(&self.run_id, &ask);
        let notifiers = ask.notifiers.as_deref();
        // The wait, as the request records it: a request that names none waits the default,
        // and says so (`feedback list`, the inbox, webhooks show the real timeout).
        let wait = ask
            .spec
            .timeout_secs
            .map(Duration::from_secs_f64)
            .unwrap_or(manager.default_timeout);
        let mut spec = ask.spec.clone();
        spec.timeout_secs.get_or_insert(wait.as_secs_f64());
        let request = match manager.backend.get(&id).await? {
            Some((request, Some(response))) => {
                self.answered(&manager, notifiers, &request, &response)
                    .await?;
                return Ok(response);
            }
            Some((request, None)) if request.status == FeedbackStatus::Cancelled => {
                return Err(FeedbackError::Cancelled(request.id));
            }
            // Asked before a pause: wait again, people were told already.
            Some((request, None)) => request,
            None => {
                let request = manager
                    .backend
                    .create(FeedbackRequest {
                        id: id.clone(),
                        run_id: self.run_id.to_string(),
                        task: ask.task.clone(),
                        workflow: self.wf.name.clone(),
                        spec,
                        status: FeedbackStatus::Pending,
                        created_at: now(),
                        timed_out_at: None,
                        checkpoint: None,
                    })
                    .await?;
                manager.notify(notifiers, FeedbackEvent::Requested, &request, None);
                self.emit(EventKind::FeedbackRequested {
                    id: request.id.clone(),
                    task: Arc::from(ask.task.as_str()),
                    kind: request.spec.kind.as_str().to_string(),
                    prompt: request.spec.prompt.clone(),
                });
                request
            }
        };
        self.park(ask.slot);
        match manager.backend.wait(&id, wait).await {
            Ok(Some(response)) => {
                self.unpark(ask.slot).await;
                self.answered(&manager, notifiers, &request, &response)
                    .await?;
                Ok(response)
            }
            Ok(None) => {
                manager.notify(notifiers, FeedbackEvent::TimedOut, &request, None);
                if self.checkpoints.is_none() {
                    self.unpark(ask.slot).await;
                    return Err(FeedbackError::Timeout {
                        id,
                        secs: wait.as_secs_f64(),
                    });
                }
                self.pause(&manager, request, &ask).await
            }
            Err(e) => {
                self.unpark(ask.slot).await;
                Err(e)
            }
        }
    }

    /// The answer is in: write it to the channel when asked, report it.
    async fn answered(
        &self,
        manager: &FeedbackManager,
        notifiers: Option<&[Arc<dyn crate::hitl::Notifier>]>,
        request: &FeedbackRequest,
        response: &FeedbackResponse,
    ) -> Result<(), FeedbackError> {
        if let Some(key) = &request.spec.channel_key {
            let channel_error = |e: crate::channel::ChannelError| {
                FeedbackError::Backend(format!("writing the answer to '{key}': {e}"))
            };
            self.channel
                .set(key, response.value())
                .await
                .map_err(channel_error)?;
            let full = serde_json::to_value(response).unwrap_or(Value::Null);
            self.channel
                .set(&format!("{key}.__feedback_response__"), full)
                .await
                .map_err(channel_error)?;
        }
        manager.notify(notifiers, FeedbackEvent::Answered, request, Some(response));
        self.emit(EventKind::FeedbackAnswered {
            id: request.id.clone(),
        });
        Ok(())
    }

    /// The waiting task stops counting as running (it stays the branch's current task).
    fn park(&self, slot: u32) {
        let mut st = self.state.lock();
        self.task_stopped(&mut st, slot, true);
    }

    /// The waiting task runs again, once no checkpoint is being taken.
    async fn unpark(&self, _slot: u32) {
        loop {
            {
                let mut st = self.state.lock();
                if !st.gate_closed {
                    st.running += 1;
                    return;
                }
            }
            let mut open = self.gate.subscribe();
            let _ = open.wait_for(|open| *open).await;
        }
    }

    /// The wait ran out: checkpoint the whole run (the waiting task runs again on resume and
    /// finds its request) and stop it as paused.
    async fn pause(
        &self,
        manager: &FeedbackManager,
        request: FeedbackRequest,
        ask: &FeedbackAsk,
    ) -> Result<FeedbackResponse, FeedbackError> {
        let meta = json!({"reason": "feedback_timeout", "feedback_id": request.id});
        match self
            .checkpoint(Reason::Feedback, Some((&ask.task, ask.cycle)), meta, None)
            .await
        {
            Ok(saved) => {
                let path = saved.path.display().to_string();
                // Every request of the run still waiting names the checkpoint to resume; the
                // one that timed out says when. Fresh copies: an answer may have just come.
                let waiting = manager
                    .backend
                    .list(Some(&self.run_id), true)
                    .await
                    .unwrap_or_default();
                for mut r in waiting {
                    if r.id == request.id {
                        r.timed_out_at = Some(now());
                    }
                    r.checkpoint = Some(path.clone());
                    if let Err(e) = manager.backend.update(&r).await {
                        tracing::warn!(
                            "cannot record the checkpoint on feedback request {}: {e}",
                            r.id
                        );
                    }
                }
                self.state.lock().paused =
                    Some((saved.path.display().to_string(), request.id.clone()));
                self.stop.cancel();
                Err(FeedbackError::Paused(request.id))
            }
            Err(e) => {
                self.unpark(ask.slot).await;
                Err(FeedbackError::Backend(format!(
                    "the run could not pause: {e}"
                )))
            }
        }
    }
}
