//! Turning a parsed [`WorkflowSpec`] into a runnable [`Workflow`]: task kinds become handlers,
//! durations and policies are checked, flow strings are parsed and their names resolved — each
//! problem a [`Diagnostic`] pointing at its place in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::Placement;
use crate::error::{BuildError, Span};
use crate::flow::{Flow, Leaf, ParFlow, parse_flow};
use crate::group::GroupPolicy;
use crate::handler::builtin::{NoopHandler, SleepHandler, ValueHandler};
use crate::handler::feedback::FeedbackHandler;
use crate::handler::process::{ProcessHandler, ProcessSpec, Program};
use crate::handler::{HandlerEnv, Runtimes, TaskHandler};
use crate::hitl::{ConsoleNotifier, FeedbackKind, FeedbackSpec, Notifier, WebhookConfig};
use crate::pool::{PoolDef, QueueDef, RATE_HINT, RateLimit};
use crate::template::Template;
use crate::workflow::{GroupDef, RetryPolicy, TaskDef, Workflow, WorkflowBuilder};

use super::kinds;
use super::locate::Locator;
use super::spec::{
    AnswerKind, BackendSpec, ChannelSpec, FeedbackTaskSpec, NotifySpec, PolicySpec, RetrySpec,
    RunSpec, TaskSpec, WorkflowSpec,
};
use super::{Diagnostic, Severity};

const DURATION_HINT: &str = "write a number with a unit, like \"500ms\", \"30s\" or \"2m\"";
const NAME_HINT: &str = "names may hold letters, digits, '_', '-', '.' and ':'";

/// Collects diagnostics with positions.
pub(super) struct Reporter<'a> {
    pub file: PathBuf,
    pub loc: Locator<'a>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Reporter<'_> {
    pub fn at(
        &mut self,
        severity: Severity,
        offset: Option<usize>,
        message: String,
        hint: Option<&str>,
    ) {
        let (line, column) = offset
            .map(|o| {
                let p = self.loc.pos(o);
                (p.line, p.column)
            })
            .unwrap_or((0, 0));
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            column,
            message,
            hint: hint.map(str::to_string),
        });
    }

    pub fn error(&mut self, offset: Option<usize>, message: String, hint: Option<&str>) {
        self.at(Severity::Error, offset, message, hint);
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration ({e})"))?;
    Ok(crate::limits::check_duration(d, &format!("'{text}'"))?)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Build the workflow, or return every error found.
pub(super) fn assemble(
    spec: &WorkflowSpec,
    rep: &mut Reporter<'_>,
    path: &Path,
    runtimes: &Runtimes,
) -> Option<Workflow> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let env = HandlerEnv::new(base, runtimes.clone());
    let mut b = Workflow::builder(spec.name.clone());
    b.description(spec.description.clone());

    let pools = pools_and_queues(spec, rep, &mut b);
    for (name, task) in &spec.tasks {
        if !valid_name(name) {
            let at = rep.loc.entry("tasks", name);
            rep.error(
                at,
                format!("task name '{name}' cannot be written in a flow"),
                Some(NAME_HINT),
            );
            continue;
        }
        if spec.groups.contains_key(name) {
            let at = rep.loc.entry("groups", name);
            rep.error(
                at,
                format!("'{name}' names both a task and a group"),
                Some("rename one of them"),
            );
            continue;
        }
        if let Some(def) = task_def(name, task, &env, Some(&pools), rep) {
            b.add(def);
        }
    }
    check_environment(spec, rep);
    if let Some(text) = &spec.keep_for {
        match crate::limits::parse_duration(text, "keep_for") {
            Ok(d) if d.is_zero() => {
                let at = rep.loc.top_field("keep_for");
                rep.error(
                    at,
                    "keep_for must be longer than zero".into(),
                    Some(KEEP_FOR_HINT),
                );
            }
            Ok(_) => {}
            Err(e) => {
                let at = rep.loc.top_field("keep_for");
                rep.error(at, e.to_string(), Some(KEEP_FOR_HINT));
            }
        }
    }
    if let Some(list) = &spec.notify
        && let Err(m) = notifiers(list, &env.base_dir)
    {
        let at = rep.loc.top_field("notify");
        rep.error(
            at,
            format!("notify: {m}"),
            Some("notifiers are `Console` or `Webhook(url: \"http://…\")`; `notify: []` tells nobody"),
        );
    }

    let names: Vec<&str> = spec
        .tasks
        .keys()
        .chain(spec.groups.keys())
        .map(String::as_str)
        .collect();
    for (name, group) in &spec.groups {
        if !valid_name(name) {
            let at = rep.loc.entry("groups", name);
            rep.error(
                at,
                format!("group name '{name}' cannot be written in a flow"),
                Some(NAME_HINT),
            );
            continue;
        }
        let key_at = rep.loc.entry_field("groups", name, "members");
        let Some(members) = parse_in_string(
            &group.members,
            key_at,
            &names,
            rep,
            &format!("members of group '{name}'"),
        ) else {
            continue;
        };
        let members = match members.as_slice() {
            [one] => one.clone(),
            _ => {
                rep.error(
                    key_at,
                    format!(
                        "the members of group '{name}' must be one expression like \"a | b | c\""
                    ),
                    Some("join the members with `|`; a member may be a chain: \"a >> a2 | b\""),
                );
                continue;
            }
        };
        let Some(policy) = policy(name, &group.policy, &env, rep) else {
            continue;
        };
        let placement = match &group.backend {
            None => Placement::Inherit,
            Some(BackendSpec::Local) => Placement::Local,
            Some(BackendSpec::Redis { .. }) => Placement::Fleet,
        };
        let members = match members {
            Flow::Par(p) => Flow::Par(ParFlow {
                items: p.items,
                ..ParFlow::default()
            }),
            single => single,
        };
        b.add_group(
            GroupDef::new(name.clone(), members)
                .policy(policy)
                .placement(placement),
        );
    }

    let flow_at = rep.loc.top_field("flow");
    let statements =
        parse_in_string(&spec.flow, flow_at, &names, rep, "the flow").unwrap_or_default();
    for s in statements {
        b.flow(s);
    }
    if let Some(start) = &spec.start {
        b.start(start.clone());
    }
    if let Some(n) = spec.max_steps {
        b.max_steps(n);
    }
    if let Some(n) = spec.max_cycles {
        b.max_cycles(n);
    }
    for (k, v) in &spec.params {
        b.param(k.clone(), v.clone());
    }
    if rep.has_errors() {
        return None;
    }
    build(b, rep, &names)
}

