//! Control flow: next_iteration (order, data, held successors), cycle limits, next_task new vs
//! existing, goto, terminate and cancel (priority, workflow-wide, inside group members).

use crate::common;

use std::time::Duration;

use common::{Trace, recs, run};
use graflow_engine::prelude::*;
use serde_json::json;

#[tokio::test]
async fn a_loop_holds_its_successors_until_it_stops_iterating() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("train");
    let [setup, evaluate] = recs(&mut wf, &trace, ["setup", "evaluate"]);
    let t = trace.clone();
    let train = wf.task("train", move |ctx: TaskContext| {
        let t = t.clone();
        async move {
            let epoch = ctx.data().as_u64().unwrap_or(0);
            t.push(format!("train({epoch})"));
            if epoch < 2 {
                ctx.next_iteration(epoch + 1)?;
            }
            anyhow::Ok(json!({"epoch": epoch, "cycle": ctx.cycle()}))
        }
    });
    wf.flow(setup >> train >> evaluate);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        trace.get(),
        ["setup", "train(0)", "train(1)", "train(2)", "evaluate"]
    );
    assert_eq!(out.results["train"], json!({"epoch": 2, "cycle": 3}));
    let train_results: Vec<&Value> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TaskSucceeded { task, result, .. } if &**task == "train" => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(
        train_results.len(),
        3,
        "every execution's result is reported"
    );
}

#[tokio::test]
async fn a_counter_iterates_with_its_data() {
    let mut wf = Workflow::builder("counter");
    let counter = wf.task("counter", |ctx: TaskContext| async move {
        let n = ctx.data().as_i64().unwrap_or(0);
        if n < 3 {
            ctx.next_iteration(n + 1)?;
        }
        anyhow::Ok(n)
    });
    wf.flow(counter);
    let (out, _) = run(wf).await;
    assert_eq!(out.result, Some(json!(3)));
    assert_eq!(out.steps, 4);
}

#[tokio::test]
async fn iterating_past_the_cycle_limit_is_an_error() {
    let mut wf = Workflow::builder("runaway");
    wf.add(
        TaskDef::from_fn("spin", |ctx: TaskContext| async move {
            ctx.next_iteration(())?;
            anyhow::Ok(ctx.can_iterate())
        })
        .max_cycles(5),
    );
    wf.flow_str("spin");
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::CycleLimitExceeded {
            task: "spin".into(),
            count: 5,
            limit: 5
        })
    );
    assert_eq!(out.steps, 4);
}

#[tokio::test]
async fn the_workflow_cycle_limit_applies_to_static_cycles() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("ping-pong");
    recs(&mut wf, &trace, ["ping", "pong"]);
    wf.flow_str("ping >> pong >> ping")
        .start("ping")
        .max_cycles(3);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::CycleLimitExceeded {
            task: "ping".into(),
            count: 3,
            limit: 3
        })
    );
    assert_eq!(
        trace.get(),
        ["ping", "pong", "ping", "pong", "ping", "pong"]
    );
}

#[tokio::test]
async fn a_static_cycle_stopped_by_terminate() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("agent");
    let [tool] = recs(&mut wf, &trace, ["tool"]);
    let t = trace.clone();
    let agent = wf.task("agent", move |ctx: TaskContext| {
        let t = t.clone();
        async move {
            t.push("agent");
            if ctx.cycle() == 3 {
                ctx.terminate_workflow("answer found");
            }
            anyhow::Ok(format!("thought {}", ctx.cycle()))
        }
    });
    let [start] = recs(&mut wf, &trace, ["start"]);
    wf.flow(start >> agent >> tool >> agent);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Succeeded);
    assert_eq!(out.terminated.as_deref(), Some("answer found"));
    assert_eq!(
        trace.get(),
        ["start", "agent", "tool", "agent", "tool", "agent"]
    );
    assert_eq!(out.result, Some(json!("thought 3")));
}

#[tokio::test]
async fn a_goto_loop_stops_with_can_iterate() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("goto-agent");
    let t = trace.clone();
    wf.add(
        TaskDef::from_fn("agent", move |ctx: TaskContext| {
            let t = t.clone();
            async move {
                t.push("agent");
                if ctx.can_iterate() {
                    ctx.goto("tool")?;
                }
                anyhow::Ok(())
            }
        })
        .max_cycles(3),
    );
    let t = trace.clone();
    let tool = wf.task("tool", move |ctx: TaskContext| {
        let t = t.clone();
        async move {
            t.push("tool");
            ctx.goto("agent")?;
            anyhow::Ok(())
        }
    });
    let _ = tool;
    wf.flow_str("agent >> done; tool").start("agent");
    recs(&mut wf, &trace, ["done"]);
    // `tool` is a second statement with no edges; start is explicit.
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        trace.get(),
        ["agent", "tool", "agent", "tool", "agent", "done"]
    );
}

