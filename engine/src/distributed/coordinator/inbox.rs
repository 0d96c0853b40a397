//! What workers report to the coordinator through the run's outbox stream: outcomes, log
//! lines (shown as the run's `task_log` events, before the outcome) and feedback requests
//! (asked through the coordinator's own context and answered back).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::streams::StreamReadReply;
use redis::{RedisError, Value as Reply};
use tokio::task::JoinHandle;

use crate::events::LogStream;
use crate::hitl::FeedbackSpec;

use crate::distributed::conn::{Link, Outage, retry, transient};
use crate::distributed::keys::RunKeys;
use crate::distributed::wire::FeedbackReply;

use super::run::{Outcome, RunInner};
use crate::pool::{Wait, WaitReason};

/// A feedback request being relayed: the asking task, and the reply keys the answer goes to
/// (one per execution that asked: a redelivered execution asks again under a new epoch).
pub(super) struct Relay {
    pub(super) task: JoinHandle<()>,
    /// Reply keys, and whether the answer was already sent (then a new ask starts anew).
    pub(super) to: Arc<Mutex<(Vec<String>, bool)>>,
}

impl RunInner {
    /// One entry of the outbox.
    pub(super) fn handle(self: &Arc<Self>, fields: &HashMap<String, Reply>) {
        let get = |k: &str| fields.get(k).and_then(reply_text).unwrap_or_default();
        let tid = get("tid");
        match get("k").as_str() {
            "log" => {
                let epoch: u64 = get("ep").parse().unwrap_or(0);
                let stream = match get("s").as_str() {
                    "stdout" => LogStream::Stdout,
                    "stderr" => LogStream::Stderr,
                    _ => LogStream::Log,
                };
                let ctx = {
                    let mut pending = self.pending.lock();
                    let Some(w) = pending.get_mut(&tid) else {
                        return;
                    };
                    if epoch < w.log_epoch {
                        return; // a lost execution's late line
                    }
                    w.log_epoch = epoch;
                    w.ctx.clone()
                };
                match get("w") {
                    w if w.is_empty() => ctx.log_stream(stream, get("l")),
                    w => ctx.log_from_worker(stream, get("l"), &w),
                }
            }
            "go" => {
                let ctx = self.pending.lock().get(&tid).map(|w| w.ctx.clone());
                if let Some(ctx) = ctx {
                    ctx.set_worker(&get("w"));
                    ctx.started();
                }
            }
            "wait" => {
                let ctx = self.pending.lock().get(&tid).map(|w| w.ctx.clone());
                let Some(ctx) = ctx else {
                    return;
                };
                let reason = match get("r").as_str() {
                    "pool_slots" => WaitReason::PoolSlots,
                    _ => WaitReason::RateLimit,
                };
                let pool = get("p");
                ctx.set_worker(&get("w"));
                ctx.waiting(Wait {
                    reason,
                    pool: (!pool.is_empty()).then(|| Arc::from(pool.as_str())),
                    detail: get("d"),
                });
            }
            "ask" => {
                self.relay_feedback(&tid, &get("ep"), &get("o"), &get("spec"), get("n") == "1")
            }
            "held" => self.hold_dead_letter(&tid, &get("e")),
            "requeued" => {
                if let Some(w) = self.pending.lock().get(&tid) {
                    let by = get("w");
                    let by = if by.is_empty() {
                        "an operator".into()
                    } else {
                        by
                    };
                    w.ctx.log_stream(
                        LogStream::Log,
                        format!("requeued by {by}: its deliveries count from zero again"),
                    );
                }
            }
            kind @ ("done" | "failed" | "dead") => {
                let worker = get("w");
                if !worker.is_empty()
                    && let Some(w) = self.pending.lock().get(&tid)
                {
                    w.ctx.set_worker(&worker);
                }
                let outcome = Outcome::parse(kind, &get("r"), &get("e"), &get("c"), &get("re"));
                self.deliver(&tid, outcome);
            }
            _ => {}
        }
    }

    /// Attempt `tid` was dead-lettered and is held for an operator: say so in its log, and
    /// look again when the hold runs out (it then fails, unless it was requeued).
    fn hold_dead_letter(self: &Arc<Self>, tid: &str, error: &str) {
        let hold = self.fleet.config.dead_letter_hold;
        let sent = {
            let pending = self.pending.lock();
            let Some(w) = pending.get(tid) else {
                return;
            };
            w.ctx.log_stream(
                LogStream::Log,
                format!(
                    "{error}; held {} for an operator to requeue it (the studio's fleet view)",
                    humantime::format_duration(hold)
                ),
            );
            w.sent.clone()
        };
        let run = self.clone();
        let check = tokio::spawn(async move {
            // Redis time decides; a little later than the hold, the sweep catches any slack.
            tokio::time::sleep(hold + Duration::from_millis(200)).await;
            if let Err(e) = run.send(&sent, super::run::Why::Sweep).await {
                tracing::warn!("run {}: attempt {}: {e}", run.run_id, sent.tid);
            }
        });
        self.tasks.lock().push(check);
    }

