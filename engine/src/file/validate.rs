//! Warnings about a workflow that builds but probably does not do what was meant: tasks the
//! start cannot reach, loops with no way out, groups defined but never used.

use std::collections::HashSet;

use petgraph::algo::tarjan_scc;
use petgraph::visit::EdgeRef;

use crate::graph::{NodeId, NodeKind};
use crate::workflow::Workflow;

use super::Severity;
use super::load::Reporter;
use super::spec::{RunSpec, ScriptSpec, WorkflowSpec};

/// Whether a task's code can end the run itself (inline scripts and shell lines are searched;
/// script files are not read here).
fn mentions_terminate(run: &RunSpec) -> bool {
    match run {
        RunSpec::Script(ScriptSpec::Inline(code)) | RunSpec::Shell(code) => {
            code.contains("terminate")
        }
        RunSpec::Script(ScriptSpec::File { .. }) => true,
        RunSpec::Command(argv) => argv.iter().any(|a| a.contains("terminate")),
        RunSpec::Docker(d) => d.cmd.iter().flatten().any(|a| a.contains("terminate")),
        _ => false,
    }
}

/// Add the warnings for `wf` to `rep`.
pub(super) fn warn(spec: &WorkflowSpec, wf: &Workflow, rep: &mut Reporter<'_>) {
    let graph = wf.graph();
    let flow_at = rep.loc.top_field("flow");

    // Reachability from the start, through edges and from groups into their members.
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack = vec![wf.start()];
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let NodeKind::Group { members, .. } = &graph.node(n).kind {
            stack.extend(members.iter().copied());
        }
        stack.extend(graph.successors(n).into_iter().map(|(s, _)| s));
    }
    for (n, node) in graph.nodes() {
        if !seen.contains(&n) {
            let at = rep.loc.entry("tasks", &node.id).or(flow_at);
            rep.at(
                Severity::Warning,
                at,
                format!("'{}' can never run: the start '{}' does not lead to it", node.id, wf.start_id()),
                Some("connect it in the flow, or remove it from the flow to keep it as a next_task definition"),
            );
        }
    }

    // Loops whose tasks have no edge leaving the loop.
    let pg = graph.petgraph();
    for scc in tarjan_scc(pg) {
        let members: HashSet<NodeId> = scc.iter().copied().collect();
        let is_cycle = scc.len() > 1 || pg.edges(scc[0]).any(|e| e.target() == scc[0]);
        if !is_cycle || !members.iter().any(|n| seen.contains(n)) {
            continue;
        }
        let exits = scc
            .iter()
            .any(|&n| pg.edges(n).any(|e| !members.contains(&e.target())));
        let terminates = scc
            .iter()
            .filter_map(|n| spec.tasks.get(&*graph.node(*n).id))
            .any(|t| mentions_terminate(&t.run));
        if !exits && !terminates {
            let mut names: Vec<&str> = scc.iter().map(|n| &*graph.node(*n).id).collect();
            names.sort_unstable();
            let limit = scc
                .iter()
                .filter_map(|n| wf.task(&graph.node(*n).id))
                .filter_map(|d| d.options.max_cycles)
                .min()
                .unwrap_or(wf.max_cycles());
            rep.at(
                Severity::Warning,
                flow_at,
                format!(
                    "the loop through {} has no exit: it ends only by terminate_workflow, a goto, or the cycle limit ({limit}), which fails the run",
                    names.join(", ")
                ),
                Some("add an edge out of the loop, or stop it with ctx.terminate_workflow(…)"),
            );
        }
    }

    unused_definitions(spec, wf, rep);

    for name in spec.groups.keys() {
        if graph.find(name).is_none() {
            let at = rep.loc.entry("groups", name);
            rep.at(
                Severity::Warning,
                at,
                format!("group '{name}' is defined but not used in the flow"),
                Some("name it in the flow, or remove it"),
            );
        }
    }
}

/// The code of a task, as far as it can name other tasks: inline scripts, script files (read
/// next to the workflow), shell lines, command and container arguments.
fn code_of(run: &RunSpec, base: &std::path::Path) -> Vec<String> {
    match run {
        RunSpec::Script(ScriptSpec::Inline(code)) | RunSpec::Shell(code) => vec![code.clone()],
        RunSpec::Script(ScriptSpec::File { file }) => {
            vec![std::fs::read_to_string(base.join(file)).unwrap_or_default()]
        }
        RunSpec::Command(argv) => argv.clone(),
        RunSpec::Docker(d) => d.cmd.iter().flatten().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Tasks defined outside the flow are definitions that `next_task` or a goto can add; one
/// that no task's code names can never run.
fn unused_definitions(spec: &WorkflowSpec, wf: &Workflow, rep: &mut Reporter<'_>) {
    let detached = wf.detached_tasks();
    if detached.is_empty() {
        return;
    }
    let base = rep
        .file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let code: Vec<(&str, Vec<String>)> = spec
        .tasks
        .iter()
        .map(|(name, t)| (name.as_str(), code_of(&t.run, &base)))
        .collect();
    for name in detached {
        // Members of a group that is not used are covered by the group's own warning.
        let in_group = spec
            .groups
            .values()
            .any(|g| crate::flow::parse_flow(&g.members).is_ok_and(|f| mentions(&f, name)));
        let named = in_group
            || code
                .iter()
                .filter(|(other, _)| *other != name)
                .any(|(_, texts)| texts.iter().any(|t| t.contains(name)));
        if named {
            continue;
        }
        let at = rep.loc.entry("tasks", name);
        rep.at(
            Severity::Warning,
            at,
            format!(
                "task '{name}' can never run: it is not in the flow and no task adds it (next_task or goto)"
            ),
            Some("add it to the flow, call ctx.next_task(\"…\") with its name from a task, or remove it"),
        );
    }
}

fn mentions(flows: &[crate::flow::Flow], name: &str) -> bool {
    use crate::flow::{Flow, Leaf};
    fn walk(f: &Flow, name: &str) -> bool {
        match f {
            Flow::Leaf(Leaf::Name { name: n, .. }) => n.as_str() == name,
            Flow::Leaf(_) => false,
            Flow::Seq(items) => items.iter().any(|i| walk(i, name)),
            Flow::Par(p) => p.items.iter().any(|i| walk(i, name)),
        }
    }
    flows.iter().any(|f| walk(f, name))
}
