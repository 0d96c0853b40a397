//! Human in the loop inside the engine: answers during the wait are taken at once; a wait that
//! runs out pauses the whole run into a checkpoint; after an answer the resumed run goes on,
//! earlier tasks not run again; parallel members wait for their own answers; answers are
//! checked; cancelled requests fail the task; notifiers hear every event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::WorkflowBuilder;
use graflow_engine::checkpoint::{CheckpointConfig, WorkflowSource, store};
use graflow_engine::handler::feedback::FeedbackHandler;
use graflow_engine::hitl::{
    Answer, CallbackNotifier, FeedbackBackend, FeedbackError, FeedbackEvent, FeedbackKind,
    FeedbackManager, FeedbackSpec, FeedbackStatus, FileBackend,
};
use graflow_engine::prelude::*;
use parking_lot::Mutex;
use serde_json::json;

struct Setup {
    dir: tempfile::TempDir,
    backend: Arc<FileBackend>,
    manager: Arc<FeedbackManager>,
    events: Arc<Mutex<Vec<(FeedbackEvent, String)>>>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FileBackend::new(dir.path().join("feedback")));
    let events: Arc<Mutex<Vec<(FeedbackEvent, String)>>> = Arc::default();
    let seen = events.clone();
    let mut manager = FeedbackManager::new(backend.clone());
    manager.notifiers = vec![Arc::new(CallbackNotifier(Arc::new(
        move |event, req, _| {
            seen.lock().push((event, req.id.clone()));
        },
    )))];
    Setup {
        dir,
        backend,
        manager: Arc::new(manager),
        events,
    }
}

impl Setup {
    fn options(&self, checkpoints: bool) -> RunOptions {
        let mut o = RunOptions::new().with_events();
        o.feedback = Some(self.manager.clone());
        if checkpoints {
            o.checkpoints = Some(CheckpointConfig {
                dir: self.dir.path().join("checkpoints"),
                workflow: WorkflowSource {
                    name: "hitl".into(),
                    ..WorkflowSource::default()
                },
                keep_last: None,
                keep_for: None,
                compression: Default::default(),
                signing_key: None,
                mirror: None,
            });
        }
        o
    }

    /// Wait until `n` requests are pending; returns their ids (oldest first).
    async fn pending(&self, n: usize) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let list = self.backend.list(None, true).await.unwrap();
            if list.len() >= n {
                return list.into_iter().map(|r| r.id).collect();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no request appeared"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn approve() -> Answer {
    Answer {
        approved: Some(true),
        responded_by: Some("ada".into()),
        ..Answer::default()
    }
}

/// `before >> approve >> after`, counting executions in the channel.
fn approval_workflow(timeout: f64) -> Arc<Workflow> {
    let mut wf = Workflow::builder("hitl");
    let count = |wf: &mut WorkflowBuilder, id: &str| {
        wf.task(id, |ctx: TaskContext| async move {
            ctx.channel()
                .atomic_add(&format!("runs.{}", ctx.task_id()), 1.0)
                .await?;
            anyhow::Ok(ctx.task_id().to_string())
        })
    };
    let before = count(&mut wf, "before");
    let spec = FeedbackSpec::new(FeedbackKind::Approval, "ship it?")
        .timeout(timeout)
        .channel_key("approved");
    let approve = wf.add(TaskDef::new(
        "approve",
        Arc::new(FeedbackHandler::new(spec, None).unwrap()),
    ));
    let after = count(&mut wf, "after");
    wf.flow(before >> approve >> after);
    Arc::new(wf.build().unwrap())
}

#[tokio::test]
async fn an_answer_during_the_wait_is_taken_at_once() {
    let s = setup();
    let mut handle = Engine::new().start(approval_workflow(60.0), s.options(false));
    let mut events = handle.take_events().unwrap();
    let id = s.pending(1).await.remove(0);
    let answered_at = Instant::now();
    s.backend.respond(&id, approve()).await.unwrap();
    let mut latency = None;
    while let Some(e) = events.recv().await {
        if let EventKind::FeedbackAnswered { .. } = e.kind {
            latency = Some(answered_at.elapsed());
        }
        if let EventKind::RunFinished { .. } = e.kind {
            break;
        }
    }
    let out = handle.wait().await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert!(latency.unwrap() < Duration::from_secs(2), "{latency:?}");
    assert_eq!(out.channel["approved"], json!(true));
    assert_eq!(
        out.channel["approved.__feedback_response__"]["responded_by"],
        "ada"
    );
    assert_eq!(out.results["approve"]["approved"], true);
    let seen: Vec<FeedbackEvent> = s.events.lock().iter().map(|(e, _)| *e).collect();
    assert_eq!(seen, [FeedbackEvent::Requested, FeedbackEvent::Answered]);
}

#[tokio::test]
async fn a_rejection_fails_the_approval_task_with_the_reason() {
    let s = setup();
    let handle = Engine::new().start(approval_workflow(60.0), s.options(false));
    let id = s.pending(1).await.remove(0);
    let answer = Answer {
        approved: Some(false),
        reason: Some("tests are red".into()),
        responded_by: Some("bob".into()),
        ..Answer::default()
    };
    s.backend.respond(&id, answer).await.unwrap();
    let out = handle.wait().await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.error.unwrap().to_string(),
        "task 'approve' failed: rejected by bob: tests are red"
    );
}

