//! Parallel-group policies: how a group's member outcomes decide whether the group succeeded.
//!
//! The rules follow the original Graflow exactly (strict, best effort, at least n, critical
//! members, custom); a misconfigured policy is caught when the workflow is built.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::BuildError;

/// How one member of a group ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberOutcome {
    /// The member's id (the task or group that heads its branch).
    pub id: String,
    /// `None` on success, the error message on failure.
    pub error: Option<String>,
    /// Wall time of the member's branch in milliseconds.
    pub duration_ms: u64,
}

impl MemberOutcome {
    /// Whether the member succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// A group's failure: the policy's message, every failed member with its message, the successes.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
#[error("{message}{}; succeeded: [{}]", failed_list(.failed), .succeeded.join(", "))]
pub struct GroupFailure {
    /// The group.
    pub group: String,
    /// The policy's verdict, e.g. "parallel group 'g' failed: 2 task(s) failed".
    pub message: String,
    /// Failed members with their error messages, in completion order.
    pub failed: Vec<(String, String)>,
    /// Successful members, in completion order.
    pub succeeded: Vec<String>,
}

fn failed_list(failed: &[(String, String)]) -> String {
    if failed.is_empty() {
        return String::new();
    }
    let items: Vec<String> = failed
        .iter()
        .map(|(id, msg)| format!("{id} ({msg})"))
        .collect();
    format!("; failed: [{}]", items.join(", "))
}

/// A user-defined policy. Return `Err(reason.into())` to fail the group.
pub trait CustomPolicy: Send + Sync + fmt::Debug {
    /// A short name shown in events and the studio.
    fn name(&self) -> &str {
        "custom"
    }
    /// Judge the members' outcomes (given in completion order).
    fn evaluate(&self, group: &str, outcomes: &[MemberOutcome]) -> Result<(), Rejection>;
}

/// Why a [`CustomPolicy`] failed its group; the reason becomes the group failure's message.
/// Made from text: `Err("two members failed".into())`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    /// What the members' outcomes lacked.
    pub reason: String,
}

impl From<String> for Rejection {
    fn from(reason: String) -> Rejection {
        Rejection { reason }
    }
}

impl From<&str> for Rejection {
    fn from(reason: &str) -> Rejection {
        Rejection {
            reason: reason.to_string(),
        }
    }
}

/// The rule that decides whether a parallel group succeeded.
#[derive(Debug, Clone, Default)]
pub enum GroupPolicy {
    /// Every member must succeed (the default).
    #[default]
    Strict,
    /// The group always succeeds; failures are only reported.
    BestEffort,
    /// At least `n` members must succeed.
    AtLeast(usize),
    /// The listed members must succeed; others may fail.
    Critical(Vec<String>),
    /// A user-defined rule.
    Custom(Arc<dyn CustomPolicy>),
}

impl GroupPolicy {
    /// The policy's name as used in events: `strict`, `best_effort`, `at_least_n`, `critical_tasks`, or the custom name.
    pub fn name(&self) -> String {
        match self {
            GroupPolicy::Strict => "strict".into(),
            GroupPolicy::BestEffort => "best_effort".into(),
            GroupPolicy::AtLeast(n) => format!("at_least_n({n})"),
            GroupPolicy::Critical(ids) => format!("critical_tasks({})", ids.join(",")),
            GroupPolicy::Custom(c) => c.name().to_string(),
        }
    }

    /// The policy in the workflow file's words, for every message and view: `Strict`,
    /// `BestEffort`, `AtLeast(2)`, `Critical(["a", "b"])`, `Custom` (or a Rust policy's name).
    pub fn label(&self) -> String {
        label_of_name(&self.name())
    }

    /// Check the policy against the group's member ids; called when the workflow is built.
    /// The error is [`BuildError::PolicyConfig`], naming `group`.
    pub fn validate(&self, group: &str, members: &[&str]) -> Result<(), BuildError> {
        self.misfit(members)
            .map_err(|message| BuildError::PolicyConfig {
                group: group.to_string(),
                message,
            })
    }

