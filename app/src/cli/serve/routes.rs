//! The REST API (`/api/feedback…`), `/health`, `/metrics` and the router that puts them
//! together with the web form. Errors are JSON: `{"error": "…", "detail": …}` with a 4xx
//! (or 5xx) status.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use graflow_engine::hitl::{Answer, FeedbackError, FeedbackKind, FeedbackRequest};
use serde_json::{Value, json};

use super::{AppState, BODY_LIMIT, auth, html, metrics};

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// `{"error": error, "detail": detail}` with `status`.
    pub fn new(status: StatusCode, error: &str, detail: impl Into<Value>) -> Self {
        ApiError {
            status,
            body: json!({"error": error, "detail": detail.into()}),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `id` field, when the error names one.
    pub fn id(&self) -> Option<String> {
        self.body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The detail, as text.
    pub fn detail(&self) -> String {
        match self.body.get("detail") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }

    /// Add a field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Some(map) = self.body.as_object_mut() {
            map.insert(key.into(), value.into());
        }
        self
    }
}

impl From<FeedbackError> for ApiError {
    fn from(e: FeedbackError) -> Self {
        let detail = e.to_string();
        match e {
            FeedbackError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not found", detail),
            FeedbackError::NotPending { status, .. } => {
                ApiError::new(StatusCode::CONFLICT, "not pending", detail).with("status", status)
            }
            FeedbackError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the answer does not fit the request",
                detail,
            ),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error", detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// A body that could not be read: too large (413) or broken (400).
pub fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "body too large",
            format!("request bodies are limited to {} KiB", BODY_LIMIT / 1024),
        )
    } else {
        ApiError::new(status, "unreadable body", e.body_text())
    }
}

/// The id of the path, or 404.
fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not found", e.body_text()))
}

/// A JSON body that fits `kind` (shown when an answer is mistyped).
pub fn example_answer(kind: FeedbackKind, options: &[String]) -> Value {
    let first = options.first().cloned().unwrap_or_default();
    match kind {
        FeedbackKind::Approval => json!({"approved": true, "reason": "optional"}),
        FeedbackKind::Text => json!({"text": "…"}),
        FeedbackKind::Selection => json!({"selected": first}),
        FeedbackKind::MultiSelection => json!({"selected_multiple": [first]}),
        FeedbackKind::Custom => json!({"custom_data": {}}),
    }
}

/// `run_id` and `all` of a list query.
pub struct ListQuery {
    /// Only this run's requests.
    pub run_id: Option<String>,
    /// Answered and cancelled ones too.
    pub all: bool,
}

/// Parse `?run_id=…&all=true`.
pub fn list_query(query: Option<&str>) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        run_id: None,
        all: false,
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "run_id" if !v.is_empty() => q.run_id = Some(v.into_owned()),
            "all" => {
                q.all = match v.as_ref() {
                    "true" | "1" | "yes" | "" => true,
                    "false" | "0" | "no" => false,
                    other => return Err(format!("all={other}: expected true or false")),
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

async fn list(State(s): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let q = match list_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "bad query", e).into_response(),
    };
    match s.backend.list(q.run_id.as_deref(), !q.all).await {
        Ok(requests) => ok(json!({"count": requests.len(), "requests": requests})),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn show(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    match s.backend.get(&id).await? {
        Some((request, response)) => Ok(ok(json!({"request": request, "response": response}))),
        None => Err(FeedbackError::NotFound(id).into()),
    }
}

/// The request `id`, which must still wait for an answer.
async fn pending(s: &AppState, id: &str) -> Result<FeedbackRequest, ApiError> {
    match s.backend.get(id).await? {
        None => Err(FeedbackError::NotFound(id.to_string()).into()),
        Some((request, response)) => {
            let status = if response.is_some() {
                "answered".to_string()
            } else {
                html::status_name(request.status)
            };
            if status != "pending" {
                return Err(FeedbackError::NotPending {
                    id: id.to_string(),
                    status,
                }
                .into());
            }
            Ok(request)
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

async fn respond(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    let body = body.map_err(body_error)?;
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "send the answer as JSON with Content-Type: application/json",
        ));
    }
    let request = pending(&s, &id).await?;
    let example = example_answer(request.spec.kind, &request.spec.options);
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid answer", e.to_string())
            .with("expected", example.clone())
    })?;
    let response = s.backend.respond(&id, answer).await.map_err(|e| {
        let invalid = matches!(e, FeedbackError::Invalid(_));
        let err = ApiError::from(e);
        if invalid {
            err.with("expected", example.clone())
        } else {
            err
        }
    })?;
    s.metrics.answered(request.spec.kind, "api");
    s.feed.poke();
    Ok(ok(serde_json::to_value(&response).unwrap_or(Value::Null)))
}

