//! The sandboxed Rhai engine: limits, no module loading, no `eval`, `print`/`debug` routed to
//! the task's log, a cooperative `sleep`, and the per-execution guard that lets one shared
//! engine stop each evaluation on its own (a stop flag and an operation budget).
//!
//! Rhai's progress callback is engine-wide and only sees an operation count, so the state of
//! the evaluation running on this thread lives in a thread-local installed by [`enter`] for
//! the duration of one evaluation.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT, Position, Token};

use crate::context::TaskContext;

/// The sandbox's limits. The defaults are documented in `docs/script-api.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Operations one execution of a `Script` task may run (default 5,000,000).
    pub max_operations: u64,
    /// Operations one evaluation of a custom group policy may run (default 100,000; policies
    /// are evaluated on the scheduler's thread, so they get a small budget).
    pub policy_max_operations: u64,
    /// Nested function calls (default 64).
    pub max_call_levels: usize,
    /// Expression nesting at the top level (default 64).
    pub max_expr_depth: usize,
    /// Expression nesting inside functions (default 32).
    pub max_function_expr_depth: usize,
    /// Bytes in one string (default 10 MiB).
    pub max_string_size: usize,
    /// Items in one array (default 100,000).
    pub max_array_size: usize,
    /// Entries in one object map (default 100,000).
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 5_000_000,
            policy_max_operations: 100_000,
            max_call_levels: 64,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 10 * 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 100_000,
        }
    }
}

/// Why the progress callback ended an evaluation (carried in `ErrorTerminated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Halt {
    /// The task's future was dropped (timeout or run cancellation).
    Stopped,
    /// The execution's operation budget is spent.
    OperationLimit(u64),
    /// The evaluation ran past its time limit (custom group policies).
    TimeLimit(Duration),
}

/// Stack of the threads scripts and custom policies run on. Rhai checks, clones and drops
/// nested arrays and maps recursively, and a script may nest them as deep as the size limits
/// allow (one item per level): the stack is reserved, not committed, so a large one costs
/// nothing until a script goes deep.
pub(super) const SCRIPT_STACK_BYTES: usize = 1 << 30;

/// A job for a script thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Script threads waiting for a job: each listens on its own channel.
static IDLE: parking_lot::Mutex<Vec<std::sync::mpsc::Sender<Job>>> =
    parking_lot::Mutex::new(Vec::new());

/// How long an idle script thread waits for another job before it ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Run `f` on a script thread ([`SCRIPT_STACK_BYTES`] of stack): an idle one when there is
/// one, else a new one, which stays for [`KEEP_ALIVE`] after its job for the next.
pub(super) fn spawn_script_thread<F>(f: F) -> std::io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    let mut job: Job = Box::new(f);
    loop {
        let Some(idle) = IDLE.lock().pop() else {
            break;
        };
        match idle.send(job) {
            Ok(()) => return Ok(()),
            // That thread has just ended: try the next one.
            Err(std::sync::mpsc::SendError(back)) => job = back,
        }
    }
    std::thread::Builder::new()
        .name("graflow-script".into())
        .stack_size(SCRIPT_STACK_BYTES)
        .spawn(move || {
            let mut job = job;
            loop {
                job();
                let (tx, rx) = std::sync::mpsc::channel();
                IDLE.lock().push(tx);
                match rx.recv_timeout(KEEP_ALIVE) {
                    Ok(next) => job = next,
                    Err(_) => return,
                }
            }
        })
        .map(|_| ())
}

/// How often (in operations) the stop flag is read.
const STOP_CHECK_EVERY: u64 = 64;

thread_local! {
    /// Operation budget of the evaluation running on this thread.
    static BUDGET: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Stop flag and log target of the evaluation running on this thread.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

struct Current {
    stop: Option<Arc<AtomicBool>>,
    log: Option<TaskContext>,
    deadline: Option<(Instant, Duration)>,
}

/// What one evaluation runs under.
pub(super) struct Execution {
    /// Operation budget.
    pub budget: u64,
    /// Set when the evaluation must stop.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where `print` and `debug` write.
    pub log: Option<TaskContext>,
    /// A time limit, for evaluations that block their caller (custom group policies).
    pub time_limit: Option<Duration>,
}

/// Restores the thread's previous execution state when dropped.
pub(super) struct Entered {
    budget: u64,
    previous: Option<Current>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.budget));
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Install `exec` as the state of the evaluation about to run on this thread.
pub(super) fn enter(exec: Execution) -> Entered {
    let budget = BUDGET.with(|b| b.replace(exec.budget));
    let previous = CURRENT.with(|c| {
        c.borrow_mut().replace(Current {
            stop: exec.stop,
            log: exec.log,
            deadline: exec
                .time_limit
                .and_then(|limit| Some((Instant::now().checked_add(limit)?, limit))),
        })
    });
    Entered { budget, previous }
}

