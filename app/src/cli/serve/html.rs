//! The web form: server-rendered HTML, no external assets. `/ui/feedback/` lists requests
//! (pending first), `/ui/feedback/{id}` shows one with a form fitting its kind, a POST there
//! answers it, `/ui/feedback/{id}/cancel` withdraws it; `/ui/runs/` lists the recorded runs and
//! `/ui/runs/{id}` shows one run's events. Everything works without JavaScript; a few lines of
//! inline script (allowed by their hash in the Content-Security-Policy, nothing else is) make
//! the pages live: they follow `/ui/feedback/events` and `/ui/runs/{id}/events`, the same
//! Server-Sent Events as `/api/…/events`, under /ui so the page's cookie authenticates them.
//! Everything shown is escaped: prompts, options, answers and events are user text.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use graflow_engine::hitl::{
    Answer, FeedbackError, FeedbackKind, FeedbackRequest, FeedbackResponse, FeedbackStatus,
};

use super::AppState;
use super::routes::{body_error, list_query};
use super::runs;
use crate::history;
use crate::studio::runtime::clipboard::base64;

/// `s` with `& < > " '` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `pending`, `answered` or `cancelled`.
pub fn status_name(s: FeedbackStatus) -> String {
    match s {
        FeedbackStatus::Pending => "pending",
        FeedbackStatus::Answered => "answered",
        FeedbackStatus::Cancelled => "cancelled",
    }
    .to_string()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}\
a{color:#0b5cad}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}\
.prompt{white-space:pre-wrap;background:#f6f6f6;border-left:4px solid #0b5cad;padding:.8rem;font-size:1.1rem}\
.s-pending{color:#b35c00;font-weight:bold}.s-answered{color:#1a7f37}.s-cancelled{color:#777}\
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6rem}.ok{background:#e6f6ea;border:1px solid #9ccfa8;padding:.6rem}\
dt{font-weight:bold;float:left;clear:left;width:9rem}dd{margin-left:10rem;margin-bottom:.3rem;word-break:break-all}\
textarea{width:100%;min-height:6rem;font:inherit}fieldset{margin:1rem 0}button{font-size:1rem;padding:.4rem 1.2rem}\
pre{background:#f6f6f6;padding:.6rem;overflow:auto}";

/// A whole page.
fn page(title: &str, body: &str) -> String {
    live_page(title, body, "", None)
}

/// A whole page; `attrs` go on `<body>` (the live script's settings) and `script` (one of the
/// scripts below) follows the content.
fn live_page(title: &str, body: &str, attrs: &str, script: Option<&str>) -> String {
    let script = script
        .map(|js| format!("<script>{js}</script>\n"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · graflow</title><style>{STYLE}</style></head>\n<body{attrs}>\n\
         <nav><a href=\"/ui/feedback/\">All feedback requests</a> · <a href=\"/ui/runs/\">Runs</a></nav>\n{body}\n{script}</body></html>\n",
        escape(title)
    )
}

/// Reloads a feedback page when a request changes (`data-live`: the stream; `data-request`:
/// only this request matters). It loads the page's address with a GET, so a page shown after
/// a form POST is not posted again.
const FEEDBACK_JS: &str = "(function(){var b=document.body,u=b.getAttribute('data-live'),want=b.getAttribute('data-request');\
if(!u||!window.EventSource)return;var es=new EventSource(u);\
function on(e){var d={};try{d=JSON.parse(e.data);}catch(x){}\
if(e.type==='reset'||!want||d.id===want){es.close();location.replace(location.pathname+location.search);}}\
['requested','answered','cancelled','expired','reset'].forEach(function(n){es.addEventListener(n,on);});})();";

/// Appends a run's events to its table as they come (`data-live`: the stream); an `error`
/// message with data (the run's process died) ends it.
const RUN_JS: &str = "(function(){var b=document.body,u=b.getAttribute('data-live');\
if(!u||!window.EventSource)return;var t=document.getElementById('events'),st=document.getElementById('status'),es=new EventSource(u);\
function on(e){var d={};try{d=JSON.parse(e.data);}catch(x){return;}\
var rest={};Object.keys(d).forEach(function(k){if(k!=='event'&&k!=='run_id'&&k!=='ts')rest[k]=d[k];});\
var s=JSON.stringify(rest);if(s.length>300)s=s.slice(0,300)+'…';\
var tr=document.createElement('tr');[e.lastEventId,d.ts||'',e.type,s].forEach(function(v){var td=document.createElement('td');td.textContent=v;tr.appendChild(td);});\
t.appendChild(tr);if(e.type==='run_finished'&&!d.sub_run){st.textContent=d.status||'finished';es.close();}}\
['run_started','task_started','task_waiting','task_log','task_succeeded','task_failed','group_started','group_finished','graph_changed','checkpoint_saved','feedback_requested','feedback_answered','events_dropped','run_finished','message'].forEach(function(n){es.addEventListener(n,on);});\
es.addEventListener('error',function(e){if(e.data){st.textContent='stale (its process died)';es.close();}});})();";

/// The Content-Security-Policy: nothing from elsewhere, and no script but the two above.
fn csp() -> &'static HeaderValue {
    static CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        let hash = |js: &str| {
            use sha2::Digest;
            format!("'sha256-{}'", base64(&sha2::Sha256::digest(js.as_bytes())))
        };
        let value = format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src {} {}; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'",
            hash(FEEDBACK_JS),
            hash(RUN_JS)
        );
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    });
    &CSP
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// An error page.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    html(
        status,
        page(
            title,
            &format!(
                "<h1>{}</h1>\n<p class=\"error\">{}</p>",
                escape(title),
                escape(detail)
            ),
        ),
    )
}

