//! Telling people a request waits: on the console (with the endpoint and a `curl` example), by
//! webhook (signed per Standard Webhooks, retried with backoff, time-limited, never blocking the
//! task), or through a Rust callback.

use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "http")]
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::template::Template;

use super::types::{FeedbackKind, FeedbackRequest, FeedbackResponse};

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackEvent {
    /// A task asked.
    Requested,
    /// Someone answered.
    Answered,
    /// The wait ran out; the run paused.
    TimedOut,
}

impl FeedbackEvent {
    /// `feedback.requested`, `feedback.answered`, `feedback.timed_out`.
    pub fn name(self) -> &'static str {
        match self {
            FeedbackEvent::Requested => "feedback.requested",
            FeedbackEvent::Answered => "feedback.answered",
            FeedbackEvent::TimedOut => "feedback.timed_out",
        }
    }
}

/// Receives request events. Implementations must return quickly: slow work (HTTP) goes on a
/// spawned task.
pub trait Notifier: Send + Sync {
    /// React to `event` on `request` (`response` is set for `Answered`). `answer_url` is where
    /// a person can answer (the web form of `graflow serve`).
    fn notify(
        &self,
        event: FeedbackEvent,
        request: &FeedbackRequest,
        response: Option<&FeedbackResponse>,
        answer_url: &str,
    );
}

/// Prints the request, where to answer it, and a `curl` example on standard error.
#[derive(Debug, Default, Clone)]
pub struct ConsoleNotifier;

fn example_body(kind: FeedbackKind, options: &[String]) -> String {
    match kind {
        FeedbackKind::Approval => r#"{"approved": true}"#.into(),
        FeedbackKind::Text => r#"{"text": "…"}"#.into(),
        FeedbackKind::Selection => format!(
            r#"{{"selected": "{}"}}"#,
            options.first().cloned().unwrap_or_default()
        ),
        FeedbackKind::MultiSelection => format!(
            r#"{{"selected_multiple": ["{}"]}}"#,
            options.first().cloned().unwrap_or_default()
        ),
        FeedbackKind::Custom => r#"{"custom_data": {}}"#.into(),
    }
}

impl Notifier for ConsoleNotifier {
    fn notify(
        &self,
        event: FeedbackEvent,
        r: &FeedbackRequest,
        _response: Option<&FeedbackResponse>,
        answer_url: &str,
    ) {
        if event != FeedbackEvent::Requested {
            return;
        }
        let api = answer_url.replace("/ui/feedback/", "/api/feedback/");
        eprintln!(
            "\n[{}] {} asks ({}): {}\n  answer in the studio, with `graflow feedback respond {}`, at {answer_url}, or:\n  curl -X POST {api}/respond -H 'Content-Type: application/json' -d '{}'\n",
            r.run_id,
            r.task,
            r.spec.kind.as_str(),
            r.spec.prompt,
            r.id,
            example_body(r.spec.kind, &r.spec.options)
        );
    }
}

/// The function a [`CallbackNotifier`] calls.
pub type FeedbackCallback =
    dyn Fn(FeedbackEvent, &FeedbackRequest, Option<&FeedbackResponse>) + Send + Sync;

/// Calls a Rust function.
pub struct CallbackNotifier(pub Arc<FeedbackCallback>);

impl Notifier for CallbackNotifier {
    fn notify(
        &self,
        event: FeedbackEvent,
        request: &FeedbackRequest,
        response: Option<&FeedbackResponse>,
        _url: &str,
    ) {
        (self.0)(event, request, response)
    }
}

/// A webhook's settings (the workflow file's `Webhook(…)`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Where to send.
    pub url: String,
    /// HTTP method (POST by default).
    pub method: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body template over `prompt`, `url`, `feedback_id`, `task`, `run_id`, `kind`, `event`;
    /// without it the request is sent as JSON.
    pub body: Option<Template>,
    /// `whsec_<base64 key>`: sign per Standard Webhooks.
    pub secret: Option<Vec<u8>>,
    /// Attempts after the first.
    pub retries: u32,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// A PEM file of extra root certificates to trust, besides the platform's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl WebhookConfig {
    /// Decode a `whsec_…` secret.
    pub fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookError> {
        let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
        B64.decode(b64)
            .map_err(|e| WebhookError::Secret(e.to_string()))
    }
}

/// A webhook's settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret is not base64.
    #[error("the webhook secret is not base64 after 'whsec_': {0}")]
    Secret(String),
    /// The HTTP client for its `ca_file` could not be set up.
    #[cfg(feature = "http")]
    #[error(transparent)]
    Client(#[from] crate::net::ClientError),
}

