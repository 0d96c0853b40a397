//! The `ctx` object of a `Script` task: the names of DESIGN §4's script API, each mapped onto
//! [`TaskContext`]. [`register`] is the one place where the API is registered on the engine;
//! the checkpoint (`ctx.checkpoint…`) and human-in-the-loop (`ctx.request_…`) functions join
//! it there when those features land.
//!
//! Missing values (an absent channel key, an unknown input) read as `()`. Errors of control
//! calls (an unknown task, the cycle limit) are script errors carrying the engine's message;
//! a script may catch them with `try { … } catch (e) { … }`.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Map};

use super::convert::{opt_to_dynamic, runtime_error, text, to_dynamic, to_value_rt};
use super::{ScriptEnv, ScriptHandler, ScriptSource, sandbox};
use crate::channel::ChannelError;
use crate::context::TaskContext;
use crate::error::RunError;
use crate::hitl::{FeedbackKind, FeedbackSpec};
use crate::workflow::TaskDef;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// How channel calls made from the script reach the (async) channel.
pub(super) enum Bridge {
    /// The script runs inside the task's future on a tokio worker, over the memory channel,
    /// whose operations complete on their first poll.
    Inline,
    /// The script runs on the blocking pool; calls wait on the runtime through this handle.
    Blocking(tokio::runtime::Handle),
}

struct Inner {
    task: TaskContext,
    bridge: Bridge,
    env: ScriptEnv,
}

/// The value behind `ctx` (a Rhai custom type, shown as `TaskContext`).
#[derive(Clone)]
pub(super) struct Ctx(Arc<Inner>);

impl Ctx {
    /// The `ctx` of one execution.
    pub fn new(task: TaskContext, bridge: Bridge, env: ScriptEnv) -> Self {
        Ctx(Arc::new(Inner { task, bridge, env }))
    }

    fn task(&self) -> &TaskContext {
        &self.0.task
    }

    /// Fail when the execution was stopped, so a stopped script makes no further changes.
    fn live(&self) -> Res<()> {
        if sandbox::stopped() {
            Err(sandbox::stopped_error())
        } else {
            Ok(())
        }
    }

    /// Wait for a channel operation and turn its error into a script error.
    fn channel<T, F>(&self, what: &str, op: F) -> Res<T>
    where
        F: Future<Output = Result<T, ChannelError>>,
    {
        self.live()?;
        let out = match &self.0.bridge {
            Bridge::Inline => op.now_or_never().ok_or_else(|| {
                runtime_error(format!(
                    "{what}: the channel would block in an inline script (internal error)"
                ))
            })?,
            Bridge::Blocking(handle) => handle.block_on(op),
        };
        out.map_err(|e| runtime_error(format!("{what}: {e}")))
    }

    /// Wait for an operation of the run (a checkpoint) that may take a while.
    fn wait<T, F>(&self, what: &str, op: F) -> Res<T>
    where
        F: Future<Output = Result<T, String>>,
    {
        self.live()?;
        let out = match &self.0.bridge {
            Bridge::Inline => op.now_or_never().ok_or_else(|| {
                runtime_error(format!(
                    "{what}: cannot wait in an inline script (internal error)"
                ))
            })?,
            Bridge::Blocking(handle) => handle.block_on(op),
        };
        out.map_err(|e| runtime_error(format!("{what}: {e}")))
    }
}

fn control(result: Result<(), RunError>) -> Res<()> {
    result.map_err(|e| runtime_error(e.to_string()))
}

/// The task definition `ctx.next_task(id, #{ run: "…" })` asks for. Only inline code is
/// accepted: a script gets no way to make the engine read a file.
fn inline_task(ctx: &Ctx, id: &str, spec: &Map) -> Res<TaskDef> {
    let what = format!("ctx.next_task('{id}', …)");
    if let Some(key) = spec.keys().find(|k| k.as_str() != "run") {
        return Err(runtime_error(format!(
            "{what}: unknown key '{key}' (expected `run` with the new task's script)"
        )));
    }
    let code = match spec.get("run") {
        None => {
            return Err(runtime_error(format!(
                "{what}: `run` with the new task's script is missing"
            )));
        }
        Some(v) => v.clone().into_string().map_err(|found| {
            runtime_error(format!("{what}: `run` must be a string, found {found}"))
        })?,
    };
    let handler = ScriptHandler::compile(ScriptSource::Inline(code.clone()), &ctx.0.env)
        .map_err(|e| runtime_error(format!("{what}: {}", e.describe())))?;
    // The spec rebuilds this task when a run resumes from a checkpoint.
    let spec = serde_json::json!({ "run": { "Script": code } });
    Ok(TaskDef::new(id, Arc::new(handler)).with_spec(spec))
}

