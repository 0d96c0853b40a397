//! Backpressure from an API: an Http task answered 429 (or 503) with `Retry-After` by a real
//! HTTP server on 127.0.0.1 retries after that delay, within its retry policy; without
//! retries left it fails; the bucket of its pool is held, so the pool's other tasks wait too.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graflow_engine::file::load_str;
use graflow_engine::handler::Runtimes;
use graflow_engine::pool::RetryAfter;
use graflow_engine::prelude::*;
use graflow_engine::{GroupDef, PoolDef, parse_flow};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server answering its first `busy` requests with `status` and `Retry-After: <after>`, the
/// rest with 200 and `{"ok": true}`; it records when each request arrived.
struct Server {
    addr: std::net::SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

async fn server(busy: usize, status: &'static str, after: &'static str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address");
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let n = {
                    let mut s = seen.lock();
                    s.push(Instant::now());
                    s.len()
                };
                let reply = if n <= busy {
                    format!(
                        "HTTP/1.1 {status}\r\nRetry-After: {after}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
                    )
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}".to_string()
                };
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { addr, arrivals }
}

fn workflow(url: &str, retries: &str) -> Arc<Workflow> {
    let src = format!(
        r#"Workflow(
    name: "api",
    flow: "call",
    pools: {{"api": Pool(slots: 2)}},
    tasks: {{
        "call": Task(run: Http(url: "{url}"), pool: "api", retries: {retries}),
    }},
)"#
    );
    load_str(&src, Path::new("api.ron"), &Runtimes::default())
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics))
        .workflow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_one_second_delays_the_retry_by_one_second() {
    let s = server(1, "429 Too Many Requests", "1").await;
    // The backoff alone would retry after 10 ms.
    let wf = workflow(
        &format!("http://{}/v1", s.addr),
        r#"(max: 3, backoff: "10ms")"#,
    );
    let mut handle = Engine::new().start(wf, RunOptions::new().with_events());
    let mut rx = handle.take_events().expect("events");
    let out = handle.wait().await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["call"], serde_json::json!({"ok": true}));
    let arrivals = s.arrivals.lock().clone();
    assert_eq!(arrivals.len(), 2, "one refusal, one retry");
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(5),
        "the retry came {gap:?} after the refusal"
    );
    let mut failed = None;
    while let Ok(e) = rx.try_recv() {
        if let EventKind::TaskFailed {
            error, will_retry, ..
        } = e.kind
        {
            failed = Some((error, will_retry));
        }
    }
    let (error, will_retry) = failed.expect("the refusal was reported");
    assert!(will_retry);
    assert!(error.contains("429"), "{error}");
    assert!(error.contains("retry after 1s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_an_http_date_is_honoured_too() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let date: &'static str = Box::leak(date.into_boxed_str());
    let s = server(1, "503 Service Unavailable", date).await;
    let wf = workflow(
        &format!("http://{}/v1", s.addr),
        r#"(max: 1, backoff: "10ms")"#,
    );
    let out = Engine::new().run(wf, RunOptions::new()).await;
    assert!(out.succeeded(), "{:?}", out.error);
    let arrivals = s.arrivals.lock().clone();
    assert_eq!(arrivals.len(), 2);
    // An HTTP date has whole seconds: the delay is between 1 and 2 s.
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(10),
        "{gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_left_a_429_fails_the_task() {
    let s = server(5, "429 Too Many Requests", "1").await;
    let wf = workflow(&format!("http://{}/v1", s.addr), "(max: 0)");
    let out = Engine::new().run(wf, RunOptions::new()).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(s.arrivals.lock().len(), 1);
}

/// A task refused with `Retry-After: 1s` holds its pool's bucket: another task of the pool,
/// ready 10 ms later, starts only when the second is over.
#[tokio::test(start_paused = true)]
async fn a_retry_after_holds_the_pool_for_its_other_tasks() {
    let t0 = tokio::time::Instant::now();
    let mut wf = Workflow::builder("hold");
    wf.pool("api", PoolDef::new(4));
    wf.task("start", |_ctx| async { anyhow::Ok(0) });
    wf.add(
        TaskDef::from_fn("refused", |_ctx: TaskContext| async {
            Err::<Value, _>(anyhow::Error::new(RetryAfter {
                delay: Duration::from_secs(1),
                message: "answered 429".into(),
            }))
        })
        .pool("api", 1),
    );
    wf.task("pause", |_ctx| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        anyhow::Ok(0)
    });
    let started = Arc::new(Mutex::new(None));
    let s = started.clone();
    wf.add(
        TaskDef::from_fn("later", move |_ctx: TaskContext| {
            let s = s.clone();
            async move {
                *s.lock() = Some(t0.elapsed());
                anyhow::Ok(0)
            }
        })
        .pool("api", 1),
    );
    wf.add_group(
        GroupDef::new(
            "g",
            parse_flow("refused | pause >> later")
                .expect("flow")
                .remove(0),
        )
        .policy(GroupPolicy::BestEffort),
    );
    wf.flow_str("start >> g");
    let out = Engine::new()
        .run(Arc::new(wf.build().expect("builds")), RunOptions::new())
        .await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(*started.lock(), Some(Duration::from_secs(1)));
}
