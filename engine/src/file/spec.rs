//! The RON workflow format (DESIGN §4) as serde types. `docs/workflow-format.md` documents
//! every field with an example.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::handler::docker::DockerSpec;
use crate::handler::http::HttpSpec;
pub use crate::run::nested::SubChannel;

/// A workflow file: `Workflow(name: …, flow: …, tasks: {…}, …)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Workflow", deny_unknown_fields)]
pub struct WorkflowSpec {
    /// The workflow's name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// The flow: statements of `>>` and `|` over task and group names.
    pub flow: String,
    /// The task to start from; by default the single root.
    #[serde(default)]
    pub start: Option<String>,
    /// Step limit (10,000 by default).
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Cycle limit per task (100 by default).
    #[serde(default)]
    pub max_cycles: Option<u32>,
    /// Where the run's channel lives.
    #[serde(default)]
    pub channel: Option<ChannelSpec>,
    /// Where parallel groups run.
    #[serde(default)]
    pub backend: Option<BackendSpec>,
    /// Where checkpoints are written.
    #[serde(default)]
    pub checkpoint_dir: Option<String>,
    /// How many checkpoints of this workflow to keep (newest first); all by default.
    #[serde(default)]
    pub keep_last: Option<usize>,
    /// How long to keep checkpoints of this workflow (`"7d"`, `"12h"`); forever by default.
    #[serde(default)]
    pub keep_for: Option<String>,
    /// Who is told when a task asks a human; `[Console]` when absent, `[]` for nobody.
    #[serde(default)]
    pub notify: Option<Vec<NotifySpec>>,
    /// Initial channel values.
    #[serde(default)]
    pub params: IndexMap<String, Value>,
    /// Named parallel groups.
    #[serde(default)]
    pub groups: IndexMap<String, GroupSpec>,
    /// Named pools of slots that tasks hold while they run.
    #[serde(default)]
    pub pools: IndexMap<String, PoolSpec>,
    /// Limits of worker queues, by queue name.
    #[serde(default)]
    pub queues: IndexMap<String, QueueSpec>,
    /// The tasks (those not in the flow are definitions `next_task` can add).
    pub tasks: IndexMap<String, TaskSpec>,
}

/// `Memory` or `Redis(url: "redis://…")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum ChannelSpec {
    /// In this process.
    Memory,
    /// In Redis.
    Redis {
        /// `redis://host:port[/db]` (or `redis+cluster://host:port,host:port`).
        url: String,
    },
}

/// `Local` or `Redis(url: "redis://…")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum BackendSpec {
    /// In this process.
    Local,
    /// On the worker fleet.
    Redis {
        /// `redis://host:port[/db]` (or `redis+cluster://host:port,host:port`).
        url: String,
    },
}

/// `Group(members: "a | b | c", policy: AtLeast(2), backend: Local)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Group", deny_unknown_fields)]
pub struct GroupSpec {
    /// Members as a flow string; each `|` item is a member (it may be a chain).
    pub members: String,
    /// The policy; `Strict` by default.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Where the members run.
    #[serde(default)]
    pub backend: Option<BackendSpec>,
}

/// `Pool(slots: 4, rate_limit: "10/s")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Pool", deny_unknown_fields)]
pub struct PoolSpec {
    /// How many slots the pool has.
    pub slots: u32,
    /// How often its tasks may start, all together: `"10/s"`, `"600/m burst 20"`.
    #[serde(default)]
    pub rate_limit: Option<String>,
}

/// `Queue(rate_limit: "5/s")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Queue", deny_unknown_fields)]
pub struct QueueSpec {
    /// How often tasks routed to the queue may start, all together.
    #[serde(default)]
    pub rate_limit: Option<String>,
}

/// A group policy.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub enum PolicySpec {
    /// Every member must succeed.
    #[default]
    Strict,
    /// Never fails.
    BestEffort,
    /// At least n members must succeed.
    AtLeast(usize),
    /// These members must succeed.
    Critical(Vec<String>),
    /// A Rhai expression over the outcomes.
    Custom(String),
}

/// `Task(run: …, retries: (…), timeout: "30s", …)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename = "Task", deny_unknown_fields)]
pub struct TaskSpec {
    /// What the task does.
    pub run: RunSpec,
    /// Retry policy.
    #[serde(default)]
    pub retries: Option<RetrySpec>,
    /// Per-attempt time limit, e.g. `"30s"`.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Cycle limit of this task.
    #[serde(default)]
    pub max_cycles: Option<u32>,
    /// Worker queue in distributed mode.
    #[serde(default)]
    pub queue: Option<String>,
    /// The pool whose slots the task holds while it runs.
    #[serde(default)]
    pub pool: Option<String>,
    /// How many of the pool's slots it holds (1 by default).
    #[serde(default)]
    pub slots: Option<u32>,
    /// How often the task may start: `"10/s"`, `"100/m burst 5"`.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Extra environment of `Shell`/`Command` tasks.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Working directory of `Shell`/`Command` tasks.
    #[serde(default)]
    pub cwd: Option<String>,
}

