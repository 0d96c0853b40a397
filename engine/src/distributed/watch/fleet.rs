//! A snapshot of the fleet for people watching it: every worker with its record and how long
//! ago it last beat, every queue's depth, in-flight and dead-lettered entries (with the
//! newest dead letters' errors). A handful of round trips, whatever the fleet's size.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dispatch::FleetError;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::{GROUP, Keys};
use crate::distributed::metrics::WorkerRecord;

/// A worker silent for this long is shown as lost (workers beat at least every second).
pub const LOST_AFTER: Duration = Duration::from_secs(5);

/// Dead letters read per queue.
const DEAD_SHOWN: usize = 5;

/// One worker as the fleet view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// Its id.
    pub id: String,
    /// Its last record (`None` once it expired: a lost worker).
    pub record: Option<WorkerRecord>,
    /// Milliseconds since its last heartbeat.
    pub beat_age_ms: u64,
    /// `busy`, `idle`, `draining` or `lost`.
    pub state: String,
}

/// One dead-lettered attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its entry id in the dead-letter stream.
    pub entry: String,
    /// The run.
    pub run: String,
    /// The attempt (`task:cycle:attempt`).
    pub attempt: String,
    /// Why.
    pub error: String,
    /// Until when (milliseconds since the epoch, Redis time) its run waits for an operator to
    /// requeue it ([`crate::distributed::watch::requeue_dead_letter`]); `None` when its run
    /// does not (the attempt failed, or was requeued already).
    pub held_until_ms: Option<u64>,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Entries in its stream (waiting or being run).
    pub depth: u64,
    /// Entries delivered to a worker and not acknowledged yet.
    pub in_flight: u64,
    /// Entries in its dead-letter stream.
    pub dead: u64,
    /// The newest dead letters, newest first.
    pub dead_letters: Vec<DeadLetter>,
}

/// The fleet at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetSnapshot {
    /// When it was read (milliseconds since the epoch).
    pub at_ms: u64,
    /// Workers, by id.
    pub workers: Vec<WorkerView>,
    /// Queues, by name.
    pub queues: Vec<QueueView>,
}

