//! The key layout. Every key starts with a configurable prefix. A run's keys share the hash tag
//! `{r:<run>}` and a queue's keys the tag `{q:<queue>}`, so every script touches one slot and
//! the layout works unchanged on Redis Cluster:
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P:{r:R}:coord` | hash | the coordinator's lease: `owner`, `epoch`, `until`, `state` |
//! | `P:{r:R}:a:<task>:<cycle>:<attempt>` | hash | one task attempt: `state`, `epoch`, `owner`, `lease_until`, `deliveries`, `payload`, the outcome |
//! | `P:{r:R}:attempts` | set | the ids of the run's attempts |
//! | `P:{r:R}:out` | stream | what workers tell the coordinator: outcomes, log lines, feedback requests |
//! | `P:{r:R}:results` | hash | each task's latest result (JSON), mirrored by the coordinator |
//! | `P:{r:R}:dyn` | set | tasks added at run time |
//! | `P:{r:R}:c:<key>` / `P:{r:R}:cidx` | string or list / set | the channel and its key index |
//! | `P:{r:R}:reply:<task>:<cycle>:<attempt>:<n>` | list | the answer to a worker's feedback request |
//! | `P:{q:Q}:s` | stream | ready attempts of queue `Q` (consumer group `workers`) |
//! | `P:{q:Q}:dlq` | stream | dead letters of queue `Q` |
//! | `P:wf:<sha256>` | string | a workflow file's text, by content hash |
//! | `P:worker:<id>` / `P:workers` | string / sorted set | worker heartbeat records |
//! | `P:queues` | set | queue names seen |
//! | `P:{r:R}:events` / `P:{r:R}:info` | stream / hash | the run's events (JSON lines, capped) and what they tell about the run |
//! | `P:{r:R}:ctl` | list | cancel and checkpoint requests to the run's coordinator |
//! | `P:{r:R}:ckpt:<seq>` | string | checkpoint `seq` of the run: the bytes of its `.ckpt` file |
//! | `P:{r:R}:ckpt-top` | sorted set | the run's highest checkpoint number (member `top`) |
//! | `P:checkpoints` / `P:checkpoint-info` | sorted set / hash | checkpoint names by time of writing (ms) / their listing entries (JSON) |
//! | `P:runs` | sorted set | live and recent runs, by start time |
//! | `P:{f:ID}:rec` / `P:{f:ID}:wake` | hash / stream | a feedback request, its answer, and its wake-up stream |
//! | `P:feedback` | sorted set | feedback request ids, by creation time |
//! | `P:{p:NAME}:slots` / `P:{p:NAME}:used` / `P:{p:NAME}:rate` | sorted set / string / string | a pool's slot holders by lease end, the slots they hold, and its bucket |
//! | `P:{b:NAME}` | string | a task's or a queue's bucket (`task:<workflow>:<task>`, `queue:<queue>`) |

/// The consumer group every worker of a queue reads with.
pub const GROUP: &str = "workers";

/// The queue of tasks that name none.
pub const DEFAULT_QUEUE: &str = "default";

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// A hash tag may not hold braces; other ids are used as they are.
fn tag_safe(id: &str) -> String {
    if id.contains(['{', '}']) {
        id.bytes().map(|b| format!("{b:02x}")).collect()
    } else {
        id.to_string()
    }
}

impl Keys {
    /// Keys under `prefix` (`graflow` by default).
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of run `run`.
    pub fn run(&self, run: &str) -> RunKeys {
        RunKeys {
            base: format!("{}:{{r:{}}}", self.prefix, tag_safe(run)),
        }
    }

    /// The keys of queue `queue`.
    pub fn queue(&self, queue: &str) -> QueueKeys {
        QueueKeys {
            base: format!("{}:{{q:{}}}", self.prefix, tag_safe(queue)),
        }
    }

    /// A workflow file's text by its SHA-256.
    pub fn workflow(&self, hash: &str) -> String {
        format!("{}:wf:{hash}", self.prefix)
    }

    /// A worker's heartbeat record.
    pub fn worker(&self, id: &str) -> String {
        format!("{}:worker:{id}", self.prefix)
    }

    /// Worker ids by last heartbeat (milliseconds).
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// Queue names that were used.
    pub fn queues(&self) -> String {
        format!("{}:queues", self.prefix)
    }

    /// Live and recent runs, by start time (milliseconds).
    pub fn runs(&self) -> String {
        format!("{}:runs", self.prefix)
    }

    /// Checkpoint names (`<workflow>-<run>-<seq>`), scored by their time of writing (ms).
    pub fn checkpoints(&self) -> String {
        format!("{}:checkpoints", self.prefix)
    }

    /// Checkpoint name → its listing entry (JSON).
    pub fn checkpoint_info(&self) -> String {
        format!("{}:checkpoint-info", self.prefix)
    }

    /// The keys of pool `name`, shared by every run, worker and coordinator of the prefix.
    pub fn pool(&self, name: &str) -> PoolKeys {
        PoolKeys {
            base: format!("{}:{{p:{}}}", self.prefix, tag_safe(name)),
        }
    }

    /// The bucket named `name` (`task:<workflow>:<task>` or `queue:<queue>`).
    pub fn bucket(&self, name: &str) -> String {
        format!("{}:{{b:{}}}", self.prefix, tag_safe(name))
    }

    /// A feedback request and its answer (`id` has no braces: it is a checked request id).
    pub fn feedback(&self, id: &str) -> FeedbackKeys {
        FeedbackKeys {
            base: format!("{}:{{f:{}}}", self.prefix, tag_safe(id)),
        }
    }

    /// Feedback request ids, by creation time (milliseconds).
    pub fn feedback_index(&self) -> String {
        format!("{}:feedback", self.prefix)
    }
}

/// The keys of one pool (one hash tag: its slots and its bucket change in one script).
#[derive(Debug, Clone)]
pub struct PoolKeys {
    base: String,
}

impl PoolKeys {
    /// Slot holders: members `<slots>|<holder>`, scored by lease end (ms of Redis time).
    pub fn slots(&self) -> String {
        format!("{}:slots", self.base)
    }

    /// The pool's bucket: when its next token is due (µs of Redis time).
    pub fn rate(&self) -> String {
        format!("{}:rate", self.base)
    }

    /// The slots held: the sum over the holders, kept by the pool scripts.
    pub fn used(&self) -> String {
        format!("{}:used", self.base)
    }
}

/// The keys of one feedback request.
#[derive(Debug, Clone)]
pub struct FeedbackKeys {
    base: String,
}

impl FeedbackKeys {
    /// The request, its status and its answer.
    pub fn record(&self) -> String {
        format!("{}:rec", self.base)
    }

    /// A stream that gets one entry when the request is answered or cancelled (waiters read
    /// it with `XREAD BLOCK`).
    pub fn wake(&self) -> String {
        format!("{}:wake", self.base)
    }
}

/// The keys of one run.
#[derive(Debug, Clone)]
pub struct RunKeys {
    base: String,
}

impl RunKeys {
    /// The coordinator's lease.
    pub fn coord(&self) -> String {
        format!("{}:coord", self.base)
    }

    /// One attempt's record; `tid` is `<task>:<cycle>:<attempt>`.
    pub fn attempt(&self, tid: &str) -> String {
        format!("{}:a:{tid}", self.base)
    }

    /// The ids of every attempt enqueued for the run.
    pub fn attempts(&self) -> String {
        format!("{}:attempts", self.base)
    }

    /// The prefix of attempt records (`attempt(tid)` is this plus `tid`).
    pub fn attempt_prefix(&self) -> String {
        format!("{}:a:", self.base)
    }

    /// The stream workers write to and the coordinator reads.
    pub fn out(&self) -> String {
        format!("{}:out", self.base)
    }

    /// The results mirror.
    pub fn results(&self) -> String {
        format!("{}:results", self.base)
    }

    /// Tasks added at run time.
    pub fn dynamic(&self) -> String {
        format!("{}:dyn", self.base)
    }

    /// A channel key.
    pub fn channel(&self, key: &str) -> String {
        format!("{}:c:{key}", self.base)
    }

    /// The channel's key index.
    pub fn channel_index(&self) -> String {
        format!("{}:cidx", self.base)
    }

    /// The run's events as JSON lines (a capped stream anyone can follow).
    pub fn events(&self) -> String {
        format!("{}:events", self.base)
    }

    /// What the run's event stream tells about it: workflow, state, status, times.
    pub fn info(&self) -> String {
        format!("{}:info", self.base)
    }

    /// Requests to the run's coordinator (cancel, checkpoint), a list it watches.
    pub fn control(&self) -> String {
        format!("{}:ctl", self.base)
    }

    /// Checkpoint `seq` of the run (the `.ckpt` file's bytes).
    pub fn checkpoint(&self, seq: u32) -> String {
        format!("{}:ckpt:{seq}", self.base)
    }

    /// The run's highest checkpoint number (a sorted set with the one member `top`).
    pub fn checkpoint_top(&self) -> String {
        format!("{}:ckpt-top", self.base)
    }

    /// The answer to request number `ordinal` of attempt `tid`.
    pub fn reply(&self, tid: &str, ordinal: u32) -> String {
        format!("{}:reply:{tid}:{ordinal}", self.base)
    }
}

/// The keys of one queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    base: String,
}

impl QueueKeys {
    /// The stream of ready attempts.
    pub fn stream(&self) -> String {
        format!("{}:s", self.base)
    }

    /// Dead letters.
    pub fn dlq(&self) -> String {
        format!("{}:dlq", self.base)
    }
}

/// The id of one attempt: `<task>:<cycle>:<attempt>` (the last two fields are numbers, so the
/// text names one attempt even when a task id holds `:`).
pub fn attempt_id(task: &str, cycle: u32, attempt: u32) -> String {
    format!("{task}:{cycle}:{attempt}")
}

/// The slot Redis Cluster puts `key` in (CRC16 of the hash tag, mod 16384).
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(bytes);
    crc16(tagged) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_keys_share_one_slot_and_queues_have_their_own() {
        let keys = Keys::new("graflow");
        let run = keys.run("0193abc");
        let all = [
            run.coord(),
            run.attempt("a:1:0"),
            run.attempts(),
            run.out(),
            run.results(),
            run.dynamic(),
            run.channel("k}{x"),
            run.channel_index(),
            run.reply("a:1:0", 2),
            run.events(),
            run.info(),
            run.control(),
            run.checkpoint(3),
            run.checkpoint_top(),
        ];
        let first = slot(&all[0]);
        assert!(all.iter().all(|k| slot(k) == first), "{all:?}");
        let q = keys.queue("gpu");
        assert_eq!(slot(&q.stream()), slot(&q.dlq()));
        assert_ne!(slot(&q.stream()), first);
    }

    #[test]
    fn the_slot_function_matches_redis() {
        // Values from the Redis Cluster specification's CRC16 (XMODEM) and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
    }

    #[test]
    fn braces_in_ids_cannot_break_the_hash_tag() {
        let keys = Keys::new("p");
        let a = keys.run("x}y");
        assert!(!a.coord().contains("x}y"));
        assert_eq!(slot(&a.coord()), slot(&a.out()));
    }
}
