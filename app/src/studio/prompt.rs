//! The one-line prompt `/` opens, shared by three panes: it filters the workflows (as it is
//! typed), finds a node in the graph, or searches the selected task's log. It owns the text
//! and the pane it is for; what it returns tells the app which pane gets the text.

use super::state::Pane;

/// The prompt's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The text typed, while the prompt is open.
    pub text: Option<String>,
    /// The pane it is for: the workflows (filter), the graph (find) or the inspector (the
    /// log's search).
    pub target: Pane,
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt {
            text: None,
            target: Pane::Inspector,
        }
    }
}

/// What the prompt is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptAction {
    /// Open it, empty, for a pane.
    Open(Pane),
    /// A character typed.
    Char(char),
    /// The last character goes.
    Backspace,
    /// `enter`: close it and hand over the text.
    Submit,
    /// `esc`: close it.
    Cancel,
}

/// What the app should do after the prompt handled an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptEffect {
    /// Nothing beyond the prompt's own state.
    None,
    /// The text changed (`None`: the prompt is closed).
    Typed {
        /// The pane it is for.
        target: Pane,
        /// The text now.
        text: Option<String>,
    },
    /// The prompt closed with this term (lower case; `None` when empty).
    Submitted {
        /// The pane it is for.
        target: Pane,
        /// The term.
        term: Option<String>,
    },
    /// The prompt closed without a term.
    Cancelled {
        /// The pane it was for.
        target: Pane,
    },
}

impl Prompt {
    /// Whether the prompt is open.
    pub fn is_open(&self) -> bool {
        self.text.is_some()
    }

    /// The text typed for `target`, when the prompt is open for it.
    pub fn text_for(&self, target: Pane) -> Option<&str> {
        self.text.as_deref().filter(|_| self.target == target)
    }

    /// Close the prompt unless it is for `target`.
    pub fn close_unless(&mut self, target: Pane) {
        if self.target != target {
            self.text = None;
        }
    }

    /// Do `action`.
    pub fn handle(&mut self, action: PromptAction) -> PromptEffect {
        let target = self.target;
        match action {
            PromptAction::Open(pane) => {
                self.target = pane;
                self.text = Some(String::new());
                PromptEffect::None
            }
            PromptAction::Char(c) => {
                if let Some(t) = &mut self.text {
                    t.push(c);
                }
                let text = self.text.clone();
                PromptEffect::Typed { target, text }
            }
            PromptAction::Backspace => {
                if let Some(t) = &mut self.text {
                    t.pop();
                }
                let text = self.text.clone();
                PromptEffect::Typed { target, text }
            }
            PromptAction::Submit => match self.text.take() {
                Some(text) => PromptEffect::Submitted {
                    target,
                    term: (!text.is_empty()).then(|| text.to_lowercase()),
                },
                None => PromptEffect::None,
            },
            PromptAction::Cancel => match self.text.take() {
                Some(_) => PromptEffect::Cancelled { target },
                None => PromptEffect::None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_tells_the_text_and_submitting_hands_over_the_term() {
        let mut p = Prompt::default();
        assert_eq!(p.handle(PromptAction::Submit), PromptEffect::None);
        p.handle(PromptAction::Open(Pane::Graph));
        assert_eq!(p.text_for(Pane::Graph), Some(""));
        assert_eq!(p.text_for(Pane::Workflows), None);
        p.handle(PromptAction::Char('L'));
        assert_eq!(
            p.handle(PromptAction::Char('o')),
            PromptEffect::Typed {
                target: Pane::Graph,
                text: Some("Lo".into())
            }
        );
        p.handle(PromptAction::Backspace);
        assert_eq!(
            p.handle(PromptAction::Submit),
            PromptEffect::Submitted {
                target: Pane::Graph,
                term: Some("l".into())
            }
        );
        assert!(!p.is_open());
    }

    #[test]
    fn an_empty_prompt_submits_no_term_and_cancel_says_for_whom() {
        let mut p = Prompt::default();
        p.handle(PromptAction::Open(Pane::Workflows));
        assert_eq!(
            p.handle(PromptAction::Submit),
            PromptEffect::Submitted {
                target: Pane::Workflows,
                term: None
            }
        );
        p.handle(PromptAction::Open(Pane::Workflows));
        assert_eq!(
            p.handle(PromptAction::Cancel),
            PromptEffect::Cancelled {
                target: Pane::Workflows
            }
        );
        assert_eq!(p.handle(PromptAction::Cancel), PromptEffect::None);
        p.handle(PromptAction::Open(Pane::Inspector));
        p.close_unless(Pane::Inspector);
        assert!(p.is_open());
        p.close_unless(Pane::Workflows);
        assert!(!p.is_open());
    }
}
