//! Workflow files: every field loads, bad files give errors with file, line, column and a
//! hint, warnings for unreachable tasks and loops with no exit, and loaded files run.

use std::path::Path;

use graflow_engine::file::{Diagnostic, LoadedWorkflow, Severity, load_str};
use graflow_engine::handler::Runtimes;
use graflow_engine::prelude::*;
use serde_json::json;

fn load(src: &str) -> Result<LoadedWorkflow, Vec<Diagnostic>> {
    load_str(src, Path::new("wf.ron"), &Runtimes::default()).map_err(|e| e.diagnostics)
}

fn first_error(src: &str) -> Diagnostic {
    let diags = load(src).err().expect("the file is refused");
    diags
        .into_iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error")
}

const FULL: &str = r##"// every field at least once
Workflow(
    name: "full",
    description: "shows every field",
    flow: "fetch >> cleaners >> merge",
    start: "fetch",
    max_steps: 500,
    max_cycles: 20,
    channel: Memory,
    backend: Local,
    checkpoint_dir: "ckpt",
    params: {"threshold": 3, "mode": "fast"},
    groups: {
        "cleaners": Group(members: "a | b >> c", policy: AtLeast(1), backend: Local),
    },
    tasks: {
        "fetch": Task(run: Value([1, 2, 3]), retries: (max: 3, backoff: "500ms", factor: 2.0, max_backoff: "5s", jitter: true), timeout: "30s"),
        "a": Task(run: Noop, max_cycles: 5, queue: "io"),
        "b": Task(run: Sleep("1ms")),
        "c": Task(run: Value({"k": "v"})),
        "merge": Task(run: Value("merged")),
        "spare": Task(run: Value(0)),
    },
)"##;

#[test]
fn every_field_loads() {
    let wf = load(FULL).expect("loads");
    // The one warning: no task adds the definition 'spare' (with next_task or a goto).
    assert_eq!(wf.warnings.len(), 1, "{:?}", wf.warnings);
    assert!(
        wf.warnings[0].message.contains("'spare' can never run"),
        "{:?}",
        wf.warnings
    );
    let w = &wf.workflow;
    assert_eq!(w.name(), "full");
    assert_eq!(w.description(), "shows every field");
    assert_eq!(w.max_steps(), 500);
    assert_eq!(w.max_cycles(), 20);
    assert_eq!(w.params()["threshold"], json!(3));
    assert_eq!(w.detached_tasks(), ["spare"]);
    let fetch = w.task("fetch").unwrap();
    assert_eq!(fetch.options.retry.max_retries, 3);
    assert_eq!(
        fetch.options.retry.backoff,
        std::time::Duration::from_millis(500)
    );
    assert!(fetch.options.retry.jitter);
    assert_eq!(
        fetch.options.timeout,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(w.task("a").unwrap().options.queue.as_deref(), Some("io"));
    assert_eq!(wf.hash.len(), 64);
    assert_eq!(wf.spec.checkpoint_dir.as_deref(), Some("ckpt"));
}

#[tokio::test]
async fn a_loaded_file_runs() {
    let wf = load(FULL).unwrap();
    let out = Engine::new()
        .run(wf.workflow.clone(), RunOptions::new())
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.result, Some(json!("merged")));
    assert_eq!(out.results["c"], json!({"k": "v"}));
    assert_eq!(out.channel["mode"], json!("fast"));
}

#[test]
fn syntax_error_has_line_and_column() {
    // A missing comma points where it belongs: right after `"a"`, not at the next line.
    let d = first_error("Workflow(\n  name: \"x\",\n  flow: \"a\"\n  tasks: {},\n)");
    assert_eq!((d.line, d.column), (3, 12), "{d}");
    assert_eq!(d.file, Path::new("wf.ron"));
    assert!(
        d.to_string()
            .starts_with("wf.ron:3:12: error: a comma is missing after this value"),
        "{d}"
    );
}

#[test]
fn unknown_field_is_named_with_a_hint() {
    let d =
        first_error(r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retry: 3)})"#);
    assert!(d.message.contains("retry"), "{d}");
    assert_eq!(d.line, 1);
    assert!(d.hint.is_some());
}

#[test]
fn unknown_task_kind_lists_the_kinds() {
    let d = first_error(r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Bash("ls"))})"#);
    assert!(d.message.contains("Bash"), "{d}");
    assert!(d.hint.as_deref().unwrap_or("").contains("Shell"), "{d}");
}

#[test]
fn unknown_name_in_the_flow_points_into_the_string() {
    let src = "Workflow(\n    name: \"x\",\n    flow: \"a >> nope\",\n    tasks: {\"a\": Task(run: Noop)},\n)";
    let d = first_error(src);
    assert_eq!(d.message, "unknown task or group 'nope' in the flow");
    assert_eq!((d.line, d.column), (3, 17), "{d}");
}

