//! Steering a run from another process: requests go to the run's control list
//! `P:{r:R}:ctl`; the process that runs it (its coordinator) watches the list with a blocking
//! read and applies them through its [`RunControl`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::dispatch::FleetError;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::Keys;
use crate::run::RunControl;

/// What another process asks of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Cancel the run (it ends `cancelled` with this message).
    Cancel {
        /// Why.
        message: String,
    },
    /// Write a checkpoint of the run now (host checkpoint); the run goes on.
    Checkpoint,
}

/// Ask run `run`'s coordinator for `request` (it applies it within a moment when it runs).
pub async fn send_control(
    link: &Link,
    keys: &Keys,
    run: &str,
    request: &ControlRequest,
) -> Result<(), FleetError> {
    let key = keys.run(run).control();
    let json = serde_json::to_string(request).map_err(|e| FleetError::Store(e.to_string()))?;
    retry(
        link,
        "asking a run",
        Some(Duration::from_secs(5)),
        |mut c| {
            let (key, json) = (key.clone(), json.clone());
            async move {
                redis::pipe()
                    .cmd("RPUSH")
                    .arg(&key)
                    .arg(json)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(3600)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(|e| {
        FleetError::Store(format!(
            "asking run {run} on Redis at {}: {e}",
            link.address()
        ))
    })
}

/// Watch run `run`'s control list and apply each request to `control`, until the task is
/// aborted (abort it when the run ends). Requests sent before the run started are applied.
pub fn watch_control(link: Link, keys: &Keys, run: &str, control: RunControl) -> JoinHandle<()> {
    let key = keys.run(run).control();
    let run = run.to_string();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(50);
        loop {
            let mut conn = match link.blocking().await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            loop {
                let popped: Result<Option<(String, String)>, redis::RedisError> =
                    redis::cmd("BLPOP")
                        .arg(&key)
                        .arg(5)
                        .query_async(&mut conn)
                        .await;
                match popped {
                    Ok(Some((_, json))) => {
                        delay = Duration::from_millis(50);
                        apply(&run, &json, &control).await;
                    }
                    Ok(None) => {}
                    Err(_) => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        break;
                    }
                }
            }
        }
    })
}

async fn apply(run: &str, json: &str, control: &RunControl) {
    match serde_json::from_str::<ControlRequest>(json) {
        Ok(ControlRequest::Cancel { message }) => control.cancel(message),
        Ok(ControlRequest::Checkpoint) => {
            let control = control.clone();
            let run = run.to_string();
            // A checkpoint waits for running tasks: the watcher goes on meanwhile.
            tokio::spawn(async move {
                if let Err(e) = control
                    .checkpoint(serde_json::json!({"requested_by": "control key"}))
                    .await
                {
                    tracing::warn!("run {run}: a checkpoint asked through Redis failed: {e}");
                }
            });
        }
        Err(e) => tracing::warn!("run {run}: a control request does not parse: {e}"),
    }
}
