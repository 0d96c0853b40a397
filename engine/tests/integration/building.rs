//! Building workflows: the graph a flow makes, start detection, loop edges, and every kind of
//! bad input as a typed error naming the culprit.

use crate::common;

use common::{Trace, recs};
use graflow_engine::prelude::*;
use graflow_engine::{BuildError, EdgeKind, GroupDef, NodeKind, Span, WorkflowBuilder};

fn edges(wf: &Workflow) -> Vec<(String, String, EdgeKind)> {
    let g = wf.graph();
    g.edges()
        .into_iter()
        .map(|(a, b, k)| (g.node(a).id.to_string(), g.node(b).id.to_string(), k))
        .collect()
}

fn members(wf: &Workflow, group: &str) -> Vec<String> {
    let g = wf.graph();
    match &g.node(g.find(group).unwrap()).kind {
        NodeKind::Group { members, .. } => {
            members.iter().map(|m| g.node(*m).id.to_string()).collect()
        }
        NodeKind::Task => panic!("{group} is a task"),
    }
}

fn plain(a: &str, b: &str) -> (String, String, EdgeKind) {
    (a.into(), b.into(), EdgeKind::Plain)
}

fn builder_with(ids: &[&str]) -> WorkflowBuilder {
    let mut wf = Workflow::builder("t");
    let trace = Trace::default();
    for id in ids {
        common::rec(&mut wf, &trace, id);
    }
    wf
}

#[test]
fn operators_and_strings_build_the_same_graph() {
    let trace = Trace::default();
    let mut by_ops = Workflow::builder("ops");
    let [a, b, c, d] = recs(&mut by_ops, &trace, ["a", "b", "c", "d"]);
    by_ops.flow(a >> (b | c) >> d);
    let by_ops = by_ops.build().unwrap();

    let mut by_str = builder_with(&["a", "b", "c", "d"]);
    by_str.flow_str("a >> (b | c) >> d");
    let by_str = by_str.build().unwrap();

    for wf in [&by_ops, &by_str] {
        assert_eq!(
            edges(wf),
            vec![plain("a", "group_1"), plain("group_1", "d")]
        );
        assert_eq!(members(wf, "group_1"), ["b", "c"]);
        assert_eq!(wf.start_id(), "a");
    }
}

#[test]
fn a_group_of_two_chains() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("chains");
    let [a, b, c, d] = recs(&mut wf, &trace, ["a", "b", "c", "d"]);
    wf.flow(a >> b | c >> d);
    let wf = wf.build().unwrap();
    assert_eq!(members(&wf, "group_1"), ["a", "c"]);
    assert_eq!(edges(&wf), vec![plain("a", "b"), plain("c", "d")]);
    assert_eq!(wf.start_id(), "group_1", "group members are never roots");
}

#[test]
fn several_statements_add_to_one_graph() {
    let mut wf = builder_with(&["a", "b", "c", "d"]);
    wf.flow_str("a >> b >> d; a >> c >> d");
    let wf = wf.build().unwrap();
    assert_eq!(
        edges(&wf),
        vec![
            plain("a", "b"),
            plain("b", "d"),
            plain("a", "c"),
            plain("c", "d")
        ]
    );
}

#[test]
fn a_name_used_twice_makes_a_loop_edge() {
    let mut wf = builder_with(&["start", "agent", "tool"]);
    wf.flow_str("start >> agent >> tool >> agent");
    let wf = wf.build().unwrap();
    assert_eq!(
        edges(&wf),
        vec![
            plain("start", "agent"),
            plain("agent", "tool"),
            ("tool".into(), "agent".into(), EdgeKind::Loop)
        ]
    );
}

#[test]
fn an_all_cycle_graph_needs_an_explicit_start() {
    let mut wf = builder_with(&["agent", "tool"]);
    wf.flow_str("agent >> tool >> agent");
    assert_eq!(wf.build().unwrap_err(), BuildError::NoStart);

    let mut wf = builder_with(&["agent", "tool"]);
    wf.flow_str("agent >> tool >> agent").start("agent");
    let wf = wf.build().unwrap();
    assert_eq!(wf.start_id(), "agent");
    assert_eq!(edges(&wf)[1].2, EdgeKind::Loop);
}