async fn cancel(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id_of(path)?;
    let request = s.backend.cancel(&id).await?;
    s.metrics.cancelled("api");
    s.feed.poke();
    Ok(ok(serde_json::to_value(&request).unwrap_or(Value::Null)))
}

async fn health(State(s): State<Arc<AppState>>) -> Response {
    ok(json!({
        "status": "ok",
        "service": "graflow-serve",
        "version": env!("CARGO_PKG_VERSION"),
        "backend": s.backend.kind(),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
    }))
}

async fn index() -> Response {
    ok(json!({
        "name": "graflow serve",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "GET /api/feedback": "pending requests (?run_id=…, ?all=true for every status)",
            "GET /api/feedback/events": "feedback changes as Server-Sent Events (Last-Event-ID resumes)",
            "GET /api/feedback/{id}": "a request and its answer",
            "POST /api/feedback/{id}/respond": "answer (JSON body: approved/reason, text, selected, selected_multiple, custom_data, responded_by)",
            "POST /api/feedback/{id}/cancel": "withdraw a pending request",
            "GET /api/runs": "recorded runs, newest first (?limit=N)",
            "GET /api/runs/{id}/events": "a run's events as Server-Sent Events, live (Last-Event-ID resumes)",
            "GET /api/openapi.json": "the OpenAPI document of this API",
            "GET /ui/feedback/": "the web form",
            "GET /ui/runs/": "the runs, live",
            "GET /metrics": "Prometheus metrics",
            "GET /health": "liveness",
        },
    }))
}

async fn prometheus(State(s): State<Arc<AppState>>) -> Response {
    let requests = match s.backend.list(None, false).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut body = s.metrics.render(&requests, s.started.elapsed());
    body.push_str(&format!(
        "# HELP graflow_serve_event_streams Server-Sent Event streams open now.\n\
         # TYPE graflow_serve_event_streams gauge\ngraflow_serve_event_streams {}\n",
        s.streams.open()
    ));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not found",
        format!("no such endpoint: {}", uri.path()),
    )
    .into_response()
}

async fn method_not_allowed(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        format!("{} does not take this method", uri.path()),
    )
    .into_response()
}

/// The REST routes, recorded as they are added: the router serves them, and the OpenAPI
/// document must list exactly them (a test walks both).
pub struct Table {
    open: Router<Arc<AppState>>,
    protected: Router<Arc<AppState>>,
    routes: Vec<(&'static str, &'static str)>,
}

impl Table {
    fn new() -> Self {
        Table {
            open: Router::new(),
            protected: Router::new(),
            routes: Vec::new(),
        }
    }

    /// Add `method` (`get`, `post`) on `path`; `open` routes need no token.
    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        route: MethodRouter<Arc<AppState>>,
        open: bool,
    ) -> Self {
        self.routes.push((method, path));
        if open {
            self.open = self.open.route(path, route);
        } else {
            self.protected = self.protected.route(path, route);
        }
        self
    }

    /// `(method, path)` of every REST route, methods in lower case, paths as axum writes them
    /// (`/api/runs/{id}/events`), which is also how OpenAPI writes them.
    #[cfg(test)]
    pub fn routes(&self) -> &[(&'static str, &'static str)] {
        &self.routes
    }
}

/// Every REST route: `/`, `/health`, `/api/openapi.json` open; `/api/…` and `/metrics` behind
/// the token.
pub fn rest() -> Table {
    Table::new()
        .add("get", "/", get(index), true)
        .add("get", "/health", get(health), true)
        .add("get", "/api/openapi.json", get(super::openapi::serve), true)
        .add("get", "/api/feedback", get(list), false)
        .add(
            "get",
            "/api/feedback/events",
            get(super::feed::events),
            false,
        )
        .add("get", "/api/feedback/{id}", get(show), false)
        .add("post", "/api/feedback/{id}/respond", post(respond), false)
        .add("post", "/api/feedback/{id}/cancel", post(cancel), false)
        .add("get", "/api/runs", get(super::runs::list), false)
        .add(
            "get",
            "/api/runs/{id}/events",
            get(super::runs::events),
            false,
        )
        .add("get", "/metrics", get(prometheus), false)
}

/// The whole server: the REST routes and the web pages (behind the token but for `/`,
/// `/health` and the OpenAPI document).
pub fn router(state: Arc<AppState>) -> Router {
    let table = rest();
    let protected = table
        .protected
        .merge(html::routes())
        .route_layer(from_fn_with_state(state.clone(), auth::require));
    table
        .open
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn(html::security_headers))
        .layer(from_fn_with_state(state.clone(), super::hosts::check))
        .with_state(state)
}
