//! Sub-workflows (`Workflow(file: …)` tasks): the sub-file is validated with its parent (its
//! errors at their places, recursion refused with the chain of files), runs as one task (set
//! values and inputs in, result out, failures with retries), channels are its own unless
//! shared, cancel and terminate are scoped, and its events reach the parent's stream nested.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow_engine::file::{Diagnostic, LoadError, LoadedWorkflow, Severity, load_file};
use graflow_engine::handler::Runtimes;
use graflow_engine::prelude::*;
use graflow_engine::run::nested::{SubChannel, SubWorkflowHandler};
use serde_json::json;

/// Files in a fresh folder: (relative path, text).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp folder");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folder");
        }
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn load(dir: &Path, name: &str) -> Result<LoadedWorkflow, LoadError> {
    load_file(&dir.join(name), &Runtimes::default())
}

fn errors(dir: &Path, name: &str) -> Vec<Diagnostic> {
    load(dir, name)
        .err()
        .expect("the file is refused")
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Run `name` in `dir` to its end with events; returns the outcome and every event.
async fn run(dir: &Path, name: &str) -> (RunOutcome, Vec<RunEvent>) {
    let loaded = load(dir, name).unwrap_or_else(|e| panic!("{e}"));
    let mut handle = Engine::new().start(loaded.workflow.clone(), RunOptions::new().with_events());
    let mut rx = handle.take_events().expect("events");
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (handle.wait().await, events)
}

const SUB: &str = r##"Workflow(
    name: "sub",
    flow: "first >> second",
    params: {"n": 1},
    tasks: {
        "first": Task(run: Script(r#" #{ n: ctx.get("n"), inputs: ctx.inputs, tag: ctx.get("tag", ()) } "#)),
        "second": Task(run: Script(r#" ctx.set("written", true); ctx.input("first") "#)),
    },
)"##;

#[tokio::test]
async fn a_sub_workflow_runs_as_one_task_with_its_set_values_and_inputs() {
    let dir = folder(&[
        ("sub/sub.ron", SUB),
        (
            "main.ron",
            r##"Workflow(
                name: "main",
                flow: "rows >> nested >> after",
                params: {"tag": "parent"},
                tasks: {
                    "rows": Task(run: Value([1, 2])),
                    "nested": Task(run: Workflow(file: "sub/sub.ron", set: {"n": "{{input.rows}}", "label": "cycle {{cycle}}"})),
                    "after": Task(run: Script(r#" #{ got: ctx.input("nested"), written: ctx.get("written", "absent") } "#)),
                },
            )"##,
        ),
    ]);
    let (outcome, _) = run(dir.path(), "main.ron").await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    // The sub-run's result (its last task's) is the task's result; a placeholder alone keeps
    // its value's type; the first task of the sub-run reads the task's inputs.
    let nested = &outcome.results["nested"];
    assert_eq!(nested["n"], json!([1, 2]));
    assert_eq!(nested["inputs"], json!({"rows": [1, 2]}));
    // Its own channel: the parent's keys are not there, and what it writes does not come back.
    assert_eq!(nested["tag"], json!(null));
    assert_eq!(outcome.results["after"]["written"], json!("absent"));
    assert!(!outcome.channel.contains_key("n"));
}

#[tokio::test]
async fn a_shared_channel_is_the_parents() {
    let dir = folder(&[
        ("sub.ron", SUB),
        (
            "main.ron",
            r##"Workflow(
                name: "main",
                flow: "nested >> after",
                params: {"tag": "parent"},
                tasks: {
                    "nested": Task(run: Workflow(file: "sub.ron", channel: Shared)),
                    "after": Task(run: Script(r#" ctx.get("written", "absent") "#)),
                },
            )"##,
        ),
    ]);
    let (outcome, _) = run(dir.path(), "main.ron").await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["nested"]["tag"], json!("parent"));
    assert_eq!(outcome.results["after"], json!(true));
    assert_eq!(outcome.channel["n"], json!(1));
}

#[tokio::test]
async fn a_failed_sub_run_fails_the_task_with_its_error_and_the_task_retries() {
    let dir = folder(&[
        (
            "sub.ron",
            r##"Workflow(name: "sub", flow: "boom", tasks: {"boom": Task(run: Script(r#" throw "kaput" "#))})"##,
        ),
        (
            "main.ron",
            r##"Workflow(
                name: "main",
                flow: "nested",
                tasks: {"nested": Task(run: Workflow(file: "sub.ron"), retries: (max: 1, backoff: "1ms"))},
            )"##,
        ),
    ]);
    let (outcome, events) = run(dir.path(), "main.ron").await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("sub-workflow 'sub.ron' failed"),
        "{message}"
    );
    assert!(message.contains("kaput"), "{message}");
    let failures: Vec<bool> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskFailed { will_retry, .. } => Some(*will_retry),
            _ => None,
        })
        .collect();
    assert_eq!(failures, [true, false]);
    // Each attempt is a sub-run of its own.
    let sub_runs = events
        .iter()
        .filter(|e| matches!(e.kind.unnested(), (p, EventKind::RunStarted { .. }) if !p.is_empty()))
        .count();
    assert_eq!(sub_runs, 2);
}

#[tokio::test]
async fn terminate_and_cancel_inside_a_sub_run_end_the_sub_run_only() {
    let dir = folder(&[
        (
            "stop.ron",
            r##"Workflow(name: "stop", flow: "a >> b", tasks: {
                "a": Task(run: Script(r#" ctx.terminate_workflow("enough"); "a" "#)),
                "b": Task(run: Value("never")),
            })"##,
        ),
        (
            "abort.ron",
            r##"Workflow(name: "abort", flow: "a", tasks: {
                "a": Task(run: Script(r#" ctx.cancel_workflow("no way"); 1 "#)),
            })"##,
        ),
        (
            "main.ron",
            r##"Workflow(name: "main", flow: "stop >> after", tasks: {
                "stop": Task(run: Workflow(file: "stop.ron")),
                "after": Task(run: Value("ran")),
            })"##,
        ),
        (
            "main2.ron",
            r##"Workflow(name: "main2", flow: "abort >> after", tasks: {
                "abort": Task(run: Workflow(file: "abort.ron")),
                "after": Task(run: Value("ran")),
            })"##,
        ),
    ]);
    // terminate: the sub-run succeeds with the terminating task's result; the parent goes on.
    let (outcome, _) = run(dir.path(), "main.ron").await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.results["stop"], json!("a"));
    assert_eq!(outcome.results["after"], json!("ran"));
    assert_eq!(outcome.terminated, None);
    // cancel: the sub-run is cancelled, which fails its task (not a cancel of the parent).
    let (outcome, _) = run(dir.path(), "main2.ron").await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let message = outcome.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("was cancelled"), "{message}");
    assert!(message.contains("no way"), "{message}");
}

