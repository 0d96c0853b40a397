//! `GET /api/openapi.json`: the OpenAPI 3 document of the REST API, written by hand in
//! `openapi.json` next to this file (its `info.version` is set to this build's version). A
//! test below holds it to the router: every REST route is documented, every documented
//! operation is a route.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::routes::json_response;

/// The document as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document served: [`DOCUMENT`] with this build's version.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| {
        let mut doc: Value = serde_json::from_str(DOCUMENT).unwrap_or(Value::Null);
        if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
            info.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        }
        doc
    });
    &DOC
}

/// `GET /api/openapi.json`.
pub async fn serve() -> Response {
    json_response(StatusCode::OK, document())
}

/// `(method, path)` of every operation the document lists, methods in lower case.
#[cfg(test)]
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for m in METHODS {
                if item.get(*m).is_some() {
                    out.push((m.to_string(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::routes;
    use super::*;

    #[test]
    fn the_document_lists_exactly_the_routes() {
        let doc = document();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{}",
            doc["openapi"]
        );
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let documented: BTreeSet<(String, String)> = operations(doc).into_iter().collect();
        let table = routes::rest();
        let served: BTreeSet<(String, String)> = table
            .routes()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert!(!served.is_empty());
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "documented but not routed: {unserved:?}"
        );
    }

    #[test]
    fn every_operation_is_described_and_every_reference_resolves() {
        let doc = document();
        for (method, path) in operations(doc) {
            let op = &doc["paths"][&path][&method];
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: no operationId"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}: no success response"
            );
            // Path parameters are declared.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == name));
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
        }
        // Every $ref points at something.
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }
}