/// Register the `ctx` API on `engine`.
pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Ctx>("TaskContext");
    engine.register_fn("to_string", |_: &mut Ctx| "TaskContext".to_string());
    engine.register_fn("to_debug", |c: &mut Ctx| format!("{:?}", c.task()));
    register_identity(engine);
    register_results(engine);
    register_channel(engine);
    register_control(engine);
    register_checkpoints(engine);
    register_feedback(engine);
    engine.register_fn("log", |c: &mut Ctx, msg: Dynamic| c.task().log(text(&msg)));
}

/// `ctx.task_id`, `ctx.run_id`, `ctx.cycle`, `ctx.attempt`, `ctx.data`.
fn register_identity(engine: &mut Engine) {
    engine.register_get("task_id", |c: &mut Ctx| -> ImmutableString {
        c.task().task_id().into()
    });
    engine.register_get("run_id", |c: &mut Ctx| -> ImmutableString {
        c.task().run_id().into()
    });
    engine.register_get("cycle", |c: &mut Ctx| c.task().cycle() as INT);
    engine.register_get("attempt", |c: &mut Ctx| c.task().attempt() as INT);
    engine.register_get("data", |c: &mut Ctx| to_dynamic(c.task().data()));
}

/// `ctx.input(id)`, `ctx.inputs`, `ctx.result(id)`.
fn register_results(engine: &mut Engine) {
    engine.register_fn("input", |c: &mut Ctx, id: &str| {
        opt_to_dynamic(c.task().input(id))
    });
    let inputs = |c: &mut Ctx| -> Res<Map> {
        let mut map = Map::new();
        for (id, value) in c.task().inputs() {
            map.insert(id.into(), to_dynamic(&value)?);
        }
        Ok(map)
    };
    engine.register_get("inputs", inputs);
    engine.register_fn("inputs", inputs);
    engine.register_fn("result", |c: &mut Ctx, id: &str| {
        opt_to_dynamic(c.task().result(id))
    });
}

/// `ctx.get`, `ctx.set`, `ctx.delete`, `ctx.exists`, `ctx.keys`, `ctx.append`, `ctx.prepend`.
fn register_channel(engine: &mut Engine) {
    engine.register_fn("get", |c: &mut Ctx, key: &str| -> Res<Dynamic> {
        let ch = c.task().channel();
        opt_to_dynamic(c.channel(&format!("ctx.get('{key}')"), ch.get(key))?)
    });
    engine.register_fn(
        "get",
        |c: &mut Ctx, key: &str, default: Dynamic| -> Res<Dynamic> {
            let ch = c.task().channel();
            match c.channel(&format!("ctx.get('{key}')"), ch.get(key))? {
                Some(v) => to_dynamic(&v),
                None => Ok(default),
            }
        },
    );
    engine.register_fn("set", |c: &mut Ctx, key: &str, value: Dynamic| -> Res<()> {
        let what = format!("ctx.set('{key}')");
        let value = to_value_rt(&value, &format!("the value given to {what}"))?;
        let ch = c.task().channel();
        c.channel(&what, ch.set(key, value))
    });
    engine.register_fn("delete", |c: &mut Ctx, key: &str| -> Res<bool> {
        let ch = c.task().channel();
        c.channel(&format!("ctx.delete('{key}')"), ch.delete(key))
    });
    engine.register_fn("exists", |c: &mut Ctx, key: &str| -> Res<bool> {
        let ch = c.task().channel();
        c.channel(&format!("ctx.exists('{key}')"), ch.exists(key))
    });
    engine.register_fn("keys", |c: &mut Ctx| -> Res<Array> {
        let ch = c.task().channel();
        let keys = c.channel("ctx.keys()", ch.keys())?;
        Ok(keys.into_iter().map(Dynamic::from).collect())
    });
    engine.register_fn(
        "append",
        |c: &mut Ctx, key: &str, value: Dynamic| -> Res<INT> {
            let what = format!("ctx.append('{key}')");
            let value = to_value_rt(&value, &format!("the value given to {what}"))?;
            let ch = c.task().channel();
            c.channel(&what, ch.append(key, value)).map(|n| n as INT)
        },
    );
    engine.register_fn(
        "prepend",
        |c: &mut Ctx, key: &str, value: Dynamic| -> Res<INT> {
            let what = format!("ctx.prepend('{key}')");
            let value = to_value_rt(&value, &format!("the value given to {what}"))?;
            let ch = c.task().channel();
            c.channel(&what, ch.prepend(key, value)).map(|n| n as INT)
        },
    );
}