    fn misfit(&self, members: &[&str]) -> Result<(), String> {
        match self {
            GroupPolicy::AtLeast(n) if *n > members.len() => Err(format!(
                "AtLeast({n}) needs {n} successes but the group has only {} member(s)",
                members.len()
            )),
            GroupPolicy::Critical(ids) if ids.is_empty() => {
                Err("Critical([…]) needs at least one member id".into())
            }
            GroupPolicy::Critical(ids) => {
                let strangers: Vec<&str> = ids
                    .iter()
                    .map(String::as_str)
                    .filter(|id| !members.contains(id))
                    .collect();
                if strangers.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "critical task(s) [{}] are not members of the group (members: [{}])",
                        strangers.join(", "),
                        members.join(", ")
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// Apply the policy to the members' outcomes (in completion order).
    pub fn evaluate(&self, group: &str, outcomes: &[MemberOutcome]) -> Result<(), GroupFailure> {
        // Counting first: the lists of names are only built for a failure.
        let failures = outcomes.iter().filter(|o| !o.succeeded()).count();
        let successes = outcomes.len() - failures;
        let fail = |message: String, failed: Vec<(String, String)>| GroupFailure {
            group: group.to_string(),
            message,
            failed,
            succeeded: outcomes
                .iter()
                .filter(|o| o.succeeded())
                .map(|o| o.id.clone())
                .collect(),
        };
        let failed = || -> Vec<(String, String)> {
            outcomes
                .iter()
                .filter_map(|o| o.error.as_ref().map(|e| (o.id.clone(), e.clone())))
                .collect()
        };
        match self {
            GroupPolicy::Strict if failures > 0 => Err(fail(
                format!("parallel group '{group}' failed: {failures} task(s) failed"),
                failed(),
            )),
            GroupPolicy::Strict | GroupPolicy::BestEffort => Ok(()),
            GroupPolicy::AtLeast(n) if successes < *n => Err(fail(
                format!("only {successes}/{n} tasks succeeded in group '{group}'"),
                failed(),
            )),
            GroupPolicy::AtLeast(_) => Ok(()),
            GroupPolicy::Critical(_) if failures == 0 => Ok(()),
            GroupPolicy::Critical(ids) => {
                let critical: Vec<(String, String)> = failed()
                    .into_iter()
                    .filter(|(id, _)| ids.contains(id))
                    .collect();
                if critical.is_empty() {
                    Ok(())
                } else {
                    let names: Vec<&str> = critical.iter().map(|(id, _)| id.as_str()).collect();
                    Err(fail(
                        format!(
                            "critical tasks failed in group '{group}': [{}]",
                            names.join(", ")
                        ),
                        critical,
                    ))
                }
            }
            GroupPolicy::Custom(policy) => policy
                .evaluate(group, outcomes)
                .map_err(|rejection| fail(rejection.reason, failed())),
        }
    }
}

/// The workflow file's words for a policy name as events carry it: `strict` → `Strict`,
/// `best_effort` → `BestEffort`, `at_least_n(2)` → `AtLeast(2)`, `critical_tasks(a,b)` →
/// `Critical(["a", "b"])`, `custom` → `Custom`; other (Rust) names stay as they are.
pub fn label_of_name(name: &str) -> String {
    let inner = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    };
    match name {
        "strict" => "Strict".into(),
        "best_effort" => "BestEffort".into(),
        "custom" => "Custom".into(),
        _ => {
            if let Some(n) = inner("at_least_n(") {
                format!("AtLeast({n})")
            } else if let Some(ids) = inner("critical_tasks(") {
                let quoted: Vec<String> = ids
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|id| format!("\"{id}\""))
                    .collect();
                format!("Critical([{}])", quoted.join(", "))
            } else {
                name.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_the_files_words() {
        assert_eq!(GroupPolicy::Strict.label(), "Strict");
        assert_eq!(GroupPolicy::BestEffort.label(), "BestEffort");
        assert_eq!(GroupPolicy::AtLeast(2).label(), "AtLeast(2)");
        assert_eq!(
            GroupPolicy::Critical(vec!["a".into(), "b".into()]).label(),
            r#"Critical(["a", "b"])"#
        );
        assert_eq!(label_of_name("majority"), "majority");
    }

    fn outcomes(spec: &[(&str, bool)]) -> Vec<MemberOutcome> {
        spec.iter()
            .map(|(id, ok)| MemberOutcome {
                id: id.to_string(),
                error: (!ok).then(|| format!("{id} broke")),
                duration_ms: 0,
            })
            .collect()
    }

    #[test]
    fn strict_fails_on_any_failure_and_lists_members() {
        let o = outcomes(&[("a", true), ("b", false), ("c", false)]);
        let err = GroupPolicy::Strict.evaluate("g", &o).unwrap_err();
        assert_eq!(err.message, "parallel group 'g' failed: 2 task(s) failed");
        assert_eq!(
            err.failed,
            vec![
                ("b".into(), "b broke".into()),
                ("c".into(), "c broke".into())
            ]
        );
        assert_eq!(err.succeeded, vec!["a".to_string()]);
        assert!(
            GroupPolicy::Strict
                .evaluate("g", &outcomes(&[("a", true)]))
                .is_ok()
        );
    }

    #[test]
    fn best_effort_never_fails() {
        let o = outcomes(&[("a", false), ("b", false)]);
        assert!(GroupPolicy::BestEffort.evaluate("g", &o).is_ok());
    }

    #[test]
    fn at_least_n_boundaries() {
        let o = outcomes(&[("a", true), ("b", true), ("c", false)]);
        assert!(GroupPolicy::AtLeast(2).evaluate("g", &o).is_ok());
        let err = GroupPolicy::AtLeast(3).evaluate("g", &o).unwrap_err();
        assert_eq!(err.message, "only 2/3 tasks succeeded in group 'g'");
        assert_eq!(err.failed.len(), 1);
        assert!(
            GroupPolicy::AtLeast(0)
                .evaluate("g", &outcomes(&[("a", false)]))
                .is_ok()
        );
    }

    #[test]
    fn critical_only_counts_critical_failures() {
        let o = outcomes(&[("a", true), ("b", false), ("c", false)]);
        let p = GroupPolicy::Critical(vec!["a".into(), "c".into()]);
        let err = p.evaluate("g", &o).unwrap_err();
        assert_eq!(err.failed, vec![("c".into(), "c broke".into())]);
        assert_eq!(err.succeeded, vec!["a".to_string()]);
        let p = GroupPolicy::Critical(vec!["a".into()]);
        assert!(p.evaluate("g", &o).is_ok());
    }

    #[test]
    fn configuration_errors() {
        let members = ["a", "b"];
        assert!(GroupPolicy::AtLeast(3).validate("g", &members).is_err());
        assert!(GroupPolicy::AtLeast(2).validate("g", &members).is_ok());
        assert!(
            GroupPolicy::Critical(vec![])
                .validate("g", &members)
                .is_err()
        );
        let err = GroupPolicy::Critical(vec!["x".into()])
            .validate("g", &members)
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::PolicyConfig { group, message } if group == "g" && message.contains("[x]")),
            "{err}"
        );
    }

    #[derive(Debug)]
    struct Majority;
    impl CustomPolicy for Majority {
        fn name(&self) -> &str {
            "majority"
        }
        fn evaluate(&self, _group: &str, outcomes: &[MemberOutcome]) -> Result<(), Rejection> {
            let ok = outcomes.iter().filter(|o| o.succeeded()).count();
            if ok * 2 > outcomes.len() {
                Ok(())
            } else {
                Err(format!("no majority: {ok}/{}", outcomes.len()).into())
            }
        }
    }

    #[test]
    fn custom_policy_decides() {
        let p = GroupPolicy::Custom(Arc::new(Majority));
        assert!(
            p.evaluate("g", &outcomes(&[("a", true), ("b", true), ("c", false)]))
                .is_ok()
        );
        let err = p
            .evaluate("g", &outcomes(&[("a", true), ("b", false), ("c", false)]))
            .unwrap_err();
        assert_eq!(err.message, "no majority: 1/3");
        assert_eq!(err.failed.len(), 2);
        assert_eq!(p.name(), "majority");
    }
}
