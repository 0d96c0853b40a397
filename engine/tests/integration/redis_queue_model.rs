//! A model check of the queue's Lua scripts: random interleavings of enqueue (by two
//! producers), fetch, start, heartbeat, complete, crash, lease expiry, reap, release and
//! cancel on one attempt, run against a real Redis and against an in-memory model of what
//! each script must answer. After every sequence a healthy worker drains the queue; then the
//! attempt is committed exactly once (unless cancelled), the queue holds nothing, and the
//! run's outbox holds one outcome per commit.

use crate::services::Service;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::redis_server::RedisServer;
use graflow_engine::distributed::keys::{GROUP, Keys};
use graflow_engine::distributed::scripts;
use proptest::prelude::*;
use redis::Value as Reply;

const WORKERS: usize = 3;
const CAP: u32 = 4;
const TID: &str = "t:1:0";

#[derive(Debug, Clone)]
enum Op {
    Enqueue,
    /// The coordinator's sweep: an attempt whose lease expired long ago is queued again.
    Sweep,
    Fetch(usize),
    Start(usize),
    /// The worker's last start is sent again (its reply was lost on the way).
    StartAgain(usize),
    Heartbeat(usize),
    Complete(usize),
    Crash(usize),
    Expire,
    Reap,
    Release(usize),
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    let w = 0..WORKERS;
    prop_oneof![
        2 => Just(Op::Enqueue),
        1 => Just(Op::Sweep),
        3 => w.clone().prop_map(Op::Fetch),
        3 => w.clone().prop_map(Op::Start),
        1 => w.clone().prop_map(Op::StartAgain),
        2 => w.clone().prop_map(Op::Heartbeat),
        3 => w.clone().prop_map(Op::Complete),
        1 => w.clone().prop_map(Op::Crash),
        1 => Just(Op::Expire),
        2 => Just(Op::Reap),
        1 => w.prop_map(Op::Release),
        1 => Just(Op::Cancel),
    ]
}

/// What the model knows of the attempt.
#[derive(Debug, Clone, Default)]
struct Record {
    state: Option<&'static str>,
    epoch: u64,
    owner: Option<usize>,
    lease_valid: bool,
    deliveries: u32,
}

#[derive(Debug, Default, Clone)]
struct WorkerState {
    fetched: Vec<String>,
    held: Option<(u64, String)>,
}

struct Harness {
    conn: redis::Connection,
    keys: graflow_engine::distributed::keys::RunKeys,
    stream: String,
    rec: Record,
    workers: Vec<WorkerState>,
    commits: u32,
    cancelled: bool,
}