    /// A body on a worker asked a human: ask through the coordinator's own context (events,
    /// notifiers, the pause on timeout all work as locally) and send the answer back.
    pub(super) fn relay_feedback(
        self: &Arc<Self>,
        tid: &str,
        epoch: &str,
        ordinal: &str,
        spec: &str,
        own: bool,
    ) {
        let Ok(ordinal) = ordinal.parse::<u32>() else {
            return;
        };
        let reply_key = self.keys.reply(&format!("{tid}:{epoch}"), ordinal);
        let spec: Result<FeedbackSpec, _> = serde_json::from_str(spec);
        let mut pending = self.pending.lock();
        let Some(w) = pending.get_mut(tid) else {
            return;
        };
        if let Some(relay) = w.asks.get(&ordinal) {
            let mut to = relay.to.lock();
            if !to.1 {
                // A redelivered execution asks again: the relay under way answers it too.
                to.0.push(reply_key);
                return;
            }
        }
        let ctx = w.ctx.clone();
        let notifiers = if own {
            w.def.handler().feedback_notifiers()
        } else {
            None
        };
        let to = Arc::new(Mutex::new((vec![reply_key], false)));
        let run = self.clone();
        let keys = to.clone();
        let task = tokio::spawn(async move {
            let result = match spec {
                Ok(spec) => {
                    ctx.request_feedback_numbered(ordinal, spec, notifiers)
                        .await
                }
                Err(e) => Err(crate::hitl::FeedbackError::Invalid(format!(
                    "the worker sent a request that does not parse: {e}"
                ))),
            };
            if let Err(crate::hitl::FeedbackError::Paused(_)) = &result {
                // The run paused: the attempt is cancelled, so no outcome (a failure "paused")
                // may be committed in its name; the body's wait ends with the cancellation.
                return;
            }
            let reply = serde_json::to_string(&FeedbackReply::from_result(result))
                .unwrap_or_else(|_| "{}".into());
            let targets = {
                let mut to = keys.lock();
                to.1 = true;
                std::mem::take(&mut to.0)
            };
            let _ = retry(run.link(), "answering a worker", None, |mut c| {
                let mut pipe = redis::pipe();
                for key in &targets {
                    pipe.cmd("LPUSH").arg(key).arg(&reply).ignore();
                    pipe.cmd("PEXPIRE").arg(key).arg(3_600_000).ignore();
                }
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .await;
        });
        w.asks.insert(ordinal, Relay { task, to });
    }
}

pub(super) fn reply_text(v: &Reply) -> Option<String> {
    match v {
        Reply::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Reply::SimpleString(s) => Some(s.clone()),
        Reply::VerbatimString { text, .. } => Some(text.clone()),
        Reply::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A stream entry id (`ms-seq`) as numbers, to compare ids (`(0, 0)` for one that does not
/// parse).
pub(super) fn entry_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl RunInner {
    /// Wait (at most `limit`) until the outbox reader has handled every entry the outbox holds
    /// now.
    pub(super) async fn outbox_caught_up(&self, limit: Duration) {
        let Ok(end) = outbox_cursor(self.link(), &self.keys).await else {
            return;
        };
        let end = entry_id(&end);
        let mut seen = self.outbox_read.subscribe();
        let _ = tokio::time::timeout(limit, seen.wait_for(|read| *read >= end)).await;
    }
}

/// The id after which this coordinator reads the outbox: its current end.
pub(super) async fn outbox_cursor(link: &Link, keys: &RunKeys) -> Result<String, String> {
    let out = keys.out();
    let last: Vec<(String, HashMap<String, Reply>)> = retry(
        link,
        "reading the run's outbox",
        Some(Duration::from_secs(30)),
        |mut c| {
            let out = out.clone();
            async move {
                let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(out)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut c)
                    .await?;
                Ok(reply.ids.into_iter().map(|s| (s.id, s.map)).collect())
            }
        },
    )
    .await
    .map_err(|e| {
        format!(
            "reading the run's outbox on Redis at {}: {e}",
            link.address()
        )
    })?;
    Ok(last
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .unwrap_or_else(|| "0-0".into()))
}

/// Read the run's outbox until the run closes.
pub(super) async fn read_outbox(run: Arc<RunInner>, mut cursor: String) {
    let out = run.keys.out();
    let mut delay = Duration::from_millis(50);
    let who = format!("run {}", run.run_id);
    let outage = Outage::default();
    loop {
        let mut conn = match run.link().blocking().await {
            Ok(c) => c,
            Err(e) => {
                outage.failed(&who, run.link(), &e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            let read: Result<Option<StreamReadReply>, RedisError> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(2000)
                .arg("STREAMS")
                .arg(&out)
                .arg(&cursor)
                .query_async(&mut conn)
                .await;
            if read.is_ok() {
                outage.recovered(&who, run.link());
            }
            match read {
                Ok(Some(reply)) => {
                    delay = Duration::from_millis(50);
                    for key in reply.keys {
                        for entry in key.ids {
                            run.handle(&entry.map);
                            cursor = entry.id;
                        }
                    }
                    run.outbox_read.send_replace(entry_id(&cursor));
                    let trim = redis::cmd("XTRIM")
                        .arg(&out)
                        .arg("MINID")
                        .arg(&cursor)
                        .query_async::<i64>(&mut conn)
                        .await;
                    if let Err(e) = trim
                        && transient(&e)
                    {
                        run.reconcile.notify_one();
                        break;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    outage.failed(&who, run.link(), &e);
                    run.reconcile.notify_one();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    break;
                }
            }
        }
    }
}
