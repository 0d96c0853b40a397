//! Text renderings of a workflow's graph: an indented ASCII tree for terminals, Mermaid and
//! Graphviz DOT for documents. Groups show their members and policy; loop edges are marked.

use std::collections::HashSet;
use std::fmt::Write;

use crate::graph::{EdgeKind, NodeId, NodeKind, TaskGraph};
use crate::workflow::Workflow;

fn policy_of(graph: &TaskGraph, n: NodeId) -> Option<String> {
    match &graph.node(n).kind {
        NodeKind::Group { policy, .. } => Some(policy.label()),
        NodeKind::Task => None,
    }
}

fn label(wf: &Workflow, n: NodeId) -> String {
    let graph = wf.graph();
    let node = graph.node(n);
    match policy_of(graph, n) {
        Some(p) => format!("{} [group, {p}]", node.id),
        None => {
            let kind = wf
                .task(&node.id)
                .map(|d| d.handler().kind())
                .unwrap_or("task");
            format!("{} ({kind})", node.id)
        }
    }
}

/// An indented tree from the start: `└─▶` for successors, `├─`/`└─` for group members (one
/// level deeper than the group's successors), `↺` for loop edges, `(shown above)` for a node
/// reached a second time.
pub fn ascii(wf: &Workflow) -> String {
    let graph = wf.graph();
    let mut out = String::new();
    let mut shown = HashSet::new();
    let _ = writeln!(out, "{}", label(wf, wf.start()));
    shown.insert(wf.start());
    children(wf, wf.start(), "", &mut shown, &mut out);
    let rest: Vec<NodeId> = graph
        .nodes()
        .map(|(n, _)| n)
        .filter(|n| !shown.contains(n) && graph.node(*n).group.is_none())
        .collect();
    for n in rest {
        if shown.contains(&n) {
            continue;
        }
        let _ = writeln!(out, "{}  (not reached from the start)", label(wf, n));
        shown.insert(n);
        children(wf, n, "", &mut shown, &mut out);
    }
    let detached = wf.detached_tasks();
    if !detached.is_empty() {
        let _ = writeln!(out, "defined for next_task: {}", detached.join(", "));
    }
    out
}

fn children(wf: &Workflow, n: NodeId, indent: &str, shown: &mut HashSet<NodeId>, out: &mut String) {
    let graph = wf.graph();
    let next = graph.successors(n);
    // A group's members hang one level deeper than its successors, with the group's lane
    // running past them to the successor, so a successor never reads as a member.
    if let NodeKind::Group { members, .. } = &graph.node(n).kind {
        let lane = if next.is_empty() { "    " } else { "│   " };
        let member_indent = format!("{indent}{lane}");
        let count = members.len();
        for (i, m) in members.iter().enumerate() {
            let last = i + 1 == count;
            let branch = if last { "└─ " } else { "├─ " };
            let deeper = format!("{member_indent}{}", if last { "    " } else { "│   " });
            line(wf, *m, &member_indent, branch, &deeper, shown, out);
        }
    }
    for (s, kind) in next {
        if kind == EdgeKind::Loop {
            let _ = writeln!(out, "{indent}└─↺ {} (loop)", graph.node(s).id);
        } else {
            line(wf, s, indent, "└─▶ ", &format!("{indent}    "), shown, out);
        }
    }
}

/// One node's line (or a mention when it was shown already), then its children.
fn line(
    wf: &Workflow,
    n: NodeId,
    indent: &str,
    branch: &str,
    deeper: &str,
    shown: &mut HashSet<NodeId>,
    out: &mut String,
) {
    if !shown.insert(n) {
        let _ = writeln!(
            out,
            "{indent}{branch}{} (shown above)",
            wf.graph().node(n).id
        );
    } else {
        let _ = writeln!(out, "{indent}{branch}{}", label(wf, n));
        children(wf, n, deeper, shown, out);
    }
}

fn safe_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A Mermaid flowchart: one subgraph per group, loop edges dotted.
pub fn mermaid(wf: &Workflow) -> String {
    let graph = wf.graph();
    let mut out = String::from("flowchart TD\n");
    let mut in_group = HashSet::new();
    for (n, node) in graph.nodes() {
        if let NodeKind::Group { members, policy } = &node.kind {
            let _ = writeln!(
                out,
                "    subgraph {}[\"{} ({})\"]",
                safe_id(&node.id),
                node.id,
                policy.label().replace('"', "'")
            );
            for m in members {
                in_group.insert(*m);
                let _ = writeln!(
                    out,
                    "        {}[\"{}\"]",
                    safe_id(&graph.node(*m).id),
                    graph.node(*m).id
                );
            }
            let _ = writeln!(out, "    end");
            let _ = n;
        }
    }
    for (n, node) in graph.nodes() {
        if !node.is_group() && !in_group.contains(&n) {
            let _ = writeln!(out, "    {}[\"{}\"]", safe_id(&node.id), node.id);
        }
    }
    for (a, b, kind) in graph.edges() {
        let arrow = if kind == EdgeKind::Loop {
            "-.->|loop|"
        } else {
            "-->"
        };
        let _ = writeln!(
            out,
            "    {} {arrow} {}",
            safe_id(&graph.node(a).id),
            safe_id(&graph.node(b).id)
        );
    }
    out
}

/// A Graphviz digraph: one cluster per group, loop edges dashed.
pub fn dot(wf: &Workflow) -> String {
    let graph = wf.graph();
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box];\n",
        wf.name().replace('"', "'")
    );
    for (_, node) in graph.nodes() {
        if let NodeKind::Group { members, policy } = &node.kind {
            let _ = writeln!(
                out,
                "    subgraph \"cluster_{}\" {{\n        label=\"{} ({})\";",
                node.id,
                node.id,
                policy.label().replace('"', "'")
            );
            let _ = writeln!(out, "        \"{}\" [shape=point];", node.id);
            for m in members {
                let _ = writeln!(out, "        \"{}\";", graph.node(*m).id);
            }
            let _ = writeln!(out, "    }}");
        }
    }
    for (_, node) in graph.nodes() {
        if !node.is_group() && node.group.is_none() {
            let _ = writeln!(out, "    \"{}\";", node.id);
        }
    }
    for (a, b, kind) in graph.edges() {
        let style = if kind == EdgeKind::Loop {
            " [style=dashed, label=\"loop\"]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "    \"{}\" -> \"{}\"{style};",
            graph.node(a).id,
            graph.node(b).id
        );
    }
    out.push_str("}\n");
    out
}