impl FleetSnapshot {
    /// Attempts processed by every worker whose record is known.
    pub fn processed(&self) -> u64 {
        self.workers
            .iter()
            .filter_map(|w| w.record.as_ref())
            .map(|r| r.processed)
            .sum()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Read the fleet: workers that beat within `forget` (older ones are left out) and every queue.
pub async fn fleet_snapshot(
    link: &Link,
    keys: &Keys,
    forget: Duration,
) -> Result<FleetSnapshot, FleetError> {
    let err = |e: redis::RedisError| {
        FleetError::Store(format!(
            "reading the fleet on Redis at {}: {e}",
            link.address()
        ))
    };
    let now = now_ms();
    let since = now.saturating_sub(forget.as_millis() as u64);
    let (workers_key, queues_key) = (keys.workers(), keys.queues());
    let (ids, queues): (Vec<(String, f64)>, Vec<String>) = retry(
        link,
        "reading the fleet",
        Some(Duration::from_secs(5)),
        |mut c| {
            let (w, q) = (workers_key.clone(), queues_key.clone());
            async move {
                redis::pipe()
                    .cmd("ZRANGEBYSCORE")
                    .arg(w)
                    .arg(since)
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .cmd("SMEMBERS")
                    .arg(q)
                    .query_async(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(err)?;
    let mut pipe = redis::pipe();
    for (id, _) in &ids {
        pipe.cmd("GET").arg(keys.worker(id));
    }
    let mut queues = queues;
    queues.sort();
    for q in &queues {
        let qk = keys.queue(q);
        pipe.cmd("XLEN").arg(qk.stream());
        pipe.cmd("XPENDING").arg(qk.stream()).arg(GROUP);
        pipe.cmd("XLEN").arg(qk.dlq());
        pipe.cmd("XREVRANGE")
            .arg(qk.dlq())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(DEAD_SHOWN);
    }
    let replies: Vec<redis::Value> = if ids.is_empty() && queues.is_empty() {
        Vec::new()
    } else {
        read(link, &pipe).await.map_err(err)?
    };
    let mut replies = replies.into_iter();
    let mut workers = Vec::with_capacity(ids.len());
    for (id, score) in ids {
        let record: Option<WorkerRecord> = replies
            .next()
            .and_then(|v| redis::from_redis_value::<Option<String>>(v).ok().flatten())
            .and_then(|json| serde_json::from_str(&json).ok());
        let beat = record.as_ref().map(|r| r.beat_ms).unwrap_or(score as u64);
        let beat_age_ms = now.saturating_sub(beat);
        let state = match &record {
            Some(r) if beat_age_ms <= LOST_AFTER.as_millis() as u64 => r.state.clone(),
            _ => "lost".to_string(),
        };
        workers.push(WorkerView {
            id,
            record,
            beat_age_ms,
            state,
        });
    }
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::with_capacity(queues.len());
    for name in queues {
        let depth = replies
            .next()
            .and_then(|v| redis::from_redis_value::<u64>(v).ok())
            .unwrap_or(0);
        let in_flight = replies
            .next()
            .and_then(|v| match v {
                redis::Value::Array(items) => items
                    .into_iter()
                    .next()
                    .and_then(|n| redis::from_redis_value::<u64>(n).ok()),
                _ => None,
            })
            .unwrap_or(0);
        let dead = replies
            .next()
            .and_then(|v| redis::from_redis_value::<u64>(v).ok())
            .unwrap_or(0);
        let dead_letters = replies
            .next()
            .and_then(|v| redis::from_redis_value::<redis::streams::StreamRangeReply>(v).ok())
            .map(|r| {
                r.ids
                    .into_iter()
                    .map(|e| {
                        let field = |k: &str| e.get::<String>(k).unwrap_or_default();
                        DeadLetter {
                            run: field("run"),
                            attempt: field("tid"),
                            error: field("error"),
                            entry: e.id.clone(),
                            held_until_ms: None,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(QueueView {
            name,
            depth,
            in_flight,
            dead,
            dead_letters,
        });
    }
    mark_held(link, keys, &mut out).await.map_err(err)?;
    Ok(FleetSnapshot {
        at_ms: now,
        workers,
        queues: out,
    })
}

/// Send `pipe` (retried a few seconds while Redis is away).
async fn read<T: redis::FromRedisValue>(
    link: &Link,
    pipe: &redis::Pipeline,
) -> Result<T, redis::RedisError> {
    retry(
        link,
        "reading the fleet",
        Some(Duration::from_secs(5)),
        |mut c| async move { pipe.query_async(&mut c).await },
    )
    .await
}

/// Find which of the dead letters shown their runs still hold for an operator (one round trip).
async fn mark_held(
    link: &Link,
    keys: &Keys,
    queues: &mut [QueueView],
) -> Result<(), redis::RedisError> {
    let mut pipe = redis::pipe();
    let mut shown = 0;
    for letter in queues.iter().flat_map(|q| &q.dead_letters) {
        pipe.cmd("HMGET")
            .arg(keys.run(&letter.run).attempt(&letter.attempt))
            .arg("state")
            .arg("held_until");
        shown += 1;
    }
    if shown == 0 {
        return Ok(());
    }
    let replies: Vec<(Option<String>, Option<String>)> = read(link, &pipe).await?;
    let letters = queues.iter_mut().flat_map(|q| q.dead_letters.iter_mut());
    for (letter, (state, until)) in letters.zip(replies) {
        letter.held_until_ms = match state.as_deref() {
            Some("held") => until.and_then(|u| u.parse().ok()),
            _ => None,
        };
    }
    Ok(())
}

/// Keep the last known record of workers whose record expired (so a lost worker still shows
/// its host and queues).
pub fn carry_records(previous: &FleetSnapshot, next: &mut FleetSnapshot) {
    let known: HashMap<&str, &WorkerRecord> = previous
        .workers
        .iter()
        .filter_map(|w| Some((w.id.as_str(), w.record.as_ref()?)))
        .collect();
    for w in &mut next.workers {
        if w.record.is_none()
            && let Some(r) = known.get(w.id.as_str())
        {
            w.record = Some((*r).clone());
        }
    }
}
