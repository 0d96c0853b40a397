//! Feedback requests in Redis ([`RedisFeedback`]), so an answer given on any machine — a
//! studio, `graflow feedback`, `graflow serve` — wakes the task waiting for it wherever it
//! runs. Each request is a hash `P:{f:ID}:rec` (the request, its status, its answer);
//! answering and cancelling are one script each time (`fb_settle.lua`: the first wins) that
//! also adds an entry to the request's wake stream `P:{f:ID}:wake`; a waiter blocks on that
//! stream with `XREAD BLOCK` on a connection of its own (no polling). `P:feedback` indexes
//! request ids by creation time for listings.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::Value as Reply;

use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::Keys;
use crate::distributed::scripts;
use crate::hitl::backend::valid_id;
use crate::hitl::{
    Answer, FeedbackBackend, FeedbackError, FeedbackRequest, FeedbackResponse, FeedbackStatus,
};

/// Requests the index keeps (the newest).
const INDEX_CAP: i64 = 10_000;

/// Feedback requests and answers in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisFeedback {
    link: Link,
    keys: Keys,
    retention: Duration,
}

fn store(link: &Link, e: impl std::fmt::Display) -> FeedbackError {
    FeedbackError::Backend(format!("Redis at {}: {e}", link.address()))
}

fn now() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

fn status_of(text: &str) -> FeedbackStatus {
    match text {
        "answered" => FeedbackStatus::Answered,
        "cancelled" => FeedbackStatus::Cancelled,
        _ => FeedbackStatus::Pending,
    }
}

impl RedisFeedback {
    /// Requests under `keys`, kept for `retention` after their last change.
    pub fn new(link: Link, keys: Keys, retention: Duration) -> Self {
        RedisFeedback {
            link,
            keys,
            retention: retention.max(Duration::from_secs(60)),
        }
    }

    fn ttl(&self) -> u64 {
        self.retention.as_secs()
    }

