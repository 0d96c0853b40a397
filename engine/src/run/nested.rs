//! Sub-workflows: a `Workflow(file: …)` task runs another workflow as one task, in a sub-run
//! started on the same engine (the same handlers and runtimes) by the process that drives the
//! parent run.
//!
//! What the sub-run gets: its `set` values as params (over the sub-workflow's own `params`),
//! the task's inputs as the inputs of its first tasks, the parent's feedback manager and typed
//! state, and a channel of its own — or the parent's with `channel: Shared`. What comes back:
//! the sub-run's result (its last finished task's result) as the task's result; a sub-run that
//! fails or is cancelled fails the task (whose retries apply), with the sub-run's error in the
//! task's error. Cancelling the parent (or the task's timeout) cancels the sub-run;
//! `terminate_workflow` and `cancel_workflow` inside the sub-run end the sub-run only. Its
//! events go into the parent's stream, nested under the task ([`EventKind::Nested`]).
//!
//! [`EventKind::Nested`]: crate::events::EventKind::Nested

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{Engine, RunControl, RunOptions, valid_run_id};
use crate::context::TaskContext;
use crate::events::RunStatus;
use crate::handler::{Runtimes, SpecError, TaskError, TaskHandler, TaskResult};
use crate::template::Template;
use crate::workflow::Workflow;

/// The kind name of sub-workflow tasks.
pub const KIND: &str = "workflow";

/// The placeholders a `set` value may name (besides `input.<id>`, `result.<id>` and
/// `channel.<key>`).
const NAMES: &[&str] = &["run_id", "task_id", "cycle", "data", "inputs"];

/// Which channel a sub-run uses (`channel: Own | Shared` in a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum SubChannel {
    /// A fresh channel of its own.
    #[default]
    Own,
    /// The parent run's channel.
    Shared,
}

/// One `set` value: as written, one placeholder whose value it takes, or a text template.
#[derive(Debug, Clone)]
enum SetValue {
    Plain(Value),
    Whole(String),
    Text(Template),
}

/// Runs a workflow as one task (see the module documentation).
pub struct SubWorkflowHandler {
    engine: Engine,
    workflow: Arc<Workflow>,
    file: Arc<str>,
    set: Arc<Vec<(String, SetValue)>>,
    channel: SubChannel,
}

impl SubWorkflowHandler {
    /// A handler running `workflow` (loaded from `file`, named so in errors) with these `set`
    /// values, on an engine with `runtimes`. A string value holding `{{…}}` is a template
    /// over the task's context; an unknown placeholder is refused here.
    pub fn new(
        workflow: Arc<Workflow>,
        file: &str,
        set: impl IntoIterator<Item = (String, Value)>,
        channel: SubChannel,
        runtimes: &Runtimes,
    ) -> Result<Self, SpecError> {
        let mut values = Vec::new();
        for (key, value) in set {
            let parsed = match value {
                Value::String(text) if text.contains("{{") => {
                    let template = Template::parse(&text)
                        .map_err(|e| SpecError::field("set", format!("'{key}': {e}")))?;
                    if let Some(name) = template.names().find(|n| !known(n)) {
                        return Err(SpecError::field(
                            "set",
                            format!(
                                "'{key}': unknown placeholder '{{{{{name}}}}}'; a value may name \
                                 input.<id>, result.<id>, channel.<key>, inputs, data, run_id, \
                                 task_id or cycle"
                            ),
                        ));
                    }
                    match template.single_placeholder() {
                        Some(name) => SetValue::Whole(name.to_string()),
                        None => SetValue::Text(template),
                    }
                }
                other => SetValue::Plain(other),
            };
            values.push((key, parsed));
        }
        Ok(SubWorkflowHandler {
            engine: Engine::with_runtimes(runtimes.clone()),
            workflow,
            file: Arc::from(file),
            set: Arc::new(values),
            channel,
        })
    }

    /// The workflow it runs.
    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.workflow
    }
}