/// Middleware adding headers that keep pages self-contained: no scripts but the pages' own,
/// no framing, no referrer (a `?token=` never leaks through links).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp().clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn feedback_error_page(e: FeedbackError) -> Response {
    let status = match e {
        FeedbackError::NotFound(_) => StatusCode::NOT_FOUND,
        FeedbackError::NotPending { .. } => StatusCode::CONFLICT,
        FeedbackError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not pending",
        StatusCode::UNPROCESSABLE_ENTITY => "Answer does not fit",
        _ => "Storage error",
    };
    error_page(status, title, &e.to_string())
}

fn status_badge(status: &str) -> String {
    format!("<span class=\"s-{0}\">{0}</span>", escape(status))
}

fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

async fn root() -> Redirect {
    Redirect::to("/ui/feedback/")
}

async fn list_page(State(s): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let q = match list_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad query", &e),
    };
    let mut requests = match s.backend.list(q.run_id.as_deref(), false).await {
        Ok(r) => r,
        Err(e) => return feedback_error_page(e),
    };
    // Pending first, then newest first.
    requests.sort_by(|a, b| {
        (b.status == FeedbackStatus::Pending)
            .cmp(&(a.status == FeedbackStatus::Pending))
            .then_with(|| b.created_at.cmp(&a.created_at))
    });
    let pending = requests
        .iter()
        .filter(|r| r.status == FeedbackStatus::Pending)
        .count();
    let mut body = format!(
        "<h1>Feedback requests</h1>\n<p>{pending} pending, {} in all{}.</p>\n",
        requests.len(),
        q.run_id
            .as_deref()
            .map(|r| format!(" for run <code>{}</code>", escape(r)))
            .unwrap_or_default()
    );
    if requests.is_empty() {
        body.push_str("<p>No requests yet. They appear here when a running task asks.</p>");
    } else {
        body.push_str(
            "<table>\n<tr><th>Status</th><th>Prompt</th><th>Kind</th><th>Workflow / task</th><th>Asked</th></tr>\n",
        );
        for r in &requests {
            body.push_str(&format!(
                "<tr><td>{}</td><td><a href=\"/ui/feedback/{}\">{}</a></td><td>{}</td><td>{} / {}</td><td>{}</td></tr>\n",
                status_badge(&status_name(r.status)),
                escape(&r.id),
                escape(&shorten(&r.spec.prompt, 120)),
                r.spec.kind.as_str(),
                escape(&r.workflow),
                escape(&r.task),
                escape(&r.created_at),
            ));
        }
        body.push_str("</table>");
    }
    html(
        StatusCode::OK,
        live_page(
            "Feedback requests",
            &body,
            " data-live=\"/ui/feedback/events\"",
            Some(FEEDBACK_JS),
        ),
    )
}

