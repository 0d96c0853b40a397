//! [`DockerHandler`]: a `Docker` task's checked spec and one container per execution.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::container::Container;
use super::runtime::{DockerRuntime, parse_host};
use super::{CONTAINER_DIR, CONTAINER_SOCKET, DockerSpec, LABEL_RUN_ID, LABEL_TASK_ID};
use crate::context::TaskContext;
use crate::handler::process::{ProcessRuntime, context_vars, push_stderr_tail, result};
use crate::handler::{HandlerEnv, SpecError, TaskError, TaskHandler, TaskResult};

/// The folder the engine mounts into; task volumes may not use it.
const RESERVED: &str = "/graflow";

/// A checked bind mount.
#[derive(Debug, Clone, PartialEq)]
struct Volume {
    host: PathBuf,
    target: String,
    read_only: bool,
}

/// The spec, checked, with paths resolved.
struct Prepared {
    image: String,
    cmd: Option<Vec<String>>,
    env: Vec<String>,
    workdir: Option<String>,
    volumes: Vec<Volume>,
}

/// Runs `Docker` tasks.
pub struct DockerHandler {
    spec: Arc<Prepared>,
    docker: DockerRuntime,
    process: ProcessRuntime,
}

impl DockerHandler {
    /// Check `spec` and build the handler; errors name the bad field. Relative host paths of
    /// volumes resolve against `env`'s folder.
    pub fn new(spec: DockerSpec, env: &HandlerEnv) -> Result<Self, SpecError> {
        if spec.image.trim().is_empty() {
            return Err(SpecError::field(
                "image",
                "name a local image, e.g. \"graflow-demo:latest\"",
            ));
        }
        if let Some(cmd) = &spec.cmd
            && cmd.first().is_none_or(|p| p.trim().is_empty())
        {
            return Err(SpecError::field(
                "cmd",
                "name a program, or leave cmd out to run the image's command",
            ));
        }
        if let Some(dir) = &spec.workdir
            && !dir.starts_with('/')
        {
            return Err(SpecError::field(
                "workdir",
                format!("'{dir}' must be an absolute path inside the container"),
            ));
        }
        let mut vars = Vec::with_capacity(spec.env.len());
        for (k, v) in &spec.env {
            if k.is_empty() || k.contains('=') {
                return Err(SpecError::field(
                    "env",
                    format!("'{k}' is not a variable name"),
                ));
            }
            vars.push(format!("{k}={v}"));
        }
        let volumes = spec
            .volumes
            .iter()
            .map(|v| volume(v, env))
            .collect::<Result<_, _>>()?;
        Ok(DockerHandler {
            spec: Arc::new(Prepared {
                image: spec.image,
                cmd: spec.cmd,
                env: vars,
                workdir: spec.workdir,
                volumes,
            }),
            docker: env.runtimes.docker.clone(),
            process: env.runtimes.process.clone(),
        })
    }
}

