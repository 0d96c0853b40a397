//! `Shell` and `Command` tasks: a child process per execution, its output streamed line by line
//! as `task_log` events, and the task context reachable from the child through environment
//! variables and the context server (`graflow ctx …`, or the socket protocol from any language).
//!
//! - [`protocol`]: environment names, request/response lines, the operation table, a client.
//! - `server`: the Unix-socket context server and the per-execution token registry.
//! - `child`: spawning in a process group, streaming output, killing the group on drop.
//! - `runtime`: [`ProcessRuntime`], the engine-wide state.

mod child;
pub mod protocol;
mod result_file;
mod runtime;
mod server;

pub use runtime::ProcessRuntime;

#[cfg(feature = "docker")]
pub(in crate::handler) use self::child::{LineBuffer, STDERR_TAIL};
pub(in crate::handler) use self::server::Execution;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::process::Command;

use self::child::{ChildError, Finished, describe_failure};
use self::protocol::*;
use super::{HandlerEnv, TaskError, TaskHandler, TaskResult};
use crate::context::TaskContext;

/// JSON larger than this goes to a file instead of the environment (Linux refuses a single
/// environment string over 128 KiB).
pub const MAX_ENV_JSON_BYTES: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// A command line for `sh -c`.
    Shell(String),
    /// A program and its arguments, run without a shell.
    Argv(Vec<String>),
}

/// A process task's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// What to run.
    pub program: Program,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory (relative paths resolved against the workflow's folder).
    pub cwd: Option<PathBuf>,
}