/// Values posted by the form, kept to fill it again after an error.
#[derive(Debug, Default)]
struct Draft {
    approved: Option<String>,
    reason: String,
    text: String,
    selected: Option<String>,
    selected_multiple: Vec<String>,
    custom_data: String,
    responded_by: String,
}

fn checked(on: bool) -> &'static str {
    if on { " checked" } else { "" }
}

fn form(r: &FeedbackRequest, d: &Draft) -> String {
    let id = escape(&r.id);
    let mut f = format!("<form method=\"post\" action=\"/ui/feedback/{id}\">\n<fieldset>\n");
    match r.spec.kind {
        FeedbackKind::Approval => {
            let a = d.approved.as_deref();
            f.push_str(&format!(
                "<legend>Your decision</legend>\n\
                 <label><input type=\"radio\" name=\"approved\" value=\"true\"{}> Approve</label>\n\
                 <label><input type=\"radio\" name=\"approved\" value=\"false\"{}> Reject</label>\n\
                 <p><label>Reason (optional)<br><textarea name=\"reason\">{}</textarea></label></p>\n",
                checked(a == Some("true")),
                checked(a == Some("false")),
                escape(&d.reason)
            ));
        }
        FeedbackKind::Text => f.push_str(&format!(
            "<legend>Your answer</legend>\n<textarea name=\"text\" required>{}</textarea>\n",
            escape(&d.text)
        )),
        FeedbackKind::Selection => {
            f.push_str("<legend>Pick one</legend>\n");
            for o in &r.spec.options {
                f.push_str(&format!(
                    "<label><input type=\"radio\" name=\"selected\" value=\"{0}\"{1}> {0}</label><br>\n",
                    escape(o),
                    checked(d.selected.as_deref() == Some(o))
                ));
            }
        }
        FeedbackKind::MultiSelection => {
            f.push_str("<legend>Pick any</legend>\n");
            for o in &r.spec.options {
                f.push_str(&format!(
                    "<label><input type=\"checkbox\" name=\"selected_multiple\" value=\"{0}\"{1}> {0}</label><br>\n",
                    escape(o),
                    checked(d.selected_multiple.contains(o))
                ));
            }
        }
        FeedbackKind::Custom => f.push_str(&format!(
            "<legend>Your answer (JSON)</legend>\n<textarea name=\"custom_data\" required>{}</textarea>\n",
            escape(&d.custom_data)
        )),
    }
    f.push_str(&format!(
        "</fieldset>\n<p><label>Your name (optional) <input name=\"responded_by\" value=\"{}\"></label></p>\n\
         <p><button type=\"submit\">Send answer</button></p>\n</form>\n\
         <form method=\"post\" action=\"/ui/feedback/{id}/cancel\"><p><button type=\"submit\">Cancel this request</button> \
         (the waiting task fails)</p></form>\n",
        escape(&d.responded_by)
    ));
    f
}

fn answer_view(resp: &FeedbackResponse) -> String {
    let shown = match (resp.kind, resp.answer.approved, &resp.answer.text) {
        (FeedbackKind::Approval, Some(true), _) => "<p class=\"ok\">Approved</p>".to_string(),
        (FeedbackKind::Approval, _, _) => "<p class=\"error\">Rejected</p>".to_string(),
        (FeedbackKind::Text, _, Some(text)) => {
            format!("<div class=\"prompt\">{}</div>", escape(text))
        }
        _ => format!(
            "<pre>{}</pre>",
            escape(&serde_json::to_string_pretty(&resp.value()).unwrap_or_default())
        ),
    };
    let mut s = format!("<h2>Answer</h2>\n{shown}\n<dl>");
    if let Some(reason) = &resp.answer.reason {
        s.push_str(&format!("<dt>Reason</dt><dd>{}</dd>", escape(reason)));
    }
    if let Some(by) = &resp.answer.responded_by {
        s.push_str(&format!("<dt>By</dt><dd>{}</dd>", escape(by)));
    }
    s.push_str(&format!(
        "<dt>At</dt><dd>{}</dd></dl>\n",
        escape(&resp.responded_at)
    ));
    s
}