#[tokio::test]
async fn cancelling_the_parent_cancels_the_sub_run() {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let slot = Arc::new(parking_lot::Mutex::new(Some((started_tx, dropped_tx))));
    let mut sub = Workflow::builder("sub");
    let wait = sub.task("wait", move |_ctx| {
        let pair = slot.lock().take();
        async move {
            // Held until this body is dropped: the receiver then sees the sender go.
            let (started, _dropped) = pair.expect("runs once");
            let _ = started.send(());
            std::future::pending::<()>().await;
            anyhow::Ok(())
        }
    });
    sub.flow(wait);
    let handler = SubWorkflowHandler::new(
        Arc::new(sub.build().expect("builds")),
        "sub (in Rust)",
        Vec::new(),
        SubChannel::Own,
        &Runtimes::default(),
    )
    .expect("a handler");
    let mut parent = Workflow::builder("parent");
    let nested = parent.add(TaskDef::new("nested", Arc::new(handler)));
    parent.flow(nested);
    let handle = Engine::new().start(Arc::new(parent.build().expect("builds")), RunOptions::new());
    started_rx.await.expect("the sub-run's task started");
    handle.cancel("stop everything");
    let outcome = handle.wait().await;
    assert_eq!(outcome.status, RunStatus::Cancelled);
    // The sub-run's running task was stopped (its body dropped).
    assert!(dropped_rx.await.is_err());
}