fn text(v: &Reply) -> String {
    match v {
        Reply::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::SimpleString(s) => s.clone(),
        Reply::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

impl Harness {
    fn new(server: &RedisServer, case: u32) -> Harness {
        let client = redis::Client::open(server.url()).unwrap_or_else(|e| panic!("{e}"));
        let mut conn = client.get_connection().unwrap_or_else(|e| panic!("{e}"));
        let keys = Keys::new(format!("m{case}"));
        let run = keys.run("r");
        let stream = keys.queue("q").stream();
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("{e}"));
        let claimed: Vec<String> = scripts::CLAIM
            .key(run.coord())
            .arg("coordinator")
            .arg(3_600_000)
            .arg(0)
            .invoke(&mut conn)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claimed[0], "ok");
        Harness {
            conn,
            keys: run,
            stream,
            rec: Record::default(),
            workers: vec![WorkerState::default(); WORKERS],
            commits: 0,
            cancelled: false,
        }
    }

    fn ack(&mut self, entry: &str) {
        let _: () = redis::pipe()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(entry)
            .ignore()
            .query(&mut self.conn)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn xadd(&mut self) {
        let _: String = redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("run")
            .arg("r")
            .arg("tid")
            .arg(TID)
            .query(&mut self.conn)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn name(w: usize) -> String {
        format!("w{w}")
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Enqueue | Op::Sweep => {
                let sweep = matches!(op, Op::Sweep);
                let reply: Vec<String> = scripts::ENQUEUE
                    .key(self.keys.coord())
                    .key(self.keys.attempt(TID))
                    .key(self.keys.attempts())
                    .arg(1)
                    .arg("{}")
                    .arg("q")
                    .arg(3_600_000)
                    .arg(TID)
                    .arg(if sweep { "1" } else { "0" })
                    .arg("[]")
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                let lost = sweep && self.rec.state == Some("running") && !self.rec.lease_valid;
                let expect = match self.rec.state {
                    Some("done" | "failed" | "dead") => "terminal",
                    _ if lost => "queued",
                    Some("queued" | "running") => "pending",
                    _ => "queued",
                };
                if reply[0] != expect {
                    return Err(format!("enqueue: {reply:?}, model {expect}"));
                }
                if lost {
                    self.rec.epoch += 1;
                    self.rec.state = Some("queued");
                    self.rec.owner = None;
                    self.xadd();
                } else {
                    if expect == "queued" {
                        self.rec.state = Some("queued");
                        self.rec.owner = None;
                        self.rec.deliveries = 0;
                        self.cancelled = false;
                    }
                    let added = expect == "queued" || (expect == "pending" && !sweep);
                    if added && self.rec.state == Some("queued") {
                        self.xadd();
                    }
                }
            }
            Op::Fetch(w) => {
                let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(Self::name(w))
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS")
                    .arg(&self.stream)
                    .arg(">")
                    .query(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                if let Some(r) = reply {
                    for k in r.keys {
                        for id in k.ids {
                            self.workers[w].fetched.push(id.id);
                        }
                    }
                }
            }
            Op::Start(w) => {
                let Some(entry) = self.workers[w].fetched.pop() else {
                    return Ok(());
                };
                self.start(w, entry, false)?;
            }
            Op::StartAgain(w) => {
                let Some((_, entry)) = self.workers[w].held.clone() else {
                    return Ok(());
                };
                self.start(w, entry, true)?;
            }
            Op::Heartbeat(w) => {
                let Some((epoch, _)) = self.workers[w].held.clone() else {
                    return Ok(());
                };
                let got: String = scripts::HEARTBEAT
                    .key(self.keys.attempt(TID))
                    .key(self.keys.coord())
                    .arg(Self::name(w))
                    .arg(epoch)
                    .arg(3_600_000)
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                let mine = self.rec.owner == Some(w) && self.rec.epoch == epoch;
                let expect = match self.rec.state {
                    Some("running") if mine => "ok",
                    Some("cancelled") if mine => "cancelled",
                    _ => "lost",
                };
                if got != expect {
                    return Err(format!("heartbeat by w{w}: {got}, model {expect}"));
                }
                if expect == "ok" {
                    self.rec.lease_valid = true;
                } else {
                    self.workers[w].held = None; // the worker stops the body
                }
            }
            Op::Complete(w) => {
                let Some((epoch, entry)) = self.workers[w].held.take() else {
                    return Ok(());
                };
                let got: String = scripts::COMPLETE
                    .key(self.keys.attempt(TID))
                    .key(self.keys.out())
                    .arg(Self::name(w))
                    .arg(epoch)
                    .arg("done")
                    .arg("1")
                    .arg("")
                    .arg("")
                    .arg("1.0")
                    .arg(TID)
                    .arg("")
                    .arg("[]")
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                let mine = self.rec.owner == Some(w) && self.rec.epoch == epoch;
                let expect = match self.rec.state {
                    Some("running") if mine => "ok",
                    Some("done") if mine => "ok",
                    _ => "stale",
                };
                if got != expect {
                    return Err(format!(
                        "complete by w{w}: {got}, model {expect} ({:?})",
                        self.rec
                    ));
                }
                if expect == "ok" && self.rec.state == Some("running") {
                    self.rec.state = Some("done");
                    self.commits += 1;
                }
                self.ack(&entry);
            }
            Op::Crash(w) => self.workers[w] = WorkerState::default(),
            Op::Expire => {
                if self.rec.state == Some("running") {
                    let _: () = redis::cmd("HSET")
                        .arg(self.keys.attempt(TID))
                        .arg("lease_until")
                        .arg(0)
                        .query(&mut self.conn)
                        .map_err(|e| e.to_string())?;
                    self.rec.lease_valid = false;
                }
            }
            Op::Reap => self.reap()?,
            Op::Release(w) => {
                let Some((epoch, entry)) = self.workers[w].held.take() else {
                    return Ok(());
                };
                let got: String = scripts::RELEASE
                    .key(self.keys.attempt(TID))
                    .arg(Self::name(w))
                    .arg(epoch)
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                let mine = self.rec.owner == Some(w) && self.rec.epoch == epoch;
                let expect = if self.rec.state == Some("running") && mine {
                    "requeue"
                } else {
                    "stale"
                };
                if got != expect {
                    return Err(format!("release by w{w}: {got}, model {expect}"));
                }
                if expect == "requeue" {
                    self.rec.epoch += 1;
                    self.rec.state = Some("queued");
                    self.rec.owner = None;
                    self.rec.deliveries = self.rec.deliveries.saturating_sub(1);
                    self.xadd();
                }
                self.ack(&entry);
            }
            Op::Cancel => {
                let got: String = scripts::CANCEL
                    .key(self.keys.attempt(TID))
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                if matches!(self.rec.state, Some("queued" | "running")) {
                    if got != "cancelled" {
                        return Err(format!("cancel: {got}"));
                    }
                    self.rec.state = Some("cancelled");
                    self.cancelled = true;
                }
            }
        }
        Ok(())
    }

    /// Worker `w` starts the attempt from `entry`; `again`: the same start sent a second
    /// time (its reply was lost), which must not start it twice.
    fn start(&mut self, w: usize, entry: String, again: bool) -> Result<(), String> {
        let reply: Vec<Reply> = scripts::START
            .key(self.keys.attempt(TID))
            .key(self.keys.coord())
            .key(self.keys.out())
            .key(self.keys.results())
            .arg(Self::name(w))
            .arg(3_600_000)
            .arg(CAP)
            .arg(TID)
            .arg(&entry)
            .invoke(&mut self.conn)
            .map_err(|e| e.to_string())?;
        let got = text(&reply[0]);
        let held_here = self.workers[w]
            .held
            .as_ref()
            .is_some_and(|(epoch, e)| *e == entry && *epoch == self.rec.epoch);
        let same =
            again && self.rec.state == Some("running") && self.rec.owner == Some(w) && held_here;
        let expect = match self.rec.state {
            _ if same => "run",
            None => "gone",
            Some("queued") => "run",
            Some("running") if self.rec.lease_valid => "busy",
            Some("running") => "run",
            Some(_) => "terminal",
        };
        let expect = if expect == "run" && !same && self.rec.deliveries + 1 > CAP {
            "dead"
        } else {
            expect
        };
        if got != expect {
            return Err(format!(
                "start by w{w} (again: {again}): {got}, model {expect} ({:?})",
                self.rec
            ));
        }
        match expect {
            "run" => {
                if !same {
                    self.rec.epoch += 1;
                    self.rec.deliveries += 1;
                }
                self.rec.state = Some("running");
                self.rec.owner = Some(w);
                self.rec.lease_valid = true;
                let epoch: u64 = text(&reply[1]).parse().unwrap_or(0);
                if epoch != self.rec.epoch {
                    return Err(format!("start epoch {epoch}, model {}", self.rec.epoch));
                }
                self.workers[w].held = Some((epoch, entry));
            }
            "dead" => {
                self.rec.state = Some("dead");
                self.workers[w].held = None;
                self.ack(&entry);
            }
            _ => {
                if again {
                    self.workers[w].held = None;
                }
                self.ack(&entry);
            }
        }
        Ok(())
    }

    /// Claim every pending entry (as a reaper whose lease threshold passed) and let the
    /// reclaim script decide.
    fn reap(&mut self) -> Result<(), String> {
        let reply: Vec<Reply> = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("reaper")
            .arg(0)
            .arg("0-0")
            .arg("COUNT")
            .arg(100)
            .query(&mut self.conn)
            .map_err(|e| e.to_string())?;
        let Some(Reply::Array(entries)) = reply.get(1) else {
            return Ok(());
        };
        let ids: Vec<String> = entries
            .iter()
            .filter_map(|e| match e {
                Reply::Array(p) => p.first().map(text),
                _ => None,
            })
            .collect();
        for id in ids {
            if self
                .workers
                .iter()
                .any(|w| w.held.as_ref().is_some_and(|(_, e)| *e == id))
            {
                // A live holder's entry: its heartbeat takes it back.
                let verdict: String = scripts::RECLAIM
                    .key(self.keys.attempt(TID))
                    .invoke(&mut self.conn)
                    .map_err(|e| e.to_string())?;
                if self.rec.state == Some("running") && self.rec.lease_valid && verdict != "alive" {
                    return Err(format!("reclaim of a live lease: {verdict}"));
                }
                self.after_reclaim(&verdict, &id);
                continue;
            }
            let verdict: String = scripts::RECLAIM
                .key(self.keys.attempt(TID))
                .invoke(&mut self.conn)
                .map_err(|e| e.to_string())?;
            let expect = match self.rec.state {
                Some("queued") => "requeue",
                Some("running") if self.rec.lease_valid => "alive",
                Some("running") => "requeue",
                _ => "ack",
            };
            if verdict != expect {
                return Err(format!(
                    "reclaim: {verdict}, model {expect} ({:?})",
                    self.rec
                ));
            }
            self.after_reclaim(&verdict, &id);
        }
        Ok(())
    }

    fn after_reclaim(&mut self, verdict: &str, id: &str) {
        match verdict {
            "ack" => self.ack(id),
            "requeue" => {
                if self.rec.state == Some("running") {
                    self.rec.epoch += 1;
                    self.rec.owner = None;
                }
                self.rec.state = Some("queued");
                self.xadd();
                self.ack(id);
            }
            _ => {}
        }
    }

    fn stream_len(&mut self) -> u64 {
        redis::cmd("XLEN")
            .arg(&self.stream)
            .query(&mut self.conn)
            .unwrap_or(0)
    }

    fn outcomes(&mut self) -> u64 {
        redis::cmd("XLEN")
            .arg(self.keys.out())
            .query(&mut self.conn)
            .unwrap_or(0)
    }

    /// Every worker crashes; leases expire; a fresh worker reaps and works until the queue is
    /// empty.
    fn drain(&mut self) -> Result<(), String> {
        for w in 0..WORKERS {
            self.apply(&Op::Crash(w))?;
        }
        self.apply(&Op::Expire)?;
        for _ in 0..(CAP + 4) * 3 {
            self.apply(&Op::Reap)?;
            self.apply(&Op::Sweep)?;
            self.apply(&Op::Fetch(0))?;
            self.apply(&Op::Start(0))?;
            self.apply(&Op::Complete(0))?;
            if self.stream_len() == 0 {
                break;
            }
        }
        Ok(())
    }
}

#[test]
fn random_interleavings_commit_each_attempt_exactly_once() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let case = AtomicU32::new(0);
    let config = ProptestConfig {
        cases: 500,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..40))| {
        let mut h = Harness::new(&server, case.fetch_add(1, Ordering::Relaxed));
        h.apply(&Op::Enqueue).map_err(TestCaseError::fail)?;
        for op in &ops {
            if let Err(e) = h.apply(op) {
                return Err(TestCaseError::fail(format!("{e} after {ops:?}")));
            }
            prop_assert!(h.commits <= 1, "two commits after {:?}", ops);
        }
        h.drain().map_err(|e| TestCaseError::fail(format!("{e} in the drain after {ops:?}")))?;
        let state = h.rec.state;
        match state {
            Some("done") => prop_assert_eq!(h.commits, 1, "{:?}", ops),
            Some("cancelled") | Some("dead") => prop_assert!(h.commits == 0, "{:?}", ops),
            other => prop_assert!(false, "left {:?} after the drain: {:?}", other, ops),
        }
        prop_assert_eq!(h.stream_len(), 0, "entries left after {:?}", ops);
        let dead = u64::from(state == Some("dead"));
        prop_assert_eq!(h.outcomes(), u64::from(h.commits) + dead, "outbox after {:?}", ops);
    });
}

#[test]
fn two_producers_with_one_key_make_one_task() {
    needs!(Service::Redis);
    let server = RedisServer::start_with(&[]);
    let mut h = Harness::new(&server, 10_000);
    let mut replies = HashMap::new();
    for producer in 0..2 {
        let reply: Vec<String> = scripts::ENQUEUE
            .key(h.keys.coord())
            .key(h.keys.attempt(TID))
            .key(h.keys.attempts())
            .arg(1)
            .arg(format!("{{\"producer\": {producer}}}"))
            .arg("q")
            .arg(60_000)
            .arg(TID)
            .arg("0")
            .arg("[]")
            .invoke(&mut h.conn)
            .unwrap_or_else(|e| panic!("{e}"));
        replies.insert(producer, reply[0].clone());
    }
    assert_eq!(replies[&0], "queued");
    assert_eq!(replies[&1], "pending");
    let payload: String = redis::cmd("HGET")
        .arg(h.keys.attempt(TID))
        .arg("payload")
        .query(&mut h.conn)
        .unwrap_or_default();
    assert_eq!(
        payload, "{\"producer\": 0}",
        "the first producer's attempt stands"
    );
}
