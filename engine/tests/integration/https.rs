//! HTTPS: an `Http` task and a signed webhook against a TLS server on 127.0.0.1 whose
//! certificate the test generates, trusted through `ca_file`; without it the certificate is
//! refused. (`SSL_CERT_FILE` is covered by `https_roots.rs`, in its own process.)

use crate::tls;

use std::path::Path;
use std::time::Duration;

use graflow_engine::file::load_str;
use graflow_engine::handler::Runtimes;
use graflow_engine::hitl::{
    FeedbackEvent, FeedbackKind, FeedbackRequest, FeedbackSpec, FeedbackStatus, Notifier,
    WebhookConfig, WebhookNotifier, flush_deliveries, notify::sign,
};
use graflow_engine::prelude::*;
use serde_json::json;

async fn run_file(dir: &Path, text: &str) -> RunOutcome {
    let file = dir.join("wf.ron");
    std::fs::write(&file, text).unwrap();
    let loaded = load_str(text, &file, &Runtimes::default()).unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(
        Duration::from_secs(30),
        Engine::new().run(loaded.workflow.clone(), RunOptions::new()),
    )
    .await
    .expect("bounded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_task_reaches_a_tls_server_it_trusts_through_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls::start(dir.path(), r#"{"secure": true}"#).await;
    let text = format!(
        r#"Workflow(name: "tls", flow: "get", tasks: {{
            "get": Task(run: Http(method: "POST", url: "{}", body: "hello", ca_file: "ca.pem")),
        }})"#,
        server.url("/api")
    );
    let out = run_file(dir.path(), &text).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["get"], json!({"secure": true}));
    let seen = server.seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api")
    );
    assert_eq!(seen[0].body, "hello");

    // Without the CA the certificate is refused, with a message saying so.
    let untrusting = text.replace(r#", ca_file: "ca.pem""#, "");
    let out = run_file(dir.path(), &untrusting).await;
    assert_eq!(out.status, RunStatus::Failed);
    let error = out.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains(&server.url("/api")), "{error}");
    assert!(
        error.contains(&format!(
            "TLS handshake with 127.0.0.1:{} failed",
            server.port
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_reaches_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls::start(dir.path(), "{}").await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let notifier = WebhookNotifier::new(WebhookConfig {
        url: server.url("/hook"),
        method: "POST".into(),
        headers: Vec::new(),
        body: None,
        secret: Some(WebhookConfig::decode_secret(secret).unwrap()),
        retries: 0,
        timeout: Duration::from_secs(10),
        ca_file: Some(server.ca_file.clone()),
    })
    .unwrap();
    let request = FeedbackRequest {
        id: "r1.approve.1-0-0".into(),
        run_id: "r1".into(),
        task: "approve".into(),
        workflow: "w".into(),
        spec: FeedbackSpec::new(FeedbackKind::Approval, "ship it?"),
        status: FeedbackStatus::Pending,
        created_at: "now".into(),
        timed_out_at: None,
        checkpoint: None,
    };
    notifier.notify(
        FeedbackEvent::Requested,
        &request,
        None,
        "http://x/ui/feedback/r1",
    );
    flush_deliveries(Duration::from_secs(20)).await;
    let seen = server.seen.lock().clone();
    assert_eq!(seen.len(), 1, "delivered once over TLS");
    let hook = &seen[0];
    let id = hook.header("webhook-id").unwrap();
    let ts: u64 = hook.header("webhook-timestamp").unwrap().parse().unwrap();
    let key = WebhookConfig::decode_secret(secret).unwrap();
    assert_eq!(
        hook.header("webhook-signature").unwrap(),
        sign(&key, id, ts, &hook.body),
        "the signature covers what was sent"
    );
    let body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["prompt"], "ship it?");
}

#[tokio::test]
async fn a_ca_file_that_is_missing_or_not_pem_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    for ca in ["missing.pem", "junk.pem"] {
        let text = format!(
            r#"Workflow(name: "tls", flow: "get", tasks: {{
                "get": Task(run: Http(url: "https://127.0.0.1:1/", ca_file: "{ca}")),
            }})"#
        );
        let file = dir.path().join("wf.ron");
        let err = match load_str(&text, &file, &Runtimes::default()) {
            Ok(_) => panic!("{ca} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("ca_file"), "{err}");
    }
}

/// A plain HTTP server answering every request with `head` and then `body_len` bytes.
async fn big_answer(head: String, body_len: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < body_len {
                    let n = chunk.len().min(body_len - sent);
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_answer_larger_than_the_limit_fails_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let big = graflow_engine::limits::MAX_HTTP_BODY_BYTES + 1024;
    // Announced by Content-Length, and streamed without one.
    for head in [
        format!("HTTP/1.1 200 OK\r\ncontent-length: {big}\r\nconnection: close\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string(),
    ] {
        let port = big_answer(head, big).await;
        let text = format!(
            r#"Workflow(name: "big", flow: "get", tasks: {{
                "get": Task(run: Http(url: "http://127.0.0.1:{port}/")),
            }})"#
        );
        let out = run_file(dir.path(), &text).await;
        assert_eq!(out.status, RunStatus::Failed);
        let error = out.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("larger than 16 MiB"), "{error}");
    }
}