#[test]
fn named_groups_from_definitions() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("etl");
    let [fetch, a, b, c, merge] = recs(&mut wf, &trace, ["fetch", "a", "b", "c", "merge"]);
    let cleaners =
        wf.add_group(GroupDef::new("cleaners", a | b | c).policy(GroupPolicy::AtLeast(2)));
    wf.flow(fetch >> cleaners >> merge);
    let wf = wf.build().unwrap();
    assert_eq!(members(&wf, "cleaners"), ["a", "b", "c"]);

    let mut by_name = builder_with(&["fetch", "a", "b", "merge"]);
    by_name.add_group(GroupDef::new("cleaners", Flow::name("a") | Flow::name("b")));
    by_name.flow_str("fetch >> cleaners\ncleaners >> merge");
    let wf = by_name.build().unwrap();
    assert_eq!(
        edges(&wf),
        vec![plain("fetch", "cleaners"), plain("cleaners", "merge")]
    );
}

#[test]
fn detached_tasks_stay_out_of_the_graph() {
    let mut wf = builder_with(&["a", "b", "spare"]);
    wf.flow_str("a >> b");
    let wf = wf.build().unwrap();
    assert!(wf.graph().find("spare").is_none());
    assert_eq!(wf.detached_tasks(), ["spare"]);
}

#[test]
fn duplicate_task_id() {
    let mut wf = builder_with(&["a", "a"]);
    assert_eq!(
        wf.build().unwrap_err(),
        BuildError::DuplicateTask("a".into())
    );
}

