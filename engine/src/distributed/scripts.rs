//! The Lua scripts: one per state change, each touching the keys of one hash tag (so one
//! slot on Redis Cluster). `redis::Script` sends them by SHA and loads them again after a
//! Redis restart (`NOSCRIPT`).
//!
//! | script | keys (slot) | state change |
//! | --- | --- | --- |
//! | `enqueue` | run | attempt created or re-queued, idempotently; a committed outcome is returned |
//! | `start` | run | queued → running (epoch + 1, lease); skips duplicates, dropped runs; dead-letters past the cap (dead, or held for an operator) |
//! | `heartbeat` | run | lease extended while the caller holds it; reports cancellation |
//! | `complete` | run | running → done / failed, fenced by epoch; outcome added to the run's outbox |
//! | `reclaim` | run | running with an expired lease → queued (epoch + 1 fences the lost holder) |
//! | `release` | run | running → queued on a graceful shutdown |
//! | `cancel` | run | queued / running / held → cancelled |
//! | `requeue` | run | held (a dead letter its run still waits for) → queued, by an operator |
//! | `claim`, `renew`, `finish` | run | the coordinator's lease and fencing epoch |
//! | `expire_run` | run | a finished run's keys expire after the retention time |
//! | `settle` | run | a resumed run waits for, then cancels, what a previous coordinator left running |
//! | `ch_*` | run | the channel: get, set, push, add, delete, dump, clear |
//! | `fb_create`, `fb_settle`, `fb_update` | feedback request | a request stored once; answered or cancelled once (the first wins), waking its waiters |
//! | `pool_take`, `pool_renew`, `pool_release` | pool | slots taken under a lease (expired leases dropped), then the pool bucket's next token reserved; a lease extended; slots given back |
//! | `bucket_take`, `bucket_hold` | bucket | a rate limit's next token reserved (GCRA on Redis `TIME`); no token for a while (`Retry-After`) |
//!
//! Stream operations on a queue (`XADD`, `XREADGROUP`, `XACK`, `XDEL`, `XCLAIM`,
//! `XAUTOCLAIM`) touch the queue's slot and are plain commands.

use std::sync::LazyLock;

use redis::Script;

macro_rules! scripts {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[doc = concat!("The `", $file, "` script.")]
            pub static $name: LazyLock<Script> =
                LazyLock::new(|| Script::new(include_str!(concat!("lua/", $file))));
        )*
    };
}

scripts! {
    ENQUEUE => "enqueue.lua",
    START => "start.lua",
    HEARTBEAT => "heartbeat.lua",
    COMPLETE => "complete.lua",
    RECLAIM => "reclaim.lua",
    RELEASE => "release.lua",
    CANCEL => "cancel.lua",
    REQUEUE => "requeue.lua",
    CLAIM => "claim.lua",
    RENEW => "renew.lua",
    FINISH => "finish.lua",
    CH_GET => "ch_get.lua",
    CH_SET => "ch_set.lua",
    CH_PUSH => "ch_push.lua",
    CH_ADD => "ch_add.lua",
    CH_DELETE => "ch_delete.lua",
    CH_DUMP => "ch_dump.lua",
    CH_CLEAR => "ch_clear.lua",
    EXPIRE_RUN => "expire_run.lua",
    SETTLE => "settle.lua",
    FB_CREATE => "fb_create.lua",
    FB_SETTLE => "fb_settle.lua",
    FB_UPDATE => "fb_update.lua",
    POOL_TAKE => "pool_take.lua",
    POOL_RENEW => "pool_renew.lua",
    POOL_RELEASE => "pool_release.lua",
    BUCKET_TAKE => "bucket_take.lua",
    BUCKET_HOLD => "bucket_hold.lua",
}
