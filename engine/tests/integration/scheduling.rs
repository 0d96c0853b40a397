//! Scheduling: chains, plain fan-out in edge order, joins, groups as barriers, member chains,
//! nested groups, results and inputs, the step limit and the event stream.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Trace, names, rec, recs, run};
use graflow_engine::prelude::*;
use serde_json::json;

#[tokio::test]
async fn a_chain_runs_in_order_and_each_result_is_kept() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("chain");
    let [a, b, c] = recs(&mut wf, &trace, ["a", "b", "c"]);
    wf.flow(a >> b >> c);
    let (out, events) = run(wf).await;
    assert_eq!(out.status, RunStatus::Succeeded);
    assert_eq!(trace.get(), ["a", "b", "c"]);
    assert_eq!(out.result, Some(json!("c")));
    assert_eq!(out.results.len(), 3);
    assert_eq!(out.steps, 3);
    assert_eq!(
        names(&events),
        [
            "run_started",
            "task_started",
            "task_succeeded",
            "task_started",
            "task_succeeded",
            "task_started",
            "task_succeeded",
            "run_finished"
        ]
    );
}

#[tokio::test]
async fn plain_successors_run_one_after_another_in_edge_order() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("fanout");
    let [s, x, y, z] = recs(&mut wf, &trace, ["s", "x", "y", "z"]);
    wf.flow(s >> y).flow(s >> x).flow(y >> z);
    let (out, _) = run(wf).await;
    assert!(out.succeeded());
    assert_eq!(trace.get(), ["s", "y", "x", "z"]);
}

#[tokio::test]
async fn a_diamond_sink_runs_once_after_both_branches() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("diamond");
    recs(&mut wf, &trace, ["a", "b", "c"]);
    wf.task(
        "d",
        |ctx: TaskContext| async move { anyhow::Ok(ctx.inputs()) },
    );
    wf.flow_str("a >> b >> d; a >> c >> d");
    let (out, _) = run(wf).await;
    assert!(out.succeeded());
    assert_eq!(trace.get(), ["a", "b", "c"]);
    assert_eq!(out.results["d"], json!({"b": "b", "c": "c"}));
    assert_eq!(out.steps, 4);
}

#[tokio::test]
async fn a_group_is_a_barrier_and_member_chains_run_in_their_branch() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("groups");
    let [a, b, c, d] = recs(&mut wf, &trace, ["a", "b", "c", "d"]);
    let slow = {
        let trace = trace.clone();
        wf.task("slow", move |ctx: TaskContext| {
            let trace = trace.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                trace.push(ctx.task_id());
                anyhow::Ok(1)
            }
        })
    };
    let e = wf.task(
        "e",
        |ctx: TaskContext| async move { anyhow::Ok(ctx.inputs()) },
    );
    wf.flow(a >> (b >> c | slow | d) >> e);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let order = trace.get();
    assert_eq!(order[0], "a");
    assert!(trace.position("b") < trace.position("c"));
    assert_eq!(
        order.last().map(String::as_str),
        Some("slow"),
        "the slow member finishes last: {order:?}"
    );
    // e ran after every member: its inputs hold the group's result and each member's.
    assert_eq!(
        out.results["e"],
        json!({"b": "b", "d": "d", "group_1": {"b": "c", "d": "d", "slow": 1}, "slow": 1})
    );
    let finished = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::GroupFinished {
                group,
                policy,
                succeeded,
                failed,
                ok,
            } => Some((
                group.to_string(),
                policy.clone(),
                succeeded.len(),
                failed.len(),
                *ok,
            )),
            _ => None,
        })
        .expect("group_finished");
    assert_eq!(finished, ("group_1".into(), "strict".into(), 3, 0, true));
}

#[tokio::test]
async fn members_run_concurrently() {
    let mut wf = Workflow::builder("concurrent");
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(wf.task(&format!("m{i}"), |_c: TaskContext| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            anyhow::Ok(())
        }));
    }
    let group = members
        .into_iter()
        .map(Flow::from)
        .reduce(|a, b| a | b)
        .unwrap();
    wf.flow(group);
    let t0 = std::time::Instant::now();
    let (out, _) = run(wf).await;
    assert!(out.succeeded());
    // Twenty 200 ms members one after another would take 4 s.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn members_read_the_groups_inputs() {
    let mut wf = Workflow::builder("etl");
    let fetch = wf.task("fetch", |_c: TaskContext| async {
        anyhow::Ok(json!([1, 2, 3]))
    });
    let count = wf.task("count", |ctx: TaskContext| async move {
        let rows = ctx.input("fetch").unwrap_or_default();
        anyhow::Ok(rows.as_array().map(|r| r.len()).unwrap_or(0))
    });
    let first = wf.task("first", |ctx: TaskContext| async move {
        anyhow::Ok(ctx.input("fetch").and_then(|r| r.get(0).cloned()))
    });
    wf.flow(fetch >> (count | first));
    let (out, _) = run(wf).await;
    assert_eq!(out.results["count"], json!(3));
    assert_eq!(out.results["first"], json!(1));
    assert_eq!(out.result, Some(json!({"count": 3, "first": 1})));
}

#[tokio::test]
async fn nested_groups_run_inner_successors_inside_the_branch() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("nested");
    recs(&mut wf, &trace, ["a", "b", "c", "d", "e", "fin"]);
    wf.flow_str("((a | b) >> e | (c | d)) >> fin");
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    for t in ["a", "b", "c", "d", "e", "fin"] {
        assert_eq!(trace.count(t), 1, "{t} ran once");
    }
    assert!(trace.position("e") > trace.position("a"));
    assert!(trace.position("e") > trace.position("b"));
    assert_eq!(trace.get().last().map(String::as_str), Some("fin"));
    assert_eq!(out.steps, 6);
}