/// `(max: 3, backoff: "500ms", factor: 2.0, max_backoff: "60s", jitter: true)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries after the first attempt.
    pub max: u32,
    /// First delay (1 s by default).
    #[serde(default)]
    pub backoff: Option<String>,
    /// Growth factor (2.0 by default).
    #[serde(default)]
    pub factor: Option<f64>,
    /// Delay cap (60 s by default).
    #[serde(default)]
    pub max_backoff: Option<String>,
    /// Randomize delays by ×[0.5, 1.5].
    #[serde(default)]
    pub jitter: Option<bool>,
}

/// What a task does.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum RunSpec {
    /// Return this value.
    Value(Value),
    /// Do nothing.
    Noop,
    /// Wait, e.g. `Sleep("2s")`.
    Sleep(String),
    /// `sh -c` this command line.
    Shell(String),
    /// Run this program with these arguments, without a shell.
    Command(Vec<String>),
    /// Rhai code, inline or from a file.
    Script(ScriptSpec),
    /// An HTTP request.
    Http(HttpSpec),
    /// A container from a local image.
    Docker(DockerSpec),
    /// Ask a human to approve; succeeds with the answer when approved, fails when rejected.
    Approval(ApprovalSpec),
    /// Ask a human for text, a selection, several selections or any data.
    Feedback(FeedbackTaskSpec),
    /// Run another workflow file as this one task (a sub-run).
    Workflow(WorkflowTaskSpec),
}

/// `Workflow(file: "sub.ron", set: {"k": "{{input.fetch}}"}, channel: Own)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowTaskSpec {
    /// The workflow file to run, relative to this file's folder.
    pub file: String,
    /// Parameters of the sub-run (over the sub-workflow's own `params`); string values may hold
    /// `{{…}}` placeholders (`input.<id>`, `result.<id>`, `channel.<key>`, `inputs`, `data`,
    /// `run_id`, `task_id`, `cycle`); a string that is one placeholder takes its value as is.
    #[serde(default)]
    pub set: IndexMap<String, Value>,
    /// Which channel the sub-run uses: its own (default) or this run's.
    #[serde(default)]
    pub channel: SubChannel,
}

/// `Approval(prompt: "…", timeout: "3m", channel_key: "approved", notify: [...])`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// The question.
    pub prompt: String,
    /// How long to wait before the run pauses (default 3 minutes).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Write the answer to this channel key.
    #[serde(default)]
    pub channel_key: Option<String>,
    /// Notifiers replacing the workflow's.
    #[serde(default)]
    pub notify: Option<Vec<NotifySpec>>,
}

/// The kind of a `Feedback` task's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AnswerKind {
    /// Free text.
    Text,
    /// One of `options`.
    Selection,
    /// Any of `options`.
    MultiSelection,
    /// Any JSON value.
    Custom,
    /// Approve or reject (the result is true or false; use `Approval` to fail on rejection).
    Approval,
}

/// `Feedback(kind: Selection, prompt: "…", options: ["a", "b"], timeout: "5m", …)`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackTaskSpec {
    /// The kind of answer.
    pub kind: AnswerKind,
    /// The question.
    pub prompt: String,
    /// Options of a selection.
    #[serde(default)]
    pub options: Vec<String>,
    /// How long to wait before the run pauses (default 3 minutes).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Write the answer to this channel key.
    #[serde(default)]
    pub channel_key: Option<String>,
    /// Notifiers replacing the workflow's.
    #[serde(default)]
    pub notify: Option<Vec<NotifySpec>>,
}

/// `Console` or `Webhook(url: "…", …)`.
#[allow(clippy::large_enum_variant)] // a handful per file, read once
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum NotifySpec {
    /// Print the request, where to answer, and a curl example.
    Console,
    /// Call a URL for each request event.
    Webhook(WebhookSpec),
}

/// A webhook notifier.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where to send.
    pub url: String,
    /// HTTP method (`POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Body template with `{{prompt}}`, `{{url}}`, `{{feedback_id}}`, `{{task}}`, `{{run_id}}`,
    /// `{{kind}}`, `{{event}}`, `{{workflow}}`; without it the request is sent as JSON.
    #[serde(default)]
    pub body: Option<String>,
    /// `whsec_<base64 key>`: sign per Standard Webhooks.
    #[serde(default)]
    pub secret: Option<String>,
    /// A PEM file of extra root certificates to trust (relative to the workflow's folder).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Attempts after the first (3).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Time limit of one attempt (`"10s"`).
    #[serde(default)]
    pub timeout: Option<String>,
}

/// `Script("code")` or `Script(file: "path.rhai")`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ScriptSpec {
    /// Inline code.
    Inline(String),
    /// Code in a file next to the workflow.
    File {
        /// The file.
        file: String,
    },
}
