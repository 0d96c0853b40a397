//! What a newcomer meets on the command line (issue 11): closed pipes end commands quietly,
//! typos get a "did you mean", messages use the file's words and point at the right place,
//! Http errors say what went wrong, attempt numbers follow `ctx.attempt`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

/// `graflow args…` in `dir`. Its state goes to `dir/.state` in a temporary folder, and to a
/// folder of its own when `dir` is in the repository (the samples), which stays clean.
fn graflow(dir: &Path, args: &[&str]) -> Output {
    let own = tempfile::tempdir().expect("a temporary folder");
    let state = if dir.starts_with(samples().parent().unwrap_or(dir)) {
        own.path().join(".state")
    } else {
        dir.join(".state")
    };
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", state)
        .output()
        .expect("graflow runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write workflow");
    p
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

fn sample_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(samples())
        .expect("sample-workflows/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

/// Run `graflow args…` with its standard output closed before it writes a byte (the reader
/// of `… | head -0` went away): it must end quietly, without a panic.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join(".state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graflow starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("graflow ends")
}

#[test]
fn every_command_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    // A checkpoint to list.
    let out = graflow(
        &samples(),
        &[
            "run",
            "hello.ron",
            "--json",
            "--checkpoint-every-task",
            "--state-dir",
            &dir.path().join(".state").display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = sample_files();
    let mut validate = vec!["validate"];
    validate.extend(files.iter().map(String::as_str));
    let hello = samples().join("hello.ron").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        validate,
        vec!["checkpoints"],
        vec!["checkpoints", "--json"],
        vec!["graph", &hello],
        vec!["graph", &hello, "--format", "dot"],
        vec!["completions", "bash"],
        vec!["feedback", "list", "--all"],
        vec!["--help"],
    ];
    for args in cases {
        let out = with_closed_stdout(dir.path(), &args);
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}

#[test]
fn http_errors_say_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let flow = format!(
        r#"Workflow(name: "h", flow: "call", tasks: {{
            "call": Task(run: Http(url: "http://127.0.0.1:{port}/ping", timeout: "2s")),
        }})"#
    );
    write(dir.path(), "refused.ron", &flow);
    let out = graflow(dir.path(), &["run", "refused.ron"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("connection refused: nothing listens at 127.0.0.1:"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("error sending request"));

    write(
        dir.path(),
        "tls.ron",
        r#"Workflow(name: "t", flow: "call", tasks: {
            "call": Task(run: Http(url: "https://127.0.0.1:9/ping")),
        })"#,
    );
    // https is supported (docs/security.md): no warning, and a closed port says so.
    let out = graflow(dir.path(), &["validate", "tls.ron"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("https"), "{}", stderr(&out));
    let out = graflow(dir.path(), &["run", "tls.ron"]);
    assert!(
        stdout(&out).contains("connection refused: nothing listens at 127.0.0.1:9"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn attempt_numbers_are_0_based_like_ctx_attempt() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "flaky.ron",
        r##"Workflow(name: "f", flow: "flaky", tasks: {
            "flaky": Task(
                run: Script(r#"throw `transient error on attempt ${ctx.attempt}`"#),
                retries: (max: 1, backoff: "10ms"),
            ),
        })"##,
    );
    let out = graflow(dir.path(), &["run", "flaky.ron"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "[flaky] failed on attempt 0: transient error on attempt 0; retrying as attempt 1"
        ),
        "{text}"
    );
    assert!(text.contains("[flaky] started (attempt 1)"), "{text}");
    assert!(
        text.contains("[flaky] failed on attempt 1: transient error on attempt 1\n"),
        "{text}"
    );
    assert!(
        text.contains("attempts 0 to 1 all failed (1 retries)"),
        "{text}"
    );
}