fn build(mut b: WorkflowBuilder, rep: &mut Reporter<'_>, names: &[&str]) -> Option<Workflow> {
    match b.build() {
        Ok(wf) => Some(wf),
        Err(e) => {
            let loc = &rep.loc;
            let at = match &e {
                BuildError::UnknownStart(_) => loc.top_field("start"),
                BuildError::PolicyConfig { group, .. } => loc
                    .entry_field("groups", group, "policy")
                    .or_else(|| loc.top_field("flow")),
                BuildError::DuplicateGroup(g)
                | BuildError::GroupContainsItself(g)
                | BuildError::EmptyGroup(g) => {
                    loc.entry("groups", g).or_else(|| loc.top_field("flow"))
                }
                BuildError::InvalidTask { task, .. } => loc.entry("tasks", task),
                BuildError::InvalidPool { pool, .. } => loc.entry("pools", pool),
                BuildError::NameClash(n) => loc.entry("groups", n),
                _ => loc.top_field("flow"),
            };
            let unknown_start = match &e {
                BuildError::UnknownStart(s) => {
                    crate::suggest::did_you_mean(s, names.iter().copied())
                }
                _ => None,
            };
            let hint = match &e {
                BuildError::UnknownStart(_) => unknown_start.as_deref(),
                BuildError::NoStart | BuildError::MultipleStarts(_) => {
                    Some("add `start: \"task\"` to the workflow")
                }
                BuildError::MemberWithPredecessor { .. } => {
                    Some("put the predecessor before the whole group: `x >> (a | b)`")
                }
                _ => None,
            };
            rep.error(at, e.to_string(), hint);
            None
        }
    }
}

