//! The approvals inbox: the pending human-feedback requests of the state dir (from the file
//! backend), and answering them inline with a form that fits the kind — approve or reject with
//! a reason, a text box, pick one, pick many, or JSON. The answer goes through the backend's
//! `respond`, which checks it; a refused answer keeps what was typed and shows why.

use crossterm::event::KeyEvent;
use graflow_engine::Value;
use graflow_engine::hitl::{Answer, FeedbackKind, FeedbackRequest};
use ratatui::style::Style;
use ratatui_textarea::TextArea;

use super::Screen;
use crate::studio::app::{App, Effect, Level, Overlay, Question};

/// The inbox's state.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Pending requests of the state dir, oldest first.
    pub requests: Vec<FeedbackRequest>,
    /// The selected row.
    pub selected: usize,
    /// A listing is on its way.
    pub refreshing: bool,
    /// Listed at least once.
    pub listed: bool,
    /// Why the last listing failed.
    pub error: Option<String>,
    /// The answer being written; kept as a draft while another screen shows.
    pub form: Option<AnswerForm>,
    /// Keys go to the form.
    pub editing: bool,
}

impl Inbox {
    /// The selected request.
    pub fn selected_request(&self) -> Option<&FeedbackRequest> {
        self.requests.get(self.selected)
    }

    /// The form, when it belongs to the selected request.
    pub fn form_for_selected(&self) -> Option<&AnswerForm> {
        let id = &self.selected_request()?.id;
        self.form.as_ref().filter(|f| &f.id == id)
    }
}

/// An answer being written.
#[derive(Debug, Clone)]
pub struct AnswerForm {
    /// The request.
    pub id: String,
    /// Its kind.
    pub kind: FeedbackKind,
    /// Approval: approve (else reject).
    pub approve: bool,
    /// The reason (approval), the text (text) or the JSON (custom).
    pub editor: TextArea<'static>,
    /// The options (pick one, pick many).
    pub options: Vec<String>,
    /// The option under the cursor.
    pub cursor: usize,
    /// Pick many: which options are checked.
    pub checked: Vec<bool>,
    /// Why the last answer was refused (by the engine, or as JSON here).
    pub error: Option<String>,
    /// The answer is on its way.
    pub sending: bool,
}

impl AnswerForm {
    /// An empty answer to `request`.
    pub fn new(request: &FeedbackRequest) -> AnswerForm {
        let mut editor = TextArea::default();
        editor.set_cursor_line_style(Style::default());
        editor.set_placeholder_text(match request.spec.kind {
            FeedbackKind::Approval => "a reason (optional)",
            FeedbackKind::Text => "your answer",
            FeedbackKind::Custom => "JSON, e.g. {\"limit\": 10}",
            _ => "",
        });
        let n = request.spec.options.len();
        AnswerForm {
            id: request.id.clone(),
            kind: request.spec.kind,
            approve: true,
            editor,
            options: request.spec.options.clone(),
            cursor: 0,
            checked: vec![false; n],
            error: None,
            sending: false,
        }
    }

    /// Whether the answer is picked from a list (pick one, pick many).
    pub fn is_list(&self) -> bool {
        matches!(
            self.kind,
            FeedbackKind::Selection | FeedbackKind::MultiSelection
        )
    }

    /// Whether the text box takes several lines (text and JSON: `enter` is a new line).
    pub fn multiline(&self) -> bool {
        matches!(self.kind, FeedbackKind::Text | FeedbackKind::Custom)
    }

    /// The editor's text.
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }

    /// The answer as written, or why it cannot be sent (JSON that does not parse).
    pub fn answer(&self) -> Result<Answer, String> {
        let mut a = Answer {
            responded_by: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            ..Answer::default()
        };
        match self.kind {
            FeedbackKind::Approval => {
                a.approved = Some(self.approve);
                let reason = self.editor.lines().join(" ").trim().to_string();
                a.reason = (!reason.is_empty()).then_some(reason);
            }
            FeedbackKind::Text => a.text = Some(self.text()),
            FeedbackKind::Selection => {
                let picked = self.options.get(self.cursor).cloned();
                a.selected = Some(picked.ok_or("there is no option to pick")?);
            }
            FeedbackKind::MultiSelection => {
                let picked = self
                    .options
                    .iter()
                    .zip(&self.checked)
                    .filter(|(_, c)| **c)
                    .map(|(o, _)| o.clone())
                    .collect();
                a.selected_multiple = Some(picked);
            }
            FeedbackKind::Custom => {
                let text = self.text();
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
                a.custom_data = Some(value);
            }
        }
        Ok(a)
    }

    fn move_cursor(&mut self, delta: i64) {
        let n = self.options.len();
        if n > 0 {
            self.cursor = (self.cursor as i64 + delta).clamp(0, n as i64 - 1) as usize;
        }
    }
}

