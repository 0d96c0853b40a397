//! Shared pieces of the studio tests: workflows built with the Rust builder, events with
//! fixed times, a rendered screen as text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use graflow::studio::app::{App, Settings};
use graflow::studio::ui;
use graflow_engine::{
    EventKind, GroupDef, LogStream, RunEvent, RunStatus, TaskDef, Value, Workflow, parse_flow,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// fetch >> cleaners(a >> a2 | b) >> merge >> load, with closures that succeed.
pub fn etl() -> Arc<Workflow> {
    let mut wf = Workflow::builder("etl");
    for id in ["fetch", "clean_a", "enrich", "clean_b", "merge", "load"] {
        let id2 = id.to_string();
        wf.add(TaskDef::from_fn(id, move |ctx| {
            let id = id2.clone();
            async move {
                ctx.log(format!("{id}: working"));
                anyhow::Ok(Value::from(id))
            }
        }));
    }
    let members = parse_flow("clean_a >> enrich | clean_b")
        .unwrap_or_default()
        .remove(0);
    wf.add_group(GroupDef::new("cleaners", members));
    wf.flow_str("fetch >> cleaners >> merge >> load");
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

/// a >> b >> c with a loop edge c >> a.
pub fn looping() -> Arc<Workflow> {
    let mut wf = Workflow::builder("looping");
    for id in ["a", "b", "c"] {
        wf.add(TaskDef::from_fn(id, |_ctx| async {
            anyhow::Ok(Value::Null)
        }));
    }
    wf.flow_str("a >> b >> c >> a");
    wf.start("a");
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

/// The time `ms` milliseconds after the epoch.
pub fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// An event of run `run` at `ms`.
pub fn ev(run: &str, ms: u64, kind: EventKind) -> RunEvent {
    RunEvent {
        run_id: run.into(),
        ts: at(ms),
        kind,
    }
}

/// A complete failed run of `etl()`: clean_b fails after a retry, with logs.
pub fn etl_failed_run(run: &str) -> Vec<RunEvent> {
    let mut v = vec![ev(
        run,
        0,
        EventKind::RunStarted {
            workflow: "etl".into(),
            start: "fetch".into(),
            resumed_from: None,
        },
    )];
    v.push(ev(
        run,
        10,
        EventKind::TaskStarted {
            task: "fetch".into(),
            cycle: 1,
            attempt: 0,
        },
    ));
    v.push(ev(
        run,
        12,
        EventKind::TaskLog {
            worker: None,
            task: "fetch".into(),
            stream: LogStream::Stdout,
            line: "fetched 3 rows".into(),
        },
    ));
    v.push(ev(
        run,
        250,
        EventKind::TaskSucceeded {
            worker: None,
            task: "fetch".into(),
            result: serde_json::json!([1, 2, 3]),
            duration_ms: 240.0,
            cycle: 1,
        },
    ));
    v.push(ev(
        run,
        260,
        EventKind::GroupStarted {
            group: "cleaners".into(),
            members: vec!["clean_a".into(), "clean_b".into()],
        },
    ));
    for (t, s) in [("clean_a", 270), ("clean_b", 270)] {
        v.push(ev(
            run,
            s,
            EventKind::TaskStarted {
                task: t.into(),
                cycle: 1,
                attempt: 0,
            },
        ));
    }
    v.push(ev(
        run,
        300,
        EventKind::TaskLog {
            worker: None,
            task: "clean_b".into(),
            stream: LogStream::Stdout,
            line: "cleaning row 1".into(),
        },
    ));
    v.push(ev(
        run,
        310,
        EventKind::TaskLog {
            worker: None,
            task: "clean_b".into(),
            stream: LogStream::Stderr,
            line: "error: row 2 has no id".into(),
        },
    ));
    v.push(ev(
        run,
        320,
        EventKind::TaskFailed {
            worker: None,
            task: "clean_b".into(),
            error: "row 2 has no id".into(),
            attempt: 0,
            will_retry: true,
        },
    ));
    v.push(ev(
        run,
        400,
        EventKind::TaskSucceeded {
            worker: None,
            task: "clean_a".into(),
            result: Value::from("a"),
            duration_ms: 130.0,
            cycle: 1,
        },
    ));
    v.push(ev(
        run,
        410,
        EventKind::TaskStarted {
            task: "enrich".into(),
            cycle: 1,
            attempt: 0,
        },
    ));
    v.push(ev(
        run,
        500,
        EventKind::TaskStarted {
            task: "clean_b".into(),
            cycle: 1,
            attempt: 1,
        },
    ));
    v.push(ev(
        run,
        520,
        EventKind::TaskLog {
            worker: None,
            task: "clean_b".into(),
            stream: LogStream::Stderr,
            line: "error: row 2 has no id".into(),
        },
    ));
    v.push(ev(
        run,
        600,
        EventKind::TaskSucceeded {
            worker: None,
            task: "enrich".into(),
            result: serde_json::json!({"rows": 2}),
            duration_ms: 190.0,
            cycle: 1,
        },
    ));
    v.push(ev(
        run,
        640,
        EventKind::TaskFailed {
            worker: None,
            task: "clean_b".into(),
            error: "row 2 has no id".into(),
            attempt: 1,
            will_retry: false,
        },
    ));
    v.push(ev(
        run,
        650,
        EventKind::GroupFinished {
            group: "cleaners".into(),
            policy: "strict".into(),
            succeeded: vec!["clean_a".into()],
            failed: vec![("clean_b".into(), "row 2 has no id".into())],
            ok: false,
        },
    ));
    v.push(ev(
        run,
        660,
        EventKind::RunFinished {
            status: RunStatus::Failed,
            error: Some("group 'cleaners' failed: clean_b: row 2 has no id".into()),
            result: None,
            results: BTreeMap::new(),
            channel: BTreeMap::from([
                ("rows".to_string(), serde_json::json!([1, 2, 3])),
                ("source".to_string(), Value::from("crm")),
            ]),
            checkpoint: None,
        },
    ));
    v
}

/// A fresh app with default settings on an 100×30 screen.
pub fn app() -> App {
    let mut a = App::new(Settings::default());
    a.screen = (100, 30);
    a.now = at(1_000);
    a
}

/// [`app`] with `workflows` added and the last one run, its events being `events(run_id)`.
pub fn after_run(workflows: &[Arc<Workflow>], events: fn(&str) -> Vec<RunEvent>) -> App {
    let mut a = app();
    for wf in workflows {
        a.add_workflow(wf.clone());
    }
    a.update(graflow::studio::action::Action::Run);
    let id = a
        .entry()
        .and_then(|e| e.run.as_ref())
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    a.on_msg(graflow::studio::app::Msg::Engine(events(&id)));
    a
}

/// The screen as text.
pub fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| panic!("{e}"));
    t.draw(|f| ui::draw(f, app))
        .unwrap_or_else(|e| panic!("{e}"));
    format!("{}", t.backend())
}

/// A pending feedback request of run `run`, asked at 00:00:10 (the test clock's `at(…)`
/// starts at the epoch).
pub fn request(
    id: &str,
    kind: graflow_engine::hitl::FeedbackKind,
    prompt: &str,
    options: &[&str],
) -> graflow_engine::hitl::FeedbackRequest {
    use graflow_engine::hitl::{FeedbackRequest, FeedbackSpec, FeedbackStatus};
    FeedbackRequest {
        id: id.into(),
        run_id: "0193a1b2c3d4e".into(),
        task: format!("task_{id}"),
        workflow: "release".into(),
        spec: FeedbackSpec::new(kind, prompt)
            .options(options.iter().map(|s| s.to_string()).collect())
            .timeout(180.0),
        status: FeedbackStatus::Pending,
        created_at: "1970-01-01T00:00:10Z".into(),
        timed_out_at: None,
        checkpoint: None,
    }
}

/// One request of each kind, oldest first.
pub fn every_kind() -> Vec<graflow_engine::hitl::FeedbackRequest> {
    use graflow_engine::hitl::FeedbackKind as K;
    let mut paused = request("approve", K::Approval, "Deploy 1.4.0 to production?", &[]);
    paused.checkpoint = Some("/state/checkpoints/release-0193a1b2c3d4e-001.ckpt".into());
    vec![
        paused,
        request("name", K::Text, "Release name?", &[]),
        request(
            "window",
            K::Selection,
            "When should it go out?",
            &["now", "tonight", "tomorrow morning"],
        ),
        request(
            "regions",
            K::MultiSelection,
            "Which regions?",
            &["eu", "us", "asia"],
        ),
        request("limits", K::Custom, "Rate limits for the rollout?", &[]),
    ]
}

/// A checkpoint listing entry.
pub fn checkpoint_info(
    seq: u32,
    workflow: &str,
    created: &str,
    reason: graflow_engine::checkpoint::Reason,
    task: Option<&str>,
) -> graflow_engine::checkpoint::CheckpointInfo {
    let run = "0193a1b2c3d4e";
    graflow_engine::checkpoint::CheckpointInfo {
        schema_version: 1,
        path: format!("/state/checkpoints/{workflow}-{run}-{seq:03}.ckpt").into(),
        run_id: run.into(),
        seq,
        created_at: created.into(),
        reason,
        task: task.map(String::from),
        workflow: workflow.into(),
        workflow_path: Some(format!("/flows/{workflow}.ron")),
        workflow_hash: None,
        steps: seq as u64 * 2,
        size_bytes: 1_400 * seq as u64,
        content_bytes: None,
        metadata: serde_json::json!({"reason": "feedback_timeout"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

/// fetch >> (call0 | … | call5 | gpu) on a 2-slot pool "openai" limited to 10/s, a 1-slot
/// pool "gpu" (its task takes it whole) and a rate-limited queue "io" (fetch runs there).
pub fn limited() -> Arc<Workflow> {
    let mut wf = Workflow::builder("limited");
    wf.pool(
        "openai",
        graflow_engine::PoolDef::new(2)
            .rate_limit("10/s".parse().unwrap_or_else(|e| panic!("{e}"))),
    );
    wf.pool("gpu", graflow_engine::PoolDef::new(1));
    wf.queue(
        "io",
        graflow_engine::QueueDef::rate_limited("100/m".parse().unwrap_or_else(|e| panic!("{e}"))),
    );
    wf.add(TaskDef::from_fn("fetch", |_ctx| async { anyhow::Ok(Value::Null) }).queue("io"));
    let mut members = Vec::new();
    for i in 0..6 {
        let id = format!("call{i}");
        wf.add(
            TaskDef::from_fn(id.as_str(), |_ctx| async { anyhow::Ok(Value::Null) })
                .pool("openai", 1),
        );
        members.push(id);
    }
    wf.add(TaskDef::from_fn("render", |_ctx| async { anyhow::Ok(Value::Null) }).pool("gpu", 1));
    members.push("render".into());
    wf.flow_str(&format!("fetch >> ({})", members.join(" | ")));
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

/// A live run of `limited()`: two calls and the render run, four calls wait for the pool.
pub fn limited_run(run: &str) -> Vec<RunEvent> {
    let mut v = vec![ev(
        run,
        0,
        EventKind::RunStarted {
            workflow: "limited".into(),
            start: "fetch".into(),
            resumed_from: None,
        },
    )];
    let started = |task: &str, ms: u64| {
        ev(
            run,
            ms,
            EventKind::TaskStarted {
                task: task.into(),
                cycle: 1,
                attempt: 0,
            },
        )
    };
    v.push(started("fetch", 1));
    v.push(ev(
        run,
        5,
        EventKind::TaskSucceeded {
            worker: None,
            task: "fetch".into(),
            result: Value::Null,
            duration_ms: 4.0,
            cycle: 1,
        },
    ));
    v.push(ev(
        run,
        6,
        EventKind::GroupStarted {
            group: "group_1".into(),
            members: [
                "call0", "call1", "call2", "call3", "call4", "call5", "render",
            ]
            .map(Into::into)
            .to_vec(),
        },
    ));
    v.push(started("call0", 6));
    v.push(started("call1", 6));
    v.push(started("render", 6));
    for i in 2..6 {
        v.push(ev(
            run,
            6 + i,
            EventKind::TaskWaiting {
                task: format!("call{i}").into(),
                cycle: 1,
                attempt: 0,
                reason: "pool_slots".into(),
                pool: Some("openai".into()),
                detail: "pool 'openai': 2 of 2 slots in use, 1 needed".into(),
            },
        ));
    }
    v
}

/// データ取得 >> 変換 >> 保存: a workflow whose name and task names are Japanese (two cells a
/// character), with closures that succeed.
pub fn japanese() -> Arc<Workflow> {
    let mut wf = Workflow::builder("日本語のワークフロー");
    for id in ["データ取得", "変換", "保存"] {
        wf.add(TaskDef::from_fn(id, |_ctx| async {
            anyhow::Ok(Value::Null)
        }));
    }
    wf.flow_str("データ取得 >> 変換 >> 保存");
    Arc::new(wf.build().unwrap_or_else(|e| panic!("{e}")))
}

/// A failed run of `japanese()`: データ取得 succeeds with a log line, 変換 fails, 保存 never
/// starts; the channel has Japanese keys.
pub fn japanese_failed_run(run: &str) -> Vec<RunEvent> {
    vec![
        ev(
            run,
            0,
            EventKind::RunStarted {
                workflow: "日本語のワークフロー".into(),
                start: "データ取得".into(),
                resumed_from: None,
            },
        ),
        ev(
            run,
            10,
            EventKind::TaskStarted {
                task: "データ取得".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        ev(
            run,
            40,
            EventKind::TaskLog {
                worker: None,
                task: "データ取得".into(),
                stream: LogStream::Stdout,
                line: "3 件の行を取得しました 🚀".into(),
            },
        ),
        ev(
            run,
            250,
            EventKind::TaskSucceeded {
                worker: None,
                task: "データ取得".into(),
                result: Value::from("東京"),
                duration_ms: 240.0,
                cycle: 1,
            },
        ),
        ev(
            run,
            260,
            EventKind::TaskStarted {
                task: "変換".into(),
                cycle: 1,
                attempt: 0,
            },
        ),
        ev(
            run,
            300,
            EventKind::TaskLog {
                worker: None,
                task: "変換".into(),
                stream: LogStream::Stderr,
                line: "エラー: 2 行目に ID がありません".into(),
            },
        ),
        ev(
            run,
            320,
            EventKind::TaskFailed {
                worker: None,
                task: "変換".into(),
                error: "2 行目に ID がありません".into(),
                attempt: 0,
                will_retry: false,
            },
        ),
        ev(
            run,
            330,
            EventKind::RunFinished {
                status: RunStatus::Failed,
                error: Some("変換: 2 行目に ID がありません".into()),
                result: None,
                results: BTreeMap::new(),
                channel: BTreeMap::from([
                    ("取得元".to_string(), Value::from("顧客データベース")),
                    ("rows".to_string(), serde_json::json!([1, 2, 3])),
                ]),
                checkpoint: None,
            },
        ),
    ]
}