/// Parse `"host:container[:ro|rw]"`.
fn volume(text: &str, env: &HandlerEnv) -> Result<Volume, SpecError> {
    let bad = |why: &str| {
        SpecError::field(
            "volumes",
            format!("'{text}' {why}; write \"host:container\" or \"host:container:ro\""),
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (host, target, read_only) = match parts.as_slice() {
        [h, t] => (*h, *t, false),
        [h, t, "ro"] => (*h, *t, true),
        [h, t, "rw"] => (*h, *t, false),
        [_, _, mode] => return Err(bad(&format!("has mode '{mode}' (ro or rw)"))),
        _ => return Err(bad("is not a mount")),
    };
    if host.is_empty() {
        return Err(bad("has no host path"));
    }
    if !target.starts_with('/') {
        return Err(bad("needs an absolute container path"));
    }
    if Path::new(target).starts_with(RESERVED) {
        return Err(bad(&format!(
            "uses {RESERVED}, where the engine mounts the task context"
        )));
    }
    // Docker wants an absolute source; the workflow's folder may be given relatively.
    let resolved = env.resolve(host);
    let host = std::path::absolute(&resolved).unwrap_or(resolved);
    Ok(Volume {
        host,
        target: target.to_string(),
        read_only,
    })
}

impl TaskHandler for DockerHandler {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn execute(&self, ctx: TaskContext) -> BoxFuture<'static, TaskResult> {
        let spec = self.spec.clone();
        let docker_rt = self.docker.clone();
        let process = self.process.clone();
        async move {
            let docker = docker_rt.client().await.map_err(TaskError::msg)?;
            let host = parse_host(&docker_rt.host()).map_err(TaskError::msg)?;
            for v in &spec.volumes {
                if !v.host.exists() {
                    return Err(TaskError::msg(format!(
                        "volume host path '{}' does not exist",
                        v.host.display()
                    )));
                }
            }
            let server = process.server().map_err(|e| {
                TaskError::msg(format!("cannot start the task context server: {e}"))
            })?;
            // Dropped when this future ends or is dropped: the token stops working and the
            // execution's folder goes.
            let mut exec = server.begin(ctx.clone());
            let dir = exec.dir("docker").map_err(|e| {
                TaskError::msg(format!("cannot create the execution's folder: {e}"))
            })?;
            let socket = exec.socket().to_path_buf();
            let body = container_body(&spec, &ctx, exec.token().to_string(), &dir, &socket).await?;
            let name = format!("graflow-{:016x}", rand::random::<u64>());
            let mut container = Container::create(docker, host, name, body)
                .await
                .map_err(|e| create_error(&spec.image, e))?;
            let finished = container.run(&ctx).await.map_err(|e| {
                TaskError::msg(format!(
                    "container of image {}: {}",
                    spec.image,
                    server_message(&e)
                ))
            });
            if let Err(e) = container.remove().await {
                // The drop below retries from a thread of its own.
                tracing::warn!("removing a container of image {}: {e}", spec.image);
            }
            drop(container);
            let finished = finished?;
            if finished.code != 0 {
                let mut message = format!("container exited with status {}", finished.code);
                push_stderr_tail(&mut message, &finished.stderr_tail);
                return Err(TaskError::msg(message));
            }
            result(&dir.join("result"), &exec, finished.last_stdout)
        }
        .boxed()
    }
}

/// The container's configuration: command, the task context variables and the task's own,
/// the context mounts and the task's volumes, and labels naming the run and task.
async fn container_body(
    spec: &Prepared,
    ctx: &TaskContext,
    token: String,
    dir: &Path,
    socket: &Path,
) -> Result<ContainerCreateBody, TaskError> {
    let vars = context_vars(
        ctx,
        token,
        OsString::from(CONTAINER_SOCKET),
        OsString::from(format!("{CONTAINER_DIR}/result")),
        |name| {
            (
                dir.join(name),
                OsString::from(format!("{CONTAINER_DIR}/{name}")),
            )
        },
    )
    .await?;
    let mut env: Vec<String> = vars
        .into_iter()
        .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
        .collect();
    env.extend(spec.env.iter().cloned());
    let bind = |source: &Path, target: &str, read_only: bool| Mount {
        target: Some(target.to_string()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    };
    let mut mounts = vec![
        bind(socket, CONTAINER_SOCKET, false),
        bind(dir, CONTAINER_DIR, false),
    ];
    mounts.extend(
        spec.volumes
            .iter()
            .map(|v| bind(&v.host, &v.target, v.read_only)),
    );
    let labels = HashMap::from([
        (LABEL_RUN_ID.to_string(), ctx.run_id().to_string()),
        (LABEL_TASK_ID.to_string(), ctx.task_id().to_string()),
    ]);
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.cmd.clone(),
        env: Some(env),
        working_dir: spec.workdir.clone(),
        labels: Some(labels),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The engine's own words for an error answer, else the error.
fn server_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn create_error(image: &str, e: DockerError) -> TaskError {
    TaskError::msg(match e {
        DockerError::DockerResponseServerError {
            status_code: 404, ..
        } => format!(
            "image {image} is not available locally; build or load it (images are never pulled)"
        ),
        other => format!(
            "cannot create a container from image {image}: {}",
            server_message(&other)
        ),
    })
}