/// Whether the evaluation running on this thread was asked to stop.
pub(super) fn stopped() -> bool {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(c) => c
            .as_ref()
            .and_then(|c| c.stop.as_ref())
            .is_some_and(|s| s.load(Ordering::Relaxed)),
        Err(_) => false,
    })
}

/// The time limit of the evaluation on this thread, when it has passed.
fn past_deadline() -> Option<Duration> {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(c) => c
            .as_ref()
            .and_then(|c| c.deadline)
            .filter(|(at, _)| Instant::now() >= *at)
            .map(|(_, limit)| limit),
        Err(_) => None,
    })
}

/// The deadline of the evaluation on this thread, if it has one.
fn deadline() -> Option<Instant> {
    CURRENT.with(|c| c.try_borrow().ok()?.as_ref()?.deadline.map(|(at, _)| at))
}

/// The error a native function returns when the evaluation was stopped.
pub(super) fn stopped_error() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(Halt::Stopped), Position::NONE).into()
}

fn progress(ops: u64) -> Option<Dynamic> {
    let budget = BUDGET.with(Cell::get);
    if ops > budget {
        return Some(Dynamic::from(Halt::OperationLimit(budget)));
    }
    if ops.is_multiple_of(STOP_CHECK_EVERY) {
        if stopped() {
            return Some(Dynamic::from(Halt::Stopped));
        }
        if let Some(limit) = past_deadline() {
            return Some(Dynamic::from(Halt::TimeLimit(limit)));
        }
    }
    None
}

fn log_line(prefix: &str, line: &str) {
    let routed = CURRENT.with(|c| match c.try_borrow() {
        Ok(c) => match c.as_ref().and_then(|c| c.log.as_ref()) {
            Some(ctx) => {
                ctx.log(format!("{prefix}{line}"));
                true
            }
            None => false,
        },
        Err(_) => false,
    });
    if !routed {
        tracing::info!(target: "graflow::script", "{prefix}{line}");
    }
}

/// Sleep in short slices so a stopped evaluation wakes within ~10 ms.
fn sleep_cooperatively(seconds: f64) -> Result<(), Box<EvalAltResult>> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Ok(());
    }
    let end = Instant::now() + Duration::from_secs_f64(seconds.min(86_400.0));
    let end = deadline().map_or(end, |d| d.min(end));
    loop {
        if stopped() {
            return Err(stopped_error());
        }
        if let Some(limit) = past_deadline() {
            return Err(EvalAltResult::ErrorTerminated(
                Dynamic::from(Halt::TimeLimit(limit)),
                Position::NONE,
            )
            .into());
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Build the shared engine: standard packages, the sandbox, and the `ctx` API.
pub(super) fn build_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(DummyModuleResolver::new());
    engine.set_max_modules(0);
    engine.disable_symbol("eval");
    engine.disable_symbol("import");
    engine.set_max_operations(limits.max_operations.max(limits.policy_max_operations));
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    // `goto` is a reserved word in Rhai, but `ctx.goto(id)` is part of the script API: read
    // it as a plain identifier (Rhai gives the word no meaning of its own).
    #[allow(deprecated)]
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if word.as_str() == "goto" => Token::Identifier(word),
        other => other,
    });
    engine.on_progress(progress);
    engine.on_print(|s| log_line("", s));
    engine.on_debug(|s, _source, pos| {
        let at = if pos.is_none() {
            String::new()
        } else {
            format!(
                " (line {}, column {})",
                pos.line().unwrap_or(0),
                pos.position().unwrap_or(0)
            )
        };
        log_line("debug: ", &format!("{s}{at}"))
    });
    engine.register_fn("sleep", |seconds: INT| sleep_cooperatively(seconds as f64));
    engine.register_fn("sleep", |seconds: FLOAT| sleep_cooperatively(seconds));
    super::api::register(&mut engine);
    engine
}
