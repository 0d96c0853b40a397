//! The task-context protocol between a child process and the engine: the environment variable
//! names, the request and response lines, the table of operations, and a small synchronous
//! client (what `graflow ctx` uses; any language can speak the same protocol).
//!
//! One request is one line of JSON, `{"token": "...", "op": "...", "args": [...]}`; the answer
//! is one line, `{"ok": true, "value": ...}` or `{"ok": false, "error": "..."}`. A connection may
//! carry several requests, answered in order.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

/// Environment variable: the id of the run.
pub const ENV_RUN_ID: &str = "GRAFLOW_RUN_ID";
/// Environment variable: the id of the task.
pub const ENV_TASK_ID: &str = "GRAFLOW_TASK_ID";
/// Environment variable: the 1-based execution count of the task.
pub const ENV_CYCLE: &str = "GRAFLOW_CYCLE";
/// Environment variable: the 0-based retry attempt.
pub const ENV_ATTEMPT: &str = "GRAFLOW_ATTEMPT";
/// Environment variable: JSON of the data passed by the previous `next-iteration`.
pub const ENV_DATA: &str = "GRAFLOW_DATA";
/// Environment variable: path of a file holding the data, when it is too large for the
/// environment (then [`ENV_DATA`] is not set).
pub const ENV_DATA_FILE: &str = "GRAFLOW_DATA_FILE";
/// Environment variable: JSON object of the predecessors' results.
pub const ENV_INPUTS: &str = "GRAFLOW_INPUTS";
/// Environment variable: path of a file holding the inputs, when they are too large for the
/// environment (then [`ENV_INPUTS`] is not set).
pub const ENV_INPUTS_FILE: &str = "GRAFLOW_INPUTS_FILE";
/// Environment variable: a path the child may write its result to.
pub const ENV_RESULT_FILE: &str = "GRAFLOW_RESULT_FILE";
/// Environment variable: the path of the context server's Unix socket.
pub const ENV_SOCKET: &str = "GRAFLOW_SOCKET";
/// Environment variable: the secret that identifies this execution to the context server.
pub const ENV_TOKEN: &str = "GRAFLOW_TOKEN";
/// Environment variable: the absolute path of the graflow executable.
pub const ENV_BIN: &str = "GRAFLOW_BIN";

/// The longest request line the server reads.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The execution's secret ([`ENV_TOKEN`]).
    pub token: String,
    /// The operation's name, as in [`OPS`].
    pub op: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<Value>,
}

/// One response line.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The operation succeeded with this value.
    Ok(Value),
    /// The operation was refused or failed.
    Err(String),
}

impl Response {
    /// The JSON line, without its newline.
    pub fn to_line(&self) -> String {
        let v = match self {
            Response::Ok(value) => json!({"ok": true, "value": value}),
            Response::Err(error) => json!({"ok": false, "error": error}),
        };
        v.to_string()
    }

    /// Parse a response line.
    pub fn parse(line: &str) -> Result<Response, ProtocolError> {
        let v: Value =
            serde_json::from_str(line).map_err(|e| ProtocolError::BadResponse(e.to_string()))?;
        match v.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(Response::Ok(v.get("value").cloned().unwrap_or(Value::Null))),
            Some(false) => Ok(Response::Err(
                v.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            )),
            None => Err(ProtocolError::BadResponse("no boolean 'ok' field".into())),
        }
    }
}

/// How an argument is read from a command line and checked by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A key or task id: always a string, taken as written.
    Name,
    /// Any JSON value; on a command line, JSON when it parses, else a string.
    Value,
    /// A message: taken as written (the server renders a non-string as JSON text).
    Text,
    /// A number; on a command line, written as JSON.
    Number,
}

/// One argument of an operation.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    /// Its name in usage lines.
    pub name: &'static str,
    /// How it is read.
    pub kind: ArgKind,
    /// Whether it may be left out (optional arguments come last).
    pub optional: bool,
}