/// Parse a flow string found at `key_at`, check its names, and map errors into the file.
fn parse_in_string(
    text: &str,
    key_at: Option<usize>,
    names: &[&str],
    rep: &mut Reporter<'_>,
    what: &str,
) -> Option<Vec<Flow>> {
    let place = |rep: &Reporter<'_>, span: &Span| {
        key_at
            .and_then(|k| rep.loc.inside_string(k, span.offset))
            .or(key_at)
    };
    match parse_flow(text) {
        Err(BuildError::FlowSyntax { message, span }) => {
            let at = place(rep, &span);
            rep.error(at, format!("syntax error in {what}: {message}"), Some("the grammar: a >> b, a | b, (a | b) >> c; statements end with ';' or a new line"));
            None
        }
        Err(other) => {
            rep.error(key_at, other.to_string(), None);
            None
        }
        Ok(statements) => {
            let mut ok = true;
            for s in &statements {
                each_name(s, &mut |name, span| {
                    if !names.contains(&name) {
                        ok = false;
                        let at = span
                            .and_then(|sp| key_at.and_then(|k| rep.loc.inside_string(k, sp.offset)))
                            .or(key_at);
                        let guess = crate::suggest::did_you_mean(name, names.iter().copied())
                            .map(|g| format!("; {g}"))
                            .unwrap_or_default();
                        rep.error(
                            at,
                            format!("unknown task or group '{name}' in {what}{guess}"),
                            Some("define it under `tasks` or `groups`"),
                        );
                    }
                });
            }
            ok.then_some(statements)
        }
    }
}

fn each_name(flow: &Flow, f: &mut dyn FnMut(&str, Option<Span>)) {
    match flow {
        Flow::Leaf(Leaf::Name { name, span }) => f(name, *span),
        Flow::Leaf(_) => {}
        Flow::Seq(items) => items.iter().for_each(|i| each_name(i, f)),
        Flow::Par(p) => p.items.iter().for_each(|i| each_name(i, f)),
    }
}

fn policy(
    group: &str,
    spec: &PolicySpec,
    env: &HandlerEnv,
    rep: &mut Reporter<'_>,
) -> Option<GroupPolicy> {
    Some(match spec {
        PolicySpec::Strict => GroupPolicy::Strict,
        PolicySpec::BestEffort => GroupPolicy::BestEffort,
        PolicySpec::AtLeast(n) => GroupPolicy::AtLeast(*n),
        PolicySpec::Critical(ids) => GroupPolicy::Critical(ids.clone()),
        PolicySpec::Custom(expr) => kinds::custom_policy(group, expr, env, rep)?,
    })
}

