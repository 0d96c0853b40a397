//! Running a compiled script: where it runs (inline or on the blocking pool), the scope it
//! sees, and how its errors read.
//!
//! **Where.** A script that is *straight-line* (no loops, no functions or closures, no `Fn`,
//! `call`, `curry` or `sleep`, source at most [`INLINE_MAX_SOURCE`] bytes) can only run a
//! number of operations proportional to its length, each bounded by the sandbox's size limits.
//! Over the memory channel (whose operations complete at once) such a script runs inline,
//! inside the task's future: a trivial script costs a few microseconds instead of the
//! blocking pool's thread hand-off. Every other script runs on a thread of its own with a
//! large stack (Rhai walks nested values recursively; see `sandbox`); its channel
//! calls wait on the runtime through a captured handle, and dropping the task's future
//! (timeout, cancellation) raises a stop flag that the progress callback and the cooperative
//! `sleep` check, so the script ends within a few operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use rhai::{AST, Dynamic, EvalAltResult, Scope};

use super::api::{Bridge, Ctx};
use super::convert::{plain, text, to_value};
use super::sandbox::{self, Execution, Halt, Limits};
use super::{ScriptEnv, ScriptError};
use crate::context::TaskContext;
use crate::handler::{TaskError, TaskResult};

/// Longest source (in bytes) that may run inline.
pub(super) const INLINE_MAX_SOURCE: usize = 4096;

/// Words that make a script run on the blocking pool: loops, and the ways to call back into
/// script code or to wait.
const BLOCKING_WORDS: &[&str] = &[
    "for",
    "while",
    "loop",
    "do",
    "Fn",
    "call",
    "curry",
    "sleep",
    "eval",
    "import",
    // Calls that wait for the run (a checkpoint pauses every task first).
    "checkpoint_now",
    "request_approval",
    "request_text",
    "request_selection",
    "request_multi_selection",
    "request_feedback",
];

/// A script compiled at load time.
pub(super) struct Compiled {
    pub ast: AST,
    /// Whether the script is straight-line (may run inline).
    pub straight: bool,
    /// The file the script came from, for messages.
    pub label: Option<String>,
    pub env: ScriptEnv,
}

/// Whether `source` (compiled to `ast`) is straight-line; see the module doc.
pub(super) fn straight_line(source: &str, ast: &AST) -> bool {
    source.len() <= INLINE_MAX_SOURCE
        && !ast.has_functions()
        && !source
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|word| BLOCKING_WORDS.contains(&word))
}

/// Raises the stop flag when the task's future is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One execution of `script` as the body of the task behind `ctx`.
pub(super) fn execute(script: Arc<Compiled>, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
    if script.straight && ctx.channel().kind() == "memory" {
        return async move { run(&script, ctx, Bridge::Inline, None) }.boxed();
    }
    async move {
        let stop = Arc::new(AtomicBool::new(false));
        let _stop_on_drop = StopOnDrop(stop.clone());
        let handle = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        sandbox::spawn_script_thread(move || {
            let _ = tx.send(run(&script, ctx, Bridge::Blocking(handle), Some(stop)));
        })
        .map_err(|e| TaskError::msg(format!("cannot start the script's thread: {e}")))?;
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(TaskError::msg("the script's thread failed")),
        }
    }
    .boxed()
}

fn run(
    script: &Compiled,
    ctx: TaskContext,
    bridge: Bridge,
    stop: Option<Arc<AtomicBool>>,
) -> TaskResult {
    let runtime = &script.env.runtime;
    let engine = runtime.engine();
    let _entered = sandbox::enter(Execution {
        budget: runtime.limits().max_operations,
        stop,
        log: Some(ctx.clone()),
        time_limit: None,
    });
    let mut scope = Scope::new();
    scope.push("ctx", Ctx::new(ctx, bridge, script.env.clone()));
    let value = engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast)
        .map_err(|e| TaskError::msg(failure(&e, runtime.limits(), script.label.as_deref())))?;
    to_value(&value, "the script's result").map_err(TaskError::msg)
}

/// What went wrong, and where, for a failed evaluation.
pub(super) fn describe(err: &EvalAltResult, limits: &Limits) -> ScriptError {
    let inner = err.unwrap_inner();
    let pos = inner.position();
    let message = match inner {
        EvalAltResult::ErrorRuntime(value, _) => text(value),
        EvalAltResult::ErrorTerminated(value, _) => match value.clone().try_cast::<Halt>() {
            Some(Halt::Stopped) => "the script was stopped (timeout or cancellation)".into(),
            Some(Halt::OperationLimit(n)) => {
                format!("operation limit exceeded: the script ran more than {n} operations")
            }
            Some(Halt::TimeLimit(limit)) => format!(
                "time limit exceeded: the script ran longer than {}",
                humantime::format_duration(limit)
            ),
            None => plain(inner),
        },
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "operation limit exceeded: the script ran more than {} operations",
            limits.max_operations.max(limits.policy_max_operations)
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "call depth limit exceeded: more than {} nested function calls",
            limits.max_call_levels
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => format!(
            "size limit exceeded: {} too large (strings: {} bytes, arrays: {} items, maps: {} entries)",
            what.to_lowercase(),
            limits.max_string_size,
            limits.max_array_size,
            limits.max_map_size
        ),
        other => plain(other),
    };
    ScriptError {
        message,
        line: pos.line(),
        column: pos.position(),
    }
}

/// The task's error message for a failed evaluation: a `throw`n value (or a control call's
/// error) as it is, anything else with its position.
pub(super) fn failure(err: &EvalAltResult, limits: &Limits, label: Option<&str>) -> String {
    let described = describe(err, limits);
    if matches!(err.unwrap_inner(), EvalAltResult::ErrorRuntime(..)) {
        return described.message;
    }
    described.located(label)
}
