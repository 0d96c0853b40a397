//! Requeuing a dead letter: an attempt whose workers kept dying is held by its run (when its
//! coordinator holds dead letters: `GRAFLOW_DEAD_LETTER_HOLD`) until an operator requeues it
//! or the hold runs out. Requeued, it waits on its queue again with its deliveries counted
//! from zero, and its run goes on as if it had never been dead-lettered.

use std::time::Duration;

use crate::dispatch::FleetError;
use crate::distributed::conn::{Link, retry};
use crate::distributed::keys::Keys;
use crate::distributed::scripts;

use super::DeadLetter;

/// Put dead letter `letter` of queue `queue` back on its queue, in the name of `who` (shown in
/// the run's log), and remove it from the dead-letter stream. Fails, saying why, when its run
/// no longer waits for it (the hold ran out, the run ended or lost its coordinator) or it was
/// requeued already; the dead letter then stays where it is.
pub async fn requeue_dead_letter(
    link: &Link,
    keys: &Keys,
    queue: &str,
    letter: &DeadLetter,
    who: &str,
) -> Result<(), FleetError> {
    let err = |e: redis::RedisError| {
        FleetError::Store(format!(
            "requeuing attempt {} of run {} on Redis at {}: {e}",
            letter.attempt,
            letter.run,
            link.address()
        ))
    };
    let run = keys.run(&letter.run);
    let reply: Vec<String> = retry(
        link,
        "requeuing a dead letter",
        Some(Duration::from_secs(5)),
        |mut c| {
            let run = &run;
            async move {
                scripts::REQUEUE
                    .key(run.attempt(&letter.attempt))
                    .key(run.coord())
                    .key(run.out())
                    .arg(&letter.attempt)
                    .arg(who)
                    .invoke_async(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(err)?;
    let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
    if field(0) != "queued" {
        return Err(FleetError::Refused(format!(
            "attempt {} of run {} cannot be requeued: {}",
            letter.attempt,
            letter.run,
            field(1)
        )));
    }
    // The record says queued: the entry on the queue's stream (a duplicate is harmless:
    // workers skip an attempt that is running or ended), then the dead letter goes.
    let target = if field(1).is_empty() { queue } else { field(1) };
    let (stream, dlq) = (keys.queue(target).stream(), keys.queue(queue).dlq());
    retry(
        link,
        "requeuing a dead letter",
        Some(Duration::from_secs(5)),
        |mut c| {
            let (stream, dlq) = (&stream, &dlq);
            async move {
                redis::cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg("run")
                    .arg(&letter.run)
                    .arg("tid")
                    .arg(&letter.attempt)
                    .query_async::<String>(&mut c)
                    .await?;
                redis::cmd("XDEL")
                    .arg(dlq)
                    .arg(&letter.entry)
                    .query_async::<i64>(&mut c)
                    .await
            }
        },
    )
    .await
    .map_err(err)?;
    Ok(())
}
