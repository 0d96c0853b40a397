//! Checkpoints: deferred and immediate requests, host checkpoints, and resume equivalence —
//! resuming from every checkpoint of a run ends with the same status, results and channel as
//! the uninterrupted run; finished group members are not run again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use graflow_engine::checkpoint::{
    CheckpointConfig, CheckpointError, Reason, WorkflowSource, store,
};
use graflow_engine::prelude::*;
use graflow_engine::{RunOutcome, WorkflowBuilder};
use serde_json::json;

fn config(dir: &Path, name: &str) -> CheckpointConfig {
    CheckpointConfig {
        dir: dir.to_path_buf(),
        workflow: WorkflowSource {
            name: name.into(),
            ..WorkflowSource::default()
        },
        keep_last: None,
        keep_for: None,
        compression: Default::default(),
        signing_key: None,
        mirror: None,
    }
}

async fn run_checkpointed(wf: &Arc<Workflow>, dir: &Path) -> RunOutcome {
    let out = Engine::new()
        .run(
            wf.clone(),
            RunOptions::new().checkpoints(config(dir, wf.name())),
        )
        .await;
    assert!(
        out.error.is_none() || out.status != RunStatus::Failed,
        "{:?}",
        out.error
    );
    out
}

fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = store::list(dir).into_iter().map(|i| i.path).collect();
    v.sort();
    v
}

/// Resume from `path`; the resumed run writes its own checkpoints into a fresh folder.
async fn resume(wf: &Arc<Workflow>, path: &Path) -> RunOutcome {
    let ckpt = store::load(path).expect("checkpoint loads");
    let again = tempfile::tempdir().unwrap();
    let options = RunOptions::new().checkpoints(config(again.path(), wf.name()));
    let handle = Engine::new()
        .resume(
            wf.clone(),
            &ckpt.run_id,
            ckpt.snapshot,
            None,
            &path.display().to_string(),
            options,
        )
        .expect("resumes");
    handle.wait().await
}

fn assert_same(a: &RunOutcome, b: &RunOutcome, from: &Path) {
    assert_eq!(
        a.status,
        b.status,
        "status after resuming from {}",
        from.display()
    );
    assert_eq!(
        a.results,
        b.results,
        "results after resuming from {}",
        from.display()
    );
    assert_eq!(
        a.channel,
        b.channel,
        "channel after resuming from {}",
        from.display()
    );
    assert_eq!(
        a.result,
        b.result,
        "result after resuming from {}",
        from.display()
    );
    assert_eq!(a.run_id, b.run_id);
}

/// Every checkpoint of the run, resumed, ends like the uninterrupted run.
async fn assert_resume_equivalence(wf: Arc<Workflow>, expected_checkpoints: usize) -> Vec<PathBuf> {
    let dir = tempfile::tempdir().unwrap();
    let full = run_checkpointed(&wf, dir.path()).await;
    let all = checkpoints(dir.path());
    assert_eq!(all.len(), expected_checkpoints, "checkpoints written");
    for path in &all {
        let resumed = resume(&wf, path).await;
        assert_same(&full, &resumed, path);
    }
    let kept = dir.keep();
    all.into_iter()
        .map(|p| kept.join(p.file_name().unwrap()))
        .collect()
}

/// A task that counts its executions in the channel and asks for a deferred checkpoint.
fn counting(wf: &mut WorkflowBuilder, id: &str, sleep_ms: u64) -> graflow_engine::TaskHandle {
    wf.task(id, move |ctx: TaskContext| async move {
        if sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        }
        let n = ctx
            .channel()
            .atomic_add(&format!("runs.{}", ctx.task_id()), 1.0)
            .await?;
        ctx.checkpoint(json!({"after": ctx.task_id()}));
        anyhow::Ok(json!({"task": ctx.task_id(), "execution": n}))
    })
}