#[test]
fn unknown_member_of_a_group_points_into_its_members() {
    let src = "Workflow(name: \"x\", flow: \"g\",\n groups: {\"g\": Group(members: \"a | zz\")},\n tasks: {\"a\": Task(run: Noop)})";
    let d = first_error(src);
    assert_eq!(
        d.message,
        "unknown task or group 'zz' in members of group 'g'"
    );
    assert_eq!((d.line, d.column), (2, 36), "{d}");
}

#[test]
fn flow_syntax_error_points_into_the_string() {
    let src = "Workflow(name: \"x\",\n  flow: \"a >> >> b\",\n  tasks: {\"a\": Task(run: Noop), \"b\": Task(run: Noop)})";
    let d = first_error(src);
    assert!(d.message.contains("syntax error in the flow"), "{d}");
    assert_eq!((d.line, d.column), (2, 15), "{d}");
}

#[test]
fn bad_durations_name_task_and_field() {
    let src = "Workflow(name: \"x\", flow: \"a\", tasks: {\n  \"a\": Task(run: Noop, timeout: \"soon\"),\n})";
    let d = first_error(src);
    assert!(
        d.message
            .starts_with("task 'a': timeout: 'soon' is not a duration"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (2, 24), "{d}");
    assert!(d.hint.as_deref().unwrap().contains("500ms"));

    let d =
        first_error(r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Sleep("a while"))})"#);
    assert!(d.message.contains("Sleep"), "{d}");
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, retries: (max: 2, backoff: "x"))})"#,
    );
    assert!(d.message.contains("retries.backoff"), "{d}");
}

#[test]
fn a_bad_keep_for_is_an_error_at_its_field() {
    let src = "Workflow(name: \"x\", flow: \"a\",\n keep_for: \"a week\",\n tasks: {\"a\": Task(run: Noop)})";
    let d = first_error(src);
    assert!(
        d.message
            .starts_with("keep_for: 'a week' is not a duration"),
        "{d}"
    );
    assert_eq!(d.line, 2, "{d}");
    assert!(d.hint.as_deref().unwrap_or_default().contains("7d"), "{d}");
    for (text, says) in [("0s", "longer than zero"), ("400d", "366 days")] {
        let src = format!(
            r#"Workflow(name: "x", flow: "a", keep_for: "{text}", tasks: {{"a": Task(run: Noop)}})"#
        );
        let d = first_error(&src);
        assert!(d.message.contains(says), "{text}: {d}");
    }
    let ok = r#"Workflow(name: "x", flow: "a", keep_for: "7d", tasks: {"a": Task(run: Noop)})"#;
    let loaded = load(ok).expect("loads");
    assert_eq!(
        loaded.keep_for(),
        Some(std::time::Duration::from_secs(7 * 86_400))
    );
}

#[test]
fn misconfigured_policy_is_an_error_at_the_group() {
    let src = "Workflow(name: \"x\", flow: \"g\",\n groups: {\"g\": Group(members: \"a | b\", policy: AtLeast(3))},\n tasks: {\"a\": Task(run: Noop), \"b\": Task(run: Noop)})";
    let d = first_error(src);
    assert!(
        d.message.contains("group 'g'") && d.message.contains("AtLeast(3)"),
        "{d}"
    );
    assert_eq!(d.line, 2);
    let src = r#"Workflow(name: "x", flow: "g", groups: {"g": Group(members: "a | b", policy: Critical(["c"]))}, tasks: {"a": Task(run: Noop), "b": Task(run: Noop)})"#;
    assert!(first_error(src).message.contains("[c] are not members"));
}

#[test]
fn duplicate_names_and_clashes() {
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", groups: {"a": Group(members: "b")}, tasks: {"a": Task(run: Noop), "b": Task(run: Noop)})"#,
    );
    assert!(d.message.contains("both a task and a group"), "{d}");
}

#[test]
fn unknown_start_and_several_roots() {
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", start: "zz", tasks: {"a": Task(run: Noop)})"#,
    );
    assert_eq!(d.message, "unknown start task 'zz'");
    let d = first_error(
        r#"Workflow(name: "x", flow: "a; b", tasks: {"a": Task(run: Noop), "b": Task(run: Noop)})"#,
    );
    assert!(d.message.contains("several tasks could start"), "{d}");
    assert!(d.hint.unwrap().contains("start"));
}

#[cfg(feature = "http")]
#[test]
fn bad_http_fields() {
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Http(url: "ftp://x"))})"#,
    );
    assert!(d.message.contains("must start with http://"), "{d}");
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Http(url: "http://x", method: "FE TCH"))})"#,
    );
    assert!(d.message.contains("method"), "{d}");
}

