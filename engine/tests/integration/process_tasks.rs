//! `Shell` and `Command` tasks through the engine, with real child processes: the environment,
//! streamed output, the result rules, failures, cwd and env, process groups killed on timeout
//! and cancellation, and the context server's answers to good and bad requests.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::run;
use graflow_engine::handler::process::protocol::{Client, ClientError};
use graflow_engine::handler::process::{ProcessHandler, ProcessSpec};
use graflow_engine::handler::{HandlerEnv, Runtimes};
use graflow_engine::prelude::*;
use graflow_engine::{LogStream, WorkflowBuilder};
use serde_json::{Value, json};

/// A fresh folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graflow-process-test-{}-{}-{:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

fn task(id: &str, spec: ProcessSpec, env: &HandlerEnv) -> TaskDef {
    TaskDef::new(id, Arc::new(ProcessHandler::new(spec, env)))
}

/// A workflow of one process task.
fn single(id: &str, spec: ProcessSpec, env: &HandlerEnv) -> WorkflowBuilder {
    let mut wf = Workflow::builder("process");
    let t = wf.add(task(id, spec, env));
    wf.flow(t);
    wf
}

fn error_of(outcome: &RunOutcome) -> String {
    outcome
        .error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

fn logs(events: &[RunEvent], stream: LogStream) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskLog {
                stream: s, line, ..
            } if *s == stream => Some(line.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_child_sees_its_identity_inputs_and_the_server() {
    let env = HandlerEnv::default();
    let mut wf = Workflow::builder("env");
    let prev = wf.add(TaskDef::new(
        "prev",
        Arc::new(graflow_engine::handler::builtin::ValueHandler(
            json!({"rows": [1, 2]}),
        )),
    ));
    let line = r#"
        test -S "$GRAFLOW_SOCKET" && sock=yes || sock=no
        case "$PATH" in "$(dirname "$GRAFLOW_BIN")":*) path=first;; *) path=missing;; esac
        printf '{"run":"%s","task":"%s","cycle":%s,"attempt":%s,"data":%s,"inputs":%s,
                 "sock":"%s","token_len":%s,"bin":"%s","path":"%s","result_file_set":%s}' \
          "$GRAFLOW_RUN_ID" "$GRAFLOW_TASK_ID" "$GRAFLOW_CYCLE" "$GRAFLOW_ATTEMPT" \
          "$GRAFLOW_DATA" "$GRAFLOW_INPUTS" "$sock" "${#GRAFLOW_TOKEN}" "$GRAFLOW_BIN" "$path" \
          "$([ -n "$GRAFLOW_RESULT_FILE" ] && echo true || echo false)" > "$GRAFLOW_RESULT_FILE"
    "#;
    let show = wf.add(task("show", ProcessSpec::shell(line), &env));
    wf.flow(prev >> show);
    let wf = Arc::new(wf.build().unwrap());
    let outcome = Engine::new()
        .run(wf, RunOptions::new().run_id("run-env-1"))
        .await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let r = &outcome.results["show"];
    assert_eq!(r["run"], "run-env-1");
    assert_eq!(r["task"], "show");
    assert_eq!(r["cycle"], 1);
    assert_eq!(r["attempt"], 0);
    assert_eq!(r["data"], Value::Null);
    assert_eq!(r["inputs"], json!({"prev": {"rows": [1, 2]}}));
    assert_eq!(r["sock"], "yes");
    assert_eq!(r["token_len"], 32);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(r["bin"], exe.to_string_lossy().as_ref());
    assert_eq!(r["path"], "first");
    assert_eq!(r["result_file_set"], true);
}

#[tokio::test]
async fn the_attempt_counts_retries() {
    let env = HandlerEnv::default();
    let mut wf = Workflow::builder("retry");
    let t = wf.add(
        task(
            "flaky",
            ProcessSpec::shell(
                r#"[ "$GRAFLOW_ATTEMPT" -ge 2 ] || exit 1; echo "$GRAFLOW_ATTEMPT""#,
            ),
            &env,
        )
        .retry(RetryPolicy::retries(3).backoff(Duration::from_millis(1))),
    );
    wf.flow(t);
    let (outcome, _) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["flaky"], json!(2));
}