/// Whether a placeholder names something a task's context offers.
fn known(name: &str) -> bool {
    NAMES.contains(&name)
        || ["input.", "result.", "channel."]
            .iter()
            .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

/// The params of the sub-run: each `set` value, filled from the task's context.
async fn params(
    set: &[(String, SetValue)],
    ctx: &TaskContext,
) -> Result<BTreeMap<String, Value>, TaskError> {
    let names: Vec<String> = set
        .iter()
        .flat_map(|(_, v)| match v {
            SetValue::Plain(_) => Vec::new(),
            SetValue::Whole(name) => vec![name.clone()],
            SetValue::Text(t) => t.names().map(str::to_string).collect(),
        })
        .collect();
    let values = crate::template::context_values(ctx, names).await?;
    let mut out = BTreeMap::new();
    for (key, value) in set {
        let value = match value {
            SetValue::Plain(v) => v.clone(),
            SetValue::Whole(name) => values.get(name).cloned().unwrap_or(Value::Null),
            SetValue::Text(t) => Value::String(
                t.render(|n| values.get(n).cloned())
                    .map_err(|e| TaskError::msg(format!("set '{key}': {e}")))?,
            ),
        };
        out.insert(key.clone(), value);
    }
    Ok(out)
}

/// The sub-run's id: the parent's, the task's, its cycle and attempt — one id per execution,
/// the same again when the execution runs again — or a fresh id when that would not be a
/// valid run id.
fn sub_run_id(ctx: &TaskContext) -> Option<String> {
    let task: String = ctx
        .task_id()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    let id = format!("{}-{task}-{}-{}", ctx.run_id(), ctx.cycle(), ctx.attempt());
    valid_run_id(&id).then_some(id)
}

/// Cancels the sub-run when the task's body is dropped before it ended (the parent was
/// cancelled, or the task timed out).
struct CancelOnDrop(Option<RunControl>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            control.cancel("the task that runs this sub-workflow stopped");
        }
    }
}

impl TaskHandler for SubWorkflowHandler {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let engine = self.engine.clone();
        let workflow = self.workflow.clone();
        let file = self.file.clone();
        let set = self.set.clone();
        let channel = self.channel;
        async move {
            let parent = ctx.sub_run_parent();
            let mut options = RunOptions::new();
            options.run_id = sub_run_id(&ctx);
            options.params = params(&set, &ctx).await?;
            options.inputs = ctx.inputs();
            if channel == SubChannel::Shared {
                options.channel = Some(ctx.channel().clone());
            }
            options.feedback = parent.feedback;
            options.state = parent.state;
            if let Some(events) = parent.events {
                options.sinks.push(events);
            }
            options.pause_parent = parent.pause;
            let handle = engine.start(workflow, options);
            let mut guard = CancelOnDrop(Some(handle.control()));
            let outcome = handle.wait().await;
            guard.0 = None;
            let error = || {
                outcome
                    .error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "no error given".into())
            };
            match outcome.status {
                RunStatus::Succeeded => Ok(outcome.result.clone().unwrap_or(Value::Null)),
                RunStatus::Failed => Err(TaskError::msg(format!(
                    "sub-workflow '{file}' failed: {}",
                    error()
                ))),
                RunStatus::Cancelled => Err(TaskError::msg(format!(
                    "sub-workflow '{file}' was cancelled: {}",
                    error()
                ))),
                RunStatus::Paused => Err(TaskError::msg(format!(
                    "sub-workflow '{file}' paused, which a sub-run cannot do"
                ))),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_when_the_task_is_built() {
        let mut b = Workflow::builder("w");
        let a = b.task("a", |_ctx| async { anyhow::Ok(1) });
        b.flow(a);
        let wf = Arc::new(b.build().expect("builds"));
        let runtimes = Runtimes::default();
        let ok = [
            ("a".to_string(), Value::from("{{input.fetch}}")),
            ("b".to_string(), Value::from("n={{cycle}} of {{channel.k}}")),
            ("c".to_string(), Value::from(3)),
        ];
        assert!(
            SubWorkflowHandler::new(wf.clone(), "s.ron", ok, SubChannel::Own, &runtimes).is_ok()
        );
        for bad in ["{{nope}}", "{{input.}}", "{{unclosed"] {
            let set = [("k".to_string(), Value::from(bad))];
            let e = SubWorkflowHandler::new(wf.clone(), "s.ron", set, SubChannel::Own, &runtimes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("set: 'k': "), "{bad}: {e}");
        }
    }
}