/// What an operation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Nothing (the value is null; `graflow ctx` prints nothing).
    Nothing,
    /// A value.
    Value,
    /// A boolean; `graflow ctx` prints it and exits 0 for true, 1 for false.
    Bool,
}

/// One row of the operation table.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// The name on the wire and on the command line.
    pub name: &'static str,
    /// Its arguments, in order.
    pub args: &'static [ArgSpec],
    /// What it answers.
    pub answer: Answer,
    /// One line saying what it does.
    pub about: &'static str,
}

impl OpInfo {
    /// `name ARG [OPT]`.
    pub fn usage(&self) -> String {
        let mut s = self.name.to_string();
        for a in self.args {
            if a.optional {
                s.push_str(&format!(" [{}]", a.name));
            } else {
                s.push_str(&format!(" {}", a.name));
            }
        }
        s
    }

    fn required(&self) -> usize {
        self.args.iter().filter(|a| !a.optional).count()
    }
}

const fn req(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: false,
    }
}

const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: true,
    }
}

use ArgKind::{Name, Number, Text, Value as Any};

/// Every operation, in the order `graflow ctx --help` lists them. A new operation is a row here,
/// a variant of [`Op`] and an arm in the server's dispatch.
#[rustfmt::skip]
pub const OPS: &[OpInfo] = &[
    OpInfo { name: "get", args: &[req("KEY", Name), opt("DEFAULT", Any)], answer: Answer::Value, about: "the channel value under KEY (DEFAULT, else null, when absent)" },
    OpInfo { name: "set", args: &[req("KEY", Name), req("VALUE", Any)], answer: Answer::Nothing, about: "store VALUE under KEY in the channel" },
    OpInfo { name: "delete", args: &[req("KEY", Name)], answer: Answer::Value, about: "remove KEY from the channel; true when it existed" },
    OpInfo { name: "exists", args: &[req("KEY", Name)], answer: Answer::Bool, about: "whether KEY holds a value" },
    OpInfo { name: "keys", args: &[], answer: Answer::Value, about: "all channel keys, sorted" },
    OpInfo { name: "append", args: &[req("KEY", Name), req("VALUE", Any)], answer: Answer::Value, about: "push VALUE onto the end of the list under KEY; the new length" },
    OpInfo { name: "prepend", args: &[req("KEY", Name), req("VALUE", Any)], answer: Answer::Value, about: "push VALUE onto the front of the list under KEY; the new length" },
    OpInfo { name: "incr", args: &[req("KEY", Name), opt("N", Number)], answer: Answer::Value, about: "atomically add N (default 1) to the number under KEY; the new value" },
    OpInfo { name: "input", args: &[req("ID", Name)], answer: Answer::Value, about: "the result of predecessor ID (null when there is none)" },
    OpInfo { name: "inputs", args: &[], answer: Answer::Value, about: "all predecessors' results, keyed by id" },
    OpInfo { name: "result", args: &[req("ID", Name)], answer: Answer::Value, about: "the last result of any finished task ID (null when none)" },
    OpInfo { name: "data", args: &[], answer: Answer::Value, about: "the data passed by the previous next-iteration (null at first)" },
    OpInfo { name: "info", args: &[], answer: Answer::Value, about: "task_id, run_id, cycle, attempt and max_cycles of this execution" },
    OpInfo { name: "log", args: &[req("MESSAGE", Text)], answer: Answer::Nothing, about: "write a line to the task's log" },
    OpInfo { name: "next-iteration", args: &[opt("DATA", Any)], answer: Answer::Nothing, about: "run this task again with DATA once it ends; its successors wait" },
    OpInfo { name: "can-iterate", args: &[], answer: Answer::Bool, about: "whether another execution fits within the task's cycle limit" },
    OpInfo { name: "next-task", args: &[req("ID", Name)], answer: Answer::Nothing, about: "run task ID next (a new task from the workflow's definitions, or a jump to an existing one)" },
    OpInfo { name: "goto", args: &[req("ID", Name)], answer: Answer::Nothing, about: "jump to task ID; this task's successors are skipped" },
    OpInfo { name: "terminate", args: &[opt("MESSAGE", Text)], answer: Answer::Nothing, about: "end the run successfully once this task completes" },
    OpInfo { name: "cancel", args: &[opt("MESSAGE", Text)], answer: Answer::Nothing, about: "cancel the run; this task does not complete" },
    OpInfo { name: "set-result", args: &[req("VALUE", Any)], answer: Answer::Nothing, about: "make VALUE the task's result (unless the result file is written)" },
    OpInfo { name: "checkpoint", args: &[opt("META", Any)], answer: Answer::Nothing, about: "write a checkpoint once this task completes (META is stored with it)" },
    OpInfo { name: "checkpoint-now", args: &[opt("META", Any)], answer: Answer::Value, about: "write a checkpoint now; prints its path (on resume this task runs again)" },
    OpInfo { name: "request-approval", args: &[req("PROMPT", Text), opt("TIMEOUT", Any)], answer: Answer::Bool, about: "ask a human to approve; true/false (TIMEOUT: seconds or \"3m\")" },
    OpInfo { name: "request-text", args: &[req("PROMPT", Text), opt("TIMEOUT", Any)], answer: Answer::Value, about: "ask a human for text; prints it" },
    OpInfo { name: "request-selection", args: &[req("PROMPT", Text), req("OPTIONS", Any), opt("TIMEOUT", Any)], answer: Answer::Value, about: "ask a human to pick one of OPTIONS (a JSON array); prints it" },
    OpInfo { name: "request-multi-selection", args: &[req("PROMPT", Text), req("OPTIONS", Any), opt("TIMEOUT", Any)], answer: Answer::Value, about: "ask a human to pick any of OPTIONS; prints them as JSON" },
    OpInfo { name: "request-feedback", args: &[req("SPEC", Any)], answer: Answer::Value, about: "ask with SPEC {kind, prompt, options, timeout, channel_key}; prints the whole response" },
];

