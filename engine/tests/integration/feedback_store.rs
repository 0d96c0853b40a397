//! The feedback file store under concurrency: an answer and a cancel racing on the same
//! request — from separate store handles, as separate processes would — never both succeed,
//! and the store ends in the state of the one that did; concurrent writes never fail or leave
//! a half file. Plus property tests of answers against their requests.

use std::sync::{Arc, Barrier};

use futures::executor::block_on;
use graflow_engine::hitl::{
    Answer, FeedbackBackend, FeedbackKind, FeedbackRequest, FeedbackSpec, FeedbackStatus,
    FileBackend,
};
use proptest::prelude::*;

fn request(id: &str, kind: FeedbackKind, options: &[&str]) -> FeedbackRequest {
    FeedbackRequest {
        id: id.into(),
        run_id: "r".into(),
        task: "t".into(),
        workflow: "w".into(),
        spec: FeedbackSpec::new(kind, "?").options(options.iter().map(|s| s.to_string()).collect()),
        status: FeedbackStatus::Pending,
        created_at: "2026-01-01T00:00:00Z".into(),
        timed_out_at: None,
        checkpoint: None,
    }
}

#[test]
fn an_answer_and_a_cancel_never_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("feedback");
    let rounds = 300;
    for i in 0..rounds {
        block_on(FileBackend::new(&store).create(request(
            &format!("q{i}"),
            FeedbackKind::Approval,
            &[],
        )))
        .unwrap();
    }
    let mut answered = 0;
    for i in 0..rounds {
        let id = format!("q{i}");
        let barrier = Arc::new(Barrier::new(3));
        let spawn = |what: u8| {
            let (store, id, barrier) = (store.clone(), id.clone(), barrier.clone());
            std::thread::spawn(move || {
                let backend = FileBackend::new(store);
                barrier.wait();
                match what {
                    0 => block_on(backend.respond(
                        &id,
                        Answer {
                            approved: Some(true),
                            ..Answer::default()
                        },
                    ))
                    .is_ok(),
                    1 => block_on(backend.cancel(&id)).is_ok(),
                    _ => block_on(backend.respond(
                        &id,
                        Answer {
                            approved: Some(false),
                            ..Answer::default()
                        },
                    ))
                    .is_ok(),
                }
            })
        };
        let (a, c, b) = (spawn(0), spawn(1), spawn(2));
        let wins = [a.join().unwrap(), c.join().unwrap(), b.join().unwrap()];
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "round {i}: {wins:?}"
        );
        let (req, resp) = block_on(FileBackend::new(&store).get(&id))
            .unwrap()
            .unwrap();
        if wins[1] {
            assert_eq!(req.status, FeedbackStatus::Cancelled);
            assert!(resp.is_none());
        } else {
            answered += 1;
            assert_eq!(req.status, FeedbackStatus::Answered);
            let approved = resp.unwrap().answer.approved;
            assert_eq!(
                approved,
                Some(wins[0]),
                "the winner's answer is the stored one"
            );
        }
    }
    assert!(answered <= rounds);
    // No temporary file is left behind.
    for sub in ["requests", "responses"] {
        for e in std::fs::read_dir(store.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "left over: {name}");
        }
    }
}

#[test]
fn concurrent_writes_in_one_process_never_fail_or_tear() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FileBackend::new(dir.path()));
    block_on(backend.create(request("q", FeedbackKind::Text, &[]))).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                for k in 0..25 {
                    let mut r = request("q", FeedbackKind::Text, &[]);
                    r.checkpoint = Some(format!("c-{t}-{k}"));
                    block_on(backend.update(&r)).unwrap();
                    let (read, _) = block_on(backend.get("q")).unwrap().unwrap();
                    assert!(read.checkpoint.is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // An update never undoes an answer.
    block_on(backend.respond(
        "q",
        Answer {
            text: Some("hi".into()),
            ..Answer::default()
        },
    ))
    .unwrap();
    block_on(backend.update(&request("q", FeedbackKind::Text, &[]))).unwrap();
    let (read, resp) = block_on(backend.get("q")).unwrap().unwrap();
    assert_eq!(read.status, FeedbackStatus::Answered);
    assert!(resp.is_some());
    assert!(block_on(backend.cancel("q")).is_err());
}

fn arb_kind() -> impl Strategy<Value = FeedbackKind> {
    prop::sample::select(vec![
        FeedbackKind::Approval,
        FeedbackKind::Text,
        FeedbackKind::Selection,
        FeedbackKind::MultiSelection,
        FeedbackKind::Custom,
    ])
}

proptest! {
    /// Any answer against any request: accepted only when it fits the kind and the options.
    #[test]
    fn answers_fit_their_request_or_are_refused(
        kind in arb_kind(),
        options in prop::collection::vec("[a-c\u{e9}]{0,2}", 1..4),
        approved in any::<Option<bool>>(),
        reason in any::<Option<String>>(),
        text in any::<Option<String>>(),
        selected in any::<Option<String>>(),
        multi in prop::option::of(prop::collection::vec("[a-c\u{e9}]{0,2}", 0..4)),
        custom in any::<Option<i64>>(),
    ) {
        let opts: Vec<&str> = options.iter().map(String::as_str).collect();
        let r = request("q", kind, &opts);
        let answer = Answer {
            approved,
            reason,
            text,
            selected,
            selected_multiple: multi,
            custom_data: custom.map(serde_json::Value::from),
            responded_by: None,
        };
        if let Ok(resp) = r.accept(answer.clone(), "now".into()) {
            let a = &resp.answer;
            match kind {
                FeedbackKind::Approval => prop_assert!(a.approved.is_some()),
                FeedbackKind::Text => prop_assert!(a.text.is_some()),
                FeedbackKind::Selection => prop_assert!(options.contains(a.selected.as_ref().unwrap())),
                FeedbackKind::MultiSelection => prop_assert!(a.selected_multiple.as_ref().unwrap().iter().all(|s| options.contains(s))),
                FeedbackKind::Custom => prop_assert!(a.custom_data.is_some()),
            }
        }
    }

    /// Answers read from JSON text of any shape: parsed or refused, never a panic.
    #[test]
    fn answer_json_of_any_shape(text in "\\PC{0,80}") {
        let _ = serde_json::from_str::<Answer>(&text);
    }
}