#[tokio::test]
async fn next_task_with_a_new_id_adds_it_and_keeps_successors() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("dynamic");
    let [after] = recs(&mut wf, &trace, ["after"]);
    let t = trace.clone();
    let s = wf.task("s", move |ctx: TaskContext| {
        let t = t.clone();
        async move {
            t.push("s");
            for i in 0..3 {
                let t = t.clone();
                ctx.next_task_def(TaskDef::from_fn(
                    format!("worker_{i}"),
                    move |c: TaskContext| {
                        let t = t.clone();
                        async move {
                            t.push(c.task_id());
                            anyhow::Ok(i * 10)
                        }
                    },
                ))?;
            }
            anyhow::Ok(())
        }
    });
    wf.flow(s >> after);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        trace.get(),
        ["s", "worker_0", "worker_1", "worker_2", "after"]
    );
    assert_eq!(out.results["worker_2"], json!(20));
    let added: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::GraphChanged { added, by } => {
                assert_eq!(&**by, "s");
                Some(added[0].to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(added, ["worker_0", "worker_1", "worker_2"]);
}

#[tokio::test]
async fn next_task_adds_a_detached_definition() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("detached");
    let [after] = recs(&mut wf, &trace, ["after"]);
    recs(&mut wf, &trace, ["extra"]);
    let s = wf.task("s", |ctx: TaskContext| async move {
        ctx.next_task("extra")?;
        anyhow::Ok(())
    });
    wf.flow(s >> after);
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.get(), ["extra", "after"]);
}

#[tokio::test]
async fn next_task_with_an_existing_id_jumps_and_skips_successors() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("jump");
    let [skipped, t, u] = recs(&mut wf, &trace, ["skipped", "t", "u"]);
    let s = wf.task("s", |ctx: TaskContext| async move {
        if ctx.cycle() == 1 {
            ctx.next_task("t")?;
        }
        anyhow::Ok(())
    });
    wf.flow(s >> skipped).flow(t >> u);
    wf.start("s");
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(
        trace.get(),
        ["t", "u"],
        "s's successor is skipped; t's own successor runs"
    );
}

#[tokio::test]
async fn next_task_with_an_unknown_id_fails_the_task() {
    let mut wf = Workflow::builder("unknown");
    let s = wf.task("s", |ctx: TaskContext| async move {
        ctx.next_task("ghost")?;
        anyhow::Ok(())
    });
    wf.flow(s);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.error,
        Some(RunError::UnknownTask {
            task: "ghost".into(),
            by: "s".into()
        })
    );
}

#[tokio::test]
async fn cancel_wins_over_terminate_and_keeps_its_own_message() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("priority");
    let [after] = recs(&mut wf, &trace, ["after"]);
    let s = wf.task("s", |ctx: TaskContext| async move {
        ctx.cancel_workflow("first");
        ctx.terminate_workflow("second");
        ctx.goto("after")?;
        anyhow::Ok(())
    });
    wf.flow(s >> after);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(
        out.error,
        Some(RunError::Cancelled {
            task: Some("s".into()),
            message: "first".into()
        })
    );
    assert!(
        !out.results.contains_key("s"),
        "a cancelling task does not complete"
    );
    assert!(trace.get().is_empty());
}

#[tokio::test]
async fn an_error_wins_over_cancel() {
    let mut wf = Workflow::builder("error-first");
    let s = wf.task("s", |ctx: TaskContext| async move {
        ctx.cancel_workflow("never mind");
        Err::<(), _>(anyhow::anyhow!("real failure"))
    });
    wf.flow(s);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.error,
        Some(RunError::TaskFailed {
            task: "s".into(),
            message: "real failure".into()
        })
    );
}

#[tokio::test]
async fn terminate_wins_over_goto_and_successors() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("terminate");
    let [after, other] = recs(&mut wf, &trace, ["after", "other"]);
    let s = wf.task("s", |ctx: TaskContext| async move {
        ctx.goto("other")?;
        ctx.terminate_workflow("done early");
        anyhow::Ok("s result")
    });
    wf.flow(s >> after).flow(other);
    wf.start("s");
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Succeeded);
    assert_eq!(out.result, Some(json!("s result")));
    assert!(trace.get().is_empty());
}

#[tokio::test]
async fn terminate_inside_a_member_ends_the_whole_run_as_success() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("member-terminate");
    let [after_group, chain_next] = recs(&mut wf, &trace, ["after_group", "chain_next"]);
    let t = trace.clone();
    let slow = wf.task("slow", move |_c: TaskContext| {
        let t = t.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            t.push("slow finished");
            anyhow::Ok("slow")
        }
    });
    let stopper = wf.task("stopper", |ctx: TaskContext| async move {
        ctx.terminate_workflow("enough");
        anyhow::Ok("stopped")
    });
    wf.flow((stopper >> chain_next | slow) >> after_group);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Succeeded);
    assert_eq!(out.terminated.as_deref(), Some("enough"));
    assert_eq!(
        trace.get(),
        ["slow finished"],
        "running siblings finish; nothing new starts"
    );
    assert_eq!(out.result, Some(json!("stopped")));
}

#[tokio::test]
async fn cancel_inside_a_member_cancels_the_run_and_its_running_siblings() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("member-cancel");
    let [after_group] = recs(&mut wf, &trace, ["after_group"]);
    let t = trace.clone();
    let slow = wf.task("slow", move |_c: TaskContext| {
        let t = t.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            t.push("slow finished");
            anyhow::Ok(())
        }
    });
    let canceller = wf.task("canceller", |ctx: TaskContext| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ctx.cancel_workflow("bad input");
        anyhow::Ok(())
    });
    wf.flow((canceller | slow).policy(GroupPolicy::BestEffort) >> after_group);
    let t0 = std::time::Instant::now();
    let (out, _) = run(wf).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(
        out.error,
        Some(RunError::Cancelled {
            task: Some("canceller".into()),
            message: "bad input".into()
        })
    );
    assert!(
        trace.get().is_empty(),
        "the sibling was stopped and nothing ran after"
    );
}