/// The page of one request; `notice` is shown above it (`ok` or `error` class).
fn request_page(
    r: &FeedbackRequest,
    resp: Option<&FeedbackResponse>,
    notice: Option<(&str, &str)>,
    draft: &Draft,
) -> String {
    let status = if resp.is_some() {
        "answered".to_string()
    } else {
        status_name(r.status)
    };
    let mut b = String::from("<h1>Feedback request</h1>\n");
    if let Some((class, text)) = notice {
        b.push_str(&format!("<p class=\"{class}\">{}</p>\n", escape(text)));
    }
    b.push_str(&format!(
        "<div class=\"prompt\">{}</div>\n<dl>\n",
        escape(&r.spec.prompt)
    ));
    let mut row = |k: &str, v: &str| b.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>\n"));
    row("Status", &status_badge(&status));
    row("Kind", r.spec.kind.as_str());
    if !r.spec.options.is_empty() {
        row("Options", &escape(&r.spec.options.join(", ")));
    }
    row("Workflow", &escape(&r.workflow));
    row("Task", &escape(&r.task));
    row("Run", &escape(&r.run_id));
    row("Id", &escape(&r.id));
    row("Asked", &escape(&r.created_at));
    if let Some(t) = r.spec.timeout_secs {
        row("Waits", &format!("{t} s"));
    }
    if let Some(k) = &r.spec.channel_key {
        row("Channel key", &format!("<code>{}</code>", escape(k)));
    }
    if let Some(t) = &r.timed_out_at {
        row("Paused at", &escape(t));
    }
    if let Some(c) = &r.checkpoint {
        row(
            "Checkpoint",
            &format!(
                "<code>{}</code><br>the run paused; after answering continue it with <code>graflow resume {}</code>",
                escape(c),
                escape(c)
            ),
        );
    }
    b.push_str("</dl>\n");
    if !r.spec.metadata.is_null() {
        let meta = serde_json::to_string_pretty(&r.spec.metadata).unwrap_or_default();
        b.push_str(&format!("<h2>Details</h2>\n<pre>{}</pre>\n", escape(&meta)));
    }
    match (resp, r.status) {
        (Some(resp), _) => b.push_str(&answer_view(resp)),
        (None, FeedbackStatus::Cancelled) => {
            b.push_str("<p>This request was cancelled; it takes no answer.</p>\n")
        }
        (None, _) => b.push_str(&form(r, draft)),
    }
    live_page(
        &format!("Feedback: {}", shorten(&r.spec.prompt, 60)),
        &b,
        &format!(
            " data-live=\"/ui/feedback/events\" data-request=\"{}\"",
            escape(&r.id)
        ),
        Some(FEEDBACK_JS),
    )
}

async fn show_page(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "no such request");
    };
    match s.backend.get(&id).await {
        Ok(Some((r, resp))) => html(
            StatusCode::OK,
            request_page(&r, resp.as_ref(), None, &Draft::default()),
        ),
        Ok(None) => feedback_error_page(FeedbackError::NotFound(id)),
        Err(e) => feedback_error_page(e),
    }
}

/// Read the posted form into a draft; unknown fields are refused.
fn read_form(body: &[u8]) -> Result<Draft, String> {
    let mut d = Draft::default();
    for (k, v) in form_urlencoded::parse(body) {
        let v = v.into_owned();
        match k.as_ref() {
            "approved" => d.approved = Some(v),
            "reason" => d.reason = v,
            "text" => d.text = v,
            "selected" => d.selected = Some(v),
            "selected_multiple" => d.selected_multiple.push(v),
            "custom_data" => d.custom_data = v,
            "responded_by" => d.responded_by = v,
            other => return Err(format!("unknown form field '{other}'")),
        }
    }
    Ok(d)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_string())
}