#[tokio::test]
async fn sub_run_events_reach_the_parent_with_their_path_at_every_level() {
    let dir = folder(&[
        (
            "leaf.ron",
            r##"Workflow(name: "leaf", flow: "x", tasks: {"x": Task(run: Value(7))})"##,
        ),
        (
            "middle.ron",
            r##"Workflow(name: "middle", flow: "inner", tasks: {"inner": Task(run: Workflow(file: "leaf.ron"))})"##,
        ),
        (
            "top.ron",
            r##"Workflow(name: "top", flow: "outer", tasks: {"outer": Task(run: Workflow(file: "middle.ron"))})"##,
        ),
    ]);
    let (outcome, events) = run(dir.path(), "top.ron").await;
    assert!(outcome.succeeded(), "{:?}", outcome.error);
    assert_eq!(outcome.result, Some(json!(7)));
    let run_id = outcome.run_id.as_str();
    assert!(events.iter().all(|e| &*e.run_id == run_id));
    let deep: Vec<String> = events
        .iter()
        .filter_map(|e| match e.kind.unnested() {
            (path, kind) if path.len() == 2 => {
                assert_eq!(path, [Arc::from("outer"), Arc::from("inner")]);
                Some(kind.name().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        deep,
        [
            "run_started",
            "task_started",
            "task_succeeded",
            "run_finished"
        ]
    );
    // The top run's own events come first and last, without a path.
    assert_eq!(events.first().map(|e| e.name()), Some("run_started"));
    assert!(matches!(
        events.last().map(|e| &e.kind),
        Some(EventKind::RunFinished { .. })
    ));
    let line = events
        .iter()
        .find(|e| e.kind.unnested().0.len() == 2)
        .map(|e| e.to_json_line())
        .unwrap_or_default();
    assert!(line.contains(r#""sub_run":["outer","inner"]"#), "{line}");
}

#[test]
fn errors_of_a_sub_file_are_reported_at_their_place_in_it() {
    let dir = folder(&[
        (
            "sub/bad.ron",
            "Workflow(\n    name: \"bad\",\n    flow: \"a >> missing\",\n    tasks: {\"a\": Task(run: Noop)},\n)",
        ),
        (
            "main.ron",
            "Workflow(\n    name: \"main\",\n    flow: \"n\",\n    tasks: {\n        \"n\": Task(run: Workflow(file: \"sub/bad.ron\")),\n    },\n)",
        ),
    ]);
    let errs = errors(dir.path(), "main.ron");
    let here = errs
        .iter()
        .find(|d| file_name(&d.file) == "main.ron")
        .expect("an error in main.ron");
    assert_eq!((here.line, here.column), (5, 33), "{here}");
    assert!(
        here.message
            .contains("the sub-workflow 'sub/bad.ron' has 1 error"),
        "{here}"
    );
    let there = errs
        .iter()
        .find(|d| file_name(&d.file) == "bad.ron")
        .expect("the sub-file's error");
    assert_eq!(there.line, 3, "{there}");
    assert!(there.message.contains("'missing'"), "{there}");
    assert!(there.to_string().contains("bad.ron:3:"), "{there}");
}

#[test]
fn a_missing_sub_file_and_a_bad_placeholder_are_errors() {
    let dir = folder(&[
        ("sub.ron", SUB),
        (
            "main.ron",
            r##"Workflow(name: "main", flow: "n >> m", tasks: {
                "n": Task(run: Workflow(file: "nowhere.ron")),
                "m": Task(run: Workflow(file: "sub.ron", set: {"k": "{{nope}}"})),
            })"##,
        ),
    ]);
    let errs = errors(dir.path(), "main.ron");
    assert!(
        errs.iter()
            .any(|d| file_name(&d.file) == "nowhere.ron"
                && d.message.contains("cannot read the file")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|d| d
            .message
            .contains("task 'n': the sub-workflow 'nowhere.ron'")),
        "{errs:?}"
    );
    let dir2 = folder(&[(
        "main.ron",
        r##"Workflow(name: "main", flow: "n", tasks: {"n": Task(run: Workflow(file: "."))})"##,
    )]);
    let errs2 = errors(dir2.path(), "main.ron");
    assert!(
        errs2[0].message.contains("is not a workflow file"),
        "{errs2:?}"
    );
    let bad = errs
        .iter()
        .find(|d| d.message.contains("unknown placeholder '{{nope}}'"))
        .expect("the placeholder is refused");
    assert_eq!(bad.line, 3, "{bad}");
}

#[test]
fn recursion_is_refused_with_the_chain_of_files() {
    let dir = folder(&[
        (
            "self.ron",
            r##"Workflow(name: "self", flow: "again", tasks: {"again": Task(run: Workflow(file: "self.ron"))})"##,
        ),
        (
            "a.ron",
            r##"Workflow(name: "a", flow: "to_b", tasks: {"to_b": Task(run: Workflow(file: "sub/b.ron"))})"##,
        ),
        (
            "sub/b.ron",
            r##"Workflow(name: "b", flow: "to_a", tasks: {"to_a": Task(run: Workflow(file: "../a.ron"))})"##,
        ),
    ]);
    let errs = errors(dir.path(), "self.ron");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].message.contains("the workflow includes itself"),
        "{}",
        errs[0]
    );
    assert!(errs[0].message.contains("self.ron → "), "{}", errs[0]);

    let errs = errors(dir.path(), "a.ron");
    let cycle = errs
        .iter()
        .find(|d| d.message.contains("includes itself"))
        .expect("the cycle is named");
    assert_eq!(file_name(&cycle.file), "b.ron", "{cycle}");
    let chain: Vec<String> = cycle
        .message
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .split(" → ")
        .map(|p| file_name(&PathBuf::from(p)))
        .collect();
    assert_eq!(chain, ["a.ron", "b.ron", "a.ron"], "{cycle}");
    // Loading one file after the other leaves nothing behind: b.ron alone is a cycle too.
    assert!(load(dir.path(), "sub/b.ron").is_err());
    assert!(load(dir.path(), "sub/b.ron").is_err());
}

#[test]
fn a_file_may_run_the_same_sub_workflow_twice() {
    let dir = folder(&[
        ("sub.ron", SUB),
        (
            "main.ron",
            r##"Workflow(name: "main", flow: "one >> two", tasks: {
                "one": Task(run: Workflow(file: "sub.ron")),
                "two": Task(run: Workflow(file: "./sub.ron")),
            })"##,
        ),
    ]);
    let loaded = load(dir.path(), "main.ron").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.workflow.task("one").map(|t| t.handler().kind()),
        Some("workflow")
    );
}