const ETL: &str = r##"Workflow(
    name: "etl",
    flow: "fetch >> transform >> load",
    params: {"limit": 3},
    tasks: {
        "fetch": Task(run: Value([1, 2, 3])),
        "transform": Task(run: Script(r#" ctx.input("fetch").len() "#)),
        "load": Task(run: Noop),
        "unused": Task(run: Noop),
    },
)"##;

#[test]
fn typos_are_refused_with_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "etl.ron", ETL);
    // A misspelt parameter is refused (exit 2) with a guess.
    let out = graflow(dir.path(), &["run", "etl.ron", "--set", "limt=5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--set limt: 'etl' declares no parameter 'limt'; did you mean 'limit'?"),
        "{err}"
    );
    assert!(err.contains("declared: limit"), "{err}");
    assert!(stdout(&out).is_empty(), "it ran: {}", stdout(&out));
    // A declared one runs.
    let out = graflow(dir.path(), &["run", "etl.ron", "--set", "limit=5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A file that declares no params takes any key as an initial channel value.
    write(
        dir.path(),
        "free.ron",
        r##"Workflow(name: "free", flow: "a", tasks: {"a": Task(run: Script(r#" ctx.get("who") "#))})"##,
    );
    let out = graflow(
        dir.path(),
        &["run", "free.ron", "--json", "--set", "who=ada"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"result\":\"ada\""),
        "{}",
        stdout(&out)
    );

    // A task defined but never reachable is a warning.
    let out = graflow(dir.path(), &["validate", "etl.ron"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("etl.ron:9:9: warning: task 'unused' can never run"),
        "{}",
        stderr(&out)
    );

    // An unknown name in the flow gets a guess.
    write(
        dir.path(),
        "typo.ron",
        &ETL.replace("fetch >> transform", "fetch >> transfrom"),
    );
    let out = graflow(dir.path(), &["validate", "typo.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "typo.ron:3:21: error: unknown task or group 'transfrom' in the flow; did you mean 'transform'?"
        ),
        "{}",
        stderr(&out)
    );
    // So does an unknown start.
    write(
        dir.path(),
        "start.ron",
        &ETL.replace("params:", "start: \"fecth\",\n    params:"),
    );
    let out = graflow(dir.path(), &["validate", "start.ron"]);
    assert!(
        stderr(&out).contains("unknown start task 'fecth'")
            && stderr(&out).contains("hint: did you mean 'fetch'?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn policies_and_groups_read_as_the_file_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = graflow(&samples(), &["graph", "policy-at-least.ron"]);
    let text = stdout(&out);
    assert!(text.contains("AtLeast(2)"), "{text}");
    assert!(!text.contains("at_least_n"), "{text}");
    let out = graflow(&samples(), &["run", "policy-critical.ron"]);
    let text = stdout(&out);
    assert!(text.contains("(Critical([\""), "{text}");
    assert!(!text.contains("critical_tasks"), "{text}");
    let _ = dir;
}

/// `graflow validate` on a file; returns its standard error.
fn validate_text(dir: &Path, name: &str, text: &str) -> String {
    write(dir, name, text);
    let out = graflow(dir, &["validate", name]);
    assert_eq!(out.status.code(), Some(2), "{name} is valid?");
    stderr(&out)
}

#[test]
fn messages_speak_the_files_words_and_point_where_the_fix_goes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = validate_text(
        d,
        "comma.ron",
        "Workflow(\n  name: \"x\",\n  flow: \"a\"\n  tasks: {\"a\": Task(run: Noop)},\n)",
    );
    assert!(
        err.contains("comma.ron:3:12: error: a comma is missing after this value"),
        "{err}"
    );
    let err = validate_text(
        d,
        "retries.ron",
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retries: 3)})"#,
    );
    assert!(err.contains("`retries: (max: 3)`"), "{err}");
    let err = validate_text(
        d,
        "kind.ron",
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Bash("ls"))})"#,
    );
    assert!(err.contains("unknown task kind `Bash`"), "{err}");
    for kind in [
        "Value", "Noop", "Sleep", "Shell", "Command", "Script", "Http", "Docker", "Approval",
        "Feedback",
    ] {
        assert!(err.contains(kind), "{kind}: {err}");
    }
    let err = validate_text(
        d,
        "script.ron",
        "Workflow(name: \"x\", flow: \"a\", tasks: {\"a\": Task(run: Script(r#\"\n    let rows = [1, 2];\n    rows.len(\n\"#))})",
    );
    assert!(
        err.contains("script.ron:3:14: error: task 'a': script error")
            && err.contains("script line 3:\n      rows.len(\n               ^"),
        "{err}"
    );
    for e in [&err] {
        for internal in ["RetrySpec", "RunSpec", "enum", "Spec`"] {
            assert!(!e.contains(internal), "{e}");
        }
    }
}