/// The answer a draft gives to a request of `kind`.
fn answer_of(kind: FeedbackKind, d: &Draft) -> Result<Answer, String> {
    let approved = match d.approved.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => return Err(format!("approved must be true or false, not '{other}'")),
    };
    let custom_data = match non_empty(&d.custom_data) {
        None => None,
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| format!("the answer is not valid JSON: {e}"))?,
        ),
    };
    let selected_multiple =
        if kind == FeedbackKind::MultiSelection || !d.selected_multiple.is_empty() {
            Some(d.selected_multiple.clone())
        } else {
            None
        };
    Ok(Answer {
        approved,
        reason: non_empty(&d.reason),
        text: non_empty(&d.text),
        selected: d.selected.clone(),
        selected_multiple,
        custom_data,
        responded_by: non_empty(&d.responded_by),
    })
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn answer_post(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "no such request");
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let e = body_error(e);
            let status = e.status();
            return error_page(status, "Cannot read the form", &e.detail());
        }
    };
    if !is_form(&headers) {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Not a form",
            "post the form as application/x-www-form-urlencoded",
        );
    }
    let (request, existing) = match s.backend.get(&id).await {
        Ok(Some(found)) => found,
        Ok(None) => return feedback_error_page(FeedbackError::NotFound(id)),
        Err(e) => return feedback_error_page(e),
    };
    let draft = match read_form(&body) {
        Ok(d) => d,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad form", &e),
    };
    if existing.is_some() || request.status != FeedbackStatus::Pending {
        let status = if existing.is_some() {
            "answered".to_string()
        } else {
            status_name(request.status)
        };
        let text = format!("This request is {status}; your answer was not recorded.");
        return html(
            StatusCode::CONFLICT,
            request_page(
                &request,
                existing.as_ref(),
                Some(("error", &text)),
                &Draft::default(),
            ),
        );
    }
    let refuse = |status: StatusCode, message: &str| {
        html(
            status,
            request_page(&request, None, Some(("error", message)), &draft),
        )
    };
    let answer = match answer_of(request.spec.kind, &draft) {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e),
    };
    match s.backend.respond(&id, answer).await {
        Ok(resp) => {
            s.metrics.answered(request.spec.kind, "ui");
            s.feed.poke();
            let mut done = request.clone();
            done.status = FeedbackStatus::Answered;
            let notice = if request.checkpoint.is_some() {
                "Answer recorded. The run paused waiting for it: continue it with the graflow resume command below."
            } else {
                "Answer recorded. The waiting task goes on."
            };
            html(
                StatusCode::OK,
                request_page(&done, Some(&resp), Some(("ok", notice)), &Draft::default()),
            )
        }
        Err(FeedbackError::Invalid(e)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, &e),
        Err(e @ FeedbackError::NotPending { .. }) => match s.backend.get(&id).await {
            Ok(Some((r, resp))) => html(
                StatusCode::CONFLICT,
                request_page(
                    &r,
                    resp.as_ref(),
                    Some(("error", &e.to_string())),
                    &Draft::default(),
                ),
            ),
            _ => feedback_error_page(e),
        },
        Err(e) => feedback_error_page(e),
    }
}

async fn cancel_post(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "no such request");
    };
    match s.backend.cancel(&id).await {
        Ok(r) => {
            s.metrics.cancelled("ui");
            s.feed.poke();
            html(
                StatusCode::OK,
                request_page(
                    &r,
                    None,
                    Some(("ok", "Request cancelled.")),
                    &Draft::default(),
                ),
            )
        }
        Err(e) => feedback_error_page(e),
    }
}

/// The web form's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(root))
        .route("/ui/", get(root))
        .route("/ui/feedback", get(root))
        .route("/ui/feedback/", get(list_page))
        .route("/ui/feedback/{id}", get(show_page).post(answer_post))
        .route("/ui/feedback/{id}/cancel", post(cancel_post))
        .route("/ui/feedback/events", get(super::feed::events))
        .route("/ui/runs", get(runs_root))
        .route("/ui/runs/", get(runs_page))
        .route("/ui/runs/{id}", get(run_page))
        .route("/ui/runs/{id}/events", get(runs::events))
}

async fn runs_root() -> Redirect {
    Redirect::to("/ui/runs/")
}

/// Runs listed on `/ui/runs/`.
const RUNS_SHOWN: usize = 200;
/// Events shown on a run's page before its live part (the newest ones).
const EVENTS_SHOWN: usize = 2000;

