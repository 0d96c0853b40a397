//! Human-feedback benchmark, one JSON line (`workload`, `n`, `seconds` = median, `per_item_us`):
//! `feedback_answer_to_continue` — a live run waits on an approval (file backend); the time
//! from the answer being stored to the next task starting. Target ≤ 150 ms.
//!
//! `cargo bench -p graflow-engine --bench feedback`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graflow_engine::handler::feedback::FeedbackHandler;
use graflow_engine::hitl::{
    Answer, FeedbackBackend, FeedbackKind, FeedbackManager, FeedbackSpec, FileBackend,
};
use graflow_engine::prelude::*;
use serde_json::json;

const RUNS: usize = 15;

static CONTINUED_AT: Mutex<Option<Instant>> = Mutex::new(None);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("graflow-feedback-bench-{}", std::process::id()));
    let backend = Arc::new(FileBackend::new(dir.join("feedback")));
    let manager = Arc::new(FeedbackManager::new(backend.clone()));
    let mut wf = Workflow::builder("feedback-bench");
    let spec = FeedbackSpec::new(FeedbackKind::Approval, "go?").timeout(60.0);
    let ask = wf.add(TaskDef::new(
        "ask",
        Arc::new(FeedbackHandler::new(spec, None).expect("spec")),
    ));
    let next = wf.task("next", |_c: TaskContext| async {
        if let Ok(mut at) = CONTINUED_AT.lock() {
            *at = Some(Instant::now());
        }
        anyhow::Ok(())
    });
    wf.flow(ask >> next);
    let wf = Arc::new(wf.build().expect("builds"));
    let mut samples: Vec<Duration> = rt.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..RUNS {
            let mut options = RunOptions::new();
            options.feedback = Some(manager.clone());
            let handle = Engine::new().start(wf.clone(), options);
            let id = loop {
                if let Some(r) = backend
                    .list(Some(handle.run_id()), true)
                    .await
                    .expect("list")
                    .pop()
                {
                    break r.id;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let answer = Answer {
                approved: Some(true),
                ..Answer::default()
            };
            backend.respond(&id, answer).await.expect("respond");
            let answered = Instant::now();
            assert!(handle.wait().await.succeeded());
            let continued = CONTINUED_AT
                .lock()
                .ok()
                .and_then(|mut at| at.take())
                .expect("next ran");
            samples.push(continued - answered);
        }
        samples
    });
    samples.sort();
    let median = samples[samples.len() / 2].as_secs_f64();
    println!(
        "{}",
        json!({"workload": "feedback_answer_to_continue", "n": 1, "seconds": median, "per_item_us": median * 1e6,
               "runs": RUNS, "max_seconds": samples[samples.len() - 1].as_secs_f64()})
    );
    let _ = std::fs::remove_dir_all(&dir);
}