#[test]
fn unknown_name_in_a_flow_string_carries_its_position() {
    let mut wf = builder_with(&["a", "b"]);
    wf.flow_str("a >> b\nb >> nope");
    let err = wf.build().unwrap_err();
    assert_eq!(
        err,
        BuildError::UnknownName {
            name: "nope".into(),
            span: Some(Span {
                offset: 12,
                len: 4,
                line: 2,
                column: 6
            })
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown task or group 'nope' in flow at line 2, column 6"
    );
}

#[test]
fn flow_syntax_error_is_reported_by_build() {
    let mut wf = builder_with(&["a", "b"]);
    wf.flow_str("a >> | b");
    let err = wf.build().unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::FlowSyntax {
                span: Span {
                    line: 1,
                    column: 6,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn misconfigured_policies_fail_the_build() {
    let trace = Trace::default();
    let mut wf = Workflow::builder("p");
    let [a, b] = recs(&mut wf, &trace, ["a", "b"]);
    wf.flow((a | b).policy(GroupPolicy::AtLeast(3)));
    let err = wf.build().unwrap_err();
    assert!(
        matches!(&err, BuildError::PolicyConfig { group, .. } if group == "group_1"),
        "{err}"
    );
    assert!(err.to_string().contains("only 2 member(s)"), "{err}");

    let mut wf = Workflow::builder("p");
    let [a, b] = recs(&mut wf, &trace, ["a", "b"]);
    wf.flow((a | b).policy(GroupPolicy::Critical(vec!["a".into(), "zed".into()])));
    let err = wf.build().unwrap_err();
    assert!(err.to_string().contains("[zed] are not members"), "{err}");

    let mut wf = Workflow::builder("p");
    let [a, b] = recs(&mut wf, &trace, ["a", "b"]);
    wf.flow((a | b).policy(GroupPolicy::Critical(vec![])));
    assert!(matches!(
        wf.build().unwrap_err(),
        BuildError::PolicyConfig { .. }
    ));
}

#[test]
fn unknown_start() {
    let mut wf = builder_with(&["a", "b"]);
    wf.flow_str("a >> b").start("zz");
    assert_eq!(
        wf.build().unwrap_err(),
        BuildError::UnknownStart("zz".into())
    );
}

#[test]
fn several_roots_need_a_start() {
    let mut wf = builder_with(&["a", "b", "c"]);
    wf.flow_str("a >> c; b >> c");
    assert_eq!(
        wf.build().unwrap_err(),
        BuildError::MultipleStarts(vec!["a".into(), "b".into()])
    );
}

#[test]
fn a_member_cannot_have_a_predecessor() {
    let mut wf = builder_with(&["x", "a", "b", "c"]);
    wf.flow_str("(a | b) >> c; x >> a").start("x");
    assert_eq!(
        wf.build().unwrap_err(),
        BuildError::MemberWithPredecessor {
            member: "a".into(),
            group: "group_1".into(),
            predecessor: "x".into()
        }
    );
}

#[test]
fn a_task_in_two_groups() {
    let mut wf = builder_with(&["a", "b", "c"]);
    wf.flow_str("(a | b) >> (a | c)");
    assert!(
        matches!(wf.build().unwrap_err(), BuildError::MemberOfTwoGroups { member, .. } if member == "a")
    );
}

#[test]
fn a_group_containing_itself() {
    let mut wf = builder_with(&["a"]);
    wf.add_group(GroupDef::new("g", Flow::name("a") | Flow::name("h")));
    wf.add_group(GroupDef::new("h", Flow::name("g")));
    wf.flow_str("g");
    assert!(matches!(
        wf.build().unwrap_err(),
        BuildError::GroupContainsItself(_)
    ));
}

#[test]
fn empty_flow_and_bad_options() {
    assert_eq!(
        builder_with(&["a"]).build().unwrap_err(),
        BuildError::EmptyFlow
    );

    let mut wf = Workflow::builder("t");
    wf.add(
        TaskDef::from_fn("a", |_c| async { anyhow::Ok(()) })
            .retry(RetryPolicy::retries(2).factor(0.5)),
    );
    wf.flow_str("a");
    assert!(matches!(wf.build().unwrap_err(), BuildError::InvalidTask { task, .. } if task == "a"));

    let mut wf = Workflow::builder("t");
    wf.add(TaskDef::from_fn("a", |_c| async { anyhow::Ok(()) }).max_cycles(0));
    wf.flow_str("a");
    assert!(matches!(
        wf.build().unwrap_err(),
        BuildError::InvalidTask { .. }
    ));
}

#[test]
fn name_clash_between_task_and_group() {
    let mut wf = builder_with(&["a", "b"]);
    wf.add_group(GroupDef::new("a", Flow::name("b")));
    wf.flow_str("a");
    assert_eq!(wf.build().unwrap_err(), BuildError::NameClash("a".into()));
}

#[test]
fn handles_from_another_builder_are_refused() {
    let mut other = Workflow::builder("other");
    let stranger = other.task("x", |_c| async { anyhow::Ok(()) });
    let mut wf = builder_with(&["a"]);
    wf.flow(Flow::name("a") >> stranger);
    assert!(matches!(
        wf.build().unwrap_err(),
        BuildError::ForeignHandle(_)
    ));
}

#[test]
fn a_builder_chains_through_to_build() {
    let names = |e: BuildError| matches!(e, BuildError::UnknownName { .. });
    assert!(
        Workflow::builder("x")
            .flow_str("a >> b")
            .build()
            .is_err_and(names),
        "the flow names tasks nobody added"
    );
    let mut wf = Workflow::builder("y");
    wf.task("a", |_ctx| async { anyhow::Ok(1) });
    let built = wf.flow_str("a").max_steps(10).build();
    assert!(built.is_ok(), "{built:?}");
    assert!(wf.build().is_err(), "a built builder is empty");
}

#[tokio::test]
async fn inputs_and_results_read_as_rust_types() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u32,
        items: Vec<String>,
    }
    let mut wf = Workflow::builder("typed");
    let fetch = wf.task("fetch", |_ctx| async {
        anyhow::Ok(serde_json::json!({"id": 7, "items": ["tea"]}))
    });
    let check = wf.task("check", |ctx: TaskContext| async move {
        let order: Order = ctx.input_as("fetch")?;
        assert_eq!(
            order,
            Order {
                id: 7,
                items: vec!["tea".into()]
            }
        );
        assert_eq!(ctx.result_as::<Order>("fetch")?.id, 7);
        let wrong = ctx.input_as::<Vec<u32>>("fetch").map_err(|e| e.to_string());
        assert!(
            wrong
                .as_ref()
                .is_err_and(|e| e.contains("the input of 'fetch' is not a")),
            "{wrong:?}"
        );
        let missing = ctx.result_as::<u32>("nobody").map_err(|e| e.to_string());
        assert_eq!(
            missing,
            Err("no result of 'nobody' is known to this task".to_string())
        );
        anyhow::Ok(order.id)
    });
    wf.flow(fetch >> check);
    let (out, _) = common::run(wf).await;
    assert!(out.succeeded(), "{:?}", out.error);
    assert_eq!(out.results["check"], 7);
}
