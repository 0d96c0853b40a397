//! `graflow ctx …`: the task-context client that Shell and Command tasks call. Synchronous and
//! small: it checks the operation against the engine's table, sends one request over the
//! socket named by `GRAFLOW_SOCKET`, and prints the answer.

use std::io::Write;

use clap::Args;
use graflow_engine::handler::process::protocol::{
    Answer, Client, ClientError, OPS, Op, OpInfo, arg_from_word, op_info,
};
use serde_json::Value;

use super::exit;

/// Arguments of `graflow ctx`.
#[derive(Debug, Args)]
#[command(
    about = "Talk to the running engine from inside a Shell or Command task",
    after_help = ops_help(),
)]
pub struct CtxArgs {
    /// Print every answer as JSON (strings quoted); put it before the operation.
    #[arg(long)]
    pub json: bool,

    /// The operation (listed below).
    #[arg(value_name = "OP")]
    pub op: Option<String>,

    /// The operation's arguments: keys, ids and messages as written; values as JSON when they
    /// parse, else as strings.
    #[arg(
        value_name = "ARG",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// The list of operations shown by `graflow ctx --help`.
fn ops_help() -> String {
    let width = OPS.iter().map(|o| o.usage().len()).max().unwrap_or(0);
    let mut s = String::from("Operations:\n");
    for o in OPS {
        s.push_str(&format!("  {:width$}  {}\n", o.usage(), o.about));
    }
    s.push_str(
        "\nExit status: 0 done (exists/can-iterate: true), 1 refused by the engine \
         (exists/can-iterate: false), 2 usage error or not inside a task.\n\
         The environment and the socket protocol are described in docs/task-context.md.",
    );
    s
}

/// Run the client; returns the exit code.
pub fn run(args: &CtxArgs) -> i32 {
    let Some(name) = args.op.as_deref() else {
        eprintln!("graflow ctx: name an operation; `graflow ctx --help` lists them");
        return exit::BAD_INPUT;
    };
    let Some(info) = op_info(name) else {
        eprintln!("graflow ctx: unknown operation '{name}'; `graflow ctx --help` lists them");
        return exit::BAD_INPUT;
    };
    let values = words_to_args(info, &args.args);
    // Check locally so usage errors need no engine and exit 2.
    if let Err(e) = Op::parse(name, values.clone()) {
        eprintln!("graflow ctx: {e}");
        return exit::BAD_INPUT;
    }
    let client = match Client::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("graflow ctx: {e}");
            return exit::BAD_INPUT;
        }
    };
    match client.call(name, values) {
        Ok(value) => print_answer(info, &value, args.json),
        Err(ClientError::NotInTask(v)) => {
            eprintln!("graflow ctx: {}", ClientError::NotInTask(v));
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("graflow ctx {name}: {e}");
            exit::FAILURE
        }
    }
}

/// Convert command-line words by the kinds the table gives each argument.
fn words_to_args(info: &OpInfo, words: &[String]) -> Vec<Value> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| match info.args.get(i) {
            Some(spec) => arg_from_word(spec.kind, w),
            None => Value::String(w.clone()),
        })
        .collect()
}

/// Print the answer; returns the exit code. A closed stdout (`… | head -0`) is not an error.
fn print_answer(info: &OpInfo, value: &Value, json: bool) -> i32 {
    let mut out = std::io::stdout().lock();
    match info.answer {
        Answer::Nothing => exit::SUCCESS,
        Answer::Bool => {
            let yes = value.as_bool().unwrap_or(false);
            let _ = writeln!(out, "{yes}");
            if yes { exit::SUCCESS } else { exit::FAILURE }
        }
        Answer::Value => {
            let _ = match value {
                Value::String(s) if !json => writeln!(out, "{s}"),
                other => writeln!(out, "{other}"),
            };
            exit::SUCCESS
        }
    }
}
