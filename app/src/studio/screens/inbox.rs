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
use crate::studio::action::ActionId;
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

/// What the inbox is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxAction {
    /// Move the selection (or, in the form, the option cursor) by this many rows.
    Move(i64),
    /// `enter` on a request: answer it with the form of its kind (the draft when there is one).
    Answer,
    /// `y` / `n` on an approval: approve at once, or reject with a reason.
    Decide(bool),
    /// Send the form's answer.
    Submit,
    /// A key for the form: the option list moves, the text box edits.
    Key(KeyEvent),
    /// Pasted text for the form's text box.
    Paste(String),
    /// Pick many: check or uncheck the option under the cursor.
    ToggleOption,
    /// Approval: switch between approve and reject.
    ToggleDecision,
    /// Keys go back to the list; the draft stays.
    StopEditing,
    /// A click on this row of a list showing `height` rows.
    Click {
        /// The row clicked, from the list's first row.
        row: usize,
        /// Rows the list shows.
        height: usize,
    },
}

/// What the app should do after the inbox handled something.
#[derive(Debug, Clone)]
pub enum InboxEffect {
    /// Tell the user (an info message).
    Notice(String),
    /// `y` / `n` was pressed on a request that is not an approval: say which key answers it.
    NeedsForm {
        /// The task that asks.
        task: String,
        /// What it asks for.
        kind: FeedbackKind,
    },
    /// Send this answer.
    Respond {
        /// The request.
        id: String,
        /// The answer.
        answer: Answer,
    },
    /// List the pending requests again.
    Refresh,
}

impl Inbox {
    /// Ask for a fresh listing (unless one is on its way).
    pub fn want_refresh(&mut self) -> Option<InboxEffect> {
        if self.refreshing {
            return None;
        }
        self.refreshing = true;
        Some(InboxEffect::Refresh)
    }

