//! `Script` tasks through the real engine: every function of the `ctx` API, loops, dynamic
//! tasks, terminate/cancel, errors with positions, the sandbox, script files, timeouts, and
//! custom group policies written in Rhai.

use crate::common;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::run;
use graflow_engine::handler::script::{
    Limits, ScriptError, ScriptHandler, ScriptPolicy, ScriptRuntime, ScriptSource,
};
use graflow_engine::handler::{HandlerEnv, Runtimes};
use graflow_engine::prelude::*;
use graflow_engine::{TaskHandle, WorkflowBuilder};
use serde_json::json;

/// One environment (so one Rhai engine) for every test in this file.
static ENV: LazyLock<HandlerEnv> = LazyLock::new(HandlerEnv::default);

fn handler(code: &str) -> Arc<ScriptHandler> {
    Arc::new(ScriptHandler::new(ScriptSource::Inline(code.into()), &ENV).expect("script compiles"))
}

fn script_def(id: &str, code: &str) -> TaskDef {
    TaskDef::new(id, handler(code))
}

fn script(wf: &mut WorkflowBuilder, id: &str, code: &str) -> TaskHandle {
    wf.add(script_def(id, code))
}

fn task_error(out: &RunOutcome) -> String {
    match &out.error {
        Some(RunError::TaskFailed { message, .. }) => message.clone(),
        other => panic!("expected a task failure, got {other:?}"),
    }
}

fn logs(events: &[RunEvent], task: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskLog { task: t, line, .. } if &**t == task => Some(line.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- results and identity

#[tokio::test]
async fn the_last_expression_is_the_result_and_unit_is_null() {
    let mut wf = Workflow::builder("results");
    let a = script(
        &mut wf,
        "a",
        r#"#{ n: 40 + 2, f: 1.5, s: "hi", list: [1, true, ()], nested: #{ x: [] } }"#,
    );
    let b = script(&mut wf, "b", "let x = 1;");
    let c = script(&mut wf, "c", r#""done""#);
    wf.flow(a >> b >> c);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        out.results["a"],
        json!({"n": 42, "f": 1.5, "s": "hi", "list": [1, true, null], "nested": {"x": []}})
    );
    assert_eq!(out.results["b"], Value::Null);
    assert_eq!(out.result, Some(json!("done")));
}

#[tokio::test]
async fn identity_fields_name_the_task_run_cycle_and_attempt() {
    let mut wf = Workflow::builder("identity");
    // Fails on its first attempt, so the result shows attempt 1.
    let t = wf.add(
        script_def(
            "ident",
            r#"
            if ctx.attempt == 0 { throw "first attempt fails"; }
            #{ task: ctx.task_id, run: ctx.run_id, cycle: ctx.cycle, attempt: ctx.attempt, data: ctx.data }
            "#,
        )
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(1))),
    );
    wf.flow(t);
    let wf = Arc::new(wf.build().expect("builds"));
    let out = Engine::new()
        .run(wf, RunOptions::new().run_id("run-7"))
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        out.results["ident"],
        json!({"task": "ident", "run": "run-7", "cycle": 1, "attempt": 1, "data": null})
    );
}

#[tokio::test]
async fn inputs_and_results_of_other_tasks() {
    let mut wf = Workflow::builder("inputs");
    let fetch = script(&mut wf, "fetch", "[1, 2, 3]");
    let count = script(&mut wf, "count", r#"ctx.input("fetch").len()"#);
    let report = script(
        &mut wf,
        "report",
        r#"#{
            count: ctx.input("count"),
            all: ctx.inputs,
            fetched: ctx.result("fetch"),
            missing_input: ctx.input("fetch"),
            missing_result: ctx.result("nobody"),
        }"#,
    );
    wf.flow(fetch >> count >> report);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        out.results["report"],
        json!({
            "count": 3,
            "all": {"count": 3},
            "fetched": [1, 2, 3],
            "missing_input": null,
            "missing_result": null,
        })
    );
}