#[tokio::test]
async fn large_inputs_and_data_go_to_files() {
    let env = HandlerEnv::default();
    let big: String = "x".repeat(100_000);
    let mut wf = Workflow::builder("big");
    let prev = wf.add(TaskDef::new(
        "prev",
        Arc::new(graflow_engine::handler::builtin::ValueHandler(json!(big))),
    ));
    let line = r#"
        [ -z "${GRAFLOW_INPUTS+set}" ] || { echo "GRAFLOW_INPUTS should be unset" >&2; exit 1; }
        test -f "$GRAFLOW_INPUTS_FILE" || exit 2
        echo "$(wc -c < "$GRAFLOW_INPUTS_FILE") $GRAFLOW_DATA"
    "#;
    let show = wf.add(task("show", ProcessSpec::shell(line), &env));
    wf.flow(prev >> show);
    let (outcome, _) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    // {"prev":"xxx…"} is 100,000 + 11 bytes.
    assert_eq!(outcome.results["show"], json!("100011 null"));
}

#[tokio::test]
async fn output_streams_line_by_line_while_the_child_runs() {
    let env = HandlerEnv::default();
    let line = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; sleep 1; echo last";
    let mut wf = Workflow::builder("stream");
    let t = wf.add(task("talk", ProcessSpec::shell(line), &env));
    wf.flow(t);
    let wf = Arc::new(wf.build().unwrap());
    let mut handle = Engine::new().start(wf, RunOptions::new().with_events());
    let mut rx = handle.take_events().unwrap();
    let mut events = Vec::new();
    let mut seen_out5 = None;
    while let Some(e) = rx.recv().await {
        if let EventKind::TaskLog { line, .. } = &e.kind
            && line == "out5"
        {
            seen_out5 = Some(Instant::now());
        }
        let last = matches!(e.kind, EventKind::RunFinished { .. });
        events.push(e);
        if last {
            break;
        }
    }
    let finished = Instant::now();
    let outcome = handle.wait().await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(
        logs(&events, LogStream::Stdout),
        ["out1", "out2", "out3", "out4", "out5", "last"]
    );
    assert_eq!(
        logs(&events, LogStream::Stderr),
        ["err1", "err2", "err3", "err4", "err5"]
    );
    let early = finished - seen_out5.expect("out5 was logged");
    assert!(
        early >= Duration::from_millis(700),
        "out5 arrived only {early:?} before the end: not streamed"
    );
    assert_eq!(outcome.results["talk"], json!("last"));
}

#[tokio::test]
async fn long_lines_are_cut_and_bad_utf8_is_replaced() {
    let env = HandlerEnv::default();
    let line =
        r"head -c 70000 /dev/zero | tr '\0' a; echo; printf 'bad \377 byte\n'; printf 'no newline'";
    let (outcome, events) = run(single("noisy", ProcessSpec::shell(line), &env)).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let out = logs(&events, LogStream::Stdout);
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(out[0].starts_with("aaaa"));
    assert!(out[0].ends_with("[line cut at 65536 bytes]"));
    assert!(out[0].len() < 66_000);
    assert_eq!(out[1], "bad \u{fffd} byte");
    assert_eq!(out[2], "no newline");
}

async fn result_of(line: &str) -> Value {
    let env = HandlerEnv::default();
    let (outcome, _) = run(single("t", ProcessSpec::shell(line), &env)).await;
    assert!(outcome.succeeded(), "{line}: {:?}", outcome.error);
    outcome.results["t"].clone()
}

#[tokio::test]
async fn result_rules() {
    // The result file wins over stdout; JSON when it parses…
    assert_eq!(
        result_of(r#"echo '{"a": 1}' > "$GRAFLOW_RESULT_FILE"; echo ignored"#).await,
        json!({"a": 1})
    );
    // …else the trimmed text.
    assert_eq!(
        result_of(r#"printf '  hello world \n\n' > "$GRAFLOW_RESULT_FILE""#).await,
        json!("hello world")
    );
    // The last non-empty stdout line, as JSON…
    assert_eq!(
        result_of("echo start; echo '[1, 2]'; echo; echo '  '").await,
        json!([1, 2])
    );
    // …or as a string.
    assert_eq!(
        result_of("echo one; echo two words").await,
        json!("two words")
    );
    assert_eq!(result_of("echo 42").await, json!(42));
    // Nothing at all: null. Stderr does not count.
    assert_eq!(result_of("echo only-stderr >&2").await, Value::Null);
    assert_eq!(result_of("true").await, Value::Null);
}

#[tokio::test]
async fn a_failing_child_fails_the_task_with_its_stderr() {
    let env = HandlerEnv::default();
    let line = "echo working; echo 'first problem' >&2; echo 'second problem' >&2; exit 3";
    let (outcome, events) = run(single("bad", ProcessSpec::shell(line), &env)).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let err = error_of(&outcome);
    assert!(
        err.contains("task 'bad' failed: exited with status 3"),
        "{err}"
    );
    assert!(err.contains("first problem\nsecond problem"), "{err}");
    assert!(!err.contains("working"), "{err}");
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::TaskFailed { error, .. } if error.starts_with("exited with status 3"))));
}

