//! Terminal input to actions: keys through the keymap of the current context (the inbox's
//! answer form takes what its text box needs), and the mouse.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::action::{Action, ActionId, Context};
use super::app::App;
use super::keymap::KeySpec;

impl App {
    /// The action a key press asks for, if any.
    pub fn key_action(&self, key: &KeyEvent) -> Option<Action> {
        if self.prompt.is_open() {
            return match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Enter => Some(Action::InputSubmit),
                KeyCode::Backspace => Some(Action::InputBackspace),
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    Some(Action::InputChar(c))
                }
                KeyCode::Char('c') => Some(Action::Quit),
                _ => None,
            };
        }
        let spec = KeySpec::from_event(key);
        let km = &self.settings.keymap;
        let id = match self.context() {
            Context::Help => km.lookup(Context::Help, spec).or_else(|| {
                km.lookup(Context::Global, spec).filter(|id| {
                    matches!(
                        id,
                        ActionId::Up
                            | ActionId::Down
                            | ActionId::PageUp
                            | ActionId::PageDown
                            | ActionId::Home
                            | ActionId::End
                            | ActionId::Quit
                    )
                })
            }),
            // A second quit key confirms quitting while runs go on.
            Context::Confirm => km.lookup(Context::Confirm, spec).or_else(|| {
                km.lookup(Context::Global, spec)
                    .filter(|id| {
                        *id == ActionId::Quit
                            && matches!(
                                self.overlay,
                                Some(super::app::Overlay::Confirm(
                                    super::app::Question::QuitWhileRunning { .. }
                                ))
                            )
                    })
                    .map(|_| ActionId::Confirm)
            }),
            Context::Answer => return self.answer_key_action(key, spec),
            ctx @ (Context::Inbox | Context::Checkpoints | Context::Fleet) => {
                km.lookup(ctx, spec).or_else(|| {
                    km.lookup(Context::Global, spec)
                        .filter(|id| on_screens(*id))
                })
            }
            ctx => km.resolve(ctx, spec),
        }?;
        Some(id.action())
    }

    /// Keys while an answer is written: the answer's own keys where they fit its kind, the
    /// moves in option lists, and everything else for the text box.
    fn answer_key_action(&self, key: &KeyEvent, spec: KeySpec) -> Option<Action> {
        let form = self.inbox.form.as_ref()?;
        let km = &self.settings.keymap;
        let plain_enter = key.code == KeyCode::Enter && key.modifiers.is_empty();
        if let Some(id) = km.lookup(Context::Answer, spec) {
            let fits = match id {
                ActionId::SubmitAnswer => !(plain_enter && form.multiline()),
                ActionId::ToggleOption => {
                    form.kind == graflow_engine::hitl::FeedbackKind::MultiSelection
                }
                ActionId::ToggleDecision => {
                    form.kind == graflow_engine::hitl::FeedbackKind::Approval
                }
                _ => true,
            };
            if fits {
                return Some(id.action());
            }
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Some(Action::Quit);
        }
        if form.is_list() {
            return km
                .lookup(Context::Global, spec)
                .filter(|id| {
                    matches!(
                        id,
                        ActionId::Up
                            | ActionId::Down
                            | ActionId::PageUp
                            | ActionId::PageDown
                            | ActionId::Home
                            | ActionId::End
                    )
                })
                .map(ActionId::action);
        }
        Some(Action::AnswerKey(*key))
    }

    /// The action a mouse event asks for, if any.
    pub fn mouse_action(&self, ev: &MouseEvent) -> Option<Action> {
        if !self.settings.mouse {
            return None;
        }
        match ev.kind {
            MouseEventKind::Down(_) => Some(Action::Click(ev.column, ev.row)),
            MouseEventKind::ScrollUp => Some(Action::ScrollAt(ev.column, ev.row, -3)),
            MouseEventKind::ScrollDown => Some(Action::ScrollAt(ev.column, ev.row, 3)),
            _ => None,
        }
    }
}

/// Global actions that also work in the inbox, the checkpoint browser and the fleet view.
pub fn on_screens(id: ActionId) -> bool {
    matches!(
        id,
        ActionId::Quit
            | ActionId::ToggleHelp
            | ActionId::Up
            | ActionId::Down
            | ActionId::PageUp
            | ActionId::PageDown
            | ActionId::Home
            | ActionId::End
            | ActionId::Back
            | ActionId::ToggleInbox
            | ActionId::ToggleCheckpoints
            | ActionId::ToggleFleet
            | ActionId::ToggleMouse
            | ActionId::CycleTheme
    )
}
