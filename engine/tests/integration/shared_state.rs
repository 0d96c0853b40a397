//! Typed state given to a run (`RunOptions::state`) and read by its tasks (`ctx.state::<T>()`):
//! every task of the run, group members included, sees the same value; a type the run was not
//! given fails the task with the type's name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use graflow_engine::prelude::*;
use serde_json::json;

/// Stands for a connection pool the program owns.
struct Pool {
    borrowed: AtomicU32,
}

struct Settings {
    greeting: &'static str,
}

#[tokio::test]
async fn every_task_and_member_reads_the_same_value() {
    let mut wf = Workflow::builder("state");
    let members: Vec<Flow> = (0..20)
        .map(|i| {
            Flow::from(wf.task(&format!("m{i}"), |ctx| async move {
                let pool = ctx.state::<Pool>()?;
                anyhow::Ok(pool.borrowed.fetch_add(1, Ordering::SeqCst))
            }))
        })
        .collect();
    let greet = wf.task("greet", |ctx| async move {
        anyhow::Ok(format!(
            "{}, {}",
            ctx.state::<Settings>()?.greeting,
            ctx.task_id()
        ))
    });
    let group = members.into_iter().reduce(|a, b| a | b).expect("members");
    wf.flow(greet >> group);
    let options = RunOptions::new()
        .state(Settings { greeting: "hello" })
        .state(Pool {
            borrowed: AtomicU32::new(100),
        });
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), options)
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["greet"], json!("hello, greet"));
    let mut seen: Vec<u64> = (0..20)
        .map(|i| out.results[&format!("m{i}")].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (100..120).collect::<Vec<u64>>(), "one shared value");
}

#[tokio::test]
async fn a_type_the_run_was_not_given_fails_the_task_naming_it() {
    let mut wf = Workflow::builder("state");
    wf.task("needs", |ctx| async move {
        anyhow::Ok(ctx.state::<Settings>()?.greeting)
    });
    wf.flow_str("needs");
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), RunOptions::new())
        .await;
    assert_eq!(out.status, RunStatus::Failed);
    let error = out.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("shared_state::Settings"), "{error}");
    assert!(error.contains("RunOptions::state"), "{error}");
}