/// The table row of operation `name`.
pub fn op_info(name: &str) -> Option<&'static OpInfo> {
    OPS.iter().find(|o| o.name == name)
}

/// A checked operation with its arguments.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Op {
    Get {
        key: String,
        default: Option<Value>,
    },
    Set {
        key: String,
        value: Value,
    },
    Delete {
        key: String,
    },
    Exists {
        key: String,
    },
    Keys,
    Append {
        key: String,
        value: Value,
    },
    Prepend {
        key: String,
        value: Value,
    },
    Incr {
        key: String,
        by: f64,
    },
    Input {
        id: String,
    },
    Inputs,
    Result {
        id: String,
    },
    Data,
    Info,
    Log {
        message: String,
    },
    NextIteration {
        data: Value,
    },
    CanIterate,
    NextTask {
        id: String,
    },
    Goto {
        id: String,
    },
    Terminate {
        message: String,
    },
    Cancel {
        message: String,
    },
    SetResult {
        value: Value,
    },
    Checkpoint {
        meta: Value,
    },
    CheckpointNow {
        meta: Value,
    },
    Request {
        spec: crate::hitl::FeedbackSpec,
        whole: bool,
    },
}

/// A timeout argument: seconds, or a duration string such as `"3m"`.
fn timeout_arg(v: Option<Value>) -> Result<Option<f64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => humantime::parse_duration(&s)
            .map(|d| Some(d.as_secs_f64()))
            .map_err(|e| format!("TIMEOUT '{s}': {e}")),
        Some(other) => Err(format!(
            "TIMEOUT must be seconds or a duration like \"3m\", got {other}"
        )),
    }
}

