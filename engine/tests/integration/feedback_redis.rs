//! Feedback requests in Redis, on a real server: stored once, listed, answered once (an
//! answer, a second answer and a cancel racing from separate connections: exactly one wins),
//! bookkeeping kept apart from the answer, and a waiter woken by an answer given on another
//! connection (no polling: it blocks on the request's wake stream).

use crate::services::Service;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;
use graflow_engine::distributed::RedisFeedback;
use graflow_engine::distributed::conn::Link;
use graflow_engine::distributed::keys::Keys;
use graflow_engine::hitl::{
    Answer, FeedbackBackend, FeedbackError, FeedbackKind, FeedbackRequest, FeedbackSpec,
    FeedbackStatus,
};

fn request(id: &str, run: &str) -> FeedbackRequest {
    FeedbackRequest {
        id: id.into(),
        run_id: run.into(),
        task: "t".into(),
        workflow: "w".into(),
        spec: FeedbackSpec::new(FeedbackKind::Approval, "ship?"),
        status: FeedbackStatus::Pending,
        created_at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
        timed_out_at: None,
        checkpoint: None,
    }
}

fn yes() -> Answer {
    Answer {
        approved: Some(true),
        ..Answer::default()
    }
}

async fn backend(server: &RedisServer, prefix: &str) -> RedisFeedback {
    let link = Link::connect(&server.url(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    RedisFeedback::new(link, Keys::new(prefix), Duration::from_secs(3600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_stored_once_listed_and_answered_once() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let fb = backend(&server, "t-store").await;
    let first = fb
        .create(request("q1", "r1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut other = request("q1", "r9");
    other.task = "another".into();
    let again = fb.create(other).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, first, "a second create returns the stored request");
    fb.create(request("q22", "r2"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all = fb.list(None, true).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["q1", "q22"]
    );
    let r2 = fb
        .list(Some("r2"), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r2.len(), 1);

    let bad = fb
        .respond(
            "q1",
            Answer {
                text: Some("x".into()),
                ..Answer::default()
            },
        )
        .await;
    assert!(matches!(bad, Err(FeedbackError::Invalid(_))), "{bad:?}");
    let mut timed = first.clone();
    timed.timed_out_at = Some("2026-01-01T00:03:00Z".into());
    timed.checkpoint = Some("c.ckpt".into());
    fb.update(&timed).await.unwrap_or_else(|e| panic!("{e}"));
    let answer = fb
        .respond("q1", yes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.answer.approved, Some(true));
    let (stored, response) = fb
        .get("q1")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored.status, FeedbackStatus::Answered);
    assert_eq!(stored.checkpoint.as_deref(), Some("c.ckpt"));
    assert_eq!(response, Some(answer));
    assert!(matches!(
        fb.respond("q1", yes()).await,
        Err(FeedbackError::NotPending { .. })
    ));
    assert!(matches!(
        fb.cancel("q1").await,
        Err(FeedbackError::NotPending { .. })
    ));
    assert!(matches!(
        fb.respond("nope", yes()).await,
        Err(FeedbackError::NotFound(_))
    ));
    let pending = fb.list(None, true).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        pending.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["q22"]
    );
    let cancelled = fb.cancel("q22").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cancelled.status, FeedbackStatus::Cancelled);
    assert!(matches!(
        fb.wait("q22", Duration::from_secs(5)).await,
        Err(FeedbackError::Cancelled(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_answers_and_cancels_have_exactly_one_winner() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let handles = [
        Arc::new(backend(&server, "t-race").await),
        Arc::new(backend(&server, "t-race").await),
        Arc::new(backend(&server, "t-race").await),
    ];
    for i in 0..100 {
        let id = format!("race{i}");
        handles[0]
            .create(request(&id, "r"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let tasks: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, fb)| {
                let (fb, id) = (fb.clone(), id.clone());
                tokio::spawn(async move {
                    if n == 2 {
                        fb.cancel(&id).await.is_ok()
                    } else {
                        fb.respond(&id, yes()).await.is_ok()
                    }
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap_or(false));
        }
        assert_eq!(wins, 1, "request {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_wakes_when_another_connection_answers() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let asker = backend(&server, "t-wake").await;
    let answerer = backend(&server, "t-wake").await;
    asker
        .create(request("w1", "r"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        asker
            .wait("w1", Duration::from_millis(200))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None,
        "no answer: the wait runs out"
    );
    let waiting = tokio::spawn(async move {
        let got = asker.wait("w1", Duration::from_secs(60)).await;
        (got, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered_at = Instant::now();
    answerer
        .respond("w1", yes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (got, woke_at) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap_or_else(|_| panic!("the waiter never woke"))
        .unwrap_or_else(|e| panic!("{e}"));
    let got = got.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.map(|r| r.answer.approved), Some(Some(true)));
    println!(
        "redis feedback wake-up: {:.2} ms after the answer",
        woke_at.duration_since(answered_at).as_secs_f64() * 1000.0
    );
}