    /// Do `action`.
    pub fn handle(&mut self, action: InboxAction) -> Vec<InboxEffect> {
        match action {
            InboxAction::Move(delta) => self.move_by(delta),
            InboxAction::Answer if !self.open_form() => return vec![no_request()],
            InboxAction::Answer => {}
            InboxAction::Decide(approve) => return self.decide(approve),
            InboxAction::Submit => return self.submit().into_iter().collect(),
            InboxAction::Key(key) => self.key(key),
            InboxAction::Paste(text) => self.paste(&text),
            InboxAction::ToggleOption => {
                if let Some(f) = self.form.as_mut()
                    && f.kind == FeedbackKind::MultiSelection
                    && let Some(c) = f.checked.get_mut(f.cursor)
                {
                    *c = !*c;
                }
            }
            InboxAction::ToggleDecision => {
                if let Some(f) = self.form.as_mut()
                    && f.kind == FeedbackKind::Approval
                {
                    f.approve = !f.approve;
                }
            }
            InboxAction::StopEditing => self.editing = false,
            InboxAction::Click { row, height } => {
                let offset = self.selected.saturating_sub(height.saturating_sub(1));
                if !self.editing && offset + row < self.requests.len() {
                    self.selected = offset + row;
                }
            }
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: i64) {
        if self.editing
            && let Some(f) = self.form.as_mut()
        {
            f.move_cursor(delta);
            return;
        }
        let n = self.requests.len();
        if n > 0 {
            self.selected = (self.selected as i64 + delta).clamp(0, n as i64 - 1) as usize;
        }
    }

    /// The form for the selected request (the draft when there is one), ready for keys.
    fn open_form(&mut self) -> bool {
        let Some(request) = self.selected_request() else {
            return false;
        };
        if self.form.as_ref().is_none_or(|f| f.id != request.id) {
            self.form = Some(AnswerForm::new(request));
        }
        self.editing = true;
        true
    }

    fn decide(&mut self, approve: bool) -> Vec<InboxEffect> {
        let Some(request) = self.selected_request() else {
            return vec![no_request()];
        };
        if request.spec.kind != FeedbackKind::Approval {
            return vec![InboxEffect::NeedsForm {
                task: request.task.clone(),
                kind: request.spec.kind,
            }];
        }
        if !self.open_form() {
            return vec![no_request()];
        }
        if let Some(f) = self.form.as_mut() {
            f.approve = approve;
        }
        if !approve {
            return Vec::new();
        }
        // Approving needs no typing: the form only shows if the answer is refused.
        self.editing = false;
        self.submit().into_iter().collect()
    }

    fn submit(&mut self) -> Option<InboxEffect> {
        let f = self.form.as_mut().filter(|f| !f.sending)?;
        match f.answer() {
            Ok(answer) => {
                f.error = None;
                f.sending = true;
                Some(InboxEffect::Respond {
                    id: f.id.clone(),
                    answer,
                })
            }
            Err(e) => {
                f.error = Some(e);
                None
            }
        }
    }

    fn key(&mut self, key: KeyEvent) {
        let Some(f) = self.form.as_mut().filter(|_| self.editing) else {
            return;
        };
        let newline = matches!(key.code, crossterm::event::KeyCode::Enter);
        if f.is_list() || (newline && !f.multiline()) {
            return;
        }
        f.editor.input(key);
    }

    fn paste(&mut self, text: &str) {
        let Some(f) = self.form.as_mut().filter(|_| self.editing) else {
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

    /// A fresh listing of the pending requests; returns whether anything changed and what
    /// to tell the user.
    pub fn on_listing(
        &mut self,
        listed: Result<Vec<FeedbackRequest>, String>,
    ) -> (bool, Option<InboxEffect>) {
        self.refreshing = false;
        let requests = match listed {
            Ok(r) => r,
            Err(e) => {
                let changed = self.error.as_deref() != Some(&e);
                self.error = Some(e);
                return (changed, None);
            }
        };
        let first = !self.listed;
        self.listed = true;
        self.error = None;
        if !first && requests == self.requests {
            return (false, None);
        }
        // Keep the selected request selected.
        let id = self.selected_request().map(|r| r.id.clone());
        self.requests = requests;
        self.selected = id
            .and_then(|id| self.requests.iter().position(|r| r.id == id))
            .unwrap_or(self.selected)
            .min(self.requests.len().saturating_sub(1));
        // A request answered or withdrawn elsewhere takes its form with it.
        let mut notice = None;
        if let Some(f) = &self.form
            && !self.requests.iter().any(|r| r.id == f.id)
        {
            if self.editing && !f.sending {
                let text = format!("{} was answered or withdrawn elsewhere", f.id);
                notice = Some(InboxEffect::Notice(text));
            }
            self.form = None;
            self.editing = false;
        }
        (true, notice)
    }

    /// The backend took the answer to `id`: the request leaves the list, its form closes.
    pub fn on_taken(&mut self, id: &str) {
        if self.form.as_ref().is_some_and(|f| f.id == id) {
            self.form = None;
            self.editing = false;
        }
        self.requests.retain(|q| q.id != id);
        self.selected = self.selected.min(self.requests.len().saturating_sub(1));
    }

    /// The backend refused the answer to `id`: the form shows why (keeping what was typed);
    /// without a form, the list is read again.
    pub fn on_refused(&mut self, id: &str, why: &str) -> Option<InboxEffect> {
        match self.form.as_mut().filter(|f| f.id == id) {
            Some(f) => {
                f.sending = false;
                f.error = Some(why.to_string());
                None
            }
            None => self.want_refresh(),
        }
    }
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
        let fx = self.inbox.want_refresh();
        self.apply_inbox(fx);
    }

    /// Hand an action to the inbox and carry out what it returns.
    pub(crate) fn on_inbox_action(&mut self, action: InboxAction) {
        let fx = self.inbox.handle(action);
        self.apply_inbox(fx);
    }

    fn apply_inbox(&mut self, fx: impl IntoIterator<Item = InboxEffect>) {
        for f in fx {
            match f {
                InboxEffect::Notice(text) => self.message = Some((text, Level::Info)),
                InboxEffect::NeedsForm { task, kind } => {
                    let key = self.key_name(ActionId::AnswerRequest);
                    let text = format!("'{task}' asks for {}: {key} answers it", kind_words(kind));
                    self.message = Some((text, Level::Info));
                }
                InboxEffect::Respond { id, answer } => {
                    self.effects.push(Effect::RespondFeedback { id, answer })
                }
                InboxEffect::Refresh => self.effects.push(Effect::RefreshInbox),
            }
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

    /// A fresh listing of the pending requests; returns whether anything changed.
    pub(crate) fn on_inbox(&mut self, listed: Result<Vec<FeedbackRequest>, String>) -> bool {
        let (changed, notice) = self.inbox.on_listing(listed);
        self.apply_inbox(notice);
        changed
    }

    /// The backend took an answer, or refused it.
    pub(crate) fn on_responded(&mut self, id: String, result: Result<Responded, String>) {
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                let fx = self.inbox.on_refused(&id, &e);
                self.apply_inbox(fx);
                self.message = Some((format!("not answered: {e}"), Level::Error));
                return;
            }
        };
        self.inbox.on_taken(&id);
        let value = serde_json::to_string(&r.value).unwrap_or_default();
        let mut text = format!("answered {}: {}", r.task, crate::text::truncate(&value, 60));
        // The answer may let the run finish before this news arrives (the store syncs the
        // answer to disk first): then the run's outcome is the newer news and its message
        // stays. The run is looked up in the entries, not in `runs`: a run that ended has left
        // `runs` already (`Msg::RunEnded` may come first too).
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
}

fn no_request() -> InboxEffect {
    InboxEffect::Notice("no request is waiting".into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};
    use graflow_engine::hitl::{FeedbackSpec, FeedbackStatus};

    fn request(id: &str, kind: FeedbackKind, options: &[&str]) -> FeedbackRequest {
        FeedbackRequest {
            id: id.into(),
            run_id: "r1".into(),
            task: format!("task_{id}"),
            workflow: "release".into(),
            spec: FeedbackSpec::new(kind, "?")
                .options(options.iter().map(|s| s.to_string()).collect()),
            status: FeedbackStatus::Pending,
            created_at: "1970-01-01T00:00:10Z".into(),
            timed_out_at: None,
            checkpoint: None,
        }
    }

    fn listed() -> Inbox {
        let mut inbox = Inbox::default();
        let (changed, _) = inbox.on_listing(Ok(vec![
            request("ok", FeedbackKind::Approval, &[]),
            request("name", FeedbackKind::Text, &[]),
            request("pick", FeedbackKind::MultiSelection, &["a", "b"]),
        ]));
        assert!(changed);
        inbox
    }

    fn key(c: char) -> InboxAction {
        InboxAction::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn approving_sends_at_once_and_once() {
        let mut inbox = listed();
        let fx = inbox.handle(InboxAction::Decide(true));
        assert!(
            matches!(&fx[..], [InboxEffect::Respond { id, answer }] if id == "ok" && answer.approved == Some(true))
        );
        assert!(!inbox.editing, "no form to type in");
        assert!(inbox.handle(InboxAction::Submit).is_empty(), "on its way");
        inbox.on_taken("ok");
        assert_eq!(inbox.requests.len(), 2);
        assert!(inbox.form.is_none());
    }

    #[test]
    fn y_on_a_question_that_is_not_an_approval_says_so() {
        let mut inbox = listed();
        inbox.handle(InboxAction::Move(1));
        let fx = inbox.handle(InboxAction::Decide(true));
        assert!(matches!(
            &fx[..],
            [InboxEffect::NeedsForm { task, kind: FeedbackKind::Text }] if task == "task_name"
        ));
        assert!(inbox.form.is_none());
    }

    #[test]
    fn the_form_takes_keys_and_keeps_its_draft_when_refused() {
        let mut inbox = listed();
        inbox.handle(InboxAction::Move(1));
        assert!(inbox.handle(InboxAction::Answer).is_empty());
        assert!(inbox.editing);
        inbox.handle(key('h'));
        inbox.handle(InboxAction::Paste("i\nthere".into()));
        let fx = inbox.handle(InboxAction::Submit);
        assert!(
            matches!(&fx[..], [InboxEffect::Respond { answer, .. }] if answer.text.as_deref() == Some("hi\nthere"))
        );
        assert!(inbox.on_refused("name", "too late").is_none());
        let form = inbox.form_for_selected();
        assert_eq!(form.and_then(|f| f.error.as_deref()), Some("too late"));
        assert_eq!(form.map(|f| f.text()).as_deref(), Some("hi\nthere"));
        // Escape keeps the draft; a refusal without a form lists again.
        inbox.handle(InboxAction::StopEditing);
        assert!(!inbox.editing && inbox.form.is_some());
        assert!(matches!(
            inbox.on_refused("other", "gone"),
            Some(InboxEffect::Refresh)
        ));
    }

    #[test]
    fn pick_many_checks_under_the_cursor() {
        let mut inbox = listed();
        inbox.handle(InboxAction::Move(2));
        inbox.handle(InboxAction::Answer);
        inbox.handle(InboxAction::Move(1));
        inbox.handle(InboxAction::ToggleOption);
        let fx = inbox.handle(InboxAction::Submit);
        assert!(matches!(
            &fx[..],
            [InboxEffect::Respond { answer, .. }]
                if answer.selected_multiple == Some(vec!["b".to_string()])
        ));
    }

    #[test]
    fn listings_keep_the_selection_and_drop_forms_answered_elsewhere() {
        let mut inbox = listed();
        inbox.handle(InboxAction::Move(1));
        inbox.handle(InboxAction::Answer);
        let (changed, notice) = inbox.on_listing(Ok(vec![
            request("new", FeedbackKind::Approval, &[]),
            request("pick", FeedbackKind::MultiSelection, &["a", "b"]),
        ]));
        assert!(changed);
        assert!(matches!(notice, Some(InboxEffect::Notice(t)) if t.contains("name was answered")));
        assert!(inbox.form.is_none() && !inbox.editing);
        let (changed, _) = inbox.on_listing(Ok(inbox.requests.clone()));
        assert!(!changed, "the same listing");
        let (changed, _) = inbox.on_listing(Err("no state dir".into()));
        assert!(changed && inbox.error.is_some());
        assert!(inbox.want_refresh().is_some());
        assert!(inbox.want_refresh().is_none(), "one on its way");
    }

    #[test]
    fn clicks_select_rows_unless_a_form_is_open() {
        let mut inbox = listed();
        inbox.handle(InboxAction::Click { row: 2, height: 5 });
        assert_eq!(inbox.selected, 2);
        inbox.handle(InboxAction::Answer);
        inbox.handle(InboxAction::Click { row: 0, height: 5 });
        assert_eq!(inbox.selected, 2);
    }
}