/// Loops, dynamic tasks, terminate and cancel.
fn register_control(engine: &mut Engine) {
    engine.register_fn("next_iteration", |c: &mut Ctx| -> Res<()> {
        c.live()?;
        control(c.task().next_iteration(()))
    });
    engine.register_fn("next_iteration", |c: &mut Ctx, data: Dynamic| -> Res<()> {
        c.live()?;
        let data = to_value_rt(&data, "the data given to ctx.next_iteration")?;
        control(c.task().next_iteration(data))
    });
    engine.register_fn("can_iterate", |c: &mut Ctx| c.task().can_iterate());
    engine.register_fn("next_task", |c: &mut Ctx, id: &str| -> Res<()> {
        c.live()?;
        control(c.task().next_task(id))
    });
    engine.register_fn("next_task", |c: &mut Ctx, id: &str, spec: Map| -> Res<()> {
        c.live()?;
        let def = inline_task(c, id, &spec)?;
        control(c.task().next_task_def(def))
    });
    engine.register_fn("goto", |c: &mut Ctx, id: &str| -> Res<()> {
        c.live()?;
        control(c.task().goto(id))
    });
    engine.register_fn(
        "terminate_workflow",
        |c: &mut Ctx, msg: Dynamic| -> Res<()> {
            c.live()?;
            c.task().terminate_workflow(text(&msg));
            Ok(())
        },
    );
    engine.register_fn("cancel_workflow", |c: &mut Ctx, msg: Dynamic| -> Res<()> {
        c.live()?;
        c.task().cancel_workflow(text(&msg));
        Ok(())
    });
}

/// `ctx.checkpoint()`, `ctx.checkpoint(meta)` (deferred: written after the task completes) and
/// `ctx.checkpoint_now(meta)` (written at once; returns the path; the task runs again from its
/// start when the run resumes from it).
fn register_checkpoints(engine: &mut Engine) {
    engine.register_fn("checkpoint", |c: &mut Ctx| -> Res<()> {
        c.live()?;
        c.task().checkpoint(serde_json::Value::Null);
        Ok(())
    });
    engine.register_fn("checkpoint", |c: &mut Ctx, meta: Dynamic| -> Res<()> {
        c.live()?;
        let meta = to_value_rt(&meta, "the metadata given to ctx.checkpoint")?;
        c.task().checkpoint(meta);
        Ok(())
    });
    let now = |c: &mut Ctx, meta: serde_json::Value| -> Res<ImmutableString> {
        let task = c.task().clone();
        c.wait("ctx.checkpoint_now()", async move {
            task.checkpoint_now(meta).await.map_err(|e| e.to_string())
        })
        .map(ImmutableString::from)
    };
    engine.register_fn("checkpoint_now", move |c: &mut Ctx| {
        now(c, serde_json::Value::Null)
    });
    engine.register_fn(
        "checkpoint_now",
        move |c: &mut Ctx, meta: Dynamic| -> Res<ImmutableString> {
            let meta = to_value_rt(&meta, "the metadata given to ctx.checkpoint_now")?;
            now(c, meta)
        },
    );
}

/// A timeout given to a request: seconds (a number) or a duration string (`"3m"`).
fn timeout_of(t: &Dynamic) -> Res<Option<f64>> {
    if t.is_unit() {
        return Ok(None);
    }
    if let Ok(i) = t.as_int() {
        return Ok(Some(i as f64));
    }
    if let Ok(f) = t.as_float() {
        return Ok(Some(f));
    }
    if let Some(s) = t.read_lock::<ImmutableString>() {
        return humantime::parse_duration(s.as_str())
            .map(|d| Some(d.as_secs_f64()))
            .map_err(|e| runtime_error(format!("timeout '{}': {e}", s.as_str())));
    }
    Err(runtime_error(format!(
        "a timeout is seconds or a duration like \"3m\", not {}",
        t.type_name()
    )))
}

