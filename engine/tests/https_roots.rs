//! HTTPS roots from the platform store honour `SSL_CERT_FILE`: a client built after it names
//! the test's CA trusts the test's TLS server without any `ca_file`. Its own test binary: it
//! sets a process-wide variable.

#![cfg(feature = "http")]

#[path = "support/tls.rs"]
mod tls;

use std::time::Duration;

use graflow_engine::handler::HandlerEnv;
use graflow_engine::handler::Runtimes;
use graflow_engine::handler::http::{HttpHandler, HttpSpec};
use graflow_engine::prelude::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_cert_file_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls::start(dir.path(), r#"{"via": "SSL_CERT_FILE"}"#).await;
    // SAFETY: the only test of this binary; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &server.ca_file);
        std::env::remove_var("SSL_CERT_DIR");
    }
    let spec = HttpSpec {
        method: "GET".into(),
        url: server.url("/roots"),
        headers: Default::default(),
        body: None,
        timeout: Some("10s".into()),
        ca_file: None,
    };
    let env = HandlerEnv::new(dir.path(), Runtimes::default());
    let handler = HttpHandler::new(spec, &env).unwrap();
    let mut wf = Workflow::builder("roots");
    let t = wf.add(TaskDef::new("get", std::sync::Arc::new(handler)));
    wf.flow(t);
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Engine::new().run(std::sync::Arc::new(wf.build().unwrap()), RunOptions::new()),
    )
    .await
    .expect("bounded");
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["get"], json!({"via": "SSL_CERT_FILE"}));
}
