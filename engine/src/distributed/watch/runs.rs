//! The index of live and recent runs on the fleet, as their event streams recorded them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dispatch::FleetError;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::Keys;

/// A run whose record was not refreshed for this long while it said "live" is shown as
/// stale (its coordinator is gone, or cut off from Redis): live runs refresh it every 5 s.
pub const STALE_AFTER: Duration = Duration::from_secs(20);

/// One run as the index shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// `live`, `ended` or `stale` (said live, but silent for `STALE_AFTER`).
    pub state: String,
    /// How it ended: `succeeded`, `failed`, `cancelled`, `paused` (ended runs only).
    pub status: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The coordinator's host.
    pub host: String,
    /// Start, last write and end (milliseconds since the epoch).
    pub started_ms: u64,
    /// Last write to its record.
    pub updated_ms: u64,
    /// End, when it ended.
    pub ended_ms: Option<u64>,
    /// Events written to its stream, and events its sink had to drop.
    pub events: u64,
    /// Events dropped by a slow Redis.
    pub dropped: u64,
    /// The SHA-256 of its workflow file, stored for the workers (see [`workflow_text`]).
    pub workflow_hash: Option<String>,
}

impl RunSummary {
    fn from_fields(run_id: &str, f: &HashMap<String, String>, now_ms: u64) -> RunSummary {
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok());
        let updated_ms = num("updated_ms").unwrap_or_default();
        let mut state = f.get("state").cloned().unwrap_or_else(|| "live".into());
        if state == "live" && now_ms.saturating_sub(updated_ms) > STALE_AFTER.as_millis() as u64 {
            state = "stale".into();
        }
        RunSummary {
            run_id: run_id.to_string(),
            workflow: f.get("workflow").cloned().unwrap_or_default(),
            state,
            status: f.get("status").cloned(),
            error: f.get("error").cloned(),
            host: f.get("host").cloned().unwrap_or_default(),
            started_ms: num("started_ms").unwrap_or_default(),
            updated_ms,
            ended_ms: num("ended_ms"),
            events: num("events").unwrap_or_default(),
            dropped: num("dropped").unwrap_or_default(),
            workflow_hash: f.get("wf").cloned(),
        }
    }

    /// Whether the run is still going.
    pub fn is_live(&self) -> bool {
        self.state == "live"
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The newest `limit` runs of the fleet, newest first (runs whose record expired are left
/// out and dropped from the index).
pub async fn list_runs(
    link: &Link,
    keys: &Keys,
    limit: usize,
) -> Result<Vec<RunSummary>, FleetError> {
    let index = keys.runs();
    let ids: Vec<String> = retry(
        link,
        "listing runs",
        Some(Duration::from_secs(5)),
        |mut c| {
            let index = index.clone();
            async move {
                redis::cmd("ZREVRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(limit.max(1) as i64 - 1)
                    .query_async(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(|e| FleetError::Store(format!("listing runs on Redis at {}: {e}", link.address())))?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let records: Vec<HashMap<String, String>> = retry(
        link,
        "listing runs",
        Some(Duration::from_secs(5)),
        |mut c| {
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL").arg(keys.run(id).info());
            }
            async move { pipe.query_async(&mut c).await }
        },
    )
    .await
    .map_err(|e| FleetError::Store(format!("listing runs on Redis at {}: {e}", link.address())))?;
    let now = now_ms();
    let mut out = Vec::with_capacity(ids.len());
    let mut gone = Vec::new();
    for (id, fields) in ids.iter().zip(records) {
        if fields.is_empty() {
            gone.push(id.clone());
        } else {
            out.push(RunSummary::from_fields(id, &fields, now));
        }
    }
    if !gone.is_empty() {
        let mut c = link.conn();
        let _ = redis::cmd("ZREM")
            .arg(&index)
            .arg(&gone)
            .query_async::<()>(&mut c)
            .await;
    }
    Ok(out)
}

/// One run's record, `None` when Redis has none.
pub async fn run_summary(
    link: &Link,
    keys: &Keys,
    run: &str,
) -> Result<Option<RunSummary>, FleetError> {
    let info = keys.run(run).info();
    let fields: HashMap<String, String> = retry(
        link,
        "reading a run",
        Some(Duration::from_secs(5)),
        |mut c| {
            let info = info.clone();
            async move { redis::cmd("HGETALL").arg(info).query_async(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        FleetError::Store(format!(
            "reading run {run} on Redis at {}: {e}",
            link.address()
        ))
    })?;
    Ok((!fields.is_empty()).then(|| RunSummary::from_fields(run, &fields, now_ms())))
}

/// How many of a run's events its Redis stream still keeps (the stream is capped): a
/// [`RunFollower`](super::RunFollower) numbers them `0..` this count.
pub async fn events_kept(link: &Link, keys: &Keys, run: &str) -> Result<u64, FleetError> {
    let stream = keys.run(run).events();
    retry(
        link,
        "reading a run's events",
        Some(Duration::from_secs(5)),
        |mut c| {
            let stream = stream.clone();
            async move { redis::cmd("XLEN").arg(stream).query_async(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        FleetError::Store(format!(
            "reading the events of run {run} on Redis at {}: {e}",
            link.address()
        ))
    })
}

/// The workflow file a run's coordinator stored for its workers: its path (on the
/// coordinator's machine) and text. `Err` when Redis no longer has it.
pub async fn workflow_text(
    link: &Link,
    keys: &Keys,
    hash: &str,
) -> Result<(String, String), FleetError> {
    let key = keys.workflow(hash);
    let json: Option<String> = retry(
        link,
        "reading a workflow",
        Some(Duration::from_secs(5)),
        |mut c| {
            let key = key.clone();
            async move { redis::cmd("GET").arg(key).query_async(&mut c).await }
        },
    )
    .await
    .map_err(|e| {
        FleetError::Store(format!(
            "reading a workflow on Redis at {}: {e}",
            link.address()
        ))
    })?;
    let json = json.ok_or_else(|| {
        FleetError::Refused(format!(
            "Redis at {} no longer holds the run's workflow",
            link.address()
        ))
    })?;
    let bundle: crate::distributed::wire::Bundle = serde_json::from_str(&json).map_err(|e| {
        FleetError::Store(format!("the run's workflow in Redis does not parse: {e}"))
    })?;
    Ok((bundle.path, bundle.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_live_run_is_stale_and_an_ended_one_keeps_its_status() {
        let mut f = HashMap::new();
        f.insert("state".to_string(), "live".to_string());
        f.insert("updated_ms".to_string(), "1000".to_string());
        f.insert("workflow".to_string(), "w".to_string());
        assert_eq!(RunSummary::from_fields("r", &f, 2_000).state, "live");
        assert_eq!(RunSummary::from_fields("r", &f, 100_000).state, "stale");
        f.insert("state".to_string(), "ended".to_string());
        f.insert("status".to_string(), "failed".to_string());
        let s = RunSummary::from_fields("r", &f, 100_000);
        assert_eq!(
            (s.state.as_str(), s.status.as_deref()),
            ("ended", Some("failed"))
        );
    }
}