/// What the runtime reports after an answer was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Responded {
    /// The answer's value.
    pub value: Value,
    /// The run that asked.
    pub run_id: String,
    /// The task that asked.
    pub task: String,
    /// The workflow.
    pub workflow: String,
    /// The checkpoint its run paused into, when it did.
    pub checkpoint: Option<String>,
}

impl App {
    /// Open the inbox, or go back to the workflows.
    pub(crate) fn toggle_inbox(&mut self) {
        if self.showing == Screen::Inbox {
            self.showing = Screen::Main;
            self.inbox.editing = false;
        } else {
            self.showing = Screen::Inbox;
            self.want_inbox();
        }
    }

    /// Ask for a fresh listing of the pending requests (unless one is on its way).
    pub(crate) fn want_inbox(&mut self) {
        if !self.inbox.refreshing {
            self.inbox.refreshing = true;
            self.effects.push(Effect::RefreshInbox);
        }
    }

    /// Requests waiting for an answer (the badge).
    pub fn pending_requests(&self) -> usize {
        self.inbox.requests.len()
    }

    /// Whether the inbox should be polled: it is open, a run of this studio waits for an
    /// answer, or requests are pending (answered elsewhere, the badge must drop).
    pub fn wants_inbox_poll(&self) -> bool {
        self.showing == Screen::Inbox
            || !self.inbox.requests.is_empty()
            || self
                .workflows
                .entries
                .iter()
                .filter_map(|e| e.run.as_ref())
                .any(|r| r.is_active() && !r.pending_feedback.is_empty())
    }