async fn runs_page(State(s): State<Arc<AppState>>) -> Response {
    let mut records = runs::records(&s).await;
    let total = records.len();
    records.truncate(RUNS_SHOWN);
    let dir = s.state_dir.clone();
    let records: Vec<(history::RunRecord, String)> = tokio::task::spawn_blocking(move || {
        records
            .into_iter()
            .map(|r| {
                let status = history::status_word(&r, history::liveness(&dir, &r));
                (r, status)
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    let mut body = format!(
        "<h1>Runs</h1>\n<p>{total} recorded{}.</p>\n",
        if total > RUNS_SHOWN {
            format!(", the newest {RUNS_SHOWN} shown")
        } else {
            String::new()
        }
    );
    if records.is_empty() {
        body.push_str("<p>No runs yet. They appear here when <code>graflow run</code> or the studio runs a workflow with this state folder.</p>");
    } else {
        body.push_str(
            "<table>\n<tr><th>Run</th><th>Workflow</th><th>Status</th><th>Started</th><th>Ended</th></tr>\n",
        );
        for (r, status) in &records {
            body.push_str(&format!(
                "<tr><td><a href=\"/ui/runs/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>\n",
                escape(&r.key),
                escape(&r.workflow),
                escape(status),
                escape(&r.started),
                escape(r.finished.as_deref().unwrap_or("")),
            ));
        }
        body.push_str("</table>");
    }
    html(StatusCode::OK, page("Runs", &body))
}

/// The fields of an event other than `event`, `run_id` and `ts`, as short JSON.
fn event_summary(v: &serde_json::Value) -> String {
    let mut rest = v.as_object().cloned().unwrap_or_default();
    for k in ["event", "run_id", "ts"] {
        rest.remove(k);
    }
    let text = serde_json::Value::Object(rest).to_string();
    shorten(&text, 300)
}

async fn run_page(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match runs::find(&s, path).await {
        Ok(runs::Found::Local(id)) => id,
        Ok(runs::Found::Fleet(id)) => {
            // A fleet run: its events are in Redis; the page shows them as they are read.
            let b = format!(
                "<h1>Run <code>{0}</code></h1>\n<p>A run of the fleet.</p>\n<dl>\n\
                 <dt>Status</dt><dd id=\"status\">…</dd>\n</dl>\n\
                 <table id=\"events\">\n<tr><th>#</th><th>Time</th><th>Event</th><th>Details</th></tr>\n</table>\n\
                 <noscript><p>This page needs JavaScript to show a fleet run's events; \
                 <code>/api/runs/{0}/events</code> has them.</p></noscript>\n",
                escape(&id)
            );
            return html(
                StatusCode::OK,
                live_page(
                    &format!("Run {id}"),
                    &b,
                    &format!(" data-live=\"/ui/runs/{}/events\"", escape(&id)),
                    Some(RUN_JS),
                ),
            );
        }
        Err(e) => {
            let title = if e.status() == StatusCode::NOT_FOUND {
                "Not found"
            } else {
                "Bad run id"
            };
            return error_page(e.status(), title, &e.detail());
        }
    };
    let dir = s.state_dir.clone();
    let key = id.clone();
    let (record, events, state) = tokio::task::spawn_blocking(move || {
        let record = history::list(&dir).into_iter().find(|r| r.key == key);
        let state = record.as_ref().map(|r| history::liveness(&dir, r));
        (record, history::events(&dir, &key), state)
    })
    .await
    .unwrap_or_default();
    let status = match (&record, state) {
        (Some(r), Some(state)) => history::status_word(r, state),
        _ => "running".to_string(),
    };
    // Nothing more will come: the run finished, or its process died before it did.
    let finished = events.iter().any(graflow_engine::events::ends_its_run)
        || state == Some(history::Liveness::Stale);
    let mut b = format!("<h1>Run <code>{}</code></h1>\n<dl>\n", escape(&id));
    if let Some(r) = &record {
        b.push_str(&format!(
            "<dt>Workflow</dt><dd>{}</dd>\n<dt>Started</dt><dd>{}</dd>\n",
            escape(&r.workflow),
            escape(&r.started)
        ));
        if let Some(e) = &r.error {
            b.push_str(&format!("<dt>Error</dt><dd>{}</dd>\n", escape(e)));
        }
    }
    b.push_str(&format!(
        "<dt>Status</dt><dd id=\"status\">{}</dd>\n</dl>\n",
        escape(&status)
    ));
    let skipped = events.len().saturating_sub(EVENTS_SHOWN);
    if skipped > 0 {
        b.push_str(&format!(
            "<p>The first {skipped} events are not shown; <code>/api/runs/{}/events</code> has them all.</p>\n",
            escape(&id)
        ));
    }
    b.push_str(
        "<table id=\"events\">\n<tr><th>#</th><th>Time</th><th>Event</th><th>Details</th></tr>\n",
    );
    for (i, e) in events.iter().enumerate().skip(skipped) {
        b.push_str(&format!(
            "<tr><td>{i}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(e["ts"].as_str().unwrap_or_default()),
            escape(e["event"].as_str().unwrap_or_default()),
            escape(&event_summary(e)),
        ));
    }
    b.push_str("</table>\n");
    let title = format!("Run {id}");
    if finished {
        return html(StatusCode::OK, page(&title, &b));
    }
    // Live: the events after those shown (the lines graflow writes all parse, so the count
    // shown is the index the stream resumes after).
    let from = match events.len() {
        0 => String::new(),
        n => format!("?from={}", n - 1),
    };
    b.push_str("<noscript><p>Reload the page to see new events.</p></noscript>\n");
    html(
        StatusCode::OK,
        live_page(
            &title,
            &b,
            &format!(" data-live=\"/ui/runs/{}/events{from}\"", escape(&id)),
            Some(RUN_JS),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn base64_and_the_script_hashes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        let csp = csp().to_str().unwrap();
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-eval") && csp.contains("connect-src 'self'"));
    }

    #[test]
    fn forms_become_answers() {
        let d = read_form(b"approved=false&reason=too+risky&responded_by=ada").unwrap();
        let a = answer_of(FeedbackKind::Approval, &d).unwrap();
        assert_eq!(a.approved, Some(false));
        assert_eq!(a.reason.as_deref(), Some("too risky"));
        assert_eq!(a.responded_by.as_deref(), Some("ada"));
        assert_eq!(a.selected_multiple, None);

        let d = read_form(b"selected_multiple=a&selected_multiple=c").unwrap();
        let a = answer_of(FeedbackKind::MultiSelection, &d).unwrap();
        assert_eq!(a.selected_multiple, Some(vec!["a".into(), "c".into()]));
        let none = answer_of(FeedbackKind::MultiSelection, &Draft::default()).unwrap();
        assert_eq!(none.selected_multiple, Some(vec![]));

        let d = read_form(b"custom_data=%7B%22k%22%3A1%7D").unwrap();
        let a = answer_of(FeedbackKind::Custom, &d).unwrap();
        assert_eq!(a.custom_data, Some(serde_json::json!({"k": 1})));
        let d = read_form(b"custom_data=%7Bnope").unwrap();
        assert!(
            answer_of(FeedbackKind::Custom, &d)
                .unwrap_err()
                .contains("not valid JSON")
        );

        assert!(read_form(b"aproved=true").unwrap_err().contains("aproved"));
        let d = read_form(b"approved=maybe").unwrap();
        assert!(answer_of(FeedbackKind::Approval, &d).is_err());
    }

    proptest::proptest! {
        /// Any form body, for any kind: an answer or a message, never a panic; what
        /// the form gives is what the answer holds.
        #[test]
        fn any_form_body_reads_or_is_refused(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(d) = read_form(&body) {
                for kind in [
                    FeedbackKind::Approval,
                    FeedbackKind::Text,
                    FeedbackKind::Selection,
                    FeedbackKind::MultiSelection,
                    FeedbackKind::Custom,
                ] {
                    let _ = answer_of(kind, &d);
                }
            }
        }

        #[test]
        fn form_fields_survive_encoding(text in "\\PC{0,40}", deep in 0usize..400) {
            let enc: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
            let d = read_form(format!("text={enc}").as_bytes()).unwrap();
            let a = answer_of(FeedbackKind::Text, &d).unwrap();
            if !text.trim().is_empty() {
                proptest::prop_assert_eq!(a.text.as_deref(), Some(text.as_str()));
            }
            // Custom JSON nested past the parser's limit is a message, not a crash.
            let json = format!("{}1{}", "[".repeat(deep), "]".repeat(deep));
            let enc: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
            let d = read_form(format!("custom_data={enc}").as_bytes()).unwrap();
            let parsed = answer_of(FeedbackKind::Custom, &d);
            proptest::prop_assert_eq!(parsed.is_ok(), deep < 128);
        }
    }
}
