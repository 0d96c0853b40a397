//! Both Prometheus endpoints pass `promtool check metrics` (Debian's `prometheus` package;
//! `.ci/run` installs it): `graflow serve`'s `/metrics` on feedback requests kept in the
//! fleet's Redis, and a `graflow worker`'s `/metrics` after it ran tasks. Without promtool
//! the test says so and passes, except on CI (`CI` set), where it fails.

use crate::services::Service;

use crate::fleet_support;
use crate::serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_support::{Fleet, samples};

fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "promtool is missing (Debian package `prometheus`)"
    );
    eprintln!("promtool is not installed (Debian package `prometheus`): not checked");
    None
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// `promtool check metrics` on `text`: its complaints, empty when clean.
fn check(tool: &str, text: &str) -> String {
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = fleet_support::wait_bounded(child, Duration::from_secs(60));
    if out.status.success() {
        String::new()
    } else {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// A chunked body, joined (axum streams small bodies in one chunk or plainly).
fn unchunk(body: &str) -> String {
    let chunked = body
        .lines()
        .next()
        .is_some_and(|l| u64::from_str_radix(l.trim(), 16).is_ok());
    if !chunked {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn the_worker_and_serve_endpoints_pass_promtool() {
    needs!(Service::Redis);
    let Some(tool) = promtool() else {
        return;
    };
    let mut fleet = Fleet::start(0);
    let port = fleet_support::redis_server::free_port();
    let addr = format!("127.0.0.1:{port}");
    fleet.spawn_worker(&["--lease", "2s", "--metrics-addr", &addr], &[]);
    fleet.wait_for_workers(1);
    let (code, _, err) = fleet.run(&samples().join("policy-best-effort.ron"), &[]);
    assert_eq!(code, Some(0), "{err}");
    let worker = unchunk(&http_get(&addr, "/metrics"));
    assert!(
        worker.contains("graflow_worker_processed_total"),
        "{worker}"
    );
    let problems = check(tool, &worker);
    assert!(
        problems.is_empty(),
        "worker /metrics:\n{problems}\n{worker}"
    );

    let server = serve_support::Server::start(fleet.dir.path(), &["--backend", &fleet.url], &[]);
    let serve = unchunk(&server.get("/metrics").body);
    assert!(serve.contains("graflow_feedback_requests"), "{serve}");
    let problems = check(tool, &serve);
    assert!(problems.is_empty(), "serve /metrics:\n{problems}\n{serve}");
}
