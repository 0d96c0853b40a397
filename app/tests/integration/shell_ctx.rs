//! Shell and Command tasks talking to the engine through the real `graflow ctx` binary (and,
//! from Python, through the raw socket protocol): loops, the channel, terminate, goto,
//! next-task, cancel, log, set-result, usage errors and a PATH without graflow on it.

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::sync::Arc;

use graflow_engine::handler::builtin::ValueHandler;
use graflow_engine::handler::process::protocol::OPS;
use graflow_engine::handler::process::{ProcessHandler, ProcessRuntime, ProcessSpec};
use graflow_engine::handler::{HandlerEnv, Runtimes};
use graflow_engine::prelude::*;
use graflow_engine::{LogStream, WorkflowBuilder};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_graflow");

/// Handlers whose children find the graflow binary under test.
fn env() -> HandlerEnv {
    HandlerEnv::new(
        std::env::temp_dir(),
        Runtimes {
            process: ProcessRuntime::with_graflow_bin(BIN),
            ..Runtimes::default()
        },
    )
}

fn shell(wf: &mut WorkflowBuilder, env: &HandlerEnv, id: &str, line: &str) {
    wf.add(TaskDef::new(
        id,
        Arc::new(ProcessHandler::new(ProcessSpec::shell(line), env)),
    ));
}

async fn run(mut wf: WorkflowBuilder) -> (RunOutcome, Vec<RunEvent>) {
    let wf = Arc::new(wf.build().expect("workflow builds"));
    let mut handle = Engine::new().start(wf, RunOptions::new().with_events());
    let mut rx = handle.take_events().expect("events");
    let outcome = handle.wait().await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

fn lines(events: &[RunEvent], task: &str, stream: LogStream) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskLog {
                task: t,
                stream: s,
                line,
                ..
            } if &**t == task && *s == stream => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn started(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskStarted { task, .. } => Some(task.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_shell_loop_of_three_with_next_iteration_data() {
    let env = env();
    let mut wf = Workflow::builder("loop");
    shell(
        &mut wf,
        &env,
        "count",
        r#"
        set -e
        [ "$(graflow ctx --json data)" = "$GRAFLOW_DATA" ]
        n=$(graflow ctx data)
        [ "$n" = null ] && n=0
        n=$((n + 1))
        graflow ctx append seen "cycle $GRAFLOW_CYCLE saw $n"
        if [ "$n" -lt 3 ]; then graflow ctx next-iteration "$n"; fi
        echo "$n"
        "#,
    );
    shell(&mut wf, &env, "after", "graflow ctx input count");
    wf.flow_str("count >> after");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        outcome.channel["seen"],
        json!(["cycle 1 saw 1", "cycle 2 saw 2", "cycle 3 saw 3"])
    );
    assert_eq!(outcome.results["count"], json!(3));
    assert_eq!(outcome.results["after"], json!(3));
    assert_eq!(started(&events), ["count", "count", "count", "after"]);
}

#[tokio::test]
async fn can_iterate_stops_at_the_cycle_limit() {
    let env = env();
    let mut wf = Workflow::builder("limit");
    let t = wf.add(
        TaskDef::new(
            "spin",
            Arc::new(ProcessHandler::new(
                ProcessSpec::shell(
                    "if graflow ctx can-iterate >/dev/null; then graflow ctx next-iteration; fi; \
                     echo $GRAFLOW_CYCLE",
                ),
                &env,
            )),
        )
        .max_cycles(4),
    );
    wf.flow(t);
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["spin"], json!(4));
    assert_eq!(started(&events).len(), 4);
}

#[tokio::test]
async fn the_channel_carries_values_between_tasks() {
    let env = env();
    let mut wf = Workflow::builder("channel");
    shell(
        &mut wf,
        &env,
        "writer",
        r#"
        set -e
        graflow ctx set greeting "hello world"
        graflow ctx set count 2
        graflow ctx set flag true
        graflow ctx append items a
        graflow ctx append items '{"b": 1}'
        graflow ctx prepend items z
        graflow ctx incr count 3
        graflow ctx incr count
        graflow ctx set gone soon
        "#,
    );
    shell(
        &mut wf,
        &env,
        "reader",
        r#"
        graflow ctx get greeting
        graflow ctx get count
        graflow ctx get items
        graflow ctx --json get greeting
        graflow ctx get missing fallback
        graflow ctx get missing
        graflow ctx exists greeting; echo "exists rc=$?"
        graflow ctx exists nothing; echo "exists rc=$?"
        graflow ctx delete gone
        graflow ctx keys
        graflow ctx get flag
        "#,
    );
    wf.flow_str("writer >> reader");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let writer = lines(&events, "writer", LogStream::Stdout);
    // append/prepend print the new length, incr the new value.
    assert_eq!(writer, ["1", "2", "3", "5", "6"]);
    assert_eq!(
        lines(&events, "reader", LogStream::Stdout),
        [
            "hello world",
            "6",
            r#"["z","a",{"b":1}]"#,
            r#""hello world""#,
            "fallback",
            "null",
            "true",
            "exists rc=0",
            "false",
            "exists rc=1",
            "true",
            r#"["count","flag","greeting","items"]"#,
            "true",
        ]
    );
    assert_eq!(outcome.channel["items"], json!(["z", "a", {"b": 1}]));
    assert_eq!(outcome.channel["count"], json!(6));
    assert_eq!(outcome.channel["flag"], json!(true));
    assert!(!outcome.channel.contains_key("gone"));
}

#[tokio::test]
async fn terminate_ends_the_run_successfully() {
    let env = env();
    let mut wf = Workflow::builder("terminate");
    shell(&mut wf, &env, "a", "echo a");
    shell(
        &mut wf,
        &env,
        "b",
        r#"graflow ctx terminate "enough work"; echo b-done"#,
    );
    shell(&mut wf, &env, "c", "echo c");
    wf.flow_str("a >> b >> c");
    let (outcome, _) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.terminated.as_deref(), Some("enough work"));
    assert_eq!(outcome.results["b"], json!("b-done"));
    assert!(!outcome.results.contains_key("c"));
}