#[test]
fn feedback_respond_names_the_flags_a_question_needs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "ask.ron",
        r#"Workflow(name: "ask", flow: "ok >> pick", notify: [], tasks: {
            "ok": Task(run: Approval(prompt: "Ship?", timeout: "100ms")),
            "pick": Task(run: Noop),
        })"#,
    );
    let out = graflow(d, &["run", "ask.ron"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = graflow(d, &["feedback", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(
        stdout(&out)
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no request: {}", stderr(&out))),
    )
    .unwrap();
    let id = listed["id"].as_str().unwrap().to_string();
    let out = graflow(d, &["feedback", "respond", &id]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("an approval needs --approve or --reject"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "graflow feedback respond {id} --approve | --reject"
        )),
        "{err}"
    );
    assert!(!err.contains("\"approved\""), "{err}");
    let out = graflow(d, &["feedback", "respond", &id, "--text", "yes"]);
    assert!(
        stderr(&out).contains("--text does not belong"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_shell_question_without_a_timeout_reports_the_real_default() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "ask.ron",
        r#"Workflow(name: "ask", flow: "name", notify: [], tasks: {
            "name": Task(run: Shell("graflow ctx request-text 'Release name?'")),
        })"#,
    );
    let mut child = Command::new(bin())
        .args(["run", "--json", "ask.ron"])
        .current_dir(d)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", d.join(".state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let id = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no feedback_requested")
            });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "feedback_requested" {
            break v["id"].as_str().unwrap().to_string();
        }
    };
    let out = graflow(d, &["feedback", "show", &id, "--json"]);
    let shown = stdout(&out);
    let text = graflow(d, &["feedback", "show", &id]);
    let respond = graflow(d, &["feedback", "respond", &id, "--text", "Ada"]);
    let status = child.wait().unwrap();
    assert!(shown.contains("\"timeout_secs\":180.0"), "{shown}");
    assert!(
        stdout(&text).contains("pauses the run if unanswered 3m after it was asked"),
        "{}",
        stdout(&text)
    );
    assert_eq!(respond.status.code(), Some(0), "{}", stderr(&respond));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_failing_sample_fails_offline_the_same_way_every_time() {
    let mut seen = None;
    for _ in 0..2 {
        let out = graflow(&samples(), &["run", "--json", "retries-exhausted.ron"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let events: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let failed: Vec<(String, u64, bool)> = events
            .iter()
            .filter(|e| e["event"] == "task_failed")
            .map(|e| {
                (
                    e["task"].as_str().unwrap_or_default().to_string(),
                    e["attempt"].as_u64().unwrap_or(99),
                    e["will_retry"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        assert_eq!(
            failed,
            [
                ("fetch".to_string(), 0, true),
                ("fetch".to_string(), 1, true),
                ("fetch".to_string(), 2, false)
            ]
        );
        let last = events.last().cloned().unwrap_or_default();
        assert_eq!(last["status"], "failed");
        assert!(
            last["error"]
                .as_str()
                .unwrap_or_default()
                .contains("attempts 0 to 2 all failed"),
            "{last}"
        );
        assert!(events.iter().all(|e| e["task"] != "report"));
        let error = last["error"].clone();
        if let Some(prev) = &seen {
            assert_eq!(prev, &error);
        }
        seen = Some(error);
    }
}

#[test]
fn the_help_of_backend_says_what_it_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    for command in ["run", "resume", "worker"] {
        let help = stdout(&graflow(dir.path(), &[command, "--help"]));
        assert!(
            help.contains("redis://"),
            "graflow {command} --help names the Redis URL it takes:\n{help}"
        );
        assert!(
            !help.contains("not available"),
            "graflow {command} --help does not call the fleet unavailable:\n{help}"
        );
    }
}