#[tokio::test]
async fn a_chain_resumes_from_each_checkpoint() {
    let mut wf = Workflow::builder("chain");
    let [a, b, c] = ["a", "b", "c"].map(|id| counting(&mut wf, id, 0));
    wf.flow(a >> b >> c);
    let paths = assert_resume_equivalence(Arc::new(wf.build().unwrap()), 3).await;
    // The first checkpoint: after a, with b pending.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(paths[0].with_extension("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["steps"], 1);
    assert_eq!(state["pending"], json!(["b"]));
    assert_eq!(state["completed"], json!(["a"]));
    assert_eq!(state["schema_version"], 1);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(paths[0].with_extension("meta.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta["metadata"],
        json!({"task_id": "a", "cycle": 1, "mode": "deferred", "after": "a"})
    );
    assert_eq!(meta["reason"], "deferred");
    assert_eq!(meta["workflow"], "chain");
}

#[tokio::test]
async fn a_loop_resumes_with_its_iteration_data_and_cycle_counts() {
    let mut wf = Workflow::builder("loop");
    let counter = wf.task("counter", |ctx: TaskContext| async move {
        let n = ctx.data().as_i64().unwrap_or(0);
        ctx.channel()
            .append("trace", json!([n, ctx.cycle()]))
            .await?;
        if n < 4 {
            ctx.next_iteration(n + 1)?;
        }
        ctx.checkpoint(json!({"n": n}));
        anyhow::Ok(n)
    });
    let done = wf.task("done", |ctx: TaskContext| async move {
        anyhow::Ok(ctx.channel().get("trace").await?)
    });
    wf.flow(counter >> done);
    assert_resume_equivalence(Arc::new(wf.build().unwrap()), 5).await;
}

#[tokio::test]
async fn a_group_resumes_without_running_finished_members_again() {
    let mut wf = Workflow::builder("group");
    let s = counting(&mut wf, "s", 0);
    let fast = counting(&mut wf, "fast", 0);
    let slow = counting(&mut wf, "slow", 60);
    let chained = counting(&mut wf, "chained", 20);
    let tail = counting(&mut wf, "tail", 0);
    let join = counting(&mut wf, "join", 0);
    wf.flow(s >> (fast | slow | chained >> tail) >> join);
    let wf = Arc::new(wf.build().unwrap());
    let paths = assert_resume_equivalence(wf.clone(), 6).await;
    // Some checkpoint was taken while the group was running: it saved group progress.
    let saved: Vec<_> = paths.iter().map(|p| store::load(p).unwrap()).collect();
    let in_group = saved
        .iter()
        .find(|c| {
            c.snapshot
                .top
                .group
                .as_ref()
                .is_some_and(|g| !g.finished.is_empty() && !g.running.is_empty())
        })
        .expect("a checkpoint with finished and running members");
    assert_eq!(
        in_group.snapshot.top.queue,
        vec![],
        "the join waits for the group"
    );
}

#[tokio::test]
async fn nested_groups_and_joins_resume() {
    let mut wf = Workflow::builder("nested");
    for id in ["a", "b", "c", "d", "e", "x", "y", "fin"] {
        counting(&mut wf, id, if id == "c" { 30 } else { 0 });
    }
    wf.flow_str("((a | b) >> e | (c | d)) >> x >> fin; x >> y >> fin");
    assert_resume_equivalence(Arc::new(wf.build().unwrap()), 8).await;
}

#[tokio::test]
async fn detached_tasks_added_at_run_time_resume() {
    let mut wf = Workflow::builder("dynamic");
    let plan = wf.task("plan", |ctx: TaskContext| async move {
        ctx.next_task("extra")?;
        ctx.checkpoint(json!({}));
        anyhow::Ok("planned")
    });
    counting(&mut wf, "extra", 0);
    let after = counting(&mut wf, "after", 0);
    wf.flow(plan >> after);
    let paths = assert_resume_equivalence(Arc::new(wf.build().unwrap()), 3).await;
    let first = store::load(&paths[0]).unwrap();
    assert_eq!(first.snapshot.dynamic[0].id, "extra");
    assert_eq!(first.snapshot.pending(), ["extra", "after"]);
}

#[tokio::test]
async fn an_immediate_checkpoint_runs_its_task_again_on_resume() {
    let mut wf = Workflow::builder("immediate");
    let a = counting(&mut wf, "a", 0);
    let b = wf.task("b", |ctx: TaskContext| async move {
        let path = ctx
            .checkpoint_now(json!({"why": "before the expensive part"}))
            .await
            .map_err(anyhow::Error::msg)?;
        ctx.channel().atomic_add("b.after_checkpoint", 1.0).await?;
        anyhow::Ok(json!({"cycle": ctx.cycle(), "checkpoint": path.ends_with(".ckpt")}))
    });
    let c = counting(&mut wf, "c", 0);
    wf.flow(a >> b >> c);
    let wf = Arc::new(wf.build().unwrap());
    let paths = assert_resume_equivalence(wf, 3).await;
    let immediate = store::load(&paths[1]).unwrap();
    assert_eq!(immediate.reason, Reason::Immediate);
    assert_eq!(immediate.snapshot.pending(), ["b"], "b runs again");
    assert_eq!(
        immediate.snapshot.cycles.get("b"),
        None,
        "b's execution is not counted"
    );
    assert_eq!(immediate.metadata["why"], "before the expensive part");
}

#[tokio::test]
async fn a_failed_attempts_checkpoint_request_is_dropped() {
    let mut wf = Workflow::builder("dropped");
    wf.add(
        TaskDef::from_fn("flaky", |ctx: TaskContext| async move {
            ctx.checkpoint(json!({"attempt": ctx.attempt()}));
            if ctx.attempt() == 0 {
                anyhow::bail!("first attempt fails");
            }
            anyhow::Ok("ok")
        })
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(1))),
    );
    wf.flow_str("flaky");
    let dir = tempfile::tempdir().unwrap();
    let wf = Arc::new(wf.build().unwrap());
    run_checkpointed(&wf, dir.path()).await;
    let all = store::list(dir.path());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].metadata["attempt"], 1);
}