#[tokio::test]
async fn any_task_reads_any_finished_result() {
    let mut wf = Workflow::builder("results");
    let a = wf.task("a", |_c: TaskContext| async { anyhow::Ok(41) });
    let b = wf.task("b", |_c: TaskContext| async { anyhow::Ok("b") });
    let c = wf.task("c", |ctx: TaskContext| async move {
        let a = ctx.result("a").and_then(|v| v.as_i64()).unwrap_or(0);
        anyhow::Ok(json!({"a+1": a + 1, "inputs": ctx.inputs(), "missing": ctx.result("zz")}))
    });
    wf.flow(a >> b >> c);
    let (out, _) = run(wf).await;
    assert_eq!(
        out.results["c"],
        json!({"a+1": 42, "inputs": {"b": "b"}, "missing": null})
    );
}

#[tokio::test]
async fn the_step_limit_is_an_error_naming_the_next_task() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("steps");
    recs(&mut wf, &trace, ["a", "b", "c", "d"]);
    wf.flow_str("a >> b >> c >> d").max_steps(2);
    let (out, events) = run(wf).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.error,
        Some(RunError::StepLimitExceeded {
            task: "c".into(),
            limit: 2
        })
    );
    assert_eq!(trace.get(), ["a", "b"]);
    match &events.last().unwrap().kind {
        EventKind::RunFinished { status, error, .. } => {
            assert_eq!(*status, RunStatus::Failed);
            assert_eq!(
                error.as_deref(),
                Some("step limit of 2 reached before running task 'c'")
            );
        }
        other => panic!("last event {other:?}"),
    }
}

#[tokio::test]
async fn a_failure_stops_the_run_and_later_tasks_do_not_start() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("fail");
    let [a] = recs(&mut wf, &trace, ["a"]);
    let b = common::failing(&mut wf, &trace, "b");
    let [c] = recs(&mut wf, &trace, ["c"]);
    wf.flow(a >> b >> c);
    let (out, events) = run(wf).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.error,
        Some(RunError::TaskFailed {
            task: "b".into(),
            message: "b broke".into()
        })
    );
    assert_eq!(trace.get(), ["a", "b"]);
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::TaskFailed { task, will_retry: false, attempt: 0, .. } if &**task == "b")));
}

#[tokio::test]
async fn a_panicking_task_is_a_task_failure() {
    let mut wf = Workflow::builder("panic");
    let a = wf.task("a", |_c: TaskContext| async {
        if true {
            panic!("kaboom");
        }
        anyhow::Ok(())
    });
    wf.flow(a);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Failed);
    let msg = out.error.unwrap().to_string();
    assert!(
        msg.contains("task 'a' failed: task panicked: kaboom"),
        "{msg}"
    );
}

#[tokio::test]
async fn params_seed_the_channel_and_options_override_them() {
    let mut wf = Workflow::builder("params");
    let a = wf.task("a", |ctx: TaskContext| async move {
        let n = ctx.channel().get("n").await?;
        let who = ctx.channel().get("who").await?;
        anyhow::Ok(json!([n, who]))
    });
    wf.flow(a).param("n", 1).param("who", "file");
    let wf = Arc::new(wf.build().unwrap());
    let out = Engine::new()
        .run(wf, RunOptions::new().param("who", "flag"))
        .await;
    assert_eq!(out.result, Some(json!([1, "flag"])));
    assert_eq!(out.channel["who"], json!("flag"));
}

#[tokio::test]
async fn the_host_can_cancel_a_run() {
    let mut wf = Workflow::builder("long");
    let a = wf.task("a", |_c: TaskContext| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        anyhow::Ok(())
    });
    wf.flow(a);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), RunOptions::new());
    tokio::time::sleep(Duration::from_millis(20)).await;
    handle.cancel("operator said stop");
    let out = tokio::time::timeout(Duration::from_secs(5), handle.wait())
        .await
        .expect("stops quickly");
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(
        out.error,
        Some(RunError::Cancelled {
            task: None,
            message: "operator said stop".into()
        })
    );
}

#[tokio::test]
async fn every_event_serializes_with_event_run_id_and_ts() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("events");
    let [a, b, c] = recs(&mut wf, &trace, ["a", "b", "c"]);
    wf.flow(a >> (b | c));
    let (out, events) = run(wf).await;
    for e in &events {
        let v: Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["event"], json!(e.name()));
        assert_eq!(v["run_id"], json!(out.run_id));
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
    }
    let last: Value = serde_json::from_str(&events.last().unwrap().to_json_line()).unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["results"]["a"], "a");
    assert_eq!(last["result"], json!({"b": "b", "c": "c"}));
    assert_eq!(names(&events)[0], "run_started");
    let _ = rec;
}

#[tokio::test]
async fn the_event_stream_ends_after_run_finished() {
    let mut wf = Workflow::builder("ends");
    let a = wf.task("a", |_c: TaskContext| async { anyhow::Ok(1) });
    wf.flow(a);
    let mut handle = Engine::new().start(
        Arc::new(wf.build().unwrap()),
        RunOptions::new().with_events(),
    );
    let mut rx = handle.take_events().unwrap();
    let mut last = None;
    // The handle is still alive: the stream must end on its own.
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the stream ends")
    {
        last = Some(e.name());
    }
    assert_eq!(last, Some("run_finished"));
    assert!(handle.wait().await.succeeded());
}