impl ProcessSpec {
    /// A `sh -c` task with no extra environment.
    pub fn shell(line: impl Into<String>) -> Self {
        ProcessSpec {
            program: Program::Shell(line.into()),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// A program-and-arguments task with no extra environment.
    pub fn command<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        ProcessSpec {
            program: Program::Argv(argv.into_iter().map(Into::into).collect()),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Set the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// The spec with paths resolved, ready to spawn.
struct Prepared {
    program: Program,
    /// The task's variables other than PATH.
    env: Vec<(String, String)>,
    /// The task's own PATH, which the graflow folder is put in front of.
    path: Option<OsString>,
    /// Where the child runs: the task's `cwd`, else the workflow's folder, else inherited.
    dir: Option<PathBuf>,
}

/// Runs `Shell` and `Command` tasks.
pub struct ProcessHandler {
    spec: Arc<Prepared>,
    runtime: ProcessRuntime,
}

impl ProcessHandler {
    /// A handler for `spec`. A relative `cwd` resolves against `env`'s folder; without `cwd`
    /// the child runs in that folder (or, when it is empty, in the engine's current folder).
    /// A relative program path with a `/` in it (`./scripts/x.sh`) resolves against the
    /// folder the child runs in.
    pub fn new(spec: ProcessSpec, env: &HandlerEnv) -> Self {
        let base = (!env.base_dir.as_os_str().is_empty()).then(|| env.base_dir.clone());
        let dir = match spec.cwd {
            Some(c) if c.is_relative() => Some(match &base {
                Some(b) => b.join(c),
                None => c,
            }),
            Some(c) => Some(c),
            None => base,
        };
        let program = match spec.program {
            Program::Argv(mut argv) => {
                if let (Some(first), Some(dir)) = (argv.first_mut(), &dir)
                    && first.contains('/')
                    && Path::new(first.as_str()).is_relative()
                {
                    *first = dir.join(first.as_str()).to_string_lossy().into_owned();
                }
                Program::Argv(argv)
            }
            shell => shell,
        };
        let mut vars = Vec::with_capacity(spec.env.len());
        let mut path = None;
        for (k, v) in spec.env {
            if k == "PATH" {
                path = Some(OsString::from(v));
            } else {
                vars.push((k, v));
            }
        }
        ProcessHandler {
            spec: Arc::new(Prepared {
                program,
                env: vars,
                path,
                dir,
            }),
            runtime: env.runtimes.process.clone(),
        }
    }
}

impl TaskHandler for ProcessHandler {
    fn kind(&self) -> &'static str {
        match self.spec.program {
            Program::Shell(_) => "shell",
            Program::Argv(_) => "command",
        }
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let spec = self.spec.clone();
        let runtime = self.runtime.clone();
        async move {
            let server = runtime.server().map_err(|e| {
                TaskError::msg(format!("cannot start the task context server: {e}"))
            })?;
            // Dropped when this future ends or is dropped: the token stops working and the
            // scratch files go.
            let mut exec = server.begin(ctx.clone());
            let result_file = exec.file("result");
            let cmd = command(&spec, &ctx, &mut exec, &runtime, &result_file).await?;
            let finished = child::run(cmd, &ctx)
                .await
                .map_err(|e| child_error(&spec, e))?;
            if let Some(failure) = describe_failure(finished.status) {
                return Err(failure_error(&spec, failure, &finished));
            }
            result(&result_file, &exec, finished.last_stdout)
        }
        .boxed()
    }
}

/// Build the command with the task's environment (see `docs/task-context.md`).
async fn command(
    spec: &Prepared,
    ctx: &TaskContext,
    exec: &mut Execution,
    runtime: &ProcessRuntime,
    result_file: &Path,
) -> Result<Command, TaskError> {
    let mut cmd = match &spec.program {
        Program::Shell(line) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
        Program::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(TaskError::msg(
                    "the command is empty: name a program to run",
                ));
            };
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    let token = exec.token().to_string();
    let socket = exec.socket().as_os_str().to_owned();
    let vars = context_vars(
        ctx,
        token,
        socket,
        result_file.as_os_str().to_owned(),
        |name| {
            let path = exec.file(name);
            (path.clone(), path.into_os_string())
        },
    )
    .await?;
    // Variables of the engine's own environment must not leak into the child's.
    for var in [ENV_DATA, ENV_DATA_FILE, ENV_INPUTS, ENV_INPUTS_FILE] {
        cmd.env_remove(var);
    }
    cmd.envs(vars);
    let paths = runtime.paths();
    match &paths.bin {
        Some(bin) => cmd.env(ENV_BIN, bin),
        None => cmd.env_remove(ENV_BIN),
    };
    if let Some(path) = paths.child_path(spec.path.as_ref()) {
        cmd.env("PATH", path);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.dir {
        cmd.current_dir(dir);
    }
    Ok(cmd)
}

/// The task context variables of `docs/task-context.md` other than `GRAFLOW_BIN`: identity,
/// data and inputs (in a file from `scratch` when too large for the environment), and where
/// the result file, the socket and the token are as the body sees them. `scratch(name)` gives
/// the path to write a file named `name` at and the path the body sees it at.
pub(in crate::handler) async fn context_vars(
    ctx: &TaskContext,
    token: String,
    socket: OsString,
    result_file: OsString,
    mut scratch: impl FnMut(&str) -> (PathBuf, OsString),
) -> Result<Vec<(&'static str, OsString)>, TaskError> {
    let mut vars = vec![
        (ENV_RUN_ID, OsString::from(ctx.run_id())),
        (ENV_TASK_ID, OsString::from(ctx.task_id())),
        (ENV_CYCLE, OsString::from(ctx.cycle().to_string())),
        (ENV_ATTEMPT, OsString::from(ctx.attempt().to_string())),
        (ENV_RESULT_FILE, result_file),
        (ENV_SOCKET, socket),
        (ENV_TOKEN, OsString::from(token)),
    ];
    let data = serde_json::to_string(ctx.data())?;
    vars.push(json_var(ENV_DATA, ENV_DATA_FILE, "data.json", data, &mut scratch).await?);
    let inputs = serde_json::to_string(&ctx.inputs())?;
    vars.push(
        json_var(
            ENV_INPUTS,
            ENV_INPUTS_FILE,
            "inputs.json",
            inputs,
            &mut scratch,
        )
        .await?,
    );
    Ok(vars)
}

/// `json` in variable `var`, or, when it is too large, in a file named by `file_var`.
async fn json_var(
    var: &'static str,
    file_var: &'static str,
    name: &str,
    json: String,
    scratch: &mut impl FnMut(&str) -> (PathBuf, OsString),
) -> Result<(&'static str, OsString), TaskError> {
    if json.len() <= MAX_ENV_JSON_BYTES {
        return Ok((var, OsString::from(json)));
    }
    let (path, seen) = scratch(name);
    tokio::fs::write(&path, json)
        .await
        .map_err(|e| TaskError::msg(format!("cannot write {}: {e}", path.display())))?;
    Ok((file_var, seen))
}

/// The result rules: the result file, else `set-result`, else the last non-empty stdout
/// line, else null. The result file is read without following links and up to
/// [`MAX_RESULT_FILE_BYTES`](crate::limits::MAX_RESULT_FILE_BYTES): a link, a folder or a
/// larger file is an error.
pub(in crate::handler) fn result(
    result_file: &Path,
    exec: &Execution,
    last_stdout: Option<String>,
) -> Result<Value, TaskError> {
    if let Some(bytes) = result_file::read(result_file).map_err(TaskError::msg)? {
        return json_or_string(&String::from_utf8_lossy(&bytes));
    }
    if let Some(v) = exec.set_result() {
        return Ok(v);
    }
    match last_stdout {
        Some(line) => json_or_string(&line),
        None => Ok(Value::Null),
    }
}

/// JSON when `text` parses as JSON, else the trimmed text; JSON nested deeper than the
/// parser's limit is an error rather than a string.
fn json_or_string(text: &str) -> Result<Value, TaskError> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) if e.to_string().contains("recursion limit") => Err(TaskError::msg(format!(
            "the result nests deeper than {} levels of arrays and objects",
            crate::limits::MAX_VALUE_DEPTH
        ))),
        Err(_) => Ok(Value::String(text.trim().to_string())),
    }
}

fn program_name(spec: &Prepared) -> &str {
    match &spec.program {
        Program::Shell(_) => "/bin/sh",
        Program::Argv(argv) => argv.first().map(String::as_str).unwrap_or(""),
    }
}

fn child_error(spec: &Prepared, e: ChildError) -> TaskError {
    let name = program_name(spec);
    TaskError::msg(match e {
        ChildError::Spawn(e) => match e.kind() {
            io::ErrorKind::NotFound => match &spec.dir {
                Some(dir) if !dir.is_dir() => {
                    format!("working directory '{}' does not exist", dir.display())
                }
                _ => format!("command not found: {name}"),
            },
            io::ErrorKind::PermissionDenied => {
                format!("cannot run '{name}': permission denied")
            }
            _ => format!("cannot start '{name}': {e}"),
        },
        ChildError::Wait(e) => format!("lost track of '{name}': {e}"),
    })
}

/// Longest stderr line quoted in a failure message.
const QUOTED_LINE_CHARS: usize = 500;

fn failure_error(spec: &Prepared, failure: String, finished: &Finished) -> TaskError {
    let mut message = failure;
    if matches!(spec.program, Program::Shell(_)) {
        match finished.status.code() {
            Some(127) => message.push_str(" (command not found)"),
            Some(126) => message.push_str(" (command not executable)"),
            _ => {}
        }
    }
    push_stderr_tail(&mut message, &finished.stderr_tail);
    TaskError::msg(message)
}

/// Append the non-empty lines of `tail` (each cut to a readable length) to a failure message.
pub(in crate::handler) fn push_stderr_tail<'a>(
    message: &mut String,
    tail: impl IntoIterator<Item = &'a String>,
) {
    let tail: Vec<String> = tail
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(QUOTED_LINE_CHARS).collect())
        .collect();
    if !tail.is_empty() {
        message.push_str("; stderr:\n");
        message.push_str(&tail.join("\n"));
    }
}
