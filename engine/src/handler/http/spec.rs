//! The `Http(...)` task as written in a workflow file; always built, so a file naming one
//! parses (and is refused with the reason) in a build without the `http` feature.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An `Http(...)` task as written in a workflow file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// HTTP method; `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// URL template.
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template; sent as is (set a `Content-Type` header to match).
    #[serde(default)]
    pub body: Option<String>,
    /// Request timeout, e.g. `"10s"`; 30 s by default.
    #[serde(default)]
    pub timeout: Option<String>,
    /// A PEM file of extra root certificates to trust (relative to the workflow's folder),
    /// besides the platform's.
    #[serde(default)]
    pub ca_file: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}
