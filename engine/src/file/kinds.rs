//! The task kinds and policies behind cargo features: `Script` tasks and `Custom` policies
//! (`script`), `Http` tasks and webhooks (`http`), `Docker` tasks (`docker`). A build without
//! a feature still parses files naming its kinds and refuses them, naming the feature.

use std::sync::Arc;

use super::load::Reporter;
use super::spec::ScriptSpec;
use crate::group::GroupPolicy;
use crate::handler::docker::DockerSpec;
use crate::handler::http::HttpSpec;
use crate::handler::{HandlerEnv, TaskHandler};
use crate::hitl::{Notifier, WebhookConfig};

/// Report a problem with task `name`'s `run`.
fn refuse(rep: &mut Reporter<'_>, name: &str, message: String, hint: Option<&str>) {
    let at = rep.loc.entry_field("tasks", name, "run");
    rep.error(at, format!("task '{name}': {message}"), hint);
}

/// The handler built for task `name` of kind `kind`, or its refusal (`message`) reported at the
/// task's `run` with `hint`.
fn handler_or_refusal(
    rep: &mut Reporter<'_>,
    name: &str,
    kind: &str,
    hint: &str,
    built: Result<Arc<dyn TaskHandler>, String>,
) -> Option<Arc<dyn TaskHandler>> {
    built
        .map_err(|message| refuse(rep, name, format!("{kind} {message}"), Some(hint)))
        .ok()
}

/// The refusal of a kind this build leaves out.
#[cfg(not(all(feature = "script", feature = "http", feature = "docker")))]
fn without(what: &str, feature: &str) -> String {
    format!(
        "{what} need graflow-engine built with its `{feature}` feature (on by default); this build leaves it out"
    )
}

/// The handler of a `Script(…)` task; a script that does not compile is reported at its line.
#[cfg(feature = "script")]
pub(super) fn script_task(
    name: &str,
    s: &ScriptSpec,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<Arc<dyn TaskHandler>> {
    use crate::handler::script::{ScriptHandler, ScriptSource};
    let source = match s {
        ScriptSpec::Inline(code) => ScriptSource::Inline(code.clone()),
        ScriptSpec::File { file } => ScriptSource::File(env.resolve(file)),
    };
    match ScriptHandler::new(source, env) {
        Ok(h) => Some(Arc::new(h)),
        Err(e) => {
            let code = match s {
                ScriptSpec::Inline(code) => Some(code.clone()),
                ScriptSpec::File { file } => std::fs::read_to_string(env.resolve(file)).ok(),
            };
            let (line, column) = match (&code, e.line) {
                (Some(c), Some(l)) => {
                    let (l, col) = super::excerpt::settle(c, l, e.column.unwrap_or(1));
                    (Some(l), Some(col))
                }
                _ => (e.line, e.column),
            };
            let hint = code
                .as_deref()
                .zip(line)
                .and_then(|(c, l)| super::excerpt::caret(c, l, column.unwrap_or(1)));
            let at = script_error_place(rep, name, s, line, column);
            let whereabouts = match (s, line) {
                (ScriptSpec::File { file }, Some(l)) => {
                    format!(" ({file}:{l}:{})", column.unwrap_or(1))
                }
                (ScriptSpec::File { file }, None) => format!(" ({file})"),
                _ => String::new(),
            };
            rep.error(
                at,
                format!("task '{name}': script error{whereabouts}: {}", e.message),
                hint.as_deref(),
            );
            None
        }
    }
}

/// Without the `script` feature a `Script(…)` task is refused.
#[cfg(not(feature = "script"))]
pub(super) fn script_task(
    name: &str,
    _: &ScriptSpec,
    _: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<Arc<dyn TaskHandler>> {
    refuse(rep, name, without("Script tasks", "script"), None);
    None
}

/// Where a script error is: inside the inline code when the script reports a line, else the task.
#[cfg(feature = "script")]
fn script_error_place(
    rep: &Reporter<'_>,
    task: &str,
    spec: &ScriptSpec,
    line: Option<usize>,
    column: Option<usize>,
) -> Option<usize> {
    let run = rep.loc.entry_field("tasks", task, "run");
    let (ScriptSpec::Inline(code), Some(line)) = (spec, line) else {
        return run;
    };
    let offset: usize = code
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line_text = code[offset.min(code.len())..].lines().next().unwrap_or("");
    let col_bytes: usize = line_text
        .chars()
        .take(column.unwrap_or(1).saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    // The code sits inside `Script(…)`: find its literal after `run:`.
    let literal_key = run.and_then(|r| rep.loc.field(r, "Script").or(Some(r)));
    literal_key
        .and_then(|k| rep.loc.inside_string_after_paren(k, offset + col_bytes))
        .or(run)
}

/// A `Custom("…")` group policy, compiled; `None` (reported) when it does not compile.
pub(super) fn custom_policy(
    group: &str,
    expr: &str,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<GroupPolicy> {
    #[cfg(feature = "script")]
    let compiled = crate::handler::script::ScriptPolicy::new(expr, &env.runtimes.script)
        .map(|p| GroupPolicy::Custom(Arc::new(p)))
        .map_err(|e| format!("custom policy does not compile: {e}"));
    #[cfg(not(feature = "script"))]
    let compiled = {
        let _ = (expr, env);
        Err(without("custom policies", "script"))
    };
    compiled
        .map_err(|message| {
            let key = rep.loc.entry_field("groups", group, "policy");
            rep.error(key, format!("group '{group}': {message}"), None);
        })
        .ok()
}

/// The handler of an `Http(…)` task; errors name the bad field.
pub(super) fn http_task(
    name: &str,
    spec: &HttpSpec,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<Arc<dyn TaskHandler>> {
    #[cfg(feature = "http")]
    let built = crate::handler::http::HttpHandler::new(spec.clone(), env)
        .map(|h| Arc::new(h) as Arc<dyn TaskHandler>)
        .map_err(String::from);
    #[cfg(not(feature = "http"))]
    let built = {
        let _ = (spec, env);
        Err(without("tasks", "http"))
    };
    let hint = "Http(url: \"http://…\", method: \"POST\", body: \"…\", timeout: \"30s\")";
    handler_or_refusal(rep, name, "Http", hint, built)
}

/// The handler of a `Docker(…)` task; errors name the bad field.
pub(super) fn docker_task(
    name: &str,
    spec: &DockerSpec,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<Arc<dyn TaskHandler>> {
    #[cfg(feature = "docker")]
    let built = crate::handler::docker::DockerHandler::new(spec.clone(), env)
        .map(|h| Arc::new(h) as Arc<dyn TaskHandler>)
        .map_err(String::from);
    #[cfg(not(feature = "docker"))]
    let built = {
        let _ = (spec, env);
        Err(without("tasks", "docker"))
    };
    let hint = "Docker(image: \"…\", cmd: [\"sh\", \"-c\", \"…\"])";
    handler_or_refusal(rep, name, "Docker", hint, built)
}

/// A webhook notifier for `config`; fails when its method or `ca_file` is bad.
pub(super) fn webhook(config: WebhookConfig) -> Result<Arc<dyn Notifier>, String> {
    #[cfg(feature = "http")]
    {
        reqwest::Method::from_bytes(config.method.as_bytes())
            .map_err(|_| format!("webhook method '{}' is not an HTTP method", config.method))?;
        Ok(Arc::new(crate::hitl::WebhookNotifier::new(config)?))
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = config;
        Err(without("webhook notifications", "http"))
    }
}
