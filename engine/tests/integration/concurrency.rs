//! Checkpoints and human waits under concurrency: any mix of deferred, immediate, host,
//! every-task and feedback-timeout checkpoints from any number of parallel tasks completes;
//! a wait that outlives its attempt (timed out, retried) ends with it, is withdrawn, and never
//! unparks a dead task or pauses the run; each task's question has its own id.
//! Every test is bounded in time: a hang fails instead of blocking the suite.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use graflow_engine::WorkflowBuilder;
use graflow_engine::checkpoint::{CheckpointConfig, WorkflowSource, store};
use graflow_engine::handler::feedback::FeedbackHandler;
use graflow_engine::hitl::{
    Answer, FeedbackBackend, FeedbackKind, FeedbackManager, FeedbackSpec, FeedbackStatus,
    FileBackend,
};
use graflow_engine::prelude::*;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: still running after {BOUND:?} (a hang)"),
    }
}

struct Setup {
    dir: tempfile::TempDir,
    backend: Arc<FileBackend>,
    manager: Arc<FeedbackManager>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FileBackend::new(dir.path().join("feedback")));
    let manager = Arc::new(FeedbackManager::new(backend.clone()));
    Setup {
        dir,
        backend,
        manager,
    }
}

impl Setup {
    fn options(&self) -> RunOptions {
        let mut o = RunOptions::new();
        o.feedback = Some(self.manager.clone());
        o.checkpoints = Some(CheckpointConfig {
            dir: self.dir.path().join("checkpoints"),
            workflow: WorkflowSource {
                name: "conc".into(),
                ..WorkflowSource::default()
            },
            keep_last: None,
            keep_for: None,
            compression: Default::default(),
            signing_key: None,
            mirror: None,
        });
        o
    }
}

/// The repro of the issue: one member asks for a deferred checkpoint, the other for an
/// immediate one while the first is being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_and_an_immediate_checkpoint_at_once_complete() {
    let s = setup();
    let mut wf = Workflow::builder("two");
    let x = wf.task("x", |ctx: TaskContext| async move {
        ctx.checkpoint(json!({"by": "x"}));
        anyhow::Ok(1)
    });
    let y = wf.task("y", |ctx: TaskContext| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.checkpoint_now(json!({"by": "y"}))
            .await
            .map_err(anyhow::Error::msg)?;
        anyhow::Ok(2)
    });
    wf.flow(x | y);
    let out = bounded(
        "run",
        Engine::new().run(Arc::new(wf.build().unwrap()), s.options()),
    )
    .await;
    assert!(out.succeeded(), "{:?}", out.error);
}

