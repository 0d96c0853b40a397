//! `graflow run` of the rate-limited sample against a real HTTP server on 127.0.0.1 (the
//! test's own): the pool keeps at most 2 calls in flight, a 429 with `Retry-After: 1` is
//! retried a second later, waiting tasks show as `task_waiting` events and in the plain
//! progress lines.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the server saw: each request's path, when it arrived, and the most requests in
/// flight at once.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Instant)>,
    open: usize,
    max_open: usize,
}

/// A server answering its first request 429 (`Retry-After: 1`), the others 200 with a JSON
/// summary after 50 ms; one thread per connection.
fn api_server() -> (String, Arc<Mutex<Seen>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let state = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut sock) = stream else { return };
            let state = state.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let n = {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    s.requests.push((path, Instant::now()));
                    s.open += 1;
                    s.max_open = s.max_open.max(s.open);
                    s.requests.len()
                };
                let reply = if n == 1 {
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow".to_string()
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                    let body = format!("{{\"summary\":\"doc {n}\"}}");
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                state.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
                let _ = sock.write_all(reply.as_bytes());
            });
        }
    });
    (addr.to_string(), seen)
}

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows/rate-limited-api.ron")
}

fn graflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graflow"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GRAFLOW_STATE_DIR")
        .env_remove("GRAFLOW_BACKEND")
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_rate_limited_sample_keeps_its_pool_and_honours_retry_after() {
    let (api, seen) = api_server();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = sample().display().to_string();
    let set = format!("api={api}");
    let out = graflow(dir.path(), &["run", &file, "--json", "--set", &set]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let end = events.last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["result"]["summarized"], 6, "{end}");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        seen.max_open <= 2,
        "{} calls at once on a 2-slot pool",
        seen.max_open
    );
    // The refused call came again a second later.
    let (refused, first) = seen.requests[0].clone();
    let again = seen
        .requests
        .iter()
        .skip(1)
        .find(|(p, _)| *p == refused)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("{refused} was not retried"));
    let gap = again - first;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(5),
        "the retry came {gap:?} after the 429"
    );
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "task_waiting")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"pool_slots"), "{reasons:?}");
    assert!(reasons.contains(&"rate_limit"), "{reasons:?}");
}

#[test]
fn plain_progress_prints_waiting_tasks() {
    let (api, _seen) = api_server();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = sample().display().to_string();
    let set = format!("api={api}");
    let out = graflow(dir.path(), &["run", &file, "--set", &set]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("] waiting: pool 'api'") && l.contains("slots in use")),
        "{text}"
    );
}

#[test]
fn validate_refuses_an_unknown_pool_with_its_place() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(sample())
        .unwrap_or_else(|e| panic!("{e}"))
        .replacen("pool: \"api\"", "pool: \"apj\"", 1);
    std::fs::write(dir.path().join("bad.ron"), text).unwrap_or_else(|e| panic!("{e}"));
    let out = graflow(dir.path(), &["validate", "bad.ron"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.ron:22:") && err.contains("task 'doc1': unknown pool 'apj'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'api'"), "{err}");
}