pub(super) fn task_def(
    name: &str,
    task: &TaskSpec,
    env: &HandlerEnv,
    pools: Option<&BTreeMap<String, PoolDef>>,
    rep: &mut Reporter<'_>,
) -> Option<TaskDef> {
    let errors_before = rep.error_count();
    let bad = |rep: &mut Reporter<'_>, f: &str, message: String, hint: Option<&str>| {
        let at = rep.loc.entry_field("tasks", name, f);
        rep.error(at, format!("task '{name}': {message}"), hint);
    };

    let retry = match &task.retries {
        None => RetryPolicy::default(),
        Some(r) => match retry_policy(r) {
            Ok(p) => p,
            Err(m) => {
                bad(rep, "retries", m, Some(DURATION_HINT));
                RetryPolicy::default()
            }
        },
    };
    let timeout = match task.timeout.as_deref().map(duration).transpose() {
        Ok(t) => t,
        Err(m) => {
            bad(rep, "timeout", format!("timeout: {m}"), Some(DURATION_HINT));
            None
        }
    };
    let rate_limit = match task.rate_limit.as_deref().map(str::parse::<RateLimit>) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(m)) => {
            bad(
                rep,
                "rate_limit",
                format!("rate_limit: {m}"),
                Some(RATE_HINT),
            );
            None
        }
    };
    let cwd = task.cwd.as_deref().map(|c| env.resolve(c));
    if let Some(dir) = cwd.as_ref().filter(|d| !d.is_dir()) {
        bad(
            rep,
            "cwd",
            format!("cwd '{}' is not a folder", dir.display()),
            Some("a relative cwd starts at the workflow file's folder"),
        );
    }
    let uses_process = matches!(task.run, RunSpec::Shell(_) | RunSpec::Command(_));
    if !uses_process && (cwd.is_some() || !task.env.is_empty()) {
        bad(
            rep,
            "run",
            "`env` and `cwd` apply only to Shell and Command tasks".into(),
            Some("remove them here, or make this a Shell(\"…\") or Command([…]) task"),
        );
    }

    let handler: Option<Arc<dyn TaskHandler>> = match &task.run {
        RunSpec::Value(v) => Some(Arc::new(ValueHandler(v.clone()))),
        RunSpec::Noop => Some(Arc::new(NoopHandler)),
        RunSpec::Sleep(d) => match duration(d) {
            Ok(d) => Some(Arc::new(SleepHandler(d))),
            Err(m) => {
                bad(rep, "run", format!("Sleep: {m}"), Some(DURATION_HINT));
                None
            }
        },
        RunSpec::Shell(line) if line.trim().is_empty() => {
            bad(
                rep,
                "run",
                "Shell needs a command line".into(),
                Some("Shell(\"echo hello\")"),
            );
            None
        }
        RunSpec::Command(argv) if argv.is_empty() || argv[0].trim().is_empty() => {
            bad(
                rep,
                "run",
                "Command needs a program: Command([\"program\", \"arg\", …])".into(),
                Some("Command([\"ls\", \"-l\"]) runs ls without a shell"),
            );
            None
        }
        RunSpec::Shell(_) | RunSpec::Command(_) => {
            let program = match &task.run {
                RunSpec::Shell(line) => Program::Shell(line.clone()),
                RunSpec::Command(argv) => Program::Argv(argv.clone()),
                _ => return None,
            };
            let spec = ProcessSpec {
                program,
                env: task
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                cwd: cwd.clone(),
            };
            Some(Arc::new(ProcessHandler::new(spec, env)))
        }
        RunSpec::Script(s) => kinds::script_task(name, s, env, rep),
        RunSpec::Http(h) => kinds::http_task(name, h, env, rep),
        RunSpec::Docker(d) => kinds::docker_task(name, d, env, rep),
        RunSpec::Workflow(w) => super::nested::workflow_task(name, w, env, rep),
        RunSpec::Approval(a) => {
            let feedback = FeedbackTaskSpec {
                kind: AnswerKind::Approval,
                prompt: a.prompt.clone(),
                options: Vec::new(),
                timeout: a.timeout.clone(),
                channel_key: a.channel_key.clone(),
                notify: a.notify.clone(),
            };
            match feedback_handler(&feedback, &env.base_dir) {
                Ok(h) => Some(Arc::new(h)),
                Err(m) => {
                    bad(
                        rep,
                        "run",
                        format!("Approval: {m}"),
                        Some("Approval(prompt: \"…\", timeout: \"3m\")"),
                    );
                    None
                }
            }
        }
        RunSpec::Feedback(f) => match feedback_handler(f, &env.base_dir) {
            Ok(h) => Some(Arc::new(h)),
            Err(m) => {
                bad(
                    rep,
                    "run",
                    format!("Feedback: {m}"),
                    Some(
                        "Feedback(kind: Selection, prompt: \"…\", options: [\"a\", \"b\"], timeout: \"5m\")",
                    ),
                );
                None
            }
        },
    };
    let mut def = TaskDef::new(name, handler?).retry(retry);
    def.options.timeout = timeout;
    def.options.max_cycles = task.max_cycles;
    def.options.queue = task.queue.clone();
    def.options.env = task
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    def.options.cwd = cwd;
    def.options.pool = task.pool.clone();
    def.options.slots = task.slots;
    def.options.rate_limit = rate_limit;
    if let Some(pools) = pools
        && let Err(m) = crate::workflow::check_pool(pools, &def.options)
    {
        let field = match &m {
            crate::workflow::PoolMisfit::UnknownPool { .. } => "pool",
            crate::workflow::PoolMisfit::TooManySlots { .. } => "slots",
        };
        bad(
            rep,
            field,
            m.to_string(),
            Some("pools are defined at the top level: pools: {\"api\": Pool(slots: 4)}"),
        );
    }
    if def.options.slots == Some(0) {
        bad(rep, "slots", "slots must be at least 1".into(), None);
        def.options.slots = None;
    }
    if def.options.slots.is_some() && def.options.pool.is_none() {
        bad(
            rep,
            "slots",
            "slots needs a pool: add `pool: \"name\"`".into(),
            None,
        );
        def.options.slots = None;
    }
    if let Err(m) = def.check() {
        bad(
            rep,
            "retries",
            m,
            Some("retries: (max: 3, backoff: \"500ms\", factor: 2.0, max_backoff: \"10s\")"),
        );
    }
    (rep.error_count() == errors_before).then_some(def)
}

