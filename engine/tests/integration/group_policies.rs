//! Parallel-group policies at run time, each at its boundary, with the group failure listing
//! every failed member and the successful ones.

use crate::common;

use std::sync::Arc;

use common::{Trace, failing, recs, run};
use graflow_engine::prelude::*;
use graflow_engine::{CustomPolicy, GroupFailure, MemberOutcome, Rejection, WorkflowBuilder};

/// `start >> (ok members | failing members).policy(p) >> after`
fn group_workflow(ok: &[&str], bad: &[&str], policy: GroupPolicy) -> (WorkflowBuilder, Trace) {
    let trace = Trace::default();
    let mut wf = Workflow::builder("policy");
    let [start, after] = recs(&mut wf, &trace, ["start", "after"]);
    let mut members: Vec<Flow> = ok
        .iter()
        .map(|id| common::rec(&mut wf, &trace, id).into())
        .collect();
    members.extend(
        bad.iter()
            .map(|id| Flow::from(failing(&mut wf, &trace, id))),
    );
    let group = members
        .into_iter()
        .reduce(|a, b| a | b)
        .unwrap()
        .named("g")
        .policy(policy);
    wf.flow(start >> group >> after);
    (wf, trace)
}

fn group_failure(out: &RunOutcome) -> &GroupFailure {
    match &out.error {
        Some(RunError::GroupFailed(f)) => f,
        other => panic!("expected a group failure, got {other:?}"),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn strict_fails_on_one_failure_and_lists_every_member() {
    let (wf, trace) = group_workflow(&["a", "b"], &["x", "y"], GroupPolicy::Strict);
    let (out, _) = run(wf).await;
    assert_eq!(out.status, RunStatus::Failed);
    let f = group_failure(&out);
    assert_eq!(f.group, "g");
    assert_eq!(f.message, "parallel group 'g' failed: 2 task(s) failed");
    let mut failed = f.failed.clone();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("x".to_string(), "task 'x' failed: x broke".to_string()),
            ("y".to_string(), "task 'y' failed: y broke".to_string())
        ]
    );
    assert_eq!(sorted(f.succeeded.clone()), ["a", "b"]);
    assert_eq!(trace.count("after"), 0);
    let text = out.error.as_ref().unwrap().to_string();
    assert!(
        text.contains("failed: [") && text.contains("succeeded: ["),
        "{text}"
    );
}

#[tokio::test]
async fn strict_passes_when_all_succeed() {
    let (wf, trace) = group_workflow(&["a", "b"], &[], GroupPolicy::Strict);
    let (out, _) = run(wf).await;
    assert!(out.succeeded());
    assert_eq!(trace.count("after"), 1);
}

#[tokio::test]
async fn best_effort_continues_after_failures() {
    let (wf, trace) = group_workflow(&["a"], &["x", "y"], GroupPolicy::BestEffort);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.count("after"), 1);
    let failed = events.iter().find_map(|e| match &e.kind {
        EventKind::GroupFinished { failed, ok, .. } => Some((failed.len(), *ok)),
        _ => None,
    });
    assert_eq!(failed, Some((2, true)));
}

#[tokio::test]
async fn at_least_n_with_exactly_n_successes_passes() {
    let (wf, trace) = group_workflow(&["a", "b"], &["x"], GroupPolicy::AtLeast(2));
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.count("after"), 1);
}

#[tokio::test]
async fn at_least_n_one_short_fails() {
    let (wf, trace) = group_workflow(&["a"], &["x", "y"], GroupPolicy::AtLeast(2));
    let (out, _) = run(wf).await;
    let f = group_failure(&out);
    assert_eq!(f.message, "only 1/2 tasks succeeded in group 'g'");
    assert_eq!(f.failed.len(), 2);
    assert_eq!(f.succeeded, ["a"]);
    assert_eq!(trace.count("after"), 0);
}

#[tokio::test]
async fn critical_tasks_ignore_optional_failures() {
    let (wf, trace) = group_workflow(
        &["a", "b"],
        &["x"],
        GroupPolicy::Critical(vec!["a".into(), "b".into()]),
    );
    let (out, _) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.count("after"), 1);
}

#[tokio::test]
async fn a_failed_critical_task_fails_the_group_and_lists_only_critical_failures() {
    let (wf, _) = group_workflow(
        &["a"],
        &["x", "y"],
        GroupPolicy::Critical(vec!["a".into(), "x".into()]),
    );
    let (out, _) = run(wf).await;
    let f = group_failure(&out);
    assert_eq!(f.message, "critical tasks failed in group 'g': [x]");
    assert_eq!(
        f.failed,
        [("x".to_string(), "task 'x' failed: x broke".to_string())]
    );
    assert_eq!(f.succeeded, ["a"]);
}

#[derive(Debug)]
struct AtMostOneFailure;

impl CustomPolicy for AtMostOneFailure {
    fn name(&self) -> &str {
        "at_most_one_failure"
    }
    fn evaluate(&self, group: &str, outcomes: &[MemberOutcome]) -> Result<(), Rejection> {
        let failures = outcomes.iter().filter(|o| !o.succeeded()).count();
        if failures > 1 {
            Err(format!("{failures} failures in {group}").into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_custom_policy_decides() {
    let policy = || GroupPolicy::Custom(Arc::new(AtMostOneFailure));
    let (wf, _) = group_workflow(&["a"], &["x"], policy());
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::GroupFinished { policy, .. } if policy == "at_most_one_failure")));

    let (wf, _) = group_workflow(&["a"], &["x", "y"], policy());
    let (out, _) = run(wf).await;
    assert_eq!(group_failure(&out).message, "2 failures in g");
}

#[tokio::test]
async fn a_member_chain_failing_midway_fails_the_member() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("chain-member");
    let [a, c, after] = recs(&mut wf, &trace, ["a", "c", "after"]);
    let b = failing(&mut wf, &trace, "b");
    wf.flow((a >> b | c).named("g").policy(GroupPolicy::AtLeast(1)) >> after);
    let (out, events) = run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(trace.get().last().map(String::as_str), Some("after"));
    let finished = events.iter().find_map(|e| match &e.kind {
        EventKind::GroupFinished {
            succeeded, failed, ..
        } => Some((succeeded.clone(), failed.clone())),
        _ => None,
    });
    assert_eq!(
        finished,
        Some((
            vec!["c".to_string()],
            vec![("a".to_string(), "task 'b' failed: b broke".to_string())]
        ))
    );
}
