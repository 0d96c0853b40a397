//! `graflow feedback list | show | respond | cancel`: answer human-feedback requests from a
//! shell. Requests live in `<state dir>/feedback`, shared with `graflow run`, `graflow serve`
//! and the studio started in the same folder — or, with `--backend redis://…` (or
//! `GRAFLOW_BACKEND`), in the fleet's Redis, shared with every run and studio of the fleet.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use graflow_engine::hitl::{Answer, FeedbackError, FeedbackKind, FeedbackRequest};

use super::exit;
use super::out::outln;
use super::style::Style;
use crate::history;

/// Arguments of `graflow feedback`.
#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: FeedbackAction,
    /// The state folder (default: $GRAFLOW_STATE_DIR, else .graflow).
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// The fleet's Redis, where runs with `--backend` keep their requests
    /// (`redis://host:port[/db]`; `local`: the state folder) [env: GRAFLOW_BACKEND].
    #[arg(long, value_name = "URL", global = true)]
    pub backend: Option<String>,
}

/// The feedback commands.
#[derive(Debug, Subcommand)]
pub enum FeedbackAction {
    /// List requests waiting for an answer (all of them with --all).
    List {
        /// Only requests of this run.
        #[arg(long)]
        run: Option<String>,
        /// Answered and cancelled requests too.
        #[arg(long)]
        all: bool,
    },
    /// Show one request and its answer.
    Show {
        /// The request id.
        id: String,
    },
    /// Answer a request.
    Respond(RespondArgs),
    /// Withdraw a request (the waiting task fails).
    Cancel {
        /// The request id.
        id: String,
    },
}

/// An answer given on the command line.
#[derive(Debug, Args)]
pub struct RespondArgs {
    /// The request id.
    pub id: String,
    /// Approve (approval requests).
    #[arg(long, conflicts_with = "reject")]
    pub approve: bool,
    /// Reject (approval requests).
    #[arg(long)]
    pub reject: bool,
    /// Why (approval requests).
    #[arg(long)]
    pub reason: Option<String>,
    /// The text (text requests).
    #[arg(long)]
    pub text: Option<String>,
    /// The option picked (selection requests).
    #[arg(long)]
    pub select: Option<String>,
    /// The options picked (multi-selection requests); repeat or separate with commas.
    #[arg(long = "select-multiple", value_delimiter = ',')]
    pub select_multiple: Option<Vec<String>>,
    /// Any JSON (custom requests).
    #[arg(long)]
    pub data: Option<String>,
    /// Who answers (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
}

impl RespondArgs {
    fn answer(&self) -> Result<Answer, String> {
        let custom_data = match &self.data {
            None => None,
            Some(d) => {
                Some(serde_json::from_str(d).map_err(|e| format!("--data is not JSON: {e}"))?)
            }
        };
        let approved = match (self.approve, self.reject) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Ok(Answer {
            approved,
            reason: self.reason.clone(),
            text: self.text.clone(),
            selected: self.select.clone(),
            selected_multiple: self.select_multiple.clone(),
            custom_data,
            responded_by: self.by.clone().or_else(|| std::env::var("USER").ok()),
        })
    }
}

fn how_to_answer(kind: FeedbackKind, options: &[String]) -> String {
    match kind {
        FeedbackKind::Approval => "--approve | --reject [--reason …]".into(),
        FeedbackKind::Text => "--text …".into(),
        FeedbackKind::Selection => format!("--select one of [{}]", options.join(", ")),
        FeedbackKind::MultiSelection => {
            format!("--select-multiple any of [{}]", options.join(", "))
        }
        FeedbackKind::Custom => "--data <json>".into(),
    }
}

/// An answer check's message with the command line's flags for the answer's JSON fields.
fn flag_words(message: &str) -> String {
    [
        ("\"approved\": true or false", "--approve or --reject"),
        ("\"selected_multiple\": [ … ]", "--select-multiple"),
        ("'approved'", "--approve/--reject"),
        ("'reason'", "--reason"),
        ("'text'", "--text"),
        ("\"text\"", "--text"),
        ("'selected_multiple'", "--select-multiple"),
        ("'selected'", "--select"),
        ("\"selected\"", "--select"),
        ("'custom_data'", "--data"),
        ("\"custom_data\"", "--data"),
    ]
    .iter()
    .fold(message.to_string(), |m, (json, flag)| m.replace(json, flag))
}