fn feedback_handler(f: &FeedbackTaskSpec, base: &Path) -> Result<FeedbackHandler, String> {
    let kind = match f.kind {
        AnswerKind::Approval => FeedbackKind::Approval,
        AnswerKind::Text => FeedbackKind::Text,
        AnswerKind::Selection => FeedbackKind::Selection,
        AnswerKind::MultiSelection => FeedbackKind::MultiSelection,
        AnswerKind::Custom => FeedbackKind::Custom,
    };
    let mut spec = FeedbackSpec::new(kind, f.prompt.clone()).options(f.options.clone());
    if let Some(t) = &f.timeout {
        spec.timeout_secs = Some(
            duration(t)
                .map_err(|m| format!("timeout: {m}"))?
                .as_secs_f64(),
        );
    }
    spec.channel_key = f.channel_key.clone();
    let notifiers = f
        .notify
        .as_deref()
        .map(|n| notifiers(n, base))
        .transpose()?;
    FeedbackHandler::new(spec, notifiers).map_err(|e| e.to_string())
}

/// Build notifiers from their specs; errors name the bad field.
pub fn notifiers(specs: &[NotifySpec], base: &Path) -> Result<Vec<Arc<dyn Notifier>>, String> {
    specs
        .iter()
        .map(|n| -> Result<Arc<dyn Notifier>, String> {
            match n {
                NotifySpec::Console => Ok(Arc::new(ConsoleNotifier)),
                NotifySpec::Webhook(w) => {
                    if !w.url.starts_with("http://") && !w.url.starts_with("https://") {
                        return Err(format!(
                            "webhook url '{}' must start with http:// or https://",
                            w.url
                        ));
                    }
                    let body = w
                        .body
                        .as_deref()
                        .map(Template::parse)
                        .transpose()
                        .map_err(|e| format!("webhook body: {e}"))?;
                    let secret = w
                        .secret
                        .as_deref()
                        .map(WebhookConfig::decode_secret)
                        .transpose()?;
                    let timeout = match &w.timeout {
                        Some(t) => duration(t).map_err(|m| format!("webhook timeout: {m}"))?,
                        None => Duration::from_secs(10),
                    };
                    let method = w
                        .method
                        .clone()
                        .unwrap_or_else(|| "POST".into())
                        .to_ascii_uppercase();
                    kinds::webhook(WebhookConfig {
                        url: w.url.clone(),
                        method,
                        headers: w
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        body,
                        secret,
                        retries: w.retries.unwrap_or(3),
                        timeout,
                        ca_file: w.ca_file.as_deref().map(|f| base.join(f)),
                    })
                }
            }
        })
        .collect()
}

fn retry_policy(r: &RetrySpec) -> Result<RetryPolicy, String> {
    let mut p = RetryPolicy::retries(r.max);
    if let Some(b) = &r.backoff {
        p.backoff = duration(b).map_err(|m| format!("retries.backoff: {m}"))?;
    }
    if let Some(f) = r.factor {
        p.factor = f;
    }
    if let Some(m) = &r.max_backoff {
        p.max_backoff = duration(m).map_err(|e| format!("retries.max_backoff: {e}"))?;
    } else if p.max_backoff < p.backoff {
        p.max_backoff = p.backoff;
    }
    if let Some(j) = r.jitter {
        p.jitter = j;
    }
    Ok(p)
}

