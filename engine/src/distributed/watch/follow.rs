//! Following one run's event stream from its start (as far as the capped stream still holds
//! it), live, on a connection of its own: the reader behind `graflow events --attach` and the
//! studio's attached runs.

use std::time::Duration;

use redis::streams::StreamReadReply;

use crate::dispatch::FleetError;
use crate::distributed::conn::{Conn, Link};
use crate::distributed::keys::Keys;
use crate::events::RunEvent;

/// Reads a run's events in order, batch by batch.
pub struct RunFollower {
    link: Link,
    stream: String,
    run: String,
    cursor: String,
    conn: Option<Conn>,
    ended: bool,
}

impl RunFollower {
    /// A follower of run `run`, from the stream's first kept event.
    pub fn new(link: Link, keys: &Keys, run: &str) -> RunFollower {
        RunFollower {
            stream: keys.run(run).events(),
            run: run.to_string(),
            link,
            cursor: "0-0".into(),
            conn: None,
            ended: false,
        }
    }

    /// The run followed.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// Whether `run_finished` was read (nothing follows it).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next events as JSON lines, waiting up to `block` for one; empty when none came
    /// (or the run ended). `Err` names Redis and what failed; the follower can be asked
    /// again (it reconnects and goes on after the last event it returned).
    pub async fn next_lines(&mut self, block: Duration) -> Result<Vec<String>, FleetError> {
        if self.ended {
            return Ok(Vec::new());
        }
        if self.conn.is_none() {
            self.conn = Some(self.link.blocking().await.map_err(|e| {
                FleetError::Store(format!(
                    "following run {} on Redis at {}: {e}",
                    self.run,
                    self.link.address()
                ))
            })?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Vec::new());
        };
        let read: Result<Option<StreamReadReply>, redis::RedisError> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(&self.cursor)
            .query_async(conn)
            .await;
        let reply = match read {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(FleetError::Store(format!(
                    "following run {} on Redis at {}: {e}",
                    self.run,
                    self.link.address()
                )));
            }
        };
        let mut lines = Vec::new();
        for key in reply.into_iter().flat_map(|r| r.keys) {
            for entry in key.ids {
                self.cursor = entry.id.clone();
                let name: Option<String> = entry.get("n");
                let line: Option<String> = entry.get("e");
                // The run's own `run_finished` ends it; a sub-run's (forwarded with its
                // `sub_run` path) does not.
                let ends = name.as_deref() == Some("run_finished")
                    && line.as_deref().is_some_and(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .is_ok_and(|v| crate::events::ends_its_run(&v))
                    });
                lines.extend(line);
                if ends {
                    self.ended = true;
                    return Ok(lines);
                }
            }
        }
        Ok(lines)
    }

    /// Like [`next_lines`](Self::next_lines), parsed (lines that do not parse are skipped
    /// with a warning).
    pub async fn next_events(&mut self, block: Duration) -> Result<Vec<RunEvent>, FleetError> {
        let lines = self.next_lines(block).await?;
        Ok(lines
            .iter()
            .filter_map(|l| match RunEvent::from_json(l) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!("run {}: {e}", self.run);
                    None
                }
            })
            .collect())
    }
}