#[tokio::test]
async fn a_timeout_pauses_the_run_and_a_later_answer_resumes_it() {
    let s = setup();
    let wf = approval_workflow(0.2);
    let out = Engine::new().run(wf.clone(), s.options(true)).await;
    assert_eq!(out.status, RunStatus::Paused);
    assert_eq!(out.status.exit_code(), 3);
    let paused = out.paused.clone().unwrap();
    assert!(out.error.is_none());
    // The request stays pending, names the checkpoint, and the checkpoint lists it.
    let (request, response) = s.backend.get(&paused.feedback_id).await.unwrap().unwrap();
    assert_eq!(request.status, FeedbackStatus::Pending);
    assert!(response.is_none() && request.timed_out_at.is_some());
    assert_eq!(
        request.checkpoint.as_deref(),
        Some(paused.checkpoint.as_str())
    );
    let ckpt = store::load(std::path::Path::new(&paused.checkpoint)).unwrap();
    assert_eq!(ckpt.feedback.len(), 1);
    assert_eq!(
        ckpt.snapshot.pending(),
        ["approve"],
        "the waiting task asks again on resume"
    );
    assert_eq!(ckpt.metadata["reason"], "feedback_timeout");
    // A late answer, then resume: the stored answer is taken, `before` does not run again.
    s.backend
        .respond(&paused.feedback_id, approve())
        .await
        .unwrap();
    let handle = Engine::new()
        .resume(
            wf,
            &ckpt.run_id,
            ckpt.snapshot,
            None,
            &paused.checkpoint,
            s.options(true),
        )
        .unwrap();
    let resumed = handle.wait().await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(resumed.channel["runs.before"], json!(1));
    assert_eq!(resumed.channel["runs.after"], json!(1));
    assert_eq!(resumed.channel["approved"], json!(true));
    let timed_out = s
        .events
        .lock()
        .iter()
        .filter(|(e, _)| *e == FeedbackEvent::TimedOut)
        .count();
    assert_eq!(timed_out, 1);
}

#[tokio::test]
async fn without_a_checkpoint_folder_a_timeout_is_an_error_the_task_can_handle() {
    let s = setup();
    let mut wf = Workflow::builder("catch");
    let t = wf.task("t", |ctx: TaskContext| async move {
        match ctx.request_text("name?", Some(0.05)).await {
            Err(FeedbackError::Timeout { .. }) => anyhow::Ok("nobody answered".to_string()),
            Ok(text) => anyhow::Ok(text),
            Err(e) => Err(e.into()),
        }
    });
    wf.flow(t);
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), s.options(false))
        .await;
    assert_eq!(out.result, Some(json!("nobody answered")));
}