fn options_arg(v: Value) -> Result<Vec<String>, String> {
    let list: Vec<String> = serde_json::from_value(v.clone())
        .map_err(|_| format!("OPTIONS must be a JSON array of strings, got {v}"))?;
    Ok(list)
}

/// Pops checked arguments in table order.
struct Args<'a> {
    info: &'static OpInfo,
    values: std::vec::IntoIter<Value>,
    specs: std::slice::Iter<'a, ArgSpec>,
}

impl Args<'_> {
    /// The next argument, converted as its kind says; `None` for an absent optional one.
    fn next(&mut self) -> Result<Option<Value>, String> {
        let spec = self.specs.next();
        let Some(value) = self.values.next() else {
            return Ok(None);
        };
        let Some(spec) = spec else {
            return Ok(None);
        };
        let value = match spec.kind {
            ArgKind::Name => match value {
                Value::String(_) => value,
                other => {
                    return Err(format!(
                        "{}: {} must be a string, got {other}",
                        self.info.name, spec.name
                    ));
                }
            },
            ArgKind::Text => match value {
                Value::String(_) => value,
                other => Value::String(other.to_string()),
            },
            ArgKind::Number => match value {
                Value::Number(_) => value,
                other => {
                    return Err(format!(
                        "{}: {} must be a number, got {other}",
                        self.info.name, spec.name
                    ));
                }
            },
            ArgKind::Value => value,
        };
        Ok(Some(value))
    }

    fn string(&mut self) -> Result<String, String> {
        Ok(match self.next()? {
            Some(Value::String(s)) => s,
            _ => String::new(),
        })
    }

    fn value(&mut self) -> Result<Value, String> {
        Ok(self.next()?.unwrap_or(Value::Null))
    }
}

impl Op {
    /// Check `args` against the table row of `name` and build the operation. Errors
    /// ([`ProtocolError::BadRequest`]) name the operation and show its usage.
    pub fn parse(name: &str, args: Vec<Value>) -> Result<Op, ProtocolError> {
        Op::build(name, args).map_err(ProtocolError::BadRequest)
    }

