//! [`HttpHandler`]: one request per execution, and the client shared by `Http` tasks.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{HttpSpec, error};
use crate::context::TaskContext;
use crate::handler::{HandlerEnv, SpecError, TaskError, TaskHandler, TaskResult};
use crate::template::Template;

/// The HTTP client shared by every `Http` task.
#[derive(Clone, Default)]
pub struct HttpRuntime {
    client: Arc<OnceLock<reqwest::Client>>,
}

impl HttpRuntime {
    fn client(&self) -> reqwest::Client {
        self.client.get_or_init(crate::net::default_client).clone()
    }
}

/// Runs `Http` tasks.
pub struct HttpHandler {
    method: reqwest::Method,
    url: Template,
    headers: Vec<(String, String)>,
    body: Option<Template>,
    timeout: Duration,
    runtime: HttpRuntime,
    /// The task's own client, when it trusts an extra `ca_file`.
    client: Option<reqwest::Client>,
}

impl HttpHandler {
    /// Check `spec` and build the handler; errors name the bad field.
    pub fn new(spec: HttpSpec, env: &HandlerEnv) -> Result<Self, SpecError> {
        let method = reqwest::Method::from_bytes(spec.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                SpecError::field("method", format!("'{}' is not an HTTP method", spec.method))
            })?;
        let url = Template::parse(&spec.url).map_err(|e| SpecError::field("url", e.to_string()))?;
        if !spec.url.starts_with("http://") && !spec.url.starts_with("https://") {
            return Err(SpecError::field(
                "url",
                format!("'{}' must start with http:// or https://", spec.url),
            ));
        }
        let body = spec
            .body
            .as_deref()
            .map(Template::parse)
            .transpose()
            .map_err(|e| SpecError::field("body", e.to_string()))?;
        let timeout = match &spec.timeout {
            None => Duration::from_secs(30),
            Some(t) => crate::limits::parse_duration(t, "timeout")?,
        };
        for (name, value) in &spec.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                SpecError::field("headers", format!("'{name}' is not a header name"))
            })?;
            reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                SpecError::field(
                    "headers",
                    format!("the value of '{name}' is not a valid header value"),
                )
            })?;
        }
        let client = spec
            .ca_file
            .as_deref()
            .map(|f| crate::net::http_client(Some(&env.resolve(f))))
            .transpose()?;
        Ok(HttpHandler {
            method,
            url,
            headers: spec.headers.into_iter().collect(),
            body,
            timeout,
            runtime: env.runtimes.http.clone(),
            client,
        })
    }
}

fn render(t: &Template, values: &BTreeMap<String, Value>) -> Result<String, TaskError> {
    t.render(|n| values.get(n).cloned()).map_err(TaskError::msg)
}

impl TaskHandler for HttpHandler {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let client = self.client.clone().unwrap_or_else(|| self.runtime.client());
        let method = self.method.clone();
        let url = self.url.clone();
        let body = self.body.clone();
        let headers = self.headers.clone();
        let timeout = self.timeout;
        async move {
            let mut names: Vec<String> = url.names().map(str::to_string).collect();
            if let Some(b) = &body {
                names.extend(b.names().map(str::to_string));
            }
            let values = crate::template::context_values(&ctx, names).await?;
            let url = render(&url, &values)?;
            let mut request = client.request(method.clone(), &url).timeout(timeout);
            for (k, v) in &headers {
                request = request.header(k, v);
            }
            if let Some(b) = &body {
                request = request.body(render(b, &values)?);
            }
            let started = Instant::now();
            let response = request.send().await.map_err(|e| {
                let (cause, why) = error::describe(&e);
                if cause == error::Cause::Timeout {
                    TaskError::msg(format!(
                        "{method} {url}: timed out: no answer within {}",
                        humantime::format_duration(timeout)
                    ))
                } else {
                    TaskError::msg(format!("{method} {url}: {why}"))
                }
            })?;
            let status = response.status();
            let retry_after = matches!(status.as_u16(), 429 | 503)
                .then(|| response.headers().get(reqwest::header::RETRY_AFTER))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::pool::parse_retry_after(v, std::time::SystemTime::now()));
            let is_json = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let text = read_body(response)
                .await
                .map_err(|e| TaskError::msg(format!("{method} {url}: {e}")))?;
            ctx.log(format!(
                "{method} {url} -> {} ({} ms)",
                status.as_u16(),
                started.elapsed().as_millis()
            ));
            if !status.is_success() {
                let excerpt: String = text.chars().take(300).collect();
                let message = format!("{method} {url} answered {status}: {excerpt}");
                if let Some(delay) = retry_after {
                    return Err(TaskError::new(crate::pool::RetryAfter { delay, message }));
                }
                return Err(TaskError::msg(message));
            }
            let parsed = serde_json::from_str::<Value>(&text);
            Ok(match parsed {
                Ok(v) if is_json || !text.trim().is_empty() => v,
                _ => Value::String(text),
            })
        }
        .boxed()
    }
}

/// The answer's body as text, at most [`MAX_HTTP_BODY_BYTES`](crate::limits::MAX_HTTP_BODY_BYTES).
async fn read_body(mut response: reqwest::Response) -> Result<String, String> {
    let limit = crate::limits::MAX_HTTP_BODY_BYTES;
    let too_large = || {
        format!(
            "the answer's body is larger than {} MiB",
            limit / (1024 * 1024)
        )
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", error::describe(&e).1))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