    pub(crate) fn inbox_move(&mut self, delta: i64) {
        if self.inbox.editing
            && let Some(f) = self.inbox.form.as_mut()
        {
            f.move_cursor(delta);
            return;
        }
        let n = self.inbox.requests.len();
        if n > 0 {
            self.inbox.selected =
                (self.inbox.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
        }
    }

    /// The form for the selected request (the draft when there is one), ready for keys.
    fn open_form(&mut self) -> bool {
        let Some(request) = self.inbox.selected_request().cloned() else {
            self.message = Some(("no request is waiting".into(), Level::Info));
            return false;
        };
        if self.inbox.form.as_ref().is_none_or(|f| f.id != request.id) {
            self.inbox.form = Some(AnswerForm::new(&request));
        }
        self.inbox.editing = true;
        true
    }

    /// `enter` on a request: answer it with the form of its kind.
    pub(crate) fn answer_request(&mut self) {
        self.open_form();
    }

    /// `y` / `n` on an approval: approve at once, or reject with a reason.
    pub(crate) fn decide(&mut self, approve: bool) {
        let Some(request) = self.inbox.selected_request() else {
            self.message = Some(("no request is waiting".into(), Level::Info));
            return;
        };
        if request.spec.kind != FeedbackKind::Approval {
            self.message = Some((
                format!(
                    "'{}' asks for {}: {} answers it",
                    request.task,
                    kind_words(request.spec.kind),
                    self.key_name(crate::studio::action::ActionId::AnswerRequest)
                ),
                Level::Info,
            ));
            return;
        }
        if !self.open_form() {
            return;
        }
        if let Some(f) = self.inbox.form.as_mut() {
            f.approve = approve;
        }
        if approve {
            // Approving needs no typing: the form only shows if the answer is refused.
            self.inbox.editing = false;
            self.submit_answer();
        }
    }

    /// Send the form's answer.
    pub(crate) fn submit_answer(&mut self) {
        let Some(f) = self.inbox.form.as_mut() else {
            return;
        };
        if f.sending {
            return;
        }
        match f.answer() {
            Ok(answer) => {
                f.error = None;
                f.sending = true;
                self.effects.push(Effect::RespondFeedback {
                    id: f.id.clone(),
                    answer,
                });
            }
            Err(e) => f.error = Some(e),
        }
    }

    /// A key for the form: the option list moves, the text box edits.
    pub(crate) fn answer_key(&mut self, key: KeyEvent) {
        let Some(f) = self.inbox.form.as_mut().filter(|_| self.inbox.editing) else {
            return;
        };
        if f.is_list() {
            return;
        }
        let newline = matches!(key.code, crossterm::event::KeyCode::Enter);
        if newline && !f.multiline() {
            return;
        }
        f.editor.input(key);
    }

    /// Pasted text for the form's text box.
    pub(crate) fn answer_paste(&mut self, text: &str) {
        let Some(f) = self.inbox.form.as_mut().filter(|_| self.inbox.editing) else {
            return;
        };
        if f.is_list() {
            return;
        }
        if f.multiline() {
            f.editor.insert_str(text);
        } else {
            f.editor.insert_str(text.replace(['\r', '\n'], " "));
        }
    }

    /// Pick many: check or uncheck the option under the cursor.
    pub(crate) fn toggle_option(&mut self) {
        if let Some(f) = self.inbox.form.as_mut()
            && f.kind == FeedbackKind::MultiSelection
            && let Some(c) = f.checked.get_mut(f.cursor)
        {
            *c = !*c;
        }
    }

    /// Approval: switch between approve and reject.
    pub(crate) fn toggle_decision(&mut self) {
        if let Some(f) = self.inbox.form.as_mut()
            && f.kind == FeedbackKind::Approval
        {
            f.approve = !f.approve;
        }
    }

    /// A fresh listing of the pending requests.
    pub(crate) fn on_inbox(&mut self, listed: Result<Vec<FeedbackRequest>, String>) -> bool {
        self.inbox.refreshing = false;
        let requests = match listed {
            Ok(r) => r,
            Err(e) => {
                let changed = self.inbox.error.as_deref() != Some(&e);
                self.inbox.error = Some(e);
                return changed;
            }
        };
        let first = !self.inbox.listed;
        self.inbox.listed = true;
        self.inbox.error = None;
        if !first && requests == self.inbox.requests {
            return false;
        }
        // Keep the selected request selected.
        let id = self.inbox.selected_request().map(|r| r.id.clone());
        self.inbox.requests = requests;
        self.inbox.selected = id
            .and_then(|id| self.inbox.requests.iter().position(|r| r.id == id))
            .unwrap_or(self.inbox.selected)
            .min(self.inbox.requests.len().saturating_sub(1));
        // A request answered or withdrawn elsewhere takes its form with it.
        if let Some(f) = &self.inbox.form
            && !self.inbox.requests.iter().any(|r| r.id == f.id)
        {
            if self.inbox.editing && !f.sending {
                let text = format!("{} was answered or withdrawn elsewhere", f.id);
                self.message = Some((text, Level::Info));
            }
            self.inbox.form = None;
            self.inbox.editing = false;
        }
        true
    }

    /// The backend took an answer, or refused it.
    pub(crate) fn on_responded(&mut self, id: String, result: Result<Responded, String>) {
        match result {
            Ok(r) => {
                if self.inbox.form.as_ref().is_some_and(|f| f.id == id) {
                    self.inbox.form = None;
                    self.inbox.editing = false;
                }
                self.inbox.requests.retain(|q| q.id != id);
                self.inbox.selected = self
                    .inbox
                    .selected
                    .min(self.inbox.requests.len().saturating_sub(1));
                let value = serde_json::to_string(&r.value).unwrap_or_default();
                let mut text =
                    format!("answered {}: {}", r.task, crate::text::truncate(&value, 60));
                // The answer may let the run finish before this news arrives (the store syncs
                // the answer to disk first): then the run's outcome is the newer news and its
                // message stays. The run is looked up in the entries, not in `runs`: a run
                // that ended has left `runs` already (`Msg::RunEnded` may come first too).
                let run = self
                    .workflows
                    .entries
                    .iter()
                    .filter_map(|e| e.run.as_ref())
                    .find(|run| run.run_id == r.run_id);
                let live = run.is_some_and(|run| run.is_active());
                let ended_here = run.is_some_and(|run| !run.is_active());
                let paused_into = r.checkpoint.clone();
                if live {
                    text.push_str(" — the run goes on");
                } else if let Some(ckpt) = r.checkpoint {
                    self.overlay = Some(Overlay::Confirm(Question::ResumeAnswered {
                        checkpoint: ckpt.into(),
                        workflow: r.workflow,
                    }));
                }
                if !(ended_here && paused_into.is_none()) {
                    self.message = Some((text, Level::Info));
                }
                self.want_inbox();
            }
            Err(e) => {
                match self.inbox.form.as_mut().filter(|f| f.id == id) {
                    Some(f) => {
                        f.sending = false;
                        f.error = Some(e.clone());
                    }
                    None => self.want_inbox(),
                }
                self.message = Some((format!("not answered: {e}"), Level::Error));
            }
        }
    }
}

/// What a kind of request asks for, in words.
pub fn kind_words(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Approval => "an approval",
        FeedbackKind::Text => "some text",
        FeedbackKind::Selection => "one option",
        FeedbackKind::MultiSelection => "any of the options",
        FeedbackKind::Custom => "JSON data",
    }
}
