//! Shell tasks asking for checkpoints and human feedback through `graflow ctx`, end to end
//! with the real binary: the request appears in `graflow feedback list`, an answer from
//! another process lets the task go on, and a checkpoint asked by the shell is written.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_graflow")
}

fn graflow(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

const FLOW: &str = r###"Workflow(
    name: "shell-hitl",
    flow: "ask >> pick >> done",
    notify: [],
    tasks: {
        "ask": Task(run: Shell(r##"
            graflow ctx checkpoint '{"from": "shell"}'
            if graflow ctx request-approval "ship it?" 30s; then echo '"approved"'; else echo '"rejected"'; fi
        "##)),
        "pick": Task(run: Shell(r##"graflow ctx request-selection "size?" '["S", "M", "L"]' 30"##)),
        "done": Task(run: Shell(r##"echo "$GRAFLOW_INPUTS""##)),
    },
)"###;

fn wait_for_request(dir: &Path, contains: &str) -> String {
    let t0 = Instant::now();
    loop {
        let out = graflow(dir, &["feedback", "list", "--json"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            if r["prompt"].as_str().is_some_and(|p| p.contains(contains)) {
                return r["id"].as_str().unwrap().to_string();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "request '{contains}' never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_shell_task_asks_and_another_process_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flow.ron"), FLOW).unwrap();
    let child = Command::new(bin())
        .args(["run", "flow.ron", "--json"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_request(dir.path(), "ship it?");
    let out = graflow(
        dir.path(),
        &["feedback", "respond", &id, "--approve", "--by", "ops"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = wait_for_request(dir.path(), "size?");
    let out = graflow(dir.path(), &["feedback", "respond", &id, "--select", "XL"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an option not offered is refused"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'XL' is not one of the options [S, M, L]")
    );
    assert!(
        graflow(dir.path(), &["feedback", "respond", &id, "--select", "M"])
            .status
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["results"]["ask"], "approved");
    assert_eq!(last["results"]["pick"], "M");
    assert!(
        events.iter().any(|e| e["event"] == "checkpoint_saved"),
        "the shell's checkpoint was written"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "feedback_requested")
            .count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "feedback_answered")
            .count(),
        2
    );
    let shown = graflow(dir.path(), &["feedback", "show", &id, "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["response"]["selected"], "M");
    assert_eq!(shown["request"]["status"], "answered");
}