#[tokio::test]
async fn two_parallel_members_wait_for_their_own_answers() {
    let s = setup();
    let mut wf = Workflow::builder("two");
    let ask = |wf: &mut WorkflowBuilder, id: &str, options: [&str; 2]| {
        let spec = FeedbackSpec::new(FeedbackKind::Selection, format!("{id}: pick one"))
            .options(options.iter().map(|o| o.to_string()).collect())
            .timeout(30.0);
        wf.add(TaskDef::new(
            id,
            Arc::new(FeedbackHandler::new(spec, None).unwrap()),
        ))
    };
    let a = ask(&mut wf, "left", ["x", "y"]);
    let b = ask(&mut wf, "right", ["p", "q"]);
    wf.flow(a | b);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), s.options(true));
    let ids = s.pending(2).await;
    for id in &ids {
        let choice = if id.contains("left") { "y" } else { "p" };
        let answer = Answer {
            selected: Some(choice.into()),
            ..Answer::default()
        };
        s.backend.respond(id, answer).await.unwrap();
    }
    let out = handle.wait().await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["left"], json!("y"));
    assert_eq!(out.results["right"], json!("p"));
}

#[tokio::test]
async fn two_parallel_members_pause_together_and_both_resume() {
    let s = setup();
    let mut wf = Workflow::builder("two-pause");
    let ask = |wf: &mut WorkflowBuilder, id: &str, timeout: f64| {
        let spec = FeedbackSpec::new(FeedbackKind::Text, format!("{id}?")).timeout(timeout);
        wf.add(TaskDef::new(
            id,
            Arc::new(FeedbackHandler::new(spec, None).unwrap()),
        ))
    };
    let a = ask(&mut wf, "a", 0.2);
    let b = ask(&mut wf, "b", 30.0);
    let fin = wf.task(
        "fin",
        |ctx: TaskContext| async move { anyhow::Ok(ctx.inputs()) },
    );
    wf.flow((a | b) >> fin);
    let wf = Arc::new(wf.build().unwrap());
    let out = Engine::new().run(wf.clone(), s.options(true)).await;
    assert_eq!(out.status, RunStatus::Paused);
    let ckpt = store::load(std::path::Path::new(&out.paused.unwrap().checkpoint)).unwrap();
    let group = ckpt.snapshot.top.group.clone().unwrap();
    assert_eq!(group.running.len(), 2, "both members wait: {group:?}");
    for id in s
        .backend
        .list(None, true)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
    {
        let answer = Answer {
            text: Some(format!(
                "answer for {}",
                if id.contains(".a.") { "a" } else { "b" }
            )),
            ..Answer::default()
        };
        s.backend.respond(&id, answer).await.unwrap();
    }
    let resumed = Engine::new()
        .resume(
            wf,
            &ckpt.run_id,
            ckpt.snapshot,
            None,
            "ckpt",
            s.options(true),
        )
        .unwrap()
        .wait()
        .await;
    assert!(resumed.succeeded(), "{:?}", resumed.error);
    assert_eq!(resumed.results["a"], json!("answer for a"));
    assert_eq!(resumed.results["b"], json!("answer for b"));
}

