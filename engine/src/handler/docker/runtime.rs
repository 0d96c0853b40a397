//! Engine-wide state of `Docker` tasks: where the Docker engine listens and a client of it,
//! connected at first use (and again after a failed attempt).

use std::sync::Arc;

use bollard::errors::Error as DockerError;
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use tokio::sync::OnceCell;

/// The socket Docker listens on unless `DOCKER_HOST` says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Seconds a request may take to get its answer's headers (streams may run longer).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Engine-wide state of `Docker` tasks. Cheap to clone; clones share the client.
#[derive(Clone, Default)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set by [`DockerRuntime::with_host`]; otherwise `DOCKER_HOST` or [`DEFAULT_SOCKET`].
    explicit: Option<String>,
    client: OnceCell<Docker>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.host())
            .finish()
    }
}

/// Where a Docker engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Host {
    /// A Unix socket at this path.
    Unix(String),
    /// Plain HTTP at this address (`tcp://` or `http://`).
    Http(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{path}"),
            Host::Http(addr) => f.write_str(addr),
        }
    }
}

impl DockerRuntime {
    /// A runtime talking to the Docker engine at `host`: a socket path, `unix:///path`,
    /// `tcp://host:port` or `http://host:port`.
    pub fn with_host(host: impl Into<String>) -> Self {
        DockerRuntime {
            inner: Arc::new(Inner {
                explicit: Some(host.into()),
                client: OnceCell::new(),
            }),
        }
    }

    /// The Docker engine's address as configured: the one given to
    /// [`with_host`](Self::with_host), else `DOCKER_HOST`, else [`DEFAULT_SOCKET`].
    pub fn host(&self) -> String {
        self.inner
            .explicit
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"))
    }

    /// A client with its API version agreed with the engine; the error says which address
    /// could not be reached and why.
    pub(super) async fn client(&self) -> Result<Docker, String> {
        self.inner
            .client
            .get_or_try_init(|| async {
                let host = parse_host(&self.host())?;
                let docker = connect(&host, API_DEFAULT_VERSION)?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| unreachable(&host, &e))
            })
            .await
            .cloned()
    }
}

/// Understand a Docker address.
pub(super) fn parse_host(text: &str) -> Result<Host, String> {
    if let Some(path) = text.strip_prefix("unix://") {
        return Ok(Host::Unix(path.to_string()));
    }
    if text.starts_with('/') {
        return Ok(Host::Unix(text.to_string()));
    }
    if text.starts_with("tcp://") || text.starts_with("http://") {
        return Ok(Host::Http(text.to_string()));
    }
    Err(format!(
        "the Docker address '{text}' is not supported: use a socket path, unix:///path, \
         tcp://host:port or http://host:port"
    ))
}

/// A client of `host` speaking API `version` (no request is sent yet).
pub(super) fn connect(host: &Host, version: &ClientVersion) -> Result<Docker, String> {
    match host {
        Host::Unix(path) => Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version),
        Host::Http(addr) => Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version),
    }
    .map_err(|e| unreachable(host, &e))
}

/// "cannot reach the Docker engine at …".
fn unreachable(host: &Host, e: &DockerError) -> String {
    let why = match e {
        DockerError::SocketNotFoundError(path) => format!("socket {path} does not exist"),
        other => other.to_string(),
    };
    format!(
        "cannot reach the Docker engine at {host}: {why} (is Docker running? DOCKER_HOST \
         names another engine)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_understood() {
        assert_eq!(
            parse_host("unix:///run/d.sock").unwrap(),
            Host::Unix("/run/d.sock".into())
        );
        assert_eq!(
            parse_host("/run/d.sock").unwrap(),
            Host::Unix("/run/d.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375").unwrap(),
            Host::Http("tcp://127.0.0.1:2375".into())
        );
        let e = parse_host("ssh://box").unwrap_err();
        assert!(e.contains("'ssh://box' is not supported"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_socket_is_named() {
        let rt = DockerRuntime::with_host("/nonexistent/graflow-docker.sock");
        let e = rt.client().await.unwrap_err();
        assert!(
            e.contains("unix:///nonexistent/graflow-docker.sock") && e.contains("does not exist"),
            "{e}"
        );
    }
}
