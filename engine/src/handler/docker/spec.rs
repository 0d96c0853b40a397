//! The `Docker(...)` task as written in a workflow file; always built, so a file naming one
//! parses (and is refused with the reason) in a build without the `docker` feature.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A `Docker(...)` task as written in a workflow file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    /// The image, present on the Docker engine (it is never pulled).
    pub image: String,
    /// Program and arguments; the image's default command when absent.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Extra environment variables of the container.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container (absolute); the image's when absent.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Bind mounts, `"host:container"` or `"host:container:ro"`; relative host paths resolve
    /// against the workflow's folder.
    #[serde(default)]
    pub volumes: Vec<String>,
}

impl DockerSpec {
    /// A task running `image`'s default command.
    pub fn new(image: impl Into<String>) -> Self {
        DockerSpec {
            image: image.into(),
            cmd: None,
            env: BTreeMap::new(),
            workdir: None,
            volumes: Vec::new(),
        }
    }

    /// Run this program and arguments instead of the image's command.
    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Add a bind mount, `"host:container[:ro]"`.
    pub fn volume(mut self, spec: impl Into<String>) -> Self {
        self.volumes.push(spec.into());
        self
    }
}