/// The top-level `pools` and `queues`: check each and add it to the builder.
fn pools_and_queues(
    spec: &WorkflowSpec,
    rep: &mut Reporter<'_>,
    b: &mut WorkflowBuilder,
) -> BTreeMap<String, PoolDef> {
    let mut defined = BTreeMap::new();
    for (name, pool) in &spec.pools {
        if !valid_name(name) {
            let at = rep.loc.entry("pools", name);
            rep.error(
                at,
                format!("pool name '{name}' is not a valid name"),
                Some(NAME_HINT),
            );
            continue;
        }
        let mut def = PoolDef::new(pool.slots);
        if let Err(m) = def.check() {
            let at = rep.loc.entry_field("pools", name, "slots");
            rep.error(at, format!("pool '{name}': {m}"), None);
            continue;
        }
        if let Some(text) = &pool.rate_limit {
            match text.parse::<RateLimit>() {
                Ok(r) => def.rate_limit = Some(r),
                Err(m) => {
                    let at = rep.loc.entry_field("pools", name, "rate_limit");
                    rep.error(
                        at,
                        format!("pool '{name}': rate_limit: {m}"),
                        Some(RATE_HINT),
                    );
                    continue;
                }
            }
        }
        defined.insert(name.clone(), def.clone());
        b.pool(name.clone(), def);
    }
    for (name, queue) in &spec.queues {
        if !valid_name(name) {
            let at = rep.loc.entry("queues", name);
            rep.error(
                at,
                format!("'{name}' is not a valid queue name"),
                Some(NAME_HINT),
            );
            continue;
        }
        let mut def = QueueDef::default();
        if let Some(text) = &queue.rate_limit {
            match text.parse::<RateLimit>() {
                Ok(r) => def.rate_limit = Some(r),
                Err(m) => {
                    let at = rep.loc.entry_field("queues", name, "rate_limit");
                    rep.error(
                        at,
                        format!("queue '{name}': rate_limit: {m}"),
                        Some(RATE_HINT),
                    );
                    continue;
                }
            }
        }
        b.queue(name.clone(), def);
    }
    defined
}

/// What a `keep_for` looks like, for its errors.
const KEEP_FOR_HINT: &str = "keep_for: \"7d\" (also \"12h\", \"30m\"): checkpoints of this workflow older than that are deleted when a new one is written";

fn check_environment(spec: &WorkflowSpec, rep: &mut Reporter<'_>) {
    // Every Redis URL of a file names the one Redis its runs use.
    let mut urls: Vec<(Option<usize>, String, &str)> = Vec::new();
    if let Some(ChannelSpec::Redis { url }) = &spec.channel {
        urls.push((rep.loc.top_field("channel"), "the channel".into(), url));
    }
    if let Some(BackendSpec::Redis { url }) = &spec.backend {
        urls.push((rep.loc.top_field("backend"), "the backend".into(), url));
    }
    for (name, group) in &spec.groups {
        if let Some(BackendSpec::Redis { url }) = &group.backend {
            let at = rep.loc.entry_field("groups", name, "backend");
            urls.push((at, format!("group '{name}'"), url));
        }
    }
    for (at, what, url) in &urls {
        if !redis_url(url) {
            rep.error(
                *at,
                format!("{what}: '{url}' is not a Redis URL"),
                Some("write redis://host:port, redis://host:port/db or redis+cluster://host:port,host:port"),
            );
        }
    }
    if let Some((_, first_what, first)) = urls.first()
        && let Some((at, what, url)) = urls.iter().find(|(_, _, u)| u != first)
    {
        rep.error(
            *at,
            format!("{what} names {url}, but {first_what} names {first}: a run uses one Redis"),
            Some("use the same URL everywhere, or set it once with --backend"),
        );
    }
    for (name, task) in &spec.tasks {
        if let Some(q) = &task.queue
            && !valid_name(q)
        {
            let at = rep.loc.entry_field("tasks", name, "queue");
            rep.error(
                at,
                format!("task '{name}': '{q}' is not a valid queue name"),
                Some(NAME_HINT),
            );
        }
    }
}

/// Whether `url` names a Redis server.
fn redis_url(url: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://", "redis+cluster://"]
        .iter()
        .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len())
}
