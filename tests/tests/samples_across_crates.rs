//! Every sample workflow, seen by the engine and by the studio: the studio's graph model holds
//! exactly the engine's tasks, groups, members and edges (loop edges included), every text
//! rendering names every task, and a run recorded in the history reads back with the engine's
//! status and counts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use graflow::history::{self, Recorder};
use graflow::studio::graph::model::{GEdgeKind, GraphModel};
use graflow_engine::file::load_file;
use graflow_engine::handler::Runtimes;
use graflow_engine::{EdgeKind, Engine, EventKind, NodeKind, RunOptions, render};

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sample-workflows/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_studio_model_mirrors_the_engine_graph_for_every_sample() {
    let runtimes = Runtimes::default();
    let files = samples();
    assert!(files.len() >= 10);
    for file in files {
        let loaded =
            load_file(&file, &runtimes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let wf = &loaded.workflow;
        let g = wf.graph();
        let model = GraphModel::from_workflow(wf);
        let what = file.display().to_string();

        let engine_nodes: BTreeSet<String> = g.nodes().map(|(_, n)| n.id.to_string()).collect();
        let model_nodes: BTreeSet<String> = model.nodes.iter().map(|n| n.id.to_string()).collect();
        assert_eq!(engine_nodes, model_nodes, "{what}: nodes");
        assert_eq!(
            model
                .start
                .map(|s| model.nodes[s].id.to_string())
                .as_deref(),
            Some(wf.start_id()),
            "{what}: start"
        );

        let engine_edges: BTreeSet<(String, String, bool)> = g
            .edges()
            .into_iter()
            .map(|(a, b, k)| {
                (
                    g.node(a).id.to_string(),
                    g.node(b).id.to_string(),
                    k == EdgeKind::Loop,
                )
            })
            .collect();
        let model_edges: BTreeSet<(String, String, bool)> = model
            .edges
            .iter()
            .filter(|(_, _, k)| matches!(k, GEdgeKind::Plain | GEdgeKind::Loop))
            .map(|(a, b, k)| {
                (
                    model.nodes[*a].id.to_string(),
                    model.nodes[*b].id.to_string(),
                    *k == GEdgeKind::Loop,
                )
            })
            .collect();
        assert_eq!(engine_edges, model_edges, "{what}: edges");

        for (_, node) in g.nodes() {
            let m = &model.nodes[model.find(&node.id).expect("in the model")];
            match &node.kind {
                NodeKind::Group { members, policy } => {
                    assert!(m.is_group, "{what}: {} is a group", node.id);
                    let heads: Vec<String> = m
                        .members
                        .iter()
                        .map(|i| model.nodes[*i].id.to_string())
                        .collect();
                    let engine_heads: Vec<String> =
                        members.iter().map(|x| g.node(*x).id.to_string()).collect();
                    assert_eq!(heads, engine_heads, "{what}: members of {}", node.id);
                    assert_eq!(
                        m.policy.as_deref(),
                        Some(policy.label().as_str()),
                        "{what}: policy of {}",
                        node.id
                    );
                }
                NodeKind::Task => {
                    assert!(!m.is_group);
                    let kind = wf
                        .task(&node.id)
                        .map(|d| d.handler().kind())
                        .unwrap_or("task");
                    assert_eq!(m.kind, kind, "{what}: kind of {}", node.id);
                }
            }
        }

        let (ascii, mermaid, dot) = (render::ascii(wf), render::mermaid(wf), render::dot(wf));
        for id in &engine_nodes {
            assert!(ascii.contains(id.as_str()), "{what}: ascii lacks {id}");
            assert!(mermaid.contains(id.as_str()), "{what}: mermaid lacks {id}");
            assert!(dot.contains(id.as_str()), "{what}: dot lacks {id}");
        }
    }
}

#[tokio::test]
async fn a_recorded_run_reads_back_as_the_engine_ended_it() {
    let runtimes = Runtimes::default();
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-workflows/policy-at-least.ron");
    let loaded = load_file(&file, &runtimes).expect("loads");
    let state = std::env::temp_dir().join(format!("graflow-cross-{}", std::process::id()));
    let mut handle = Engine::new().start(
        Arc::clone(&loaded.workflow),
        RunOptions::new().with_events(),
    );
    let mut events = handle.take_events().expect("events");
    let mut recorder = Recorder::start(
        &state,
        handle.run_id(),
        loaded.workflow.name(),
        Some(&file),
        None,
    );
    let (mut succeeded, mut failed) = (0, 0);
    while let Some(e) = events.recv().await {
        match e.kind {
            EventKind::TaskSucceeded { .. } => succeeded += 1,
            EventKind::TaskFailed { .. } => failed += 1,
            _ => {}
        }
        recorder.event(&e);
    }
    let outcome = handle.wait().await;
    let records = history::list(&state);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.run_id, outcome.run_id);
    assert_eq!(r.status, Some(outcome.status));
    assert_eq!((r.tasks_succeeded, r.tasks_failed), (succeeded, failed));
    assert_eq!(
        (succeeded, failed),
        (4, 1),
        "replica_2 fails, the group passes with two of three"
    );
    let replayed = history::events(&state, &outcome.run_id);
    assert_eq!(
        replayed.last().and_then(|e| e["event"].as_str()),
        Some("run_finished")
    );
    assert_eq!(
        replayed.last().map(|e| e["results"].clone()),
        Some(serde_json::to_value(&outcome.results).unwrap())
    );
    let _ = std::fs::remove_dir_all(&state);
}