#[tokio::test]
async fn inputs_from_a_group_and_a_members_view_of_its_groups_inputs() {
    let mut wf = Workflow::builder("group-inputs");
    let start = script(&mut wf, "start", r#""seed""#);
    let left = script(&mut wf, "left", r#"ctx.input("start") + "-left""#);
    let right = script(&mut wf, "right", r#"ctx.input("start") + "-right""#);
    let join = script(
        &mut wf,
        "join",
        r#"let i = ctx.inputs; [i.left, i.right, i.cleaners.left, i.keys().len()]"#,
    );
    wf.flow(start >> (left | right).named("cleaners") >> join);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["left"], json!("seed-left"));
    assert_eq!(out.results["right"], json!("seed-right"));
    // The group contributes its own entry and one per member.
    assert_eq!(
        out.results["join"],
        json!(["seed-left", "seed-right", "seed-left", 3])
    );
}

// ---------------------------------------------------------------- channel

#[tokio::test]
async fn every_channel_function() {
    let mut wf = Workflow::builder("channel");
    let writer = script(
        &mut wf,
        "writer",
        r#"
        ctx.set("name", "graflow");
        ctx.set("cfg", #{ depth: 2, tags: ["a"] });
        ctx.set("gone", 1);
        let existed = ctx.delete("gone");
        let again = ctx.delete("gone");
        let n1 = ctx.append("list", 2);
        let n2 = ctx.append("list", 3);
        let n3 = ctx.prepend("list", 1);
        [existed, again, n1, n2, n3]
        "#,
    );
    let reader = script(
        &mut wf,
        "reader",
        r#"
        #{
            name: ctx.get("name"),
            depth: ctx.get("cfg").depth,
            missing: ctx.get("nothing"),
            defaulted: ctx.get("nothing", 7),
            present_default: ctx.get("name", "other"),
            has_name: ctx.exists("name"),
            has_gone: ctx.exists("gone"),
            keys: ctx.keys(),
            list: ctx.get("list"),
            param: ctx.get("limit"),
        }
        "#,
    );
    wf.flow(writer >> reader).param("limit", 10);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["writer"], json!([true, false, 1, 2, 3]));
    assert_eq!(
        out.results["reader"],
        json!({
            "name": "graflow",
            "depth": 2,
            "missing": null,
            "defaulted": 7,
            "present_default": "graflow",
            "has_name": true,
            "has_gone": false,
            "keys": ["cfg", "limit", "list", "name"],
            "list": [1, 2, 3],
            "param": 10,
        })
    );
    assert_eq!(out.channel["cfg"], json!({"depth": 2, "tags": ["a"]}));
}

#[tokio::test]
async fn appending_to_a_non_list_is_a_script_error_naming_the_key() {
    let mut wf = Workflow::builder("not-a-list");
    let t = script(&mut wf, "t", r#"ctx.set("k", 1); ctx.append("k", 2)"#);
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(
        task_error(&out),
        "ctx.append('k'): channel key 'k' exists but is not a list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_members_appending_to_the_channel_all_land() {
    let mut wf = Workflow::builder("concurrent");
    let members: Vec<Flow> = (0..4)
        .map(|m| {
            // A loop: these members run on the blocking pool, truly in parallel.
            let code = format!(
                r#"for i in 0..50 {{ ctx.append("items", #{{ m: {m}, i: i }}); }} ctx.get("items").len()"#
            );
            Flow::from(script(&mut wf, &format!("m{m}"), &code))
        })
        .collect();
    let group = members.into_iter().reduce(|a, b| a | b).expect("members");
    let count = script(&mut wf, "count", r#"ctx.get("items").len()"#);
    wf.flow(group >> count);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["count"], json!(200));
    let items = out.channel["items"].as_array().expect("a list");
    for m in 0..4 {
        let mine: Vec<i64> = items
            .iter()
            .filter(|it| it["m"] == json!(m))
            .map(|it| it["i"].as_i64().expect("i"))
            .collect();
        assert_eq!(mine, (0..50).collect::<Vec<_>>(), "member {m} in order");
    }
}

// ---------------------------------------------------------------- loops

#[tokio::test]
async fn a_state_machine_iterates_with_its_data_before_its_successor_runs() {
    let mut wf = Workflow::builder("machine");
    let machine = script(
        &mut wf,
        "machine",
        r#"
        let state = if ctx.data == () { #{ name: "idle", visits: 0 } } else { ctx.data };
        ctx.append("trace", `${state.name}@${ctx.cycle}`);
        switch state.name {
            "idle" => ctx.next_iteration(#{ name: "fetching", visits: state.visits + 1 }),
            "fetching" => ctx.next_iteration(#{ name: "parsing", visits: state.visits + 1 }),
            "parsing" => ctx.next_iteration(#{ name: "done", visits: state.visits + 1 }),
            _ => ()
        }
        state
        "#,
    );
    let after = script(
        &mut wf,
        "after",
        r#"ctx.append("trace", "after"); ctx.input("machine")"#,
    );
    wf.flow(machine >> after);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        out.channel["trace"],
        json!(["idle@1", "fetching@2", "parsing@3", "done@4", "after"])
    );
    assert_eq!(out.results["after"], json!({"name": "done", "visits": 3}));
    let machine_runs = events
        .iter()
        .filter(
            |e| matches!(&e.kind, EventKind::TaskSucceeded { task, .. } if &**task == "machine"),
        )
        .count();
    assert_eq!(machine_runs, 4);
}

#[tokio::test]
async fn can_iterate_stops_at_the_cycle_limit_and_iterating_past_it_fails() {
    let mut wf = Workflow::builder("bounded");
    let t = wf.add(
        script_def(
            "bounded",
            "if ctx.can_iterate() { ctx.next_iteration() } ctx.cycle",
        )
        .max_cycles(3),
    );
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["bounded"], json!(3));

    let mut wf = Workflow::builder("runaway");
    let t = wf.add(script_def("spin", "ctx.next_iteration(1); ctx.cycle").max_cycles(2));
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::TaskFailed {
            task: "spin".into(),
            message: "cycle limit exceeded for task 'spin': 2/2 cycles".into(),
        })
    );
}

#[tokio::test]
async fn a_control_error_can_be_caught_by_the_script() {
    let mut wf = Workflow::builder("catch");
    let t = script(
        &mut wf,
        "t",
        r#"let r = "not caught"; try { ctx.goto("nowhere"); } catch (e) { r = `caught: ${e}`; } r"#,
    );
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.results["t"],
        json!("caught: task 't' asked for unknown task 'nowhere'")
    );
}

// ---------------------------------------------------------------- dynamic tasks

#[tokio::test]
async fn next_task_adds_an_inline_script_and_the_successors_still_run() {
    let mut wf = Workflow::builder("dynamic");
    let a = script(
        &mut wf,
        "a",
        r#"
        ctx.append("order", "a");
        ctx.next_task("extra", #{ run: `ctx.append("order", ctx.task_id); ctx.result("a") * 2` });
        21
        "#,
    );
    let b = script(
        &mut wf,
        "b",
        r#"ctx.append("order", "b"); ctx.result("extra")"#,
    );
    wf.flow(a >> b);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.channel["order"], json!(["a", "extra", "b"]));
    assert_eq!(out.results["extra"], json!(42));
    assert_eq!(out.results["b"], json!(42));
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::GraphChanged { added, .. } if added.iter().any(|id| &**id == "extra")
    )));
}