#[tokio::test]
async fn the_host_checkpoints_a_running_run() {
    let mut wf = Workflow::builder("host");
    let slow = counting(&mut wf, "slow", 200);
    let next = counting(&mut wf, "next", 0);
    wf.flow(slow >> next);
    let wf = Arc::new(wf.build().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let handle = Engine::new().start(
        wf.clone(),
        RunOptions::new().checkpoints(config(dir.path(), "host")),
    );
    let control = handle.control();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The checkpoint waits for the running task to finish; nothing new starts meanwhile.
    let saved = control.checkpoint(json!({"by": "operator"})).await.unwrap();
    let out = handle.wait().await;
    assert!(out.succeeded());
    let ckpt = store::load(&saved.path).unwrap();
    assert_eq!(ckpt.reason, Reason::Host);
    assert_eq!(ckpt.snapshot.steps, 1);
    assert_eq!(ckpt.snapshot.pending(), ["next"]);
    assert_eq!(ckpt.metadata["by"], "operator");
    let resumed = resume(&wf, &saved.path).await;
    assert_same(&out, &resumed, &saved.path);
}

#[tokio::test]
async fn a_terminated_run_resumes_to_its_end() {
    let mut wf = Workflow::builder("terminate");
    let a = wf.task("a", |ctx: TaskContext| async move {
        ctx.terminate_workflow("done early");
        ctx.checkpoint(json!({}));
        anyhow::Ok("a's answer")
    });
    let b = counting(&mut wf, "b", 0);
    wf.flow(a >> b);
    let paths = assert_resume_equivalence(Arc::new(wf.build().unwrap()), 1).await;
    assert!(
        store::load(&paths[0])
            .unwrap()
            .snapshot
            .terminated
            .is_some()
    );
}

#[tokio::test]
async fn checkpoints_without_a_folder_fail_the_task_clearly() {
    let mut wf = Workflow::builder("unconfigured");
    let a = counting(&mut wf, "a", 0);
    wf.flow(a);
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), RunOptions::new())
        .await;
    assert_eq!(out.status, RunStatus::Failed);
    let msg = out.error.unwrap().to_string();
    assert!(msg.contains("checkpoints are not configured"), "{msg}");
}