fn line(r: &FeedbackRequest, style: &Style) -> String {
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut s = format!(
        "{}  {}  {} / {}  [{}] {}\n    answer: graflow feedback respond {} {}",
        style.bold(&r.id),
        status,
        r.workflow,
        r.task,
        r.spec.kind.as_str(),
        r.spec.prompt,
        r.id,
        how_to_answer(r.spec.kind, &r.spec.options)
    );
    if let Some(ckpt) = &r.checkpoint {
        s.push_str(&format!(
            "\n    the run paused; then: graflow resume {ckpt}"
        ));
    } else if let Some(t) = r
        .spec
        .timeout_secs
        .filter(|_| r.status == graflow_engine::hitl::FeedbackStatus::Pending)
    {
        let t = humantime::format_duration(std::time::Duration::from_secs_f64(t.max(0.0)));
        s.push_str(&format!(
            "\n    pauses the run if unanswered {t} after it was asked"
        ));
    }
    s
}

/// Run a feedback command; returns the exit code.
pub async fn run(args: FeedbackArgs) -> i32 {
    let (out, err) = (Style::stdout(), Style::stderr());
    let state_dir = history::state_dir(args.state_dir.as_deref());
    let url = crate::runsetup::backend_url(args.backend.as_deref());
    let backend = match crate::runsetup::feedback_store(&state_dir, url.as_deref()).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}", err.error(&format!("graflow feedback: {e}")));
            return exit::BAD_INPUT;
        }
    };
    let fail = |e: FeedbackError| {
        eprintln!("{}", err.error(&format!("graflow feedback: {e}")));
        match e {
            FeedbackError::Backend(_) => exit::FAILURE,
            _ => exit::BAD_INPUT,
        }
    };
    match &args.action {
        FeedbackAction::List { run, all } => match backend.list(run.as_deref(), !all).await {
            Ok(list) if args.json => {
                for r in list {
                    outln!("{}", serde_json::to_string(&r).unwrap_or_default());
                }
                exit::SUCCESS
            }
            Ok(list) if list.is_empty() => {
                outln!("no {}feedback requests", if *all { "" } else { "pending " });
                exit::SUCCESS
            }
            Ok(list) => {
                for r in list {
                    outln!("{}", line(&r, &out));
                }
                exit::SUCCESS
            }
            Err(e) => fail(e),
        },
        FeedbackAction::Show { id } => match backend.get(id).await {
            Ok(Some((request, response))) => {
                if args.json {
                    outln!(
                        "{}",
                        serde_json::json!({"request": request, "response": response})
                    );
                } else {
                    outln!("{}", line(&request, &out));
                    if !request.spec.options.is_empty() {
                        outln!("    options: {}", request.spec.options.join(", "));
                    }
                    match response {
                        Some(r) => outln!(
                            "    answered {} by {}: {}",
                            r.responded_at,
                            r.answer.responded_by.clone().unwrap_or_default(),
                            r.value()
                        ),
                        None => outln!("    not answered yet"),
                    }
                }
                exit::SUCCESS
            }
            Ok(None) => fail(FeedbackError::NotFound(id.clone())),
            Err(e) => fail(e),
        },
        FeedbackAction::Respond(r) => {
            let answer = match r.answer() {
                Ok(a) => a,
                Err(e) => return fail(FeedbackError::Invalid(e)),
            };
            match backend.respond(&r.id, answer).await {
                Err(FeedbackError::Invalid(m)) => {
                    let how = match backend.get(&r.id).await {
                        Ok(Some((req, _))) => format!(
                            "; answer it with: graflow feedback respond {} {}",
                            r.id,
                            how_to_answer(req.spec.kind, &req.spec.options)
                        ),
                        _ => String::new(),
                    };
                    fail(FeedbackError::Invalid(format!("{}{how}", flag_words(&m))))
                }
                Ok(response) => {
                    if args.json {
                        outln!("{}", serde_json::to_string(&response).unwrap_or_default());
                    } else {
                        outln!("{} {}: {}", out.ok("answered"), r.id, response.value());
                        if let Ok(Some((req, _))) = backend.get(&r.id).await
                            && let Some(ckpt) = req.checkpoint
                        {
                            outln!(
                                "the run paused waiting for it; continue with: graflow resume {ckpt}"
                            );
                        }
                    }
                    exit::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        FeedbackAction::Cancel { id } => match backend.cancel(id).await {
            Ok(_) => {
                outln!("cancelled {id}");
                exit::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}
