//! Human feedback inside a run: a task asks, waits parked (checkpoints and other tasks go on),
//! takes the answer at once when it comes; when the wait runs out, the whole run pauses into a
//! checkpoint and ends with status `paused`. A task that runs again after the pause asks the
//! same request (same id) and gets the stored answer.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::checkpoint::{CheckpointError, Reason};
use crate::context::FeedbackAsk;
use crate::events::EventKind;
use crate::hitl::{
    FeedbackError, FeedbackEvent, FeedbackManager, FeedbackRequest, FeedbackResponse,
    FeedbackStatus,
};

use super::state::RunShared;

/// The id of a request: the same for the same run, task, cycle, attempt and request number,
/// and different whenever any of them differs (no two tasks share an id, whatever their
/// names). Safe as a file name and a URL segment: `<run>.<task>.<cycle>-<attempt>-<ordinal>`
/// with each name escaped (see [`escape_id_part`]); a very long id ends in a hash instead.
pub(crate) fn feedback_id(run_id: &str, ask: &FeedbackAsk) -> String {
    let id = format!(
        "{}.{}.{}-{}-{}",
        escape_id_part(run_id),
        escape_id_part(&ask.task),
        ask.cycle,
        ask.attempt,
        ask.ordinal
    );
    if id.len() <= MAX_PLAIN_ID {
        return id;
    }
    // Four dot-separated parts never come out of the plain form, which has three.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let short = |s: String| s.chars().take(40).collect::<String>();
    format!(
        "{}.{}.{}-{}-{}.h{hash}",
        short(escape_id_part(run_id)),
        short(escape_id_part(&ask.task)),
        ask.cycle,
        ask.attempt,
        ask.ordinal
    )
}

/// Longest id written in full (file names stay well under the usual 255 bytes).
const MAX_PLAIN_ID: usize = 160;

/// One name of an id, injectively: ASCII letters, digits and `-` as they are, every other
/// byte of its UTF-8 as `_` and two hex digits (so `.`, the separator, never appears, and
/// `a.b` and `a_b` differ); the empty name is `_`.
pub(crate) fn escape_id_part(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
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
        ask.spec.check()?;
        let id = feedback_id(&self.run_id, &ask);
        let notifiers = ask.notifiers.as_deref();
        // The wait, as the request records it: a request that names none waits the default,
        // and says so (`feedback list`, the inbox, webhooks show the real timeout).
        let wait = match ask.spec.timeout_secs {
            Some(secs) => crate::limits::seconds(secs, "timeout")
                .map_err(|e| FeedbackError::Invalid(e.into()))?,
            None => manager.default_timeout,
        };
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
        // Ending the attempt (timeout, retry, cancellation) ends this wait, even when it runs
        // detached from the attempt (in a child process's request, on a script's thread).
        let Some(ended) = self.exec_ended(ask.slot) else {
            return Err(FeedbackError::Cancelled(id));
        };
        self.park_exec(ask.slot);
        let waited = tokio::select! {
            biased;
            _ = ended.cancelled() => None,
            r = manager.backend.wait(&id, wait) => Some(r),
        };
        let Some(waited) = waited else {
            return Err(self.orphaned(&manager, &id).await);
        };
        match waited {
            Ok(Some(response)) => {
                if !self.unpark_exec(ask.slot).await {
                    return Err(self.orphaned(&manager, &id).await);
                }
                self.answered(&manager, notifiers, &request, &response)
                    .await?;
                Ok(response)
            }
            Ok(None) => {
                if self.exec_ended(ask.slot).is_none() {
                    return Err(self.orphaned(&manager, &id).await);
                }
                manager.notify(notifiers, FeedbackEvent::TimedOut, &request, None);
                if self.checkpoints.is_none() && self.pause_parent.is_none() {
                    self.unpark_exec(ask.slot).await;
                    return Err(FeedbackError::Timeout {
                        id,
                        secs: wait.as_secs_f64(),
                    });
                }
                self.pause(&manager, request, &ask).await
            }
            Err(e) => {
                self.unpark_exec(ask.slot).await;
                Err(e)
            }
        }
    }

    /// The attempt that asked `id` has ended: its question belongs to nobody. Unless the
    /// whole run stopped (a pause keeps its questions open for the resumed run), withdraw it.
    async fn orphaned(&self, manager: &FeedbackManager, id: &str) -> FeedbackError {
        if !self.stop.is_cancelled()
            && let Err(e) = manager.backend.cancel(id).await
            && !matches!(e, FeedbackError::NotPending { .. })
        {
            tracing::warn!("cannot withdraw feedback request {id}: {e}");
        }
        FeedbackError::Cancelled(id.to_string())
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

    /// The wait ran out: checkpoint the whole run (the waiting task runs again on resume and
    /// finds its request) and stop it as paused.
    async fn pause(
        &self,
        manager: &FeedbackManager,
        request: FeedbackRequest,
        ask: &FeedbackAsk,
    ) -> Result<FeedbackResponse, FeedbackError> {
        let meta = json!({"reason": "feedback_timeout", "feedback_id": request.id});
        let paused = match &self.pause_parent {
            // A sub-run: the parent's checkpoint holds the pause (see `nested.rs`).
            Some(parent) if self.checkpoints.is_none() => parent
                .pause(request.id.clone())
                .await
                .map_err(CheckpointError::CannotResume),
            _ => self
                .checkpoint(Reason::Feedback, Some((&ask.task, ask.cycle)), meta, None)
                .await
                .map(|saved| saved.path.display().to_string()),
        };
        match paused {
            Ok(path) => {
                // Paused before anything else can stop this task (a sub-run's parent, paused
                // now, cancels it): a paused run keeps its questions open.
                self.state.lock().paused = Some((path.clone(), request.id.clone()));
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
                self.stop.cancel();
                Err(FeedbackError::Paused(request.id))
            }
            Err(e) => {
                self.unpark_exec(ask.slot).await;
                Err(FeedbackError::Backend(format!(
                    "the run could not pause: {e}"
                )))
            }
        }
    }

    /// The sub-run of the `Workflow` task executing in `slot` waits for an answer that did not
    /// come in time: pause this run for it — checkpoint it with that task to run again on
    /// resume (through this run's own parent when this is a sub-run too), and stop it as
    /// paused. Returns the checkpoint's path.
    pub(crate) async fn pause_for_sub_run(
        &self,
        slot: u32,
        task: &str,
        feedback_id: String,
    ) -> Result<String, String> {
        let path = match &self.pause_parent {
            Some(parent) if self.checkpoints.is_none() => {
                if !self.park_exec(slot) {
                    return Err("the task that runs the sub-workflow has ended".into());
                }
                let paused = parent.pause(feedback_id.clone()).await;
                if paused.is_err() {
                    self.unpark_exec(slot).await;
                }
                paused?
            }
            _ => {
                let cycle = {
                    let st = self.state.lock();
                    self.lookup(&st, task)
                        .map(|i| st.cycles[i as usize])
                        .unwrap_or(0)
                };
                let meta = json!({"reason": "feedback_timeout", "feedback_id": feedback_id});
                self.checkpoint(Reason::Feedback, Some((task, cycle)), meta, Some(slot))
                    .await
                    .map_err(|e| format!("the run could not pause: {e}"))?
                    .path
                    .display()
                    .to_string()
            }
        };
        self.state.lock().paused = Some((path.clone(), feedback_id));
        self.stop.cancel();
        Ok(path)
    }
}