#[tokio::test]
async fn answers_are_checked_and_the_first_one_wins() {
    let s = setup();
    let mut wf = Workflow::builder("check");
    let spec = FeedbackSpec::new(FeedbackKind::Selection, "size?")
        .options(vec!["S".into(), "M".into()])
        .timeout(30.0);
    let t = wf.add(TaskDef::new(
        "pick",
        Arc::new(FeedbackHandler::new(spec, None).unwrap()),
    ));
    wf.flow(t);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), s.options(false));
    let id = s.pending(1).await.remove(0);
    let bad = s
        .backend
        .respond(
            &id,
            Answer {
                selected: Some("XL".into()),
                ..Answer::default()
            },
        )
        .await;
    assert_eq!(
        bad.unwrap_err(),
        FeedbackError::Invalid("'XL' is not one of the options [S, M]".into())
    );
    let wrong_kind = s
        .backend
        .respond(
            &id,
            Answer {
                text: Some("M".into()),
                ..Answer::default()
            },
        )
        .await;
    assert!(
        matches!(wrong_kind, Err(FeedbackError::Invalid(m)) if m.contains("'text' does not belong"))
    );
    s.backend
        .respond(
            &id,
            Answer {
                selected: Some("M".into()),
                ..Answer::default()
            },
        )
        .await
        .unwrap();
    let again = s
        .backend
        .respond(
            &id,
            Answer {
                selected: Some("S".into()),
                ..Answer::default()
            },
        )
        .await;
    assert!(matches!(again, Err(FeedbackError::NotPending { .. })));
    assert_eq!(handle.wait().await.result, Some(json!("M")));
}

#[tokio::test]
async fn a_cancelled_request_fails_the_waiting_task() {
    let s = setup();
    let handle = Engine::new().start(approval_workflow(60.0), s.options(false));
    let id = s.pending(1).await.remove(0);
    s.backend.cancel(&id).await.unwrap();
    let out = handle.wait().await;
    assert_eq!(out.status, RunStatus::Failed);
    assert!(out.error.unwrap().to_string().contains("was cancelled"));
}

#[tokio::test]
async fn a_checkpoint_while_a_task_waits_for_a_human_does_not_wait_for_the_human() {
    let s = setup();
    let mut wf = Workflow::builder("busy");
    let spec = FeedbackSpec::new(FeedbackKind::Approval, "ok?").timeout(60.0);
    let wait = wf.add(TaskDef::new(
        "wait",
        Arc::new(FeedbackHandler::new(spec, None).unwrap()),
    ));
    let work = wf.task("work", |ctx: TaskContext| async move {
        let t0 = Instant::now();
        ctx.checkpoint_now(json!({}))
            .await
            .map_err(anyhow::Error::msg)?;
        anyhow::Ok(t0.elapsed().as_millis() as u64)
    });
    wf.flow(wait | work);
    let handle = Engine::new().start(Arc::new(wf.build().unwrap()), s.options(true));
    let id = s.pending(1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.backend.respond(&id, approve()).await.unwrap();
    let out = handle.wait().await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert!(
        out.results["work"].as_u64().unwrap() < 1000,
        "{}",
        out.results["work"]
    );
}

#[tokio::test]
async fn requests_without_a_feedback_setup_fail_clearly() {
    let mut wf = Workflow::builder("none");
    let t = wf.task("t", |ctx: TaskContext| async move {
        anyhow::Ok(ctx.request_approval("ok?", None).await?)
    });
    wf.flow(t);
    let out = Engine::new()
        .run(Arc::new(wf.build().unwrap()), RunOptions::new())
        .await;
    assert!(
        out.error
            .unwrap()
            .to_string()
            .contains("human feedback is not configured")
    );
}

#[tokio::test]
async fn a_cancelled_run_withdraws_its_questions() {
    let s = setup();
    let handle = Engine::new().start(approval_workflow(60.0), s.options(false));
    let id = s.pending(1).await.remove(0);
    handle.cancel("operator stopped it");
    let out = handle.wait().await;
    assert_eq!(out.status, RunStatus::Cancelled);
    let (request, _) = s.backend.get(&id).await.unwrap().unwrap();
    assert_eq!(request.status, FeedbackStatus::Cancelled);
    assert!(s.backend.list(None, true).await.unwrap().is_empty());
}