/// A parent whose sub-run asks a question: `before >> nested >> after`, the sub-run
/// `s1 >> ask >> s2`; every task counts its runs in the parent's channel or its own.
fn asking(dir: &Path) {
    std::fs::write(
        dir.join("ask.ron"),
        r##"Workflow(name: "ask", flow: "s1 >> ask >> s2", tasks: {
            "s1": Task(run: Value("one")),
            "ask": Task(run: Feedback(kind: Text, prompt: "name?", timeout: "200ms")),
            "s2": Task(run: Script(r#" #{ s1: ctx.result("s1"), name: ctx.input("ask") } "#)),
        })"##,
    )
    .expect("write");
    std::fs::write(
        dir.join("main.ron"),
        r##"Workflow(name: "main", flow: "before >> nested >> after", tasks: {
            "before": Task(run: Script(r#" ctx.set("before", ctx.get("before", 0) + 1); "b" "#)),
            "nested": Task(run: Workflow(file: "ask.ron")),
            "after": Task(run: Script(r#" ctx.input("nested") "#)),
        })"##,
    )
    .expect("write");
}

#[tokio::test]
async fn a_question_that_times_out_in_a_sub_run_pauses_the_parent_and_resume_goes_on_inside() {
    use graflow_engine::checkpoint::store;
    use graflow_engine::hitl::{Answer, FeedbackBackend, FeedbackManager, FileBackend};

    let dir = tempfile::tempdir().expect("a temp folder");
    asking(dir.path());
    let backend = Arc::new(FileBackend::new(dir.path().join("feedback")));
    let mut manager = FeedbackManager::new(backend.clone());
    manager.notifiers = Vec::new();
    let manager = Arc::new(manager);
    let loaded = load(dir.path(), "main.ron").unwrap_or_else(|e| panic!("{e}"));
    let options = || {
        let mut o = RunOptions::new().with_events();
        o.feedback = Some(manager.clone());
        o.checkpoints = Some(loaded.checkpoint_config(dir.path().join("checkpoints"), None));
        o
    };
    let mut handle = Engine::new().start(loaded.workflow.clone(), options());
    let mut rx = handle.take_events().expect("events");
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let out = handle.wait().await;
    assert_eq!(out.status, RunStatus::Paused, "{:?}", out.error);
    let paused = out.paused.clone().expect("paused");
    // The question is the sub-run's, still pending, naming the parent's checkpoint.
    let (request, response) = backend
        .get(&paused.feedback_id)
        .await
        .expect("the backend answers")
        .expect("the request");
    assert!(response.is_none());
    assert_eq!(request.task, "ask");
    assert_ne!(request.run_id, out.run_id);
    assert_eq!(
        request.checkpoint.as_deref(),
        Some(paused.checkpoint.as_str())
    );
    assert!(events.iter().any(|e| matches!(
        e.kind.unnested(),
        ([t], EventKind::FeedbackRequested { .. }) if &**t == "nested"
    )));
    let ckpt = store::load(Path::new(&paused.checkpoint)).expect("the checkpoint loads");
    assert_eq!(ckpt.snapshot.pending(), ["nested"]);

    // Answered later; resumed: the sub-run goes on with the stored answer.
    backend
        .respond(
            &paused.feedback_id,
            Answer {
                text: Some("ada".into()),
                ..Answer::default()
            },
        )
        .await
        .expect("answered");
    let resumed = Engine::new()
        .resume(
            loaded.workflow.clone(),
            &ckpt.run_id,
            ckpt.snapshot,
            None,
            &paused.checkpoint,
            options(),
        )
        .expect("resumes")
        .wait()
        .await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(
        resumed.results["after"],
        json!({"s1": "one", "name": "ada"})
    );
    assert_eq!(resumed.channel["before"], json!(1), "before ran once");
}