    fn build(name: &str, args: Vec<Value>) -> Result<Op, String> {
        let info = op_info(name).ok_or_else(|| {
            format!(
                "unknown operation '{name}' (known: {})",
                OPS.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
            )
        })?;
        if args.len() < info.required() || args.len() > info.args.len() {
            return Err(format!(
                "{name} takes {} argument{} ({} given); usage: {}",
                if info.required() == info.args.len() {
                    info.args.len().to_string()
                } else {
                    format!("{} to {}", info.required(), info.args.len())
                },
                if info.args.len() == 1 { "" } else { "s" },
                args.len(),
                info.usage()
            ));
        }
        let mut a = Args {
            info,
            values: args.into_iter(),
            specs: info.args.iter(),
        };
        Ok(match name {
            "get" => Op::Get {
                key: a.string()?,
                default: a.next()?,
            },
            "set" => Op::Set {
                key: a.string()?,
                value: a.value()?,
            },
            "delete" => Op::Delete { key: a.string()? },
            "exists" => Op::Exists { key: a.string()? },
            "keys" => Op::Keys,
            "append" => Op::Append {
                key: a.string()?,
                value: a.value()?,
            },
            "prepend" => Op::Prepend {
                key: a.string()?,
                value: a.value()?,
            },
            "incr" => {
                let key = a.string()?;
                let by = a.next()?.and_then(|v| v.as_f64()).unwrap_or(1.0);
                Op::Incr { key, by }
            }
            "input" => Op::Input { id: a.string()? },
            "inputs" => Op::Inputs,
            "result" => Op::Result { id: a.string()? },
            "data" => Op::Data,
            "info" => Op::Info,
            "log" => Op::Log {
                message: a.string()?,
            },
            "next-iteration" => Op::NextIteration { data: a.value()? },
            "can-iterate" => Op::CanIterate,
            "next-task" => Op::NextTask { id: a.string()? },
            "goto" => Op::Goto { id: a.string()? },
            "terminate" => Op::Terminate {
                message: a.string()?,
            },
            "cancel" => Op::Cancel {
                message: a.string()?,
            },
            "set-result" => Op::SetResult { value: a.value()? },
            "checkpoint" => Op::Checkpoint { meta: a.value()? },
            "checkpoint-now" => Op::CheckpointNow { meta: a.value()? },
            "request-approval" | "request-text" => {
                use crate::hitl::{FeedbackKind, FeedbackSpec};
                let kind = if name == "request-approval" {
                    FeedbackKind::Approval
                } else {
                    FeedbackKind::Text
                };
                let mut spec = FeedbackSpec::new(kind, a.string()?);
                spec.timeout_secs = timeout_arg(a.next()?)?;
                Op::Request { spec, whole: false }
            }
            "request-selection" | "request-multi-selection" => {
                use crate::hitl::{FeedbackKind, FeedbackSpec};
                let kind = if name == "request-selection" {
                    FeedbackKind::Selection
                } else {
                    FeedbackKind::MultiSelection
                };
                let prompt = a.string()?;
                let options = options_arg(a.value()?)?;
                let mut spec = FeedbackSpec::new(kind, prompt).options(options);
                spec.timeout_secs = timeout_arg(a.next()?)?;
                Op::Request { spec, whole: false }
            }
            "request-feedback" => {
                let raw = a.value()?;
                let mut obj = raw
                    .as_object()
                    .cloned()
                    .ok_or_else(|| format!("SPEC must be a JSON object, got {raw}"))?;
                let timeout = timeout_arg(obj.remove("timeout"))?;
                let mut spec: crate::hitl::FeedbackSpec =
                    serde_json::from_value(Value::Object(obj)).map_err(|e| {
                        format!("SPEC: {e} (fields: kind, prompt, options, timeout, channel_key)")
                    })?;
                spec.timeout_secs = timeout;
                Op::Request { spec, whole: true }
            }
            other => return Err(format!("operation '{other}' has no implementation")),
        })
    }
}

/// Read one command-line word as an argument of `kind`: names and messages as written; values
/// and numbers as JSON when they parse, else as a string.
pub fn arg_from_word(kind: ArgKind, word: &str) -> Value {
    match kind {
        ArgKind::Name | ArgKind::Text => Value::String(word.to_string()),
        ArgKind::Value | ArgKind::Number => {
            serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.to_string()))
        }
    }
}

/// A request or a response line does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A response line is not `{"ok": true, "value": …}` or `{"ok": false, "error": …}`.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// A request names an unknown operation or gives it the wrong arguments; the message
    /// shows the operation's usage.
    #[error("{0}")]
    BadRequest(String),
}

/// Why a call through [`Client`] did not produce a value.
#[derive(Debug, Error)]
pub enum ClientError {
    /// `GRAFLOW_SOCKET` or `GRAFLOW_TOKEN` is missing: not inside a task.
    #[error("{0} is not set: graflow ctx must be run from a Shell or Command task")]
    NotInTask(&'static str),
    /// The socket could not be reached or the connection broke.
    #[error("cannot reach the task context server at {path}: {message}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The engine refused the operation; the message says why.
    #[error("{0}")]
    Refused(String),
    /// The answer was not a protocol line.
    #[error("{0}")]
    Protocol(String),
}

/// A synchronous client of the context server.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    token: String,
}

impl Client {
    /// A client for `socket` with `token`.
    pub fn new(socket: impl Into<PathBuf>, token: impl Into<String>) -> Self {
        Client {
            socket: socket.into(),
            token: token.into(),
        }
    }