/// Many members, each asking for immediate and deferred checkpoints, with every-task
/// checkpoints on and the host asking for checkpoints all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_mix_of_checkpoints_from_many_tasks_completes() {
    let s = setup();
    let mut wf = Workflow::builder("mix");
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(
            wf.task(&format!("m{i}"), move |ctx: TaskContext| async move {
                for k in 0..3 {
                    if (i + k) % 2 == 0 {
                        ctx.checkpoint_now(json!({"k": k}))
                            .await
                            .map_err(anyhow::Error::msg)?;
                    } else {
                        tokio::time::sleep(Duration::from_millis(5 * (i as u64 + 1))).await;
                    }
                }
                ctx.checkpoint(json!({"deferred": i}));
                anyhow::Ok(i)
            }),
        );
    }
    let mut group = Flow::from(members[0]);
    for m in &members[1..] {
        group = group.par(*m);
    }
    let end = wf.task("end", |_ctx: TaskContext| async { anyhow::Ok("done") });
    wf.flow(group.then(end));
    let mut options = s.options();
    options.checkpoint_every_task = true;
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), options);
    let control = handle.control();
    let host = tokio::spawn(async move {
        let mut written = 0;
        for _ in 0..20 {
            if control.checkpoint(json!({"host": true})).await.is_ok() {
                written += 1;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        written
    });
    let out = bounded("run", handle.wait()).await;
    assert!(out.succeeded(), "{:?}", out.error);
    bounded("host", host).await.unwrap();
    assert!(store::list(&s.dir.path().join("checkpoints")).len() >= 6 * 3);
}

/// A question timing out (the run pauses into a checkpoint) while other members ask for
/// immediate checkpoints: the pause completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedback_pause_among_immediate_checkpoints_completes() {
    let s = setup();
    let mut wf = Workflow::builder("pause");
    let spec = FeedbackSpec::new(FeedbackKind::Approval, "ok?").timeout(0.2);
    let asker = wf.add(TaskDef::new(
        "asker",
        Arc::new(FeedbackHandler::new(spec, None).unwrap()),
    ));
    let mut group = Flow::from(asker);
    for i in 0..3 {
        group = group.par(wf.task(&format!("c{i}"), |ctx: TaskContext| async move {
            for _ in 0..5 {
                let _ = ctx.checkpoint_now(json!({})).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            anyhow::Ok(0)
        }));
    }
    wf.flow(group);
    let out = bounded(
        "run",
        Engine::new().run(Arc::new(wf.build().unwrap()), s.options()),
    )
    .await;
    assert_eq!(out.status, RunStatus::Paused, "{:?}", out.error);
}

/// A task whose question waits detached (as a child process's or a script's does) times out
/// and is retried: its question is withdrawn, its wait ends, its own timeout pauses nothing,
/// and the running count stays right (a host checkpoint still waits for a running task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_outlives_its_attempt_ends_with_it() {
    let s = setup();
    let mut wf = Workflow::builder("orphan");
    let asker = wf.add(
        TaskDef::from_fn("asker", |ctx: TaskContext| async move {
            if ctx.attempt() == 0 {
                // The wait outlives the body, like a child's request on the socket.
                let c = ctx.clone();
                tokio::spawn(async move {
                    let _ = c.request_text("who?", Some(0.6)).await;
                });
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            anyhow::Ok(json!(ctx.attempt()))
        })
        .retry(RetryPolicy::retries(1).backoff(Duration::from_millis(10)))
        .timeout(Duration::from_millis(300)),
    );
    let worker = wf.task("worker", |_ctx: TaskContext| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        anyhow::Ok("worked")
    });
    wf.flow(asker | worker);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), s.options());
    let control = handle.control();
    let backend = s.backend.clone();
    let checker = tokio::spawn(async move {
        // Once the first attempt's question is withdrawn, a host checkpoint must still wait
        // for the worker, which runs until ~1.5 s.
        loop {
            let all = backend.list(None, false).await.unwrap();
            if all.iter().any(|r| r.status == FeedbackStatus::Cancelled) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        control.checkpoint(json!({"host": true})).await
    });
    let out = bounded("run", handle.wait()).await;
    assert!(
        out.succeeded(),
        "not paused by the orphan's timeout: {:?} {:?}",
        out.status,
        out.error
    );
    assert_eq!(out.results["asker"], json!(1));
    let saved = bounded("checker", checker)
        .await
        .unwrap()
        .expect("host checkpoint");
    let ckpt = store::load(&saved.path).unwrap();
    assert!(
        ckpt.snapshot.results.contains_key("worker"),
        "the checkpoint waited for the running worker: {:?}",
        ckpt.snapshot.pending()
    );
    let all = s.backend.list(None, false).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, FeedbackStatus::Cancelled, "withdrawn");
    let late = s
        .backend
        .respond(
            &all[0].id,
            Answer {
                text: Some("late".into()),
                ..Answer::default()
            },
        )
        .await;
    assert!(late.is_err(), "a withdrawn question takes no answer");
}

/// Tasks whose names differ only in characters an id cannot hold get different questions:
/// approving one does not approve the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_task_names_get_their_own_questions() {
    let s = setup();
    let mut wf = WorkflowBuilder::new("names");
    let names = ["a.b", "a_b", "a-b", "a:b", "aé", "a_c3_a9"];
    let mut group: Option<Flow> = None;
    for n in names {
        let spec = FeedbackSpec::new(FeedbackKind::Approval, format!("{n}?")).timeout(30.0);
        let h = wf.add(TaskDef::new(
            n,
            Arc::new(FeedbackHandler::new(spec, None).unwrap()),
        ));
        group = Some(match group {
            None => Flow::from(h),
            Some(g) => g.par(h),
        });
    }
    wf.flow(group.unwrap());
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), s.options());
    let ids = bounded("questions", async {
        loop {
            let list = s.backend.list(None, true).await.unwrap();
            if list.len() == names.len() {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let mut distinct: Vec<&str> = ids.iter().map(|r| r.id.as_str()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len(), "{distinct:?}");
    // Approve "a.b" only: "a_b" is still asked.
    let first = ids.iter().find(|r| r.task == "a.b").unwrap();
    s.backend
        .respond(
            &first.id,
            Answer {
                approved: Some(true),
                ..Answer::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pending = s.backend.list(None, true).await.unwrap();
    assert_eq!(pending.len(), names.len() - 1);
    assert!(pending.iter().any(|r| r.task == "a_b"));
    handle.cancel("done");
    bounded("cancel", handle.wait()).await;
}
