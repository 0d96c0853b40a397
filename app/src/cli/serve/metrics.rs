//! `/metrics` in the Prometheus text format, written by hand: a handful of counters need no
//! metrics framework, no global recorder and no extra dependency tree.
//!
//! - `graflow_feedback_requests{status}` — requests in the store by status (read at scrape)
//! - `graflow_feedback_paused_runs` — pending requests whose run paused into a checkpoint
//! - `graflow_feedback_answers_total{kind,via}` — answers given through this server
//! - `graflow_feedback_cancellations_total{via}` — requests withdrawn through this server
//! - `graflow_http_requests_total{method,route,status}` — HTTP requests served
//! - `graflow_serve_uptime_seconds` — time since start

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use graflow_engine::hitl::{FeedbackKind, FeedbackRequest, FeedbackStatus};

use super::AppState;

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    answers: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    cancellations: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    *m.entry(key).or_insert(0) += 1;
}

/// A label value escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Count an HTTP request.
    pub fn http(&self, method: &str, route: &str, status: u16) {
        let mut m = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let key = (method.to_string(), route.to_string(), status);
        if m.len() >= MAX_HTTP_SERIES && !m.contains_key(&key) {
            *m.entry(("other".into(), "other".into(), 0)).or_insert(0) += 1;
            return;
        }
        *m.entry(key).or_insert(0) += 1;
    }

    /// Count an answer given `via` the API or the web form.
    pub fn answered(&self, kind: FeedbackKind, via: &'static str) {
        bump(&self.answers, (kind.as_str(), via));
    }

    /// Count a cancellation.
    pub fn cancelled(&self, via: &'static str) {
        bump(&self.cancellations, via);
    }

    /// The text format, with the store's `requests` counted by status.
    pub fn render(&self, requests: &[FeedbackRequest], uptime: Duration) -> String {
        let mut out = String::new();
        let mut by_status: BTreeMap<&str, u64> =
            [("pending", 0), ("answered", 0), ("cancelled", 0)].into();
        let mut paused = 0;
        for r in requests {
            let s = match r.status {
                FeedbackStatus::Pending => "pending",
                FeedbackStatus::Answered => "answered",
                FeedbackStatus::Cancelled => "cancelled",
            };
            *by_status.entry(s).or_insert(0) += 1;
            if r.status == FeedbackStatus::Pending && r.checkpoint.is_some() {
                paused += 1;
            }
        }
        let _ = writeln!(
            out,
            "# HELP graflow_feedback_requests Feedback requests in the store, by status.\n# TYPE graflow_feedback_requests gauge"
        );
        for (s, n) in by_status {
            let _ = writeln!(out, "graflow_feedback_requests{{status=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP graflow_feedback_paused_runs Pending requests whose run paused into a checkpoint.\n# TYPE graflow_feedback_paused_runs gauge\ngraflow_feedback_paused_runs {paused}"
        );
        let _ = writeln!(
            out,
            "# HELP graflow_feedback_answers_total Answers given through this server.\n# TYPE graflow_feedback_answers_total counter"
        );
        for ((kind, via), n) in self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "graflow_feedback_answers_total{{kind=\"{kind}\",via=\"{via}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP graflow_feedback_cancellations_total Requests cancelled through this server.\n# TYPE graflow_feedback_cancellations_total counter"
        );
        for (via, n) in self
            .cancellations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "graflow_feedback_cancellations_total{{via=\"{via}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP graflow_http_requests_total HTTP requests served, by method, route and status.\n# TYPE graflow_http_requests_total counter"
        );
        for ((method, route, status), n) in
            self.http.lock().unwrap_or_else(|e| e.into_inner()).iter()
        {
            let _ = writeln!(
                out,
                "graflow_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(method),
                label(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP graflow_serve_uptime_seconds Seconds since the server started.\n# TYPE graflow_serve_uptime_seconds gauge\ngraflow_serve_uptime_seconds {:.3}",
            uptime.as_secs_f64()
        );
        out
    }
}

/// Middleware counting every request by method, route pattern (`unmatched` for unknown
/// paths, so the label set stays small) and status.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method().as_str()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    state.metrics.http(&method, &route, resp.status().as_u16());
    resp
}

/// A method as a label: the standard ones by name, any other as `other` (a client choosing
/// arbitrary methods must not create one series each).
fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Most distinct label sets kept for `graflow_http_requests_total`; later new ones are
/// counted under `other` labels.
const MAX_HTTP_SERIES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_stay_bounded() {
        let m = Metrics::default();
        for i in 0..2_000 {
            m.http(method_label(&format!("X{i}")), "unmatched", 405);
            m.http("GET", &format!("/r{i}"), 200 + (i % 300) as u16);
        }
        let text = m.render(&[], Duration::ZERO);
        let series = text
            .lines()
            .filter(|l| l.starts_with("graflow_http_requests_total{"))
            .count();
        assert!(series <= MAX_HTTP_SERIES + 1, "{series}");
        assert!(text.contains("method=\"other\",route=\"unmatched\",status=\"405\"} 2000"));
    }

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        m.http("GET", "/api/feedback", 200);
        m.http("GET", "/api/feedback", 200);
        m.http("GET", "/a\"b", 404);
        m.answered(FeedbackKind::Approval, "api");
        m.cancelled("ui");
        let text = m.render(&[], Duration::from_millis(1500));
        assert!(text.contains(
            "graflow_http_requests_total{method=\"GET\",route=\"/api/feedback\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/a\\\"b\""));
        assert!(text.contains("graflow_feedback_answers_total{kind=\"approval\",via=\"api\"} 1"));
        assert!(text.contains("graflow_feedback_cancellations_total{via=\"ui\"} 1"));
        assert!(text.contains("graflow_feedback_requests{status=\"pending\"} 0"));
        assert!(text.contains("graflow_serve_uptime_seconds 1.500"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "bad sample line: {line}");
        }
    }
}
