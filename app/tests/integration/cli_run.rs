//! End-to-end tests of `graflow run | validate | graph` on temporary workflow files: the JSON
//! event stream, exit codes, `--set`, run history, and an Http task against a real local server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;

use serde_json::{Value, json};

fn graflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GRAFLOW_STATE_DIR")
        .output()
        .expect("graflow runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write workflow");
    p
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

const CHAIN: &str = r#"Workflow(
    name: "chain",
    flow: "a >> (b | c) >> d",
    params: {"limit": 3, "who": "nobody"},
    tasks: {
        "a": Task(run: Value([1, 2])),
        "b": Task(run: Sleep("20ms")),
        "c": Task(run: Value({"c": true})),
        "d": Task(run: Value("end")),
    },
)"#;

#[test]
fn run_json_prints_every_event_and_a_closing_run_finished() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "chain.ron", CHAIN);
    let out = graflow(
        dir.path(),
        &[
            "run",
            "chain.ron",
            "--json",
            "--set",
            "limit=10",
            "--set",
            "who=ada",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "run_started");
    assert_eq!(ev[0]["workflow"], "chain");
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    for e in &ev {
        assert_eq!(e["run_id"], json!(run_id));
        assert!(e["ts"].as_str().unwrap().contains('T'));
    }
    let names: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "task_started").count(), 4);
    assert_eq!(names.iter().filter(|n| **n == "task_succeeded").count(), 4);
    assert!(names.contains(&"group_finished"));
    let group = ev.iter().find(|e| e["event"] == "group_finished").unwrap();
    assert_eq!(group["policy"], "strict");
    assert_eq!(group["failed"], json!([]));
    let last = ev.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["error"], Value::Null);
    assert_eq!(last["result"], "end");
    assert_eq!(last["results"]["a"], json!([1, 2]));
    assert_eq!(last["results"]["c"], json!({"c": true}));
    assert_eq!(last["channel"], json!({"limit": 10, "who": "ada"}));
    // The run is in the history of this folder.
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join(".graflow/runs")
                .join(format!("{run_id}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["tasks_succeeded"], 4);
}

#[test]
fn plain_output_when_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "chain.ron", CHAIN);
    let out = graflow(dir.path(), &["run", "chain.ron", "--state-dir", "st"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[d] succeeded in"), "{text}");
    assert!(text.contains("run succeeded in"), "{text}");
    assert!(text.contains("result: \"end\""), "{text}");
    assert!(!text.contains('\x1b'), "no escape codes in a pipe");
    assert!(dir.path().join("st/runs").is_dir());
}

#[test]
fn a_failing_task_exits_1_and_names_the_task() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "slow.ron",
        r#"Workflow(name: "slow", flow: "a >> b", tasks: {"a": Task(run: Sleep("5s"), timeout: "100ms"), "b": Task(run: Noop)})"#,
    );
    let out = graflow(dir.path(), &["run", "slow.ron", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    let failed = ev.iter().find(|e| e["event"] == "task_failed").unwrap();
    assert_eq!(failed["task"], "a");
    assert_eq!(failed["will_retry"], false);
    assert_eq!(failed["error"], "timed out after 100ms");
    let last = ev.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"], "task 'a' failed: timed out after 100ms");
}

#[test]
fn an_invalid_file_exits_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.ron",
        "Workflow(\n  name: \"x\",\n  flow: \"a >> ghost\",\n  tasks: {\"a\": Task(run: Noop)},\n)",
    );
    for cmd in [
        vec!["run", "bad.ron"],
        vec!["validate", "bad.ron"],
        vec!["graph", "bad.ron"],
    ] {
        let out = graflow(dir.path(), &cmd);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = stderr(&out);
        assert!(
            err.contains("bad.ron:3:15: error: unknown task or group 'ghost' in the flow"),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        assert!(!err.contains("panicked"));
    }
    let out = graflow(dir.path(), &["run", "missing.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing.ron: error: cannot read the file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "chain.ron", CHAIN);
    assert_eq!(
        graflow(dir.path(), &["run", "chain.ron", "--set", "novalue"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(graflow(dir.path(), &["run"]).status.code(), Some(2));
    assert_eq!(graflow(dir.path(), &["bogus"]).status.code(), Some(2));
    assert_eq!(
        graflow(dir.path(), &["graph", "chain.ron", "--format", "png"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn validate_reports_every_file_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.ron", CHAIN);
    write(
        dir.path(),
        "warn.ron",
        r#"Workflow(name: "w", flow: "a >> b >> a; c", start: "a", tasks: {"a": Task(run: Noop), "b": Task(run: Noop), "c": Task(run: Noop)})"#,
    );
    write(
        dir.path(),
        "broken.ron",
        r#"Workflow(name: "b", flow: "a", tasks: {"a": Task(run: Sleep("forever"))})"#,
    );
    let out = graflow(
        dir.path(),
        &["validate", "good.ron", "warn.ron", "broken.ron"],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok good.ron: workflow 'chain', 4 tasks, 1 group"),
        "{text}"
    );
    assert!(text.contains("ok warn.ron"), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("warn.ron") && err.contains("'c' can never run"),
        "{err}"
    );
    assert!(err.contains("the loop through a, b has no exit"), "{err}");
    assert!(
        err.contains("broken.ron:1:") && err.contains("Sleep: 'forever' is not a duration"),
        "{err}"
    );
    assert!(err.contains("1 of 3 files invalid"), "{err}");
}

#[test]
fn graph_in_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "loop.ron",
        r#"Workflow(name: "l", flow: "s >> (x | y) >> agent >> tool >> agent", tasks: {"s": Task(run: Noop), "x": Task(run: Noop), "y": Task(run: Noop), "agent": Task(run: Noop), "tool": Task(run: Noop), "spare": Task(run: Noop)})"#,
    );
    let ascii = String::from_utf8(graflow(dir.path(), &["graph", "loop.ron"]).stdout).unwrap();
    assert_eq!(
        ascii,
        "s (noop)\n└─▶ group_1 [group, Strict]\n    │   ├─ x (noop)\n    │   └─ y (noop)\n    └─▶ agent (noop)\n        └─▶ tool (noop)\n            └─↺ agent (loop)\ndefined for next_task: spare\n"
    );
    let mermaid = String::from_utf8(
        graflow(dir.path(), &["graph", "loop.ron", "--format", "mermaid"]).stdout,
    )
    .unwrap();
    assert!(mermaid.starts_with("flowchart TD\n"));
    assert!(mermaid.contains("subgraph group_1[\"group_1 (Strict)\"]"));
    assert!(mermaid.contains("tool -.->|loop| agent"));
    let dot =
        String::from_utf8(graflow(dir.path(), &["graph", "loop.ron", "-f", "dot"]).stdout).unwrap();
    assert!(dot.starts_with("digraph \"l\" {"));
    assert!(dot.contains("\"tool\" -> \"agent\" [style=dashed, label=\"loop\"];"));
    assert!(dot.contains("subgraph \"cluster_group_1\""));
}

#[test]
fn completions_for_bash() {
    let dir = tempfile::tempdir().unwrap();
    let out = graflow(dir.path(), &["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("graflow"));
}

/// A one-route HTTP server on 127.0.0.1: answers each request with `status` and `body`,
/// and hands back the raw requests it received.
fn serve(
    status: u16,
    body: &'static str,
    delay_ms: u64,
    requests: usize,
) -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..requests {
            let Ok((mut stream, _)) = listener.accept() else {
                break;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body_in = vec![0; length];
            let _ = reader.read_exact(&mut body_in);
            head.push_str(&String::from_utf8_lossy(&body_in));
            seen.push(head);
            thread::sleep(std::time::Duration::from_millis(delay_ms));
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
        seen
    });
    (port, handle)
}

#[test]
fn an_http_task_posts_its_template_and_takes_the_json_answer() {
    let (port, server) = serve(200, r#"{"cleaned": 2}"#, 0, 1);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "http.ron",
        &format!(
            r##"Workflow(name: "h", flow: "rows >> clean", tasks: {{
                "rows": Task(run: Value([{{"id": 1}}, {{"id": 2}}])),
                "clean": Task(run: Http(method: "POST", url: "http://127.0.0.1:{port}/clean?task={{{{task_id}}}}",
                    headers: {{"Content-Type": "application/json", "X-Token": "t0k"}},
                    body: r#"{{"rows": {{{{input.rows}}}}}}"#, timeout: "5s")),
            }})"##
        ),
    );
    let out = graflow(dir.path(), &["run", "http.ron", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = events(&out).pop().unwrap();
    assert_eq!(last["results"]["clean"], json!({"cleaned": 2}));
    let requests = server.join().unwrap();
    assert!(
        requests[0].starts_with("POST /clean?task=clean HTTP/1.1"),
        "{}",
        requests[0]
    );
    assert!(requests[0].to_ascii_lowercase().contains("x-token: t0k"));
    assert!(
        requests[0].ends_with(r#"{"rows": [{"id":1},{"id":2}]}"#),
        "{}",
        requests[0]
    );
    let log = events(&out)
        .into_iter()
        .find(|e| e["event"] == "task_log")
        .unwrap();
    assert!(log["line"].as_str().unwrap().contains("-> 200"));
}

#[test]
fn an_http_error_status_and_a_timeout_fail_the_task() {
    let (port, server) = serve(503, r#"{"error": "busy"}"#, 0, 1);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "h.ron",
        &format!(
            r#"Workflow(name: "h", flow: "call", tasks: {{"call": Task(run: Http(url: "http://127.0.0.1:{port}/x"))}})"#
        ),
    );
    let out = graflow(dir.path(), &["run", "h.ron", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let last = events(&out).pop().unwrap();
    let error = last["error"].as_str().unwrap();
    assert!(
        error.contains("task 'call' failed: GET http://127.0.0.1")
            && error.contains("503")
            && error.contains("busy"),
        "{error}"
    );
    server.join().unwrap();

    let (port, server) = serve(200, "{}", 1500, 1);
    write(
        dir.path(),
        "t.ron",
        &format!(
            r#"Workflow(name: "t", flow: "call", tasks: {{"call": Task(run: Http(url: "http://127.0.0.1:{port}/slow", timeout: "200ms"))}})"#
        ),
    );
    let out = graflow(dir.path(), &["run", "t.ron", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let last = events(&out).pop().unwrap();
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 200ms"),
        "{last}"
    );
    server.join().unwrap();
}

#[test]
fn every_sample_validates_without_warnings() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    let mut args = vec!["validate".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = graflow(&samples, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).trim().is_empty(), "warnings: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len()
    );
    // Every sample opens with a comment saying what it shows and how to run it.
    for f in &files {
        let head = std::fs::read_to_string(f).unwrap();
        assert!(
            head.starts_with("//"),
            "{} has no opening comment",
            f.display()
        );
        assert!(
            head.contains("Run: graflow run sample-workflows/"),
            "{} does not say how to run it",
            f.display()
        );
    }
}
