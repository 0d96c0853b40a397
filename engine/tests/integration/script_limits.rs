//! Scripts cannot crash or hang the engine: values nested deeper than the limit are refused
//! with a clear error (whatever depth the script builds, the process survives), and a custom
//! group policy that sleeps or loops fails its group within the policy time limit.

use std::path::Path;
use std::time::{Duration, Instant};

use graflow_engine::file::load_str;
use graflow_engine::handler::Runtimes;
use graflow_engine::prelude::*;

async fn run(text: &str) -> RunOutcome {
    let loaded =
        load_str(text, Path::new("wf.ron"), &Runtimes::default()).unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(
        Duration::from_secs(120),
        Engine::new().run(loaded.workflow.clone(), RunOptions::new()),
    )
    .await
    .expect("bounded")
}

fn error(out: &RunOutcome) -> String {
    out.error
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_values_built_by_a_script_are_refused_not_a_crash() {
    for (depth, shape) in [(200, "[a]"), (200, "#{k: a}"), (10_000, "[a]")] {
        let text = format!(
            r#"Workflow(name: "deep", flow: "t", tasks: {{
                "t": Task(run: Script("let a = []; for i in 0..{depth} {{ a = {shape}; }} a")),
            }})"#
        );
        let out = run(&text).await;
        assert_eq!(out.status, RunStatus::Failed, "{depth} {shape}");
        assert!(
            error(&out).contains("nests deeper than 128"),
            "{}",
            error(&out)
        );
    }
    // Stored in the channel: refused the same way.
    let out = run(r#"Workflow(name: "deep", flow: "t", tasks: {
        "t": Task(run: Script("let a = []; for i in 0..300 { a = [a]; } ctx.set(\"k\", a); 1")),
    })"#)
    .await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(
        error(&out).contains("nests deeper than 128"),
        "{}",
        error(&out)
    );
    // Within the limit: fine.
    let out = run(r#"Workflow(name: "deep", flow: "t", tasks: {
        "t": Task(run: Script("let a = []; for i in 0..100 { a = [a]; } a")),
    })"#)
    .await;
    assert!(out.succeeded(), "{:?}", out.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_sleeps_or_spins_fails_its_group_in_time() {
    for policy in [
        "sleep(86400); true",
        "loop { }",
        "let a = []; for i in 0..100000 { a = [a]; } true",
    ] {
        let text = format!(
            r#"Workflow(name: "p", flow: "g >> after", groups: {{
                "g": Group(members: "a | b", policy: Custom("{policy}")),
            }}, tasks: {{
                "a": Task(run: Value(1)), "b": Task(run: Value(2)), "after": Task(run: Value(3)),
            }})"#
        );
        let t0 = Instant::now();
        let out = run(&text).await;
        assert_eq!(out.status, RunStatus::Failed, "{policy}");
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{policy}: took {:?}",
            t0.elapsed()
        );
        let e = error(&out);
        assert!(
            e.contains("time limit") || e.contains("operation limit") || e.contains("size limit"),
            "{policy}: {e}"
        );
    }
}