impl From<WebhookError> for String {
    fn from(e: WebhookError) -> String {
        e.to_string()
    }
}

/// Webhook deliveries in flight, in this process.
static DELIVERIES: std::sync::LazyLock<tokio_util::task::TaskTracker> =
    std::sync::LazyLock::new(tokio_util::task::TaskTracker::new);

/// Wait up to `limit` for webhook deliveries still in flight (call before the process exits,
/// for example after a run paused).
pub async fn flush_deliveries(limit: Duration) {
    DELIVERIES.close();
    let _ = tokio::time::timeout(limit, DELIVERIES.wait()).await;
    DELIVERIES.reopen();
}

/// Posts each event to a URL.
#[cfg(feature = "http")]
pub struct WebhookNotifier {
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
}

#[cfg(feature = "http")]
impl WebhookNotifier {
    /// A notifier for `config`; fails when its `ca_file` cannot be read.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let client = match &config.ca_file {
            Some(f) => crate::net::http_client(Some(f))?,
            None => crate::net::default_client(),
        };
        Ok(WebhookNotifier {
            config: Arc::new(config),
            client,
        })
    }
}

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` (Standard Webhooks).
pub fn sign(key: &[u8], msg_id: &str, timestamp: u64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The JSON body of an event when no template is given.
pub fn event_body(
    event: FeedbackEvent,
    r: &FeedbackRequest,
    response: Option<&FeedbackResponse>,
    answer_url: &str,
) -> Value {
    let mut body = json!({
        "type": event.name(),
        "feedback_id": r.id,
        "run_id": r.run_id,
        "workflow": r.workflow,
        "task": r.task,
        "kind": r.spec.kind.as_str(),
        "prompt": r.spec.prompt,
        "options": r.spec.options,
        "url": answer_url,
        "timeout": r.spec.timeout_secs,
        "created_at": r.created_at,
    });
    if let (Some(resp), Some(map)) = (response, body.as_object_mut()) {
        map.insert(
            "response".into(),
            serde_json::to_value(resp).unwrap_or(Value::Null),
        );
    }
    body
}

#[cfg(feature = "http")]
impl Notifier for WebhookNotifier {
    fn notify(
        &self,
        event: FeedbackEvent,
        r: &FeedbackRequest,
        response: Option<&FeedbackResponse>,
        answer_url: &str,
    ) {
        let config = self.config.clone();
        let client = self.client.clone();
        let body = match &config.body {
            None => event_body(event, r, response, answer_url).to_string(),
            Some(t) => {
                let fields = json!({
                    "prompt": r.spec.prompt, "url": answer_url, "feedback_id": r.id, "task": r.task,
                    "run_id": r.run_id, "kind": r.spec.kind.as_str(), "event": event.name(), "workflow": r.workflow,
                });
                match t.render(|name| fields.get(name).cloned()) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("webhook {}: {e}", config.url);
                        return;
                    }
                }
            }
        };
        let msg_id = format!(
            "msg_{}_{}",
            r.id,
            event.name().trim_start_matches("feedback.")
        );
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("webhook {}: no async runtime to send from", config.url);
            return;
        };
        DELIVERIES.spawn_on(
            async move {
                let method = reqwest::Method::from_bytes(config.method.as_bytes())
                    .unwrap_or(reqwest::Method::POST);
                let mut delay = Duration::from_millis(500);
                for attempt in 0..=config.retries {
                    let timestamp = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let mut req = client
                        .request(method.clone(), &config.url)
                        .timeout(config.timeout)
                        .header(
                            "content-type",
                            if config.body.is_some() {
                                "text/plain"
                            } else {
                                "application/json"
                            },
                        )
                        .header("webhook-id", &msg_id)
                        .header("webhook-timestamp", timestamp.to_string());
                    if let Some(key) = &config.secret {
                        req = req.header("webhook-signature", sign(key, &msg_id, timestamp, &body));
                    }
                    for (k, v) in &config.headers {
                        req = req.header(k, v);
                    }
                    match req.body(body.clone()).send().await {
                        Ok(resp) if resp.status().is_success() => return,
                        Ok(resp) => tracing::warn!(
                            "webhook {} answered {} (attempt {})",
                            config.url,
                            resp.status(),
                            attempt + 1
                        ),
                        Err(e) => tracing::warn!(
                            "webhook {} failed (attempt {}): {}",
                            config.url,
                            attempt + 1,
                            crate::handler::http::error::describe(&e).1
                        ),
                    }
                    if attempt < config.retries {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            },
            &handle,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example in the Standard Webhooks specification.
        let key = WebhookConfig::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
