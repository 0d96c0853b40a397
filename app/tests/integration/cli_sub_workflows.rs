//! `graflow validate` and `graflow run` on sub-workflows (`Workflow(file: …)` tasks): a
//! recursive include is refused with the chain of files, a sub-file's error is shown at its
//! own line, and the sample's sub-runs print nested events (`sub_run`) inside the top run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn graflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GRAFLOW_STATE_DIR", dir.join(".state"))
        .output()
        .expect("graflow runs")
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("folder");
    }
    std::fs::write(&p, text).expect("write workflow");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows")
}

#[test]
fn validate_names_the_chain_of_a_recursive_include_and_a_sub_files_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.ron",
        "Workflow(name: \"a\", flow: \"to_b\", tasks: {\n  \"to_b\": Task(run: Workflow(file: \"sub/b.ron\")),\n})\n",
    );
    write(
        dir.path(),
        "sub/b.ron",
        "Workflow(name: \"b\", flow: \"to_a\", tasks: {\n  \"to_a\": Task(run: Workflow(file: \"../a.ron\")),\n})\n",
    );
    write(
        dir.path(),
        "c.ron",
        "Workflow(name: \"c\", flow: \"bad\", tasks: {\n  \"bad\": Task(run: Workflow(file: \"broken.ron\")),\n})\n",
    );
    write(
        dir.path(),
        "broken.ron",
        "Workflow(\n  name: \"broken\",\n  flow: \"x\",\n  tasks: {\"x\": Task(run: Sleep(\"soon\"))},\n)\n",
    );
    let out = graflow(dir.path(), &["validate", "a.ron"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("a.ron:2:30: error: task 'to_b': the sub-workflow 'sub/b.ron' has 1 error"),
        "{all}"
    );
    assert!(
        all.contains(
            "b.ron:2:30: error: task 'to_a': the workflow includes itself: a.ron → sub/b.ron → sub/../a.ron"
        ),
        "{all}"
    );
    let out = graflow(dir.path(), &["validate", "c.ron"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("broken.ron:4:"), "{all}");
    assert!(all.contains("'soon' is not a duration"), "{all}");
}

#[test]
fn the_nested_sample_runs_and_its_sub_runs_events_carry_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = samples().join("nested.ron");
    let out = graflow(dir.path(), &["run", "--json", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let run_id = events[0]["run_id"].clone();
    assert!(events.iter().all(|e| e["run_id"] == run_id));
    // Top-level events have no path; the last is the top run's run_finished.
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    assert!(last.get("sub_run").is_none());
    assert_eq!(
        last["results"]["clean"],
        json!({"count": 3, "rows": [1, 2, 3]})
    );
    assert_eq!(last["result"]["sorted"], json!([8, 9]));
    // Each sub-run: run_started … run_finished, all under its task's path.
    for task in ["clean", "audit"] {
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["sub_run"] == json!([task]))
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "run_started",
                "task_started",
                "task_succeeded",
                "task_started",
                "task_succeeded",
                "run_finished"
            ],
            "{task}"
        );
    }
    // The sub-file runs on its own too.
    let sub = samples().join("sub/clean.ron");
    let out = graflow(dir.path(), &["run", "--json", &sub.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_question_in_a_sub_run_pauses_graflow_run_and_resume_goes_on_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ask.ron",
        r##"Workflow(name: "ask", flow: "s1 >> ask >> s2", tasks: {
            "s1": Task(run: Value("one")),
            "ask": Task(run: Feedback(kind: Text, prompt: "name?", timeout: "300ms")),
            "s2": Task(run: Script(r#" #{ s1: ctx.result("s1"), name: ctx.input("ask") } "#)),
        })"##,
    );
    write(
        dir.path(),
        "main.ron",
        r##"Workflow(name: "main", flow: "before >> nested >> after", notify: [], tasks: {
            "before": Task(run: Value("b")),
            "nested": Task(run: Workflow(file: "ask.ron")),
            "after": Task(run: Script(r#" ctx.input("nested") "#)),
        })"##,
    );
    let out = graflow(dir.path(), &["run", "--json", "main.ron"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let asked = events
        .iter()
        .find(|e| e["event"] == "feedback_requested")
        .expect("the sub-run asks");
    assert_eq!(asked["sub_run"], json!(["nested"]));
    let id = asked["id"].as_str().expect("an id").to_string();
    let last = events.last().expect("events");
    assert_eq!(last["status"], "paused");
    let checkpoint = last["checkpoint"]
        .as_str()
        .expect("a checkpoint")
        .to_string();

    let out = graflow(dir.path(), &["feedback", "respond", &id, "--text", "ada"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = graflow(dir.path(), &["resume", "--json", &checkpoint]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = events.last().expect("events");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["result"], json!({"s1": "one", "name": "ada"}));
    // `before` finished before the pause: it does not run again.
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "task_started" && e["task"] == "before")
    );
}