#[tokio::test]
async fn next_task_adds_a_defined_task_and_goto_jumps() {
    let env = env();
    let mut wf = Workflow::builder("dynamic");
    shell(&mut wf, &env, "a", "graflow ctx next-task extra && echo a");
    shell(&mut wf, &env, "b", "graflow ctx goto d && echo b");
    shell(&mut wf, &env, "c", "echo c");
    shell(&mut wf, &env, "d", "echo d");
    // Defined but not in the flow: next-task brings it in.
    shell(&mut wf, &env, "extra", "echo extra");
    wf.flow_str("a >> b >> c >> d");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(started(&events), ["a", "extra", "b", "d"]);
    assert_eq!(outcome.results["extra"], json!("extra"));
    assert!(!outcome.results.contains_key("c"));
}

#[tokio::test]
async fn an_unknown_task_is_refused_with_exit_1() {
    let env = env();
    let mut wf = Workflow::builder("unknown");
    shell(
        &mut wf,
        &env,
        "a",
        r#"graflow ctx next-task ghost 2>"$GRAFLOW_RESULT_FILE.err"; echo "rc=$? $(cat "$GRAFLOW_RESULT_FILE.err")"; rm -f "$GRAFLOW_RESULT_FILE.err""#,
    );
    wf.flow_str("a");
    let (outcome, _) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        outcome.results["a"],
        json!("rc=1 graflow ctx next-task: task 'a' asked for unknown task 'ghost'")
    );
}

#[tokio::test]
async fn cancel_stops_the_run() {
    let env = env();
    let mut wf = Workflow::builder("cancel");
    shell(
        &mut wf,
        &env,
        "a",
        r#"graflow ctx cancel "stop it"; echo after-cancel"#,
    );
    shell(&mut wf, &env, "b", "echo b");
    wf.flow_str("a >> b");
    let (outcome, events) = run(wf).await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    let err = outcome
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("by task 'a': stop it"), "{err}");
    assert_eq!(started(&events), ["a"]);
    assert!(!outcome.results.contains_key("a"));
}

#[tokio::test]
async fn log_and_set_result() {
    let env = env();
    let mut wf = Workflow::builder("log");
    shell(
        &mut wf,
        &env,
        "a",
        r#"
        graflow ctx log "hello from the log"
        graflow ctx log '{"not": "parsed"}'
        graflow ctx set-result '{"x": [1, 2]}'
        echo "stdout does not win over set-result"
        "#,
    );
    shell(
        &mut wf,
        &env,
        "b",
        r#"
        graflow ctx set-result "from set-result"
        echo '"from the file"' > "$GRAFLOW_RESULT_FILE"
        "#,
    );
    shell(
        &mut wf,
        &env,
        "c",
        r#"graflow ctx info > "$GRAFLOW_RESULT_FILE""#,
    );
    wf.flow_str("a >> b >> c");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        lines(&events, "a", LogStream::Log),
        ["hello from the log", r#"{"not": "parsed"}"#]
    );
    assert_eq!(outcome.results["a"], json!({"x": [1, 2]}));
    assert_eq!(outcome.results["b"], json!("from the file"));
    let info = &outcome.results["c"];
    assert_eq!(info["task_id"], "c");
    assert_eq!(info["run_id"], outcome.run_id.as_str());
    assert_eq!(info["cycle"], 1);
    assert_eq!(info["attempt"], 0);
    assert_eq!(info["max_cycles"], 100);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let env = env();
    let mut wf = Workflow::builder("usage");
    shell(
        &mut wf,
        &env,
        "a",
        r#"
        graflow ctx set only-a-key 2>/dev/null; echo "set rc=$?"
        graflow ctx fly 2>/dev/null; echo "fly rc=$?"
        graflow ctx 2>/dev/null; echo "none rc=$?"
        graflow ctx incr k not-a-number 2>/dev/null; echo "incr rc=$?"
        "#,
    );
    wf.flow_str("a");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        lines(&events, "a", LogStream::Stdout),
        ["set rc=2", "fly rc=2", "none rc=2", "incr rc=2"]
    );
}