    /// One record: request (with its status and bookkeeping) and answer.
    async fn record(
        &self,
        id: &str,
    ) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let key = self.keys.feedback(id).record();
        let fields: HashMap<String, String> = retry(
            &self.link,
            "reading a feedback request",
            Some(Duration::from_secs(30)),
            |mut c| {
                let key = key.clone();
                async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        parse_record(id, &fields)
    }

    async fn settle(
        &self,
        id: &str,
        status: &str,
        answer: &str,
    ) -> Result<Result<(), String>, FeedbackError> {
        let keys = self.keys.feedback(id);
        let (record, wake) = (keys.record(), keys.wake());
        let reply: Vec<String> = retry(
            &self.link,
            "answering a feedback request",
            Some(Duration::from_secs(30)),
            |mut c| {
                let mut call = scripts::FB_SETTLE.prepare_invoke();
                call.key(&record)
                    .key(&wake)
                    .arg(status)
                    .arg(answer)
                    .arg(self.ttl());
                async move { call.invoke_async(&mut c).await }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => Ok(()),
            Some("missing") => Err(String::new()),
            _ => Err(reply.get(1).cloned().unwrap_or_else(|| "settled".into())),
        })
    }
}

/// Read a record's fields into a request (its status and bookkeeping folded in) and answer.
fn parse_record(
    id: &str,
    fields: &HashMap<String, String>,
) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError> {
    let Some(req) = fields.get("req") else {
        return Ok(None);
    };
    let mut request: FeedbackRequest = serde_json::from_str(req).map_err(|e| {
        FeedbackError::Backend(format!(
            "feedback request '{id}' in Redis does not parse: {e}"
        ))
    })?;
    request.status = status_of(fields.get("status").map(String::as_str).unwrap_or(""));
    if let Some(t) = fields.get("timed_out_at") {
        request.timed_out_at = Some(t.clone());
    }
    if let Some(c) = fields.get("checkpoint") {
        request.checkpoint = Some(c.clone());
    }
    let response = match fields.get("resp") {
        Some(r) => Some(serde_json::from_str::<FeedbackResponse>(r).map_err(|e| {
            FeedbackError::Backend(format!("the answer to '{id}' in Redis does not parse: {e}"))
        })?),
        None => None,
    };
    Ok(Some((request, response)))
}

fn not_pending(id: &str, status: String) -> FeedbackError {
    if status.is_empty() {
        FeedbackError::NotFound(id.to_string())
    } else {
        FeedbackError::NotPending {
            id: id.to_string(),
            status,
        }
    }
}

#[async_trait]
impl FeedbackBackend for RedisFeedback {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, request: FeedbackRequest) -> Result<FeedbackRequest, FeedbackError> {
        if !valid_id(&request.id) {
            return Err(FeedbackError::Invalid(format!(
                "'{}' is not a valid feedback id",
                request.id
            )));
        }
        let json = serde_json::to_string(&request).map_err(|e| store(&self.link, e))?;
        let record = self.keys.feedback(&request.id).record();
        let index = self.keys.feedback_index();
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let reply: Vec<String> = retry(
            &self.link,
            "storing a feedback request",
            Some(Duration::from_secs(30)),
            |mut c| {
                let mut call = scripts::FB_CREATE.prepare_invoke();
                call.key(&record).arg(&json).arg(self.ttl());
                async move { call.invoke_async(&mut c).await }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        if reply.first().map(String::as_str) == Some("exists") {
            let mut fields = HashMap::new();
            fields.insert("req".to_string(), reply.get(1).cloned().unwrap_or_default());
            fields.insert(
                "status".to_string(),
                reply.get(2).cloned().unwrap_or_default(),
            );
            if let Some((existing, _)) = parse_record(&request.id, &fields)? {
                return Ok(existing);
            }
        }
        let id = request.id.clone();
        retry(
            &self.link,
            "indexing a feedback request",
            Some(Duration::from_secs(30)),
            |mut c| {
                let (index, id) = (index.clone(), id.clone());
                async move {
                    redis::pipe()
                        .cmd("ZADD")
                        .arg(&index)
                        .arg(created_ms)
                        .arg(&id)
                        .ignore()
                        .cmd("ZREMRANGEBYRANK")
                        .arg(&index)
                        .arg(0)
                        .arg(-INDEX_CAP - 1)
                        .ignore()
                        .query_async::<()>(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        Ok(request)
    }

    async fn get(
        &self,
        id: &str,
    ) -> Result<Option<(FeedbackRequest, Option<FeedbackResponse>)>, FeedbackError> {
        self.record(id).await
    }

    async fn list(
        &self,
        run_id: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<FeedbackRequest>, FeedbackError> {
        let index = self.keys.feedback_index();
        let ids: Vec<String> = retry(
            &self.link,
            "listing feedback requests",
            Some(Duration::from_secs(30)),
            |mut c| {
                let index = index.clone();
                async move {
                    redis::cmd("ZRANGE")
                        .arg(index)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut c)
                        .await
                }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let records: Vec<HashMap<String, String>> = retry(
            &self.link,
            "listing feedback requests",
            Some(Duration::from_secs(30)),
            |mut c| {
                let mut pipe = redis::pipe();
                for id in &ids {
                    pipe.cmd("HGETALL").arg(self.keys.feedback(id).record());
                }
                async move { pipe.query_async(&mut c).await }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, fields) in ids.iter().zip(records) {
            match parse_record(id, &fields) {
                Ok(Some((request, _))) => {
                    if run_id.is_none_or(|r| request.run_id == r)
                        && (!pending_only || request.status == FeedbackStatus::Pending)
                    {
                        out.push(request);
                    }
                }
                Ok(None) => gone.push(id.clone()),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        if !gone.is_empty() {
            let mut c = self.link.conn();
            let _ = redis::cmd("ZREM")
                .arg(&index)
                .arg(&gone)
                .query_async::<()>(&mut c)
                .await;
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn respond(&self, id: &str, answer: Answer) -> Result<FeedbackResponse, FeedbackError> {
        let Some((request, existing)) = self.record(id).await? else {
            return Err(FeedbackError::NotFound(id.to_string()));
        };
        if existing.is_some() || request.status != FeedbackStatus::Pending {
            let status = serde_json::to_value(request.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "answered".into());
            return Err(not_pending(id, status));
        }
        let response = request.accept(answer, now())?;
        let json = serde_json::to_string(&response).map_err(|e| store(&self.link, e))?;
        match self.settle(id, "answered", &json).await? {
            Ok(()) => Ok(response),
            Err(status) => Err(not_pending(id, status)),
        }
    }

    async fn cancel(&self, id: &str) -> Result<FeedbackRequest, FeedbackError> {
        match self.settle(id, "cancelled", "").await? {
            Ok(()) => {}
            Err(status) => return Err(not_pending(id, status)),
        }
        match self.record(id).await? {
            Some((request, _)) => Ok(request),
            None => Err(FeedbackError::NotFound(id.to_string())),
        }
    }

    async fn update(&self, request: &FeedbackRequest) -> Result<(), FeedbackError> {
        if !valid_id(&request.id) {
            return Err(FeedbackError::NotFound(request.id.clone()));
        }
        let key = self.keys.feedback(&request.id).record();
        let mut fields: Vec<(&str, String)> = Vec::new();
        if let Some(t) = &request.timed_out_at {
            fields.push(("timed_out_at", t.clone()));
        }
        if let Some(c) = &request.checkpoint {
            fields.push(("checkpoint", c.clone()));
        }
        if fields.is_empty() {
            return Ok(());
        }
        let updated: i64 = retry(
            &self.link,
            "updating a feedback request",
            Some(Duration::from_secs(30)),
            |mut c| {
                // Only the bookkeeping changes, and only on a record that exists.
                let mut call = scripts::FB_UPDATE.prepare_invoke();
                call.key(&key);
                for (k, v) in &fields {
                    call.arg(*k).arg(v);
                }
                async move { call.invoke_async(&mut c).await }
            },
        )
        .await
        .map_err(|e| store(&self.link, e))?;
        if updated == 0 {
            return Err(FeedbackError::NotFound(request.id.clone()));
        }
        Ok(())
    }

    async fn wait(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<FeedbackResponse>, FeedbackError> {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let wake = self.keys.feedback(id).wake();
        let mut conn = None;
        loop {
            match self.record(id).await? {
                None => return Err(FeedbackError::NotFound(id.to_string())),
                Some((_, Some(response))) => return Ok(Some(response)),
                Some((r, None)) if r.status == FeedbackStatus::Cancelled => {
                    return Err(FeedbackError::Cancelled(id.to_string()));
                }
                Some(_) => {}
            }
            let now = tokio::time::Instant::now();
            // Block at most a minute at a time (a far deadline, or none, waits in rounds).
            let left = match deadline {
                Some(d) if now >= d => return Ok(None),
                Some(d) => (d - now).min(Duration::from_secs(60)),
                None => Duration::from_secs(60),
            };
            if conn.is_none() {
                conn = Some(
                    self.link
                        .blocking()
                        .await
                        .map_err(|e| store(&self.link, e))?,
                );
            }
            let Some(c) = conn.as_mut() else {
                continue;
            };
            // The stream gets its entry only once the request is settled: reading from its
            // start returns at once when that already happened, so no answer is missed.
            let read: Result<Reply, redis::RedisError> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(left.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(&wake)
                .arg("0-0")
                .query_async(c)
                .await;
            if let Err(e) = read {
                // Redis went away: a new connection next round (bounded by the deadline).
                conn = None;
                tracing::warn!("waiting for feedback '{id}': {}", store(&self.link, e));
                tokio::time::sleep(Duration::from_millis(200).min(left)).await;
            }
        }
    }
}
