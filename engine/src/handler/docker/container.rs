//! One container: created under a name chosen beforehand, attached to, started, its output
//! streamed line by line into the task's log, waited for, and removed. A [`Container`] dropped before it was
//! removed (timeout, cancellation) kills and removes the container from a thread of its own, so
//! the cleanup happens even when the tokio runtime is shutting down.

use std::collections::VecDeque;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker, container::LogOutput};
use futures::StreamExt;
use parking_lot::{Condvar, Mutex};

use super::runtime::{Host, connect};
use crate::context::TaskContext;
use crate::events::LogStream;
use crate::handler::process::{LineBuffer, STDERR_TAIL};

/// How long to keep reading output after the container stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How a container ended and what its output left behind.
pub(super) struct Finished {
    /// Its exit status.
    pub code: i64,
    /// The last non-empty stdout line.
    pub last_stdout: Option<String>,
    /// The last few stderr lines.
    pub stderr_tail: VecDeque<String>,
}

/// Where the container is in its life, for the cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `create` was sent; the container may or may not exist.
    Creating,
    /// It exists.
    Created,
    /// It is gone (removed, or never created).
    Gone,
}

/// A container of one execution; removes it when dropped unless [`remove`](Self::remove)
/// did.
pub(super) struct Container {
    docker: Docker,
    host: Host,
    name: String,
    state: State,
}

impl Container {
    /// Create a container named `name` from `body`.
    pub async fn create(
        docker: Docker,
        host: Host,
        name: String,
        body: ContainerCreateBody,
    ) -> Result<Container, DockerError> {
        let mut c = Container {
            docker,
            host,
            name,
            state: State::Creating,
        };
        let options = CreateContainerOptionsBuilder::new().name(&c.name).build();
        match c.docker.create_container(Some(options), body).await {
            Ok(_) => {
                c.state = State::Created;
                Ok(c)
            }
            Err(e) => {
                c.state = State::Gone;
                Err(e)
            }
        }
    }

    /// Start it and stream its output into `ctx`'s log until it stops. The output is read
    /// from an attachment made before the start (as `docker run` does): the log stream of a
    /// container that just stopped may end before its last line without a newline.
    pub async fn run(&self, ctx: &TaskContext) -> Result<Finished, DockerError> {
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .logs(false)
            .build();
        let mut logs = self
            .docker
            .attach_container(&self.name, Some(options))
            .await?
            .output;
        self.docker.start_container(&self.name, None).await?;
        let mut last_stdout: Option<String> = None;
        let mut stderr_tail = VecDeque::with_capacity(STDERR_TAIL + 1);
        let mut out = LineBuffer::default();
        let mut err = LineBuffer::default();
        let mut on_out = |line: String| {
            if !line.trim().is_empty() {
                last_stdout = Some(line.clone());
            }
            ctx.log_stream(LogStream::Stdout, line);
        };
        let mut on_err = |line: String| {
            if stderr_tail.len() == STDERR_TAIL {
                stderr_tail.pop_front();
            }
            stderr_tail.push_back(line.clone());
            ctx.log_stream(LogStream::Stderr, line);
        };
        let code = {
            let pump = async {
                while let Some(item) = logs.next().await {
                    match item {
                        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                            out.push(&message, &mut on_out)
                        }
                        Ok(LogOutput::StdErr { message }) => err.push(&message, &mut on_err),
                        Ok(LogOutput::StdIn { .. }) => {}
                        Err(e) => {
                            tracing::warn!("container {}: reading its output: {e}", self.name);
                            break;
                        }
                    }
                }
            };
            tokio::pin!(pump);
            let mut pumped = false;
            let wait = self.wait();
            tokio::pin!(wait);
            let code = loop {
                tokio::select! {
                    code = &mut wait => break code?,
                    _ = &mut pump, if !pumped => pumped = true,
                }
            };
            if !pumped {
                let _ = tokio::time::timeout(DRAIN_GRACE, &mut pump).await;
            }
            code
        };
        // A last line without a newline.
        out.finish(&mut on_out);
        err.finish(&mut on_err);
        Ok(Finished {
            code,
            last_stdout,
            stderr_tail,
        })
    }

    /// Wait until it stops; its exit status.
    async fn wait(&self) -> Result<i64, DockerError> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(&self.name, Some(options));
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(e),
            None => Err(DockerError::DockerStreamError {
                error: "the wait for the container ended without a status".into(),
            }),
        }
    }

    /// Kill and remove it now.
    pub async fn remove(&mut self) -> Result<(), DockerError> {
        if self.state == State::Gone {
            return Ok(());
        }
        match self
            .docker
            .remove_container(&self.name, Some(remove_options()))
            .await
        {
            Ok(())
            | Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.state = State::Gone;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.state == State::Gone {
            return;
        }
        let host = self.host.clone();
        let version = self.docker.client_version();
        let name = std::mem::take(&mut self.name);
        let creating = self.state == State::Creating;
        *PENDING.0.lock() += 1;
        let spawned = std::thread::Builder::new()
            .name("graflow-container-cleanup".into())
            .spawn(move || {
                cleanup(host, version, name, creating);
                cleanup_done();
            });
        if let Err(e) = spawned {
            cleanup_done();
            tracing::warn!("cannot start the cleanup of a container: {e}");
        }
    }
}

/// How many cleanups are running, and a signal when one ends.
static PENDING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn cleanup_done() {
    let mut n = PENDING.0.lock();
    *n = n.saturating_sub(1);
    PENDING.1.notify_all();
}

/// Block until the containers of executions dropped early (timeout, cancellation) are removed,
/// or `timeout` passes; true when none is left pending. A program about to exit calls it so
/// that no container outlives it.
pub fn wait_for_cleanups(timeout: Duration) -> bool {
    let deadline = std::time::Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(366 * 24 * 3600));
    let mut n = PENDING.0.lock();
    while *n > 0 {
        if PENDING.1.wait_until(&mut n, deadline).timed_out() {
            return *n == 0;
        }
    }
    true
}

fn remove_options() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build()
}

/// Kill and remove container `name` on a runtime of this thread's own. When `creating`, the
/// create request may still be on its way: "no such container" is retried for a while.
fn cleanup(host: Host, version: ClientVersion, name: String, creating: bool) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!("container {name} is left behind: no runtime to remove it: {e}");
            return;
        }
    };
    rt.block_on(async {
        let docker = match connect(&host, &version) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("container {name} is left behind: {e}");
                return;
            }
        };
        let mut last = String::new();
        for attempt in 0..10 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match docker.remove_container(&name, Some(remove_options())).await {
                Ok(()) => return,
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) if !creating => return,
                Err(e) => last = e.to_string(),
            }
        }
        if !creating {
            tracing::warn!("container {name} is left behind: {last}");
        }
    });
}