    /// A client configured by [`ENV_SOCKET`] and [`ENV_TOKEN`].
    pub fn from_env() -> Result<Self, ClientError> {
        let socket = std::env::var_os(ENV_SOCKET)
            .filter(|s| !s.is_empty())
            .ok_or(ClientError::NotInTask(ENV_SOCKET))?;
        let token = std::env::var(ENV_TOKEN)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(ClientError::NotInTask(ENV_TOKEN))?;
        Ok(Client::new(socket, token))
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Send one request and wait for its answer.
    pub fn call(&self, op: &str, args: Vec<Value>) -> Result<Value, ClientError> {
        let io = |e: std::io::Error| ClientError::Io {
            path: self.socket.clone(),
            message: e.to_string(),
        };
        let request = Request {
            token: self.token.clone(),
            op: op.to_string(),
            args,
        };
        let mut line = serde_json::to_string(&request)
            .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))?;
        line.push('\n');
        let mut stream = UnixStream::connect(&self.socket).map_err(io)?;
        stream.write_all(line.as_bytes()).map_err(io)?;
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).map_err(io)?;
        if answer.is_empty() {
            return Err(ClientError::Protocol(
                "the context server closed the connection without answering".into(),
            ));
        }
        match Response::parse(answer.trim_end())
            .map_err(|e| ClientError::Protocol(e.to_string()))?
        {
            Response::Ok(v) => Ok(v),
            Response::Err(e) => Err(ClientError::Refused(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_with_its_required_arguments() {
        for info in OPS {
            let args: Vec<Value> = info
                .args
                .iter()
                .filter(|a| !a.optional)
                .map(|a| match (a.kind, a.name) {
                    (ArgKind::Number, _) => json!(2),
                    (_, "OPTIONS") => json!(["a", "b"]),
                    (_, "SPEC") => json!({"kind": "text", "prompt": "?"}),
                    _ => json!("x"),
                })
                .collect();
            assert!(Op::parse(info.name, args).is_ok(), "{}", info.name);
        }
    }

    #[test]
    fn arity_and_kinds_are_checked() {
        let e = Op::parse("set", vec![json!("k")]).unwrap_err().to_string();
        assert!(e.contains("usage: set KEY VALUE"), "{e}");
        let e = Op::parse("get", vec![json!(1)]).unwrap_err().to_string();
        assert!(e.contains("KEY must be a string"), "{e}");
        let e = Op::parse("incr", vec![json!("k"), json!("many")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("N must be a number"), "{e}");
        let e = Op::parse("fly", vec![]).unwrap_err();
        assert!(matches!(e, ProtocolError::BadRequest(_)));
        let e = e.to_string();
        assert!(e.contains("unknown operation 'fly'"), "{e}");
        assert_eq!(
            Op::parse("incr", vec![json!("k")]).unwrap(),
            Op::Incr {
                key: "k".into(),
                by: 1.0
            }
        );
        assert_eq!(
            Op::parse("log", vec![json!({"a": 1})]).unwrap(),
            Op::Log {
                message: r#"{"a":1}"#.into()
            }
        );
    }

    #[test]
    fn words_become_json_when_they_parse() {
        assert_eq!(arg_from_word(ArgKind::Value, "42"), json!(42));
        assert_eq!(arg_from_word(ArgKind::Value, "[1,2]"), json!([1, 2]));
        assert_eq!(arg_from_word(ArgKind::Value, "hello"), json!("hello"));
        assert_eq!(arg_from_word(ArgKind::Value, "\"42\""), json!("42"));
        assert_eq!(arg_from_word(ArgKind::Name, "42"), json!("42"));
        assert_eq!(arg_from_word(ArgKind::Text, "true"), json!("true"));
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Ok(json!({"a": [1]})),
            Response::Ok(Value::Null),
            Response::Err("no".into()),
        ] {
            assert_eq!(Response::parse(&r.to_line()).unwrap(), r);
        }
        assert!(Response::parse("{}").is_err());
        assert!(Response::parse("nope").is_err());
    }
}