/// A build without a kind's feature parses files naming it and refuses them at their place,
/// naming the feature.
#[test]
fn kinds_left_out_of_the_build_are_refused_naming_their_feature() {
    let cases = [
        (
            cfg!(feature = "script"),
            "script",
            r#"Task(run: Script("1"))"#,
        ),
        (
            cfg!(feature = "http"),
            "http",
            r#"Task(run: Http(url: "http://127.0.0.1:9/"))"#,
        ),
        (
            cfg!(feature = "docker"),
            "docker",
            r#"Task(run: Docker(image: "x"))"#,
        ),
    ];
    for (built, feature, task) in cases {
        let src = format!(r#"Workflow(name: "x", flow: "a", tasks: {{"a": {task}}})"#);
        match load(&src) {
            Ok(_) => assert!(built, "{feature}: loaded without its feature"),
            Err(diags) => {
                assert!(!built, "{feature}: {diags:?}");
                let d = &diags[0];
                assert!(d.message.contains(&format!("`{feature}` feature")), "{d}");
                assert!(d.line > 0, "{d}: no place");
            }
        }
    }
    let policy = r#"Workflow(name: "x", flow: "g", tasks: {"a": Task(run: Noop), "b": Task(run: Noop)},
        groups: {"g": Group(members: "a | b", policy: Custom("true"))})"#;
    let refusal = load(policy).err().map(|diags| diags[0].message.clone());
    let built = cfg!(feature = "script");
    assert_eq!(refusal.is_none(), built, "{refusal:?}");
    if let Some(message) = refusal {
        assert!(message.contains("`script` feature"), "{message}");
    }
}

#[test]
fn bad_handler_fields() {
    let d = first_error(r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Command([]))})"#);
    assert!(d.message.contains("Command needs a program"), "{d}");
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Noop, env: {"K": "v"})})"#,
    );
    assert!(d.message.contains("only to Shell and Command"), "{d}");
    let d = first_error(
        r#"Workflow(name: "x", flow: "a", tasks: {"a": Task(run: Shell("true"), cwd: "no/such/dir")})"#,
    );
    assert!(d.message.contains("is not a folder"), "{d}");
}

#[test]
fn several_errors_are_reported_together() {
    let src = r#"Workflow(name: "x", flow: "a >> b", tasks: {"a": Task(run: Noop, timeout: "x"), "b": Task(run: Sleep("y"))})"#;
    let diags = load(src).err().unwrap();
    assert_eq!(
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count(),
        2
    );
}

#[test]
fn warnings_for_unreachable_tasks_loops_without_exit_and_unused_groups() {
    let src = r#"Workflow(
        name: "x",
        flow: "start >> agent >> tool >> agent; island",
        start: "start",
        groups: {"unused": Group(members: "u1 | u2")},
        tasks: {
            "start": Task(run: Noop), "agent": Task(run: Noop), "tool": Task(run: Noop),
            "island": Task(run: Noop), "u1": Task(run: Noop), "u2": Task(run: Noop),
        },
    )"#;
    let wf = load(src).expect("warnings do not refuse the file");
    let messages: Vec<&str> = wf.warnings.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("'island' can never run")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("loop through agent, tool has no exit") && m.contains("(100)")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("group 'unused' is defined but not used")),
        "{messages:?}"
    );
    assert!(wf.warnings.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn a_loop_with_an_exit_is_not_warned() {
    let src = r#"Workflow(name: "x", flow: "agent >> tool >> agent; tool >> done", start: "agent",
        tasks: {"agent": Task(run: Noop), "tool": Task(run: Noop), "done": Task(run: Noop)})"#;
    assert!(load(src).unwrap().warnings.is_empty());
}

#[test]
fn raw_strings_and_comments_do_not_confuse_positions() {
    let src = "// flow: \"zz\" in a comment\nWorkflow(\n  name: \"x\", // tasks: {}\n  flow: r#\"a >> \"q\" \"#,\n  tasks: {\"a\": Task(run: Noop)},\n)";
    let d = first_error(src);
    assert_eq!((d.line, d.column), (4, 17), "{d}");
}

#[test]
fn never_panics_on_random_or_mutated_input() {
    let mut state = 0x9e37_79b9_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let runtimes = Runtimes::default();
    for _ in 0..3_000 {
        let mut bytes = FULL.as_bytes().to_vec();
        for _ in 0..(next() % 6 + 1) {
            let i = (next() as usize) % bytes.len();
            match next() % 4 {
                0 => bytes[i] = (next() % 128) as u8,
                1 => {
                    bytes.remove(i);
                }
                2 => bytes.insert(i, b"(){}[]\",:|>#r"[(next() % 13) as usize]),
                _ => bytes.truncate(i),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, Path::new("m.ron"), &runtimes);
    }
    for _ in 0..3_000 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = load_str(
            &String::from_utf8_lossy(&bytes),
            Path::new("r.ron"),
            &runtimes,
        );
    }
}