#[tokio::test]
async fn graflow_is_found_without_being_on_the_tasks_path() {
    let env = env();
    let bin_dir = PathBuf::from(BIN).parent().unwrap().to_path_buf();
    let mut wf = Workflow::builder("path");
    wf.add(TaskDef::new(
        "a",
        Arc::new(ProcessHandler::new(
            ProcessSpec::shell(
                r#"
                set -e
                echo "$(command -v graflow)"
                echo "$PATH"
                graflow ctx set via-path yes
                "$GRAFLOW_BIN" ctx set via-bin yes
                "#,
            )
            .env("PATH", "/usr/bin:/bin"),
            &env,
        )),
    ));
    // A Command task resolves `graflow` through the same PATH.
    wf.add(TaskDef::new(
        "b",
        Arc::new(ProcessHandler::new(
            ProcessSpec::command(["graflow", "ctx", "get", "via-path"]).env("PATH", "/usr/bin"),
            &env,
        )),
    ));
    wf.flow_str("a >> b");
    let (outcome, events) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let out = lines(&events, "a", LogStream::Stdout);
    assert_eq!(out[0], BIN);
    assert_eq!(out[1], format!("{}:/usr/bin:/bin", bin_dir.display()));
    assert_eq!(outcome.channel["via-path"], json!("yes"));
    assert_eq!(outcome.channel["via-bin"], json!("yes"));
    assert_eq!(outcome.results["b"], json!("yes"));
}

const PYTHON_TASK: &str = r#"
import json, os, socket

def call(op, *args):
    """One request over the task-context socket; raises on a refusal."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ["GRAFLOW_SOCKET"])
        request = {"token": os.environ["GRAFLOW_TOKEN"], "op": op, "args": list(args)}
        s.sendall((json.dumps(request) + "\n").encode())
        answer = json.loads(s.makefile("r").readline())
    if not answer["ok"]:
        raise RuntimeError(answer["error"])
    return answer["value"]

data = json.loads(os.environ["GRAFLOW_DATA"]) or {"n": 0}
inputs = json.loads(os.environ["GRAFLOW_INPUTS"])
n = data["n"] + 1
call("append", "py", {"cycle": int(os.environ["GRAFLOW_CYCLE"]), "n": n})
try:
    call("fly")
except RuntimeError as e:
    call("log", "refused: " + str(e).split(" (")[0])
if n < 3:
    call("next-iteration", {"n": n})
with open(os.environ["GRAFLOW_RESULT_FILE"], "w") as f:
    json.dump({"n": n, "seed": inputs["seed"], "task": os.environ["GRAFLOW_TASK_ID"]}, f)
print("python ran cycle", n)
"#;

#[tokio::test]
async fn a_python_command_task_speaks_the_protocol() {
    let dir = std::env::temp_dir().join(format!("graflow-py-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("task.py");
    std::fs::write(&script, PYTHON_TASK).unwrap();
    let env = env();
    let mut wf = Workflow::builder("python");
    wf.add(TaskDef::new(
        "seed",
        Arc::new(ValueHandler(json!({"rows": 2}))),
    ));
    wf.add(TaskDef::new(
        "py",
        Arc::new(ProcessHandler::new(
            // No graflow on this PATH: the protocol alone is enough.
            ProcessSpec::command(["python3", &script.to_string_lossy()])
                .env("PATH", "/usr/bin:/bin"),
            &env,
        )),
    ));
    wf.flow_str("seed >> py");
    let (outcome, events) = run(wf).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        outcome.results["py"],
        json!({"n": 3, "seed": {"rows": 2}, "task": "py"})
    );
    assert_eq!(
        outcome.channel["py"],
        json!([{"cycle": 1, "n": 1}, {"cycle": 2, "n": 2}, {"cycle": 3, "n": 3}])
    );
    assert_eq!(
        lines(&events, "py", LogStream::Log),
        vec!["refused: unknown operation 'fly'"; 3]
    );
    assert_eq!(
        lines(&events, "py", LogStream::Stdout),
        [
            "python ran cycle 1",
            "python ran cycle 2",
            "python ran cycle 3"
        ]
    );
}

#[test]
fn outside_a_task_graflow_ctx_says_so() {
    let out = StdCommand::new(BIN)
        .args(["ctx", "get", "k"])
        .env_remove("GRAFLOW_SOCKET")
        .env_remove("GRAFLOW_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("graflow ctx must be run from a Shell or Command task"),
        "{err}"
    );
}

#[test]
fn a_dead_socket_exits_1() {
    let out = StdCommand::new(BIN)
        .args(["ctx", "keys"])
        .env("GRAFLOW_SOCKET", "/nonexistent/graflow.sock")
        .env("GRAFLOW_TOKEN", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the task context server"),
        "{err}"
    );
}

#[test]
fn help_lists_every_operation() {
    let out = StdCommand::new(BIN)
        .args(["ctx", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for op in OPS {
        assert!(help.contains(&op.usage()), "{} missing from help", op.name);
        assert!(help.contains(op.about), "{} missing from help", op.name);
    }
}