#[tokio::test]
async fn keep_last_prunes_older_checkpoints_of_the_workflow() {
    let mut wf = Workflow::builder("prune");
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|id| counting(&mut wf, id, 0));
    wf.flow(a >> b >> c >> d);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "prune");
    cfg.keep_last = Some(2);
    let out = Engine::new()
        .run(
            Arc::new(wf.build().unwrap()),
            RunOptions::new().checkpoints(cfg),
        )
        .await;
    assert!(out.succeeded());
    let left = store::list(dir.path());
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].metadata["after"], "d");
    assert_eq!(left[1].metadata["after"], "c");
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        files, 6,
        "three files per checkpoint, nothing else left behind"
    );
}

/// A checkpoint of `workflow` written `days_ago` days ago, saved into `dir`.
fn old_checkpoint(dir: &Path, workflow: &str, days_ago: u64) -> PathBuf {
    let written = std::time::SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    let ckpt = graflow_engine::checkpoint::Checkpoint {
        run_id: format!("old-{workflow}-{days_ago}"),
        seq: 1,
        created_at: humantime::format_rfc3339_micros(written).to_string(),
        reason: Reason::Host,
        task: None,
        workflow: WorkflowSource {
            name: workflow.into(),
            ..WorkflowSource::default()
        },
        metadata: Default::default(),
        snapshot: Default::default(),
        feedback: Vec::new(),
    };
    store::save(dir, &ckpt).expect("saved").path
}

#[tokio::test]
async fn keep_for_in_a_file_deletes_the_workflows_old_checkpoints() {
    let src = r#"Workflow(name: "aged", flow: "a >> b", keep_for: "1h",
        tasks: {"a": Task(run: Noop), "b": Task(run: Noop)})"#;
    let loaded = graflow_engine::file::load_str(
        src,
        Path::new("aged.ron"),
        &graflow_engine::handler::Runtimes::default(),
    )
    .expect("loads");
    assert_eq!(loaded.keep_for(), Some(Duration::from_secs(3600)));
    let dir = tempfile::tempdir().unwrap();
    let stale = old_checkpoint(dir.path(), "aged", 2);
    let fresh = old_checkpoint(dir.path(), "aged", 0);
    let others = old_checkpoint(dir.path(), "other", 30);
    let mut options =
        RunOptions::new().checkpoints(loaded.checkpoint_config(dir.path().to_path_buf(), None));
    options.checkpoint_every_task = true;
    let out = Engine::new().run(loaded.workflow.clone(), options).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let left = checkpoints(dir.path());
    assert!(!left.contains(&stale), "{left:?}");
    assert!(left.contains(&fresh) && left.contains(&others), "{left:?}");
    let written_by_the_run = store::list(dir.path())
        .into_iter()
        .filter(|i| i.run_id == out.run_id)
        .count();
    assert_eq!(written_by_the_run, 2, "{left:?}");
}

#[tokio::test]
async fn resuming_with_a_workflow_that_lacks_a_task_is_refused() {
    let mut wf = Workflow::builder("v1");
    let [a, b] = ["a", "b"].map(|id| counting(&mut wf, id, 0));
    wf.flow(a >> b);
    let dir = tempfile::tempdir().unwrap();
    run_checkpointed(&Arc::new(wf.build().unwrap()), dir.path()).await;
    let mut other = Workflow::builder("v2");
    counting(&mut other, "a", 0);
    other.flow_str("a");
    let other = Arc::new(other.build().unwrap());
    let ckpt = store::load(&checkpoints(dir.path())[0]).unwrap();
    let err = Engine::new()
        .resume(
            other,
            &ckpt.run_id,
            ckpt.snapshot,
            None,
            "x",
            RunOptions::new(),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, CheckpointError::CannotResume(m) if m.contains("task 'b'")),
        "{err}"
    );
}