#[tokio::test]
async fn next_task_to_a_defined_task_and_to_an_existing_one() {
    let mut wf = Workflow::builder("jumps");
    // "helper" is defined but not in the flow: next_task adds it as a new task.
    wf.add(script_def(
        "helper",
        r#"ctx.append("order", "helper"); "helped""#,
    ));
    let a = script(
        &mut wf,
        "a",
        r#"ctx.append("order", "a"); ctx.next_task("helper"); ctx.next_task("c"); 1"#,
    );
    let b = script(&mut wf, "b", r#"ctx.append("order", "b")"#);
    let c = script(&mut wf, "c", r#"ctx.append("order", "c")"#);
    wf.flow(a >> b >> c);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    // "c" exists, so next_task jumps there and a's successor b is skipped.
    assert_eq!(out.channel["order"], json!(["a", "helper", "c"]));
    assert_eq!(out.results["helper"], json!("helped"));
    assert!(!out.results.contains_key("b"));
}

#[tokio::test]
async fn goto_jumps_and_skips_the_successors() {
    let mut wf = Workflow::builder("goto");
    let a = script(
        &mut wf,
        "a",
        r#"ctx.append("order", "a"); ctx.goto("d"); "a""#,
    );
    let b = script(&mut wf, "b", r#"ctx.append("order", "b")"#);
    let c = script(&mut wf, "c", r#"ctx.append("order", "c")"#);
    let d = script(&mut wf, "d", r#"ctx.append("order", "d"); "end""#);
    wf.flow(a >> b >> c >> d);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.channel["order"], json!(["a", "d"]));
    assert_eq!(out.result, Some(json!("end")));
}

#[tokio::test]
async fn next_task_to_an_unknown_task_fails_with_the_engines_message() {
    let mut wf = Workflow::builder("unknown");
    let t = script(&mut wf, "t", r#"ctx.next_task("ghost")"#);
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(task_error(&out), "task 't' asked for unknown task 'ghost'");
}

#[tokio::test]
async fn an_inline_next_task_that_does_not_compile_fails_the_caller() {
    let mut wf = Workflow::builder("bad-inline");
    let t = script(&mut wf, "t", r#"ctx.next_task("x", #{ run: "let = 1" })"#);
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(msg.starts_with("ctx.next_task('x', …): "), "{msg}");
    assert!(msg.contains("line 1, column"), "{msg}");

    let mut wf = Workflow::builder("bad-key");
    let t = script(&mut wf, "t", r#"ctx.next_task("x", #{ code: "1" })"#);
    wf.flow(t);
    let (out, _) = run(wf).await;
    assert_eq!(
        task_error(&out),
        "ctx.next_task('x', …): unknown key 'code' (expected `run` with the new task's script)"
    );
}

// ---------------------------------------------------------------- terminate, cancel, throw, log

#[tokio::test]
async fn terminate_completes_the_task_and_ends_the_run_successfully() {
    let mut wf = Workflow::builder("terminate");
    let a = script(&mut wf, "a", r#"ctx.terminate_workflow("enough"); "last""#);
    let b = script(&mut wf, "b", "1");
    wf.flow(a >> b);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.terminated.as_deref(), Some("enough"));
    assert_eq!(out.result, Some(json!("last")));
    assert!(!out.results.contains_key("b"));
}

#[tokio::test]
async fn cancel_stops_the_run_without_completing_the_task() {
    let mut wf = Workflow::builder("cancel");
    let a = script(&mut wf, "a", r#"ctx.cancel_workflow("abort: bad data"); 1"#);
    let b = script(&mut wf, "b", "1");
    wf.flow(a >> b);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(
        out.error,
        Some(RunError::Cancelled {
            task: Some("a".into()),
            message: "abort: bad data".into(),
        })
    );
    assert!(out.results.is_empty());
}

#[tokio::test]
async fn throw_fails_the_task_with_the_message() {
    let mut wf = Workflow::builder("throw");
    let t = script(
        &mut wf,
        "t",
        r#"let rows = 0; if rows == 0 { throw "no rows to clean"; } rows"#,
    );
    wf.flow(t);
    let (out, events) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::TaskFailed {
            task: "t".into(),
            message: "no rows to clean".into(),
        })
    );
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::TaskFailed { error, .. } if error == "no rows to clean"
    )));
}

#[tokio::test]
async fn runtime_errors_carry_their_position() {
    let mut wf = Workflow::builder("runtime-error");
    let t = script(&mut wf, "t", "let x = 1;\nlet y = x + missing;\ny");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(msg.contains("missing"), "{msg}");
    assert!(msg.ends_with("(line 2, column 13)"), "{msg}");
}

#[tokio::test]
async fn a_result_that_is_not_data_is_an_error() {
    let mut wf = Workflow::builder("bad-result");
    let t = script(&mut wf, "t", "ctx");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with("the script's result is a TaskContext and cannot be turned into JSON"),
        "{msg}"
    );
}

#[tokio::test]
async fn log_print_and_debug_write_task_log_lines() {
    let mut wf = Workflow::builder("log");
    let t = script(
        &mut wf,
        "t",
        r#"ctx.log("loading"); ctx.log(42); print("from print"); debug("dbg"); 1"#,
    );
    wf.flow(t);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let lines = logs(&events, "t");
    assert_eq!(lines[..3], ["loading", "42", "from print"]);
    assert!(lines[3].starts_with("debug: \"dbg\""), "{:?}", lines[3]);
}

// ---------------------------------------------------------------- sandbox

fn small_env(limits: Limits) -> HandlerEnv {
    HandlerEnv::new(
        ".",
        Runtimes {
            script: ScriptRuntime::with_limits(limits),
            ..Runtimes::default()
        },
    )
}

#[tokio::test]
async fn an_endless_loop_hits_the_operation_limit() {
    let env = small_env(Limits {
        max_operations: 20_000,
        ..Limits::default()
    });
    let h = ScriptHandler::new(
        ScriptSource::Inline("let i = 0;\nloop { i += 1; }".into()),
        &env,
    )
    .expect("compiles");
    let mut wf = Workflow::builder("endless");
    let t = wf.add(TaskDef::new("spin", Arc::new(h)));
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with(
            "operation limit exceeded: the script ran more than 20000 operations (line 2"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_operation_limit_stops_an_endless_loop() {
    let mut wf = Workflow::builder("endless-default");
    let t = script(&mut wf, "spin", "loop { }");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with("operation limit exceeded: the script ran more than 5000000 operations"),
        "{msg}"
    );
}

#[test]
fn import_and_eval_are_refused_when_the_script_is_loaded() {
    for code in [r#"import "os" as os; 1"#, r#"eval("1 + 1")"#] {
        let err = ScriptHandler::new(ScriptSource::Inline(code.into()), &ENV).expect_err("refused");
        assert!(err.line.is_some() && err.column.is_some(), "{err:?}");
        assert!(
            err.message.contains("import") || err.message.contains("eval"),
            "{code}: {}",
            err.message
        );
    }
}

#[tokio::test]
async fn deep_recursion_fails_cleanly() {
    let mut wf = Workflow::builder("recursion");
    let t = script(&mut wf, "t", "fn down(n) { down(n + 1) }\ndown(0)");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with("call depth limit exceeded: more than 64 nested function calls"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_huge_string_or_array_fails_cleanly() {
    let mut wf = Workflow::builder("huge");
    let t = script(&mut wf, "t", "let s = \"0123456789\";\nloop { s += s; }");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with("size limit exceeded: length of string too large"),
        "{msg}"
    );
    assert!(msg.contains("(line 2, column"), "{msg}");

    let mut wf = Workflow::builder("huge-array");
    let t = script(&mut wf, "t", "let a = [];\na.pad(200000, 0);\na.len()");
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.starts_with("size limit exceeded: size of array"),
        "{msg}"
    );
}

#[test]
fn straight_line_scripts_run_inline_and_the_others_on_the_blocking_pool() {
    let inline = |code: &str| handler(code).runs_inline();
    assert!(inline(r#"ctx.set("k", ctx.cycle + 1); ctx.get("k")"#));
    assert!(inline("if ctx.cycle > 1 { 1 } else { 2 }"));
    assert!(!inline("for i in 0..3 { }"));
    assert!(!inline("let n = 0; while n < 3 { n += 1; }"));
    assert!(!inline("fn f(x) { x } f(1)"));
    assert!(!inline("[1, 2].map(|x| x * 2)"));
    assert!(!inline(r#"[1, 2].map(Fn("abs"))"#));
    assert!(!inline("sleep(0.01)"));
    assert!(!inline(&"1;\n".repeat(3000)));
}

// ---------------------------------------------------------------- compile errors and files

#[test]
fn a_compile_error_carries_line_and_column() {
    let err = ScriptHandler::new(
        ScriptSource::Inline("let x = 1;\nlet y = x +;\ny".into()),
        &ENV,
    )
    .expect_err("does not compile");
    assert_eq!((err.line, err.column), (Some(2), Some(12)), "{err:?}");
    assert!(!err.message.contains("line"), "{}", err.message);
    assert_eq!(
        err.located(Some("merge.rhai")),
        format!("{} (merge.rhai, line 2, column 12)", err.message)
    );
}

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("graflow-script-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_script_file_is_read_relative_to_the_base_folder() {
    let dir = TempDir::new("files");
    std::fs::create_dir_all(dir.0.join("scripts")).expect("sub folder");
    std::fs::write(
        dir.0.join("scripts/merge.rhai"),
        "// merges\nlet parts = ctx.inputs;\n[parts.a, parts.b].reduce(|s, x| s + x, 0) * 10 + parts.g.len()\n",
    )
    .expect("write script");
    std::fs::write(
        dir.0.join("scripts/broken.rhai"),
        "let a = 1;\n\nlet b = a +;\n",
    )
    .expect("write script");
    std::fs::write(dir.0.join("scripts/fails.rhai"), "let a = 1;\na.nope()\n").expect("write");
    let env = HandlerEnv::new(&dir.0, ENV.runtimes.clone());

    let merge = ScriptHandler::new(ScriptSource::File("scripts/merge.rhai".into()), &env)
        .expect("file compiles");
    let mut wf = Workflow::builder("file");
    let a = script(&mut wf, "a", "1");
    let b = script(&mut wf, "b", "2");
    let m = wf.add(TaskDef::new("merge", Arc::new(merge)));
    wf.flow((a | b).named("g") >> m);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    // inputs: a, b and the group's own entry g = {a: 1, b: 2}.
    assert_eq!(out.results["merge"], json!(32));

    let err = ScriptHandler::new(ScriptSource::File("scripts/broken.rhai".into()), &env)
        .expect_err("does not compile");
    assert_eq!((err.line, err.column), (Some(3), Some(12)), "{err:?}");

    let fails = ScriptHandler::new(ScriptSource::File("scripts/fails.rhai".into()), &env)
        .expect("compiles");
    let mut wf = Workflow::builder("file-fails");
    let t = wf.add(TaskDef::new("t", Arc::new(fails)));
    wf.flow(t);
    let (out, _) = run(wf).await;
    let msg = task_error(&out);
    assert!(
        msg.ends_with("(scripts/fails.rhai, line 2, column 3)"),
        "{msg}"
    );

    let err = ScriptHandler::new(ScriptSource::File("scripts/absent.rhai".into()), &env)
        .expect_err("missing file");
    assert!(
        err.message.starts_with("cannot read script file '"),
        "{}",
        err.message
    );
    assert!(err.message.contains("absent.rhai"), "{}", err.message);
    assert_eq!((err.line, err.column), (None, None));
}

// ---------------------------------------------------------------- timeouts and cancellation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_stops_a_long_script() {
    let channel = Channel::memory();
    let mut wf = Workflow::builder("timeout");
    let t = wf.add(
        script_def(
            "busy",
            r#"let i = 0; loop { i += 1; if i % 100 == 0 { ctx.set("ticks", i); } }"#,
        )
        .timeout(Duration::from_millis(200)),
    );
    wf.flow(t);
    let wf = Arc::new(wf.build().expect("builds"));
    let out = Engine::new()
        .run(wf, RunOptions::new().channel(channel.clone()))
        .await;
    assert_eq!(task_error(&out), "timed out after 200ms");
    let ticks = || async { channel.get("ticks").await.expect("memory channel") };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = ticks().await;
    assert!(first.is_some(), "the script ran before the timeout");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ticks().await, first, "the script stopped after the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_stops_a_sleeping_script() {
    let mut wf = Workflow::builder("cancel-sleep");
    let t = script(&mut wf, "sleepy", r#"sleep(30); ctx.set("woke", true)"#);
    wf.flow(t);
    let wf = Arc::new(wf.build().expect("builds"));
    let channel = Channel::memory();
    let handle = Engine::new().start(wf, RunOptions::new().channel(channel.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    handle.cancel("operator stop");
    let out = handle.wait().await;
    assert_eq!(out.status, RunStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(channel.get("woke").await.expect("memory"), None);
}

// ---------------------------------------------------------------- custom policies

fn policy(expression: &str) -> GroupPolicy {
    GroupPolicy::Custom(Arc::new(
        ScriptPolicy::new(expression, &ENV.runtimes.script).expect("policy compiles"),
    ))
}

/// `(ok_a | ok_b | bad) .policy(p) >> after`
fn policy_workflow(p: GroupPolicy) -> WorkflowBuilder {
    let mut wf = Workflow::builder("policy");
    let a = script(&mut wf, "ok_a", "1");
    let b = script(&mut wf, "ok_b", "2");
    let bad = script(&mut wf, "bad", r#"throw "bad broke""#);
    let after = script(&mut wf, "after", "ctx.input(\"g\")");
    wf.flow((a | b | bad).named("g").policy(p) >> after);
    wf
}

#[tokio::test]
async fn a_custom_policy_that_returns_true_passes_the_group() {
    let p = policy(
        r#"
        let failures = outcomes.filter(|o| !o.ok);
        group == "g" && total == 3 && succeeded == 2 && failed == 1
            && failures.len() == 1 && failures[0].id == "bad"
            && failures[0].error.contains("bad broke")
            && outcomes.all(|o| o.duration_ms >= 0)
        "#,
    );
    let (out, events) = run(policy_workflow(p)).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["after"], json!({"ok_a": 1, "ok_b": 2}));
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::GroupFinished { ok: true, failed, .. } if failed.len() == 1
    )));
}

#[tokio::test]
async fn a_custom_policy_that_returns_false_fails_the_group() {
    let (out, _) = run(policy_workflow(policy("failed == 0"))).await;
    match &out.error {
        Some(RunError::GroupFailed(f)) => {
            assert_eq!(
                f.message,
                "custom policy rejected group 'g': 2/3 members succeeded"
            );
            assert_eq!(f.failed.len(), 1);
            assert_eq!(f.failed[0].0, "bad");
        }
        other => panic!("expected a group failure, got {other:?}"),
    }
    assert!(!out.results.contains_key("after"));
}

#[tokio::test]
async fn a_custom_policy_can_throw_or_return_the_wrong_type() {
    let message = |p: &str| {
        let p = policy(p);
        async move {
            let (out, _) = run(policy_workflow(p)).await;
            match out.error {
                Some(RunError::GroupFailed(f)) => f.message,
                other => panic!("expected a group failure, got {other:?}"),
            }
        }
    };
    assert_eq!(
        message(r#"if failed > 0 { throw `${failed} member(s) down` } true"#).await,
        "1 member(s) down"
    );
    assert_eq!(
        message("succeeded").await,
        "custom policy of group 'g' must return true or false, got i64 2"
    );
    let msg = message("let n = 0; loop { n += 1; }").await;
    assert!(
        msg.starts_with(
            "custom policy of group 'g' failed: operation limit exceeded: the script ran more than 100000 operations"
        ),
        "{msg}"
    );
}

#[test]
fn a_policy_that_does_not_compile_is_refused_with_its_position() {
    let err: ScriptError =
        ScriptPolicy::new("succeeded >=", &ENV.runtimes.script).expect_err("refused");
    assert_eq!(err.line, Some(1));
    assert!(err.column.is_some());
}