#[tokio::test]
async fn a_missing_command_is_named() {
    let env = HandlerEnv::default();
    let spec = ProcessSpec::command(["graflow-no-such-program", "x"]);
    let (outcome, _) = run(single("missing", spec, &env)).await;
    let err = error_of(&outcome);
    assert!(
        err.contains("command not found: graflow-no-such-program"),
        "{err}"
    );

    let spec = ProcessSpec::shell("graflow-no-such-program --flag");
    let (outcome, _) = run(single("missing", spec, &env)).await;
    let err = error_of(&outcome);
    assert!(
        err.contains("exited with status 127 (command not found)"),
        "{err}"
    );
    assert!(err.contains("graflow-no-such-program"), "{err}");

    let spec = ProcessSpec::command(Vec::<String>::new());
    let (outcome, _) = run(single("empty", spec, &env)).await;
    assert!(error_of(&outcome).contains("the command is empty"));

    let spec = ProcessSpec::shell("true").cwd("/graflow/no/such/dir");
    let (outcome, _) = run(single("nowhere", spec, &env)).await;
    let err = error_of(&outcome);
    assert!(
        err.contains("working directory '/graflow/no/such/dir' does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn a_signal_is_named() {
    let env = HandlerEnv::default();
    let (outcome, _) = run(single("sig", ProcessSpec::shell("kill -TERM $$"), &env)).await;
    let err = error_of(&outcome);
    assert!(err.contains("killed by signal 15 (SIGTERM)"), "{err}");
}

#[tokio::test]
async fn cwd_env_and_relative_programs() {
    let dir = TempDir::new();
    let base = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(base.join("sub")).unwrap();
    let script = base.join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello from $(pwd) $1\"\n").unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();

    let env = HandlerEnv::new(&base, Runtimes::default());
    let mut wf = Workflow::builder("cwd");
    // A relative cwd resolves against the workflow's folder.
    let a = wf.add(task(
        "a",
        ProcessSpec::shell(r#"echo "$(pwd) $GREETING $GRAFLOW_TASK_ID""#)
            .cwd("sub")
            .env("GREETING", "hi there"),
        &env,
    ));
    // Without cwd, the child runs in the workflow's folder.
    let b = wf.add(task("b", ProcessSpec::shell("pwd"), &env));
    // A relative program path resolves against that folder too.
    let c = wf.add(task("c", ProcessSpec::command(["./hello.sh", "arg"]), &env));
    // The task's env may override the engine's variables.
    let d = wf.add(task(
        "d",
        ProcessSpec::shell("echo $GRAFLOW_TASK_ID").env("GRAFLOW_TASK_ID", "mine"),
        &env,
    ));
    wf.flow(a >> b >> c >> d);
    let (outcome, _) = run(wf).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let sub = base.join("sub");
    assert_eq!(
        outcome.results["a"],
        json!(format!("{} hi there a", sub.display()))
    );
    assert_eq!(outcome.results["b"], json!(base.display().to_string()));
    assert_eq!(
        outcome.results["c"],
        json!(format!("hello from {} arg", base.display()))
    );
    assert_eq!(outcome.results["d"], json!("mine"));
}

#[tokio::test]
async fn a_task_path_keeps_the_graflow_folder_first() {
    let dir = TempDir::new();
    let fake_bin = dir.path().join("bin").join("graflow");
    let runtimes = Runtimes::default().with_process(
        graflow_engine::handler::process::ProcessRuntime::with_graflow_bin(&fake_bin),
    );
    let env = HandlerEnv::new(dir.path(), runtimes);
    let spec = ProcessSpec::shell(r#"echo "$GRAFLOW_BIN|$PATH""#).env("PATH", "/usr/bin:/bin");
    let (outcome, _) = run(single("p", spec, &env)).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    let expected = format!(
        "{}|{}:/usr/bin:/bin",
        fake_bin.display(),
        dir.path().join("bin").display()
    );
    assert_eq!(outcome.results["p"], json!(expected));
}

/// Whether `pid` is gone (or a zombie nobody reaped yet, which runs no code).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.trim_start().starts_with('Z') || rest.trim_start().starts_with('X')
            })
            .unwrap_or(false),
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A shell that starts a grandchild and records both pids in `dir/pids`.
fn sleeper(dir: &Path) -> ProcessSpec {
    ProcessSpec::shell(format!(
        "sleep 60 & echo \"$$ $!\" > '{}/pids.tmp'; mv '{}/pids.tmp' '{}/pids'; wait",
        dir.display(),
        dir.display(),
        dir.display()
    ))
}

fn pids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

async fn assert_all_dead(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|p| dead(*p)) {
        assert!(Instant::now() < deadline, "processes {pids:?} survived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = TempDir::new();
    let env = HandlerEnv::default();
    let mut wf = Workflow::builder("timeout");
    let t = wf.add(task("slow", sleeper(dir.path()), &env).timeout(Duration::from_millis(1500)));
    wf.flow(t);
    let started = Instant::now();
    let (outcome, _) = run(wf).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        error_of(&outcome).contains("timed out after 1s 500ms"),
        "{:?}",
        outcome.error
    );
    let pids = pids(&wait_for_file(&dir.path().join("pids")).await);
    assert_eq!(pids.len(), 2);
    assert_all_dead(&pids).await;
}

#[tokio::test]
async fn cancelling_the_run_kills_the_whole_process_group() {
    let dir = TempDir::new();
    let env = HandlerEnv::default();
    let mut wf = single("slow", sleeper(dir.path()), &env);
    let mut handle = Engine::new().start(Arc::new(wf.build().unwrap()), RunOptions::new());
    let _ = handle.take_events();
    let pids = pids(&wait_for_file(&dir.path().join("pids")).await);
    assert!(
        pids.iter().all(|p| !dead(*p)),
        "the sleepers should be running"
    );
    handle.cancel("stop now");
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_all_dead(&pids).await;
}

#[tokio::test]
async fn background_processes_do_not_hold_the_task() {
    let dir = TempDir::new();
    let env = HandlerEnv::default();
    let line = format!(
        "sleep 30 & echo $! > '{}/bg'; echo done",
        dir.path().display()
    );
    let started = Instant::now();
    let (outcome, _) = run(single("bg", ProcessSpec::shell(line), &env)).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["bg"], json!("done"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The leftover keeps running (a task may start a service); end it ourselves.
    let pid: i32 = std::fs::read_to_string(dir.path().join("bg"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
}

/// Send raw lines on one connection and read one answer per line.
fn exchange(socket: &Path, lines: &[&[u8]]) -> Vec<Value> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    lines
        .iter()
        .map(|l| {
            stream.write_all(l).expect("send");
            stream.write_all(b"\n").expect("send");
            let mut answer = String::new();
            reader.read_line(&mut answer).unwrap();
            serde_json::from_str(&answer).expect("answers are JSON")
        })
        .collect()
}

#[tokio::test]
async fn the_context_server_answers_good_and_bad_requests() {
    let dir = TempDir::new();
    let d = dir.path().display().to_string();
    let env = HandlerEnv::default();
    let line = format!(
        r#"echo "$GRAFLOW_SOCKET $GRAFLOW_TOKEN" > '{d}/info.tmp'; mv '{d}/info.tmp' '{d}/info'
           while [ ! -e '{d}/go' ]; do sleep 0.01; done
           echo 'stdout loses to set-result'"#
    );
    let mut wf = Workflow::builder("server");
    let t = wf.add(task("talker", ProcessSpec::shell(line), &env));
    wf.flow(t);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), RunOptions::new());
    let info = wait_for_file(&dir.path().join("info")).await;
    let (socket, token) = info.trim().split_once(' ').unwrap();
    let (socket, token) = (PathBuf::from(socket), token.to_string());

    // The socket lives in a folder only this user can enter.
    let folder = socket.parent().unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(folder).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);

    let (s, tok) = (socket.clone(), token.clone());
    let answers = tokio::task::spawn_blocking(move || {
        let good = format!(r#"{{"token": "{tok}", "op": "set", "args": ["k", {{"n": 5}}]}}"#);
        let keys = format!(r#"{{"token": "{tok}", "op": "keys"}}"#);
        let unknown_op = format!(r#"{{"token": "{tok}", "op": "fly", "args": []}}"#);
        let short = format!(r#"{{"token": "{tok}", "op": "set", "args": ["k"]}}"#);
        let bad_task = format!(r#"{{"token": "{tok}", "op": "next-task", "args": ["ghost"]}}"#);
        let result =
            format!(r#"{{"token": "{tok}", "op": "set-result", "args": [{{"via": "socket"}}]}}"#);
        exchange(
            &s,
            &[
                b"this is not json",
                good.as_bytes(),
                br#"{"token": "not-a-token", "op": "keys"}"#,
                b"",
                b"\xff\xfe",
                br#"{"op": "keys"}"#,
                keys.as_bytes(),
                unknown_op.as_bytes(),
                short.as_bytes(),
                bad_task.as_bytes(),
                result.as_bytes(),
            ],
        )
    })
    .await
    .unwrap();
    let err = |i: usize| -> String {
        assert_eq!(answers[i]["ok"], false, "answer {i}: {}", answers[i]);
        answers[i]["error"].as_str().unwrap().to_string()
    };
    assert!(err(0).starts_with("malformed request"), "{}", err(0));
    assert_eq!(answers[1], json!({"ok": true, "value": null}));
    assert!(err(2).contains("unknown or expired token"));
    assert!(err(3).contains("empty line"));
    assert!(err(4).contains("not UTF-8"));
    assert!(err(5).contains("missing field `token`"), "{}", err(5));
    assert_eq!(answers[6], json!({"ok": true, "value": ["k"]}));
    assert!(err(7).contains("unknown operation 'fly'"));
    assert!(err(8).contains("usage: set KEY VALUE"));
    assert!(err(9).contains("unknown task 'ghost'"), "{}", err(9));
    assert_eq!(answers[10]["ok"], true);

    // The synchronous client reports refusals as such.
    let (s, tok) = (socket.clone(), token.clone());
    let (bad, good) = tokio::task::spawn_blocking(move || {
        (
            Client::new(&s, "wrong").call("keys", vec![]),
            Client::new(&s, tok).call("get", vec![json!("k")]),
        )
    })
    .await
    .unwrap();
    assert!(matches!(bad, Err(ClientError::Refused(m)) if m.contains("unknown or expired token")));
    assert_eq!(good.unwrap(), json!({"n": 5}));

    std::fs::write(dir.path().join("go"), "").unwrap();
    let outcome = handle.wait().await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["talker"], json!({"via": "socket"}));
    assert_eq!(outcome.channel["k"], json!({"n": 5}));

    // Once the execution has ended its token is refused.
    let stale =
        tokio::task::spawn_blocking(move || Client::new(&socket, token).call("keys", vec![]))
            .await
            .unwrap();
    assert!(
        matches!(stale, Err(ClientError::Refused(m)) if m.contains("unknown or expired token"))
    );
}

#[tokio::test]
async fn an_overlong_request_is_refused_and_the_server_keeps_serving() {
    let dir = TempDir::new();
    let d = dir.path().display().to_string();
    let env = HandlerEnv::default();
    let line = format!(
        r#"echo "$GRAFLOW_SOCKET $GRAFLOW_TOKEN" > '{d}/info.tmp'; mv '{d}/info.tmp' '{d}/info'
           while [ ! -e '{d}/go' ]; do sleep 0.01; done"#
    );
    let handle = Engine::new().start(
        Arc::new(
            single("talker", ProcessSpec::shell(line), &env)
                .build()
                .unwrap(),
        ),
        RunOptions::new(),
    );
    let info = wait_for_file(&dir.path().join("info")).await;
    let (socket, token) = info.trim().split_once(' ').unwrap();
    let (socket, token) = (PathBuf::from(socket), token.to_string());
    let answers = tokio::task::spawn_blocking(move || {
        let huge = vec![b'x'; graflow_engine::handler::process::protocol::MAX_REQUEST_BYTES + 10];
        let info = format!(r#"{{"token": "{token}", "op": "info"}}"#);
        // The same connection goes on after the refusal.
        exchange(&socket, &[&huge, info.as_bytes()])
    })
    .await
    .unwrap();
    assert_eq!(answers[0]["ok"], false);
    assert!(
        answers[0]["error"]
            .as_str()
            .unwrap()
            .contains("request longer than")
    );
    assert_eq!(answers[1]["ok"], true, "{}", answers[1]);
    let info = &answers[1]["value"];
    assert_eq!(info["task_id"], "talker");
    assert_eq!(info["cycle"], 1);
    assert_eq!(info["attempt"], 0);
    assert_eq!(info["max_cycles"], 100);
    std::fs::write(dir.path().join("go"), "").unwrap();
    assert!(handle.wait().await.succeeded());
}

#[tokio::test]
async fn folders_left_by_dead_engines_are_swept() {
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    // A pid that has just ended, and one that is alive (pid 1).
    let dead_pid = std::process::Command::new("true")
        .spawn()
        .and_then(|mut c| c.wait().map(|_| c.id()))
        .unwrap();
    let stale = base.join(format!("graflow-{dead_pid}-0badf00d"));
    let alive = base.join("graflow-1-0badf00d");
    for d in [&stale, &alive] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("ctx.sock"), "").unwrap();
    }
    let env = HandlerEnv::default();
    let (outcome, _) = run(single("t", ProcessSpec::shell("true"), &env)).await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert!(!stale.exists(), "the dead engine's folder should be gone");
    assert!(alive.exists(), "a live engine's folder must stay");
    std::fs::remove_dir_all(&alive).unwrap();
}

#[tokio::test]
async fn a_result_file_that_is_a_link_or_too_large_fails_the_task() {
    let env = HandlerEnv::default();
    let dir = TempDir::new();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "do not read me").unwrap();
    for (line, expected) in [
        (
            format!("ln -s '{}' \"$GRAFLOW_RESULT_FILE\"", secret.display()),
            "symbolic link",
        ),
        (
            "mkdir \"$GRAFLOW_RESULT_FILE\"".to_string(),
            "not a regular file",
        ),
        (
            "truncate -s 17M \"$GRAFLOW_RESULT_FILE\"".to_string(),
            "larger than 16 MiB",
        ),
    ] {
        let wf = Arc::new(single("t", ProcessSpec::shell(line), &env).build().unwrap());
        let outcome = Engine::new().run(wf, RunOptions::new()).await;
        assert_eq!(outcome.status, RunStatus::Failed);
        let error = error_of(&outcome);
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains("do not read me"), "{error}");
    }
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_and_the_server_keeps_serving() {
    let dir = TempDir::new();
    let d = dir.path().display().to_string();
    let env = HandlerEnv::default();
    let line = format!(
        r#"echo "$GRAFLOW_SOCKET $GRAFLOW_TOKEN" > '{d}/info.tmp'; mv '{d}/info.tmp' '{d}/info'
           while [ ! -e '{d}/go' ]; do sleep 0.01; done"#
    );
    let handle = Engine::new().start(
        Arc::new(
            single("holder", ProcessSpec::shell(line), &env)
                .build()
                .unwrap(),
        ),
        RunOptions::new(),
    );
    let info = wait_for_file(&dir.path().join("info")).await;
    let (socket, token) = info.trim().split_once(' ').unwrap();
    let (socket, token) = (PathBuf::from(socket), token.to_string());
    let refused = tokio::task::spawn_blocking(move || {
        // Idle connections fill the server's slots; the ones past them are told why and closed.
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(UnixStream::connect(&socket).unwrap());
        }
        let last = idle.last().unwrap();
        last.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut l = String::new();
        let _ = BufReader::new(last.try_clone().unwrap()).read_line(&mut l);
        let refusal = Some(l);
        let n = idle.len();
        drop(idle);
        std::thread::sleep(Duration::from_millis(200));
        // Slots free again: served.
        let again = Client::new(&socket, token).call("keys", vec![]);
        (n, refusal, again.is_ok())
    })
    .await
    .unwrap();
    let (n, refusal, served_again) = refused;
    assert_eq!(n, 300);
    assert!(refusal.unwrap_or_default().contains("too many connections"));
    assert!(served_again);
    std::fs::write(dir.path().join("go"), "").unwrap();
    assert!(handle.wait().await.succeeded());
}