fn strings(options: &Array, what: &str) -> Res<Vec<String>> {
    options
        .iter()
        .map(|o| {
            o.clone()
                .into_string()
                .map_err(|t| runtime_error(format!("{what}: options must be strings, found {t}")))
        })
        .collect()
}

/// Ask and wait; the answer's value or the whole response.
fn ask(c: &Ctx, spec: FeedbackSpec, whole: bool) -> Res<Dynamic> {
    let what = format!("ctx.request_{}()", spec.kind.as_str());
    let task = c.task().clone();
    let response = c.wait(&what, async move {
        task.request_feedback(spec).await.map_err(|e| e.to_string())
    })?;
    if whole {
        to_dynamic(&serde_json::to_value(&response).unwrap_or(serde_json::Value::Null))
    } else {
        to_dynamic(&response.value())
    }
}

/// `ctx.request_approval`, `request_text`, `request_selection`, `request_multi_selection`
/// (each with an optional timeout) and `request_feedback(#{kind, prompt, options, timeout,
/// channel_key})`, which returns the whole response.
fn register_feedback(engine: &mut Engine) {
    fn simple(
        kind: FeedbackKind,
        prompt: &str,
        options: Vec<String>,
        timeout: Option<f64>,
    ) -> FeedbackSpec {
        let mut spec = FeedbackSpec::new(kind, prompt).options(options);
        spec.timeout_secs = timeout;
        spec
    }
    engine.register_fn("request_approval", |c: &mut Ctx, prompt: &str| {
        ask(
            c,
            simple(FeedbackKind::Approval, prompt, vec![], None),
            false,
        )
    });
    engine.register_fn(
        "request_approval",
        |c: &mut Ctx, prompt: &str, t: Dynamic| {
            ask(
                c,
                simple(FeedbackKind::Approval, prompt, vec![], timeout_of(&t)?),
                false,
            )
        },
    );
    engine.register_fn("request_text", |c: &mut Ctx, prompt: &str| {
        ask(c, simple(FeedbackKind::Text, prompt, vec![], None), false)
    });
    engine.register_fn("request_text", |c: &mut Ctx, prompt: &str, t: Dynamic| {
        ask(
            c,
            simple(FeedbackKind::Text, prompt, vec![], timeout_of(&t)?),
            false,
        )
    });
    for (name, kind) in [
        ("request_selection", FeedbackKind::Selection),
        ("request_multi_selection", FeedbackKind::MultiSelection),
    ] {
        engine.register_fn(name, move |c: &mut Ctx, prompt: &str, options: Array| {
            ask(
                c,
                simple(kind, prompt, strings(&options, name)?, None),
                false,
            )
        });
        engine.register_fn(
            name,
            move |c: &mut Ctx, prompt: &str, options: Array, t: Dynamic| {
                ask(
                    c,
                    simple(kind, prompt, strings(&options, name)?, timeout_of(&t)?),
                    false,
                )
            },
        );
    }
    engine.register_fn("request_feedback", |c: &mut Ctx, spec: Map| -> Res<Dynamic> {
        let get = |k: &str| spec.get(k).cloned().unwrap_or(Dynamic::UNIT);
        let kind = match get("kind").into_string().unwrap_or_default().as_str() {
            "approval" => FeedbackKind::Approval,
            "text" => FeedbackKind::Text,
            "selection" => FeedbackKind::Selection,
            "multi_selection" => FeedbackKind::MultiSelection,
            "custom" => FeedbackKind::Custom,
            other => {
                return Err(runtime_error(format!(
                    "ctx.request_feedback: kind '{other}' is not approval, text, selection, multi_selection or custom"
                )));
            }
        };
        let prompt = get("prompt").into_string().unwrap_or_default();
        let options = match get("options").try_cast::<Array>() {
            Some(a) => strings(&a, "ctx.request_feedback")?,
            None => Vec::new(),
        };
        let mut s = simple(kind, &prompt, options, timeout_of(&get("timeout"))?);
        if let Ok(key) = get("channel_key").into_string() {
            s.channel_key = Some(key);
        }
        ask(c, s, true)
    });
}
