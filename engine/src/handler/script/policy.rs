//! Custom group policies written in Rhai: a script evaluated over the members' outcomes that
//! returns `true` (the group passes) or `false` (it fails).
//!
//! In scope: `outcomes` (array of `#{id, ok, error, duration_ms}` in completion order; `error`
//! is `()` for a success), `succeeded`, `failed`, `total` (counts) and `group` (its id). The
//! policy runs on the scheduler's thread with the sandbox's smaller policy operation budget.

use std::sync::Arc;

use rhai::{AST, Array, Dynamic, INT, Map, Scope};

use super::exec::{describe, failure};
use super::sandbox::{self, Execution};
use super::{ScriptError, ScriptRuntime};
use crate::group::{CustomPolicy, MemberOutcome, Rejection};

/// A group policy written as a Rhai expression over the members' outcomes.
pub struct ScriptPolicy {
    expression: Arc<str>,
    ast: AST,
    runtime: ScriptRuntime,
    /// Whether the script names `outcomes` (building that array costs more than the rest of
    /// a big group's evaluation, so it is built only for scripts that can read it).
    reads_outcomes: bool,
}

impl std::fmt::Debug for ScriptPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptPolicy")
            .field("expression", &self.expression)
            .finish()
    }
}

impl ScriptPolicy {
    /// Compile `expression` (any script whose last expression is the verdict); a compile
    /// error carries its line and column.
    pub fn new(expression: &str, runtime: &ScriptRuntime) -> Result<Self, ScriptError> {
        let ast = runtime.compile(expression)?;
        Ok(ScriptPolicy {
            expression: Arc::from(expression),
            ast,
            runtime: runtime.clone(),
            reads_outcomes: expression.contains("outcomes"),
        })
    }

    /// The policy's source.
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

fn outcome_map(o: &MemberOutcome) -> Dynamic {
    let mut m = Map::new();
    m.insert("id".into(), o.id.clone().into());
    m.insert("ok".into(), o.succeeded().into());
    m.insert(
        "error".into(),
        o.error.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert("duration_ms".into(), (o.duration_ms as INT).into());
    m.into()
}

impl CustomPolicy for ScriptPolicy {
    /// Evaluated on a thread of its own (a large stack, see `sandbox`), within the policy
    /// operation budget and [`POLICY_TIME_LIMIT`](crate::limits::POLICY_TIME_LIMIT): a policy
    /// that sleeps or loops fails the group instead of blocking the scheduler.
    fn evaluate(&self, group: &str, outcomes: &[MemberOutcome]) -> Result<(), Rejection> {
        let ast = self.ast.clone();
        let runtime = self.runtime.clone();
        let counts = Counts::of(outcomes);
        let outcomes = if self.reads_outcomes {
            outcomes.iter().map(outcome_map).collect::<Array>()
        } else {
            Array::new()
        };
        let group = group.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        sandbox::spawn_script_thread(move || {
            let _ = tx.send(evaluate(&runtime, &ast, &group, outcomes, counts));
        })
        .map_err(|e| format!("cannot start the custom policy's thread: {e}"))?;
        Ok(rx
            .recv()
            .unwrap_or_else(|_| Err("the custom policy's thread failed".into()))?)
    }
}

/// How many members there were and how many succeeded.
#[derive(Clone, Copy)]
struct Counts {
    total: usize,
    succeeded: usize,
}

impl Counts {
    fn of(outcomes: &[MemberOutcome]) -> Self {
        Counts {
            total: outcomes.len(),
            succeeded: outcomes.iter().filter(|o| o.succeeded()).count(),
        }
    }
}

fn evaluate(
    runtime: &ScriptRuntime,
    ast: &AST,
    group: &str,
    outcomes: Array,
    counts: Counts,
) -> Result<(), String> {
    {
        let limits = runtime.limits();
        let engine = runtime.engine();
        let Counts { total, succeeded } = counts;
        let mut scope = Scope::new();
        scope.push("outcomes", outcomes);
        scope.push("succeeded", succeeded as INT);
        scope.push("failed", (total - succeeded) as INT);
        scope.push("total", total as INT);
        scope.push("group", group.to_string());
        let verdict = {
            let _entered = sandbox::enter(Execution {
                budget: limits.policy_max_operations,
                stop: None,
                log: None,
                time_limit: Some(crate::limits::POLICY_TIME_LIMIT),
            });
            engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast)
        };
        match verdict {
            Ok(v) => match v.as_bool() {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!(
                    "custom policy rejected group '{group}': {succeeded}/{total} members succeeded"
                )),
                Err(found) => Err(format!(
                    "custom policy of group '{group}' must return true or false, got {found} {v:?}"
                )),
            },
            Err(e) => {
                if matches!(e.unwrap_inner(), rhai::EvalAltResult::ErrorRuntime(..)) {
                    Err(describe(&e, limits).message)
                } else {
                    Err(format!(
                        "custom policy of group '{group}' failed: {}",
                        failure(&e, limits, None)
                    ))
                }
            }
        }
    }
}
