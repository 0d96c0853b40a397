//! What the user can ask for: the [`Action`] enum and the one registry ([`REGISTRY`]) that
//! gives each action its config name, its description and the contexts where it applies. The
//! hint bar, the `?` help, the keymap file and `docs/studio.md` are all generated from it.

use std::fmt;

/// Where the keyboard focus is; each context has its own key bindings (plus the global ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Anywhere (unless an overlay captures the keys).
    Global,
    /// The workflows pane (files and run history).
    Workflows,
    /// The graph pane (list, canvas or timeline).
    Graph,
    /// The inspector pane (task detail with its log, channel, events).
    Inspector,
    /// The approvals inbox (its list of pending requests).
    Inbox,
    /// An answer being written in the inbox (keys go to its text box or option list).
    Answer,
    /// The checkpoint browser.
    Checkpoints,
    /// The fleet view.
    Fleet,
    /// The `?` help overlay.
    Help,
    /// A confirmation question (cancel the run?).
    Confirm,
}

impl Context {
    /// Every context, in help order.
    pub const ALL: [Context; 10] = [
        Context::Global,
        Context::Workflows,
        Context::Graph,
        Context::Inspector,
        Context::Inbox,
        Context::Answer,
        Context::Checkpoints,
        Context::Fleet,
        Context::Help,
        Context::Confirm,
    ];

    /// The name used in the config file and the help.
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Workflows => "workflows",
            Context::Graph => "graph",
            Context::Inspector => "inspector",
            Context::Inbox => "inbox",
            Context::Answer => "answer",
            Context::Checkpoints => "checkpoints",
            Context::Fleet => "fleet",
            Context::Help => "help",
            Context::Confirm => "confirm",
        }
    }
}

/// Declares [`Action`] and [`ActionId`] from one list: the actions without data (the ones
/// keys can be bound to) become both variants of `Action` and of `ActionId`; the others are
/// variants of `Action` only.
macro_rules! actions {
    (
        keyed { $( $(#[$kdoc:meta])* $id:ident, )* }
        data { $( $(#[$ddoc:meta])* $dv:ident $( ( $($t:ty),* ) )?, )* }
    ) => {
        /// A user intent. Actions without data are bound to keys through the registry; the
        /// others come from the mouse or from other actions.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Action {
            $( $(#[$kdoc])* $id, )*
            $( $(#[$ddoc])* $dv $( ( $($t),* ) )?, )*
        }

        /// The actions without data: the ones keys can be bound to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ActionId { $($id),* }

        impl ActionId {
            /// The action this id stands for.
            pub fn action(self) -> Action {
                match self { $(ActionId::$id => Action::$id),* }
            }
        }
    };
}

actions! {
    keyed {
        /// Leave the studio.
        Quit,
        /// Show or hide the help overlay.
        ToggleHelp,
        /// Move the focus to the next pane.
        FocusNext,
        /// Move the focus to the previous pane.
        FocusPrev,
        /// Move the selection up one row.
        Up,
        /// Move the selection down one row.
        Down,
        /// Move left (canvas: to the node on the left; logs: scroll left).
        Left,
        /// Move right.
        Right,
        /// Up one page.
        PageUp,
        /// Down one page.
        PageDown,
        /// To the first row.
        Home,
        /// To the last row.
        End,
        /// Open the selection (a workflow: its graph; a node: its detail).
        Open,
        /// Close the overlay, the search or the focus mode.
        Back,
        /// Graph as a list with lanes.
        ViewList,
        /// Graph as a layered canvas.
        ViewCanvas,
        /// Graph as a timeline of the run.
        ViewTimeline,
        /// Next inspector tab (task, channel, events).
        NextTab,
        /// Run the selected workflow (or run it again).
        Run,
        /// Cancel the running workflow (asks first).
        Cancel,
        /// Zoom the canvas in.
        ZoomIn,
        /// Zoom the canvas out.
        ZoomOut,
        /// Show only the selected node's neighbourhood.
        ToggleFocusMode,
        /// Widen the neighbourhood of the focus mode (1 to 4 steps, then back to 1).
        FocusDepth,
        /// Collapse or expand the selected group.
        ToggleGroup,
        /// Pan the canvas left.
        PanLeft,
        /// Pan the canvas right.
        PanRight,
        /// Pan the canvas up.
        PanUp,
        /// Pan the canvas down.
        PanDown,
        /// Follow the log's end.
        ToggleFollow,
        /// Wrap long log lines.
        ToggleWrap,
        /// Show only error lines (stderr and lines that mention errors).
        ToggleErrorsOnly,
        /// Search the log.
        Search,
        /// Next search match.
        SearchNext,
        /// Previous search match.
        SearchPrev,
        /// Copy the selected task id or log line to the clipboard (OSC 52).
        Copy,
        /// Give the focused pane the whole screen (again: back).
        ToggleZoomPane,
        /// Turn mouse support on or off.
        ToggleMouse,
        /// Switch to the next built-in colour theme.
        CycleTheme,
        /// Answer yes to the question.
        Confirm,
        /// Answer no to the question.
        Deny,
        /// Open the approvals inbox (again: back to the workflows).
        ToggleInbox,
        /// Open the checkpoint browser (again: back to the workflows).
        ToggleCheckpoints,
        /// Checkpoint the selected workflow's running run now.
        CheckpointNow,
        /// Start answering the selected request.
        AnswerRequest,
        /// Approve the selected approval request at once.
        Approve,
        /// Reject the selected approval request (asks for a reason).
        Reject,
        /// Send the answer being written.
        SubmitAnswer,
        /// Check or uncheck the option under the cursor (pick-many requests).
        ToggleOption,
        /// Switch an approval answer between approve and reject.
        ToggleDecision,
        /// Resume the selected checkpoint into a live run.
        Resume,
        /// Open the fleet view (again: back to the workflows).
        ToggleFleet,
        /// Follow the selected run of the fleet.
        AttachRun,
        /// Move the fleet view's selection between its runs and its dead letters.
        SwitchFleetList,
        /// Requeue the selected dead letter (its run must still hold it).
        RequeueDeadLetter,
    }
    data {
        /// A key for the answer's text box.
        AnswerKey(crossterm::event::KeyEvent),
        /// Text pasted into the answer's text box.
        AnswerPaste(String),
        /// Select the workflow at this index.
        SelectWorkflow(usize),
        /// Select the node with this id.
        SelectNode(String),
        /// A mouse click at (column, row): focus and select what is there.
        Click(u16, u16),
        /// The mouse wheel at (column, row): scroll that pane by this many rows (negative: up).
        ScrollAt(u16, u16, i32),
        /// Type a character into the open search prompt.
        InputChar(char),
        /// Delete the last character of the search prompt.
        InputBackspace,
        /// Accept the search prompt.
        InputSubmit,
        /// Terminal resized to (columns, rows).
        Resize(u16, u16),
    }
}

/// One registered action: how it is named, described, where it applies, its default keys.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    /// The action.
    pub id: ActionId,
    /// Its name in the config file (`run`, `toggle-follow`, …).
    pub name: &'static str,
    /// One line for the help and the docs.
    pub description: &'static str,
    /// A word or two for the hint bar.
    pub short: &'static str,
    /// Where it applies.
    pub context: Context,
    /// Whether it changes anything beyond the view (hidden and refused in `--read-only`).
    pub mutating: bool,
    /// Default keys (see [`crate::studio::keymap::KeySpec`] for the notation).
    pub keys: &'static [&'static str],
    /// Whether the hint bar shows it.
    pub hint: bool,
}

const fn info(
    id: ActionId,
    name: &'static str,
    short: &'static str,
    description: &'static str,
    context: Context,
    keys: &'static [&'static str],
) -> ActionInfo {
    ActionInfo {
        id,
        name,
        description,
        short,
        context,
        mutating: false,
        keys,
        hint: false,
    }
}

const fn hinted(mut a: ActionInfo) -> ActionInfo {
    a.hint = true;
    a
}

const fn mutating(mut a: ActionInfo) -> ActionInfo {
    a.mutating = true;
    a
}

use ActionId as A;
use Context as C;

/// Every key-bindable action, in help order.
pub static REGISTRY: &[ActionInfo] = &[
    hinted(info(
        A::Quit,
        "quit",
        "quit",
        "Leave the studio (asks first while a run is going on)",
        C::Global,
        &["q", "ctrl-c"],
    )),
    hinted(info(
        A::ToggleHelp,
        "help",
        "help",
        "Show every key (this screen)",
        C::Global,
        &["?", "f1"],
    )),
    hinted(info(
        A::FocusNext,
        "focus-next",
        "pane",
        "Focus the next pane",
        C::Global,
        &["tab"],
    )),
    info(
        A::FocusPrev,
        "focus-prev",
        "pane",
        "Focus the previous pane",
        C::Global,
        &["backtab"],
    ),
    hinted(mutating(info(
        A::Run,
        "run",
        "run",
        "Run the selected workflow, or run it again",
        C::Global,
        &["r"],
    ))),
    hinted(mutating(info(
        A::Cancel,
        "cancel",
        "cancel",
        "Cancel the running workflow (asks first)",
        C::Global,
        &["x"],
    ))),
    hinted(info(
        A::ToggleInbox,
        "inbox",
        "inbox",
        "Open the approvals inbox",
        C::Global,
        &["a"],
    )),
    hinted(info(
        A::ToggleCheckpoints,
        "checkpoints",
        "checkpoints",
        "Open the checkpoint browser",
        C::Global,
        &["c"],
    )),
    // Not in the hint bar: only a studio attached to a fleet (`--attach`) has one to show.
    info(
        A::ToggleFleet,
        "fleet",
        "fleet",
        "Open the fleet view: runs, workers and queues of the attached Redis",
        C::Global,
        &["W"],
    ),
    mutating(info(
        A::CheckpointNow,
        "checkpoint-now",
        "checkpoint",
        "Checkpoint the selected workflow's running run now",
        C::Global,
        &["C"],
    )),
    info(
        A::ViewList,
        "view-list",
        "list",
        "Graph as a list with lanes",
        C::Global,
        &["1"],
    ),
    info(
        A::ViewCanvas,
        "view-canvas",
        "canvas",
        "Graph as a layered canvas",
        C::Global,
        &["2"],
    ),
    info(
        A::ViewTimeline,
        "view-timeline",
        "timeline",
        "Graph as a timeline of the run",
        C::Global,
        &["3"],
    ),
    hinted(info(
        A::NextTab,
        "next-tab",
        "tab",
        "Next inspector tab: task, channel, events",
        C::Global,
        &["i"],
    )),
    info(
        A::ToggleZoomPane,
        "zoom-pane",
        "zoom",
        "Give the focused pane the whole screen",
        C::Global,
        &["z"],
    ),
    info(
        A::ToggleMouse,
        "toggle-mouse",
        "mouse",
        "Turn mouse support on or off",
        C::Global,
        &["m"],
    ),
    info(
        A::CycleTheme,
        "cycle-theme",
        "theme",
        "Switch to the next theme: dark, light, high-contrast",
        C::Global,
        &["T"],
    ),
    info(A::Up, "up", "up", "Move up", C::Global, &["up", "k"]),
    info(
        A::Down,
        "down",
        "down",
        "Move down",
        C::Global,
        &["down", "j"],
    ),
    info(
        A::Left,
        "left",
        "left",
        "Move left",
        C::Global,
        &["left", "h"],
    ),
    info(
        A::Right,
        "right",
        "right",
        "Move right",
        C::Global,
        &["right", "l"],
    ),
    info(
        A::PageUp,
        "page-up",
        "page up",
        "Up one page",
        C::Global,
        &["pageup", "ctrl-u"],
    ),
    info(
        A::PageDown,
        "page-down",
        "page down",
        "Down one page",
        C::Global,
        &["pagedown", "ctrl-d"],
    ),
    info(
        A::Home,
        "home",
        "top",
        "To the first row",
        C::Global,
        &["home", "g"],
    ),
    info(
        A::End,
        "end",
        "bottom",
        "To the last row",
        C::Global,
        &["end", "G"],
    ),
    hinted(info(
        A::Open,
        "open",
        "open",
        "Open the selection",
        C::Global,
        &["enter"],
    )),
    info(
        A::Back,
        "back",
        "back",
        "Close the overlay, the search or the focus mode",
        C::Global,
        &["esc"],
    ),
    hinted(info(
        A::ZoomIn,
        "zoom-in",
        "zoom",
        "Canvas: bigger nodes",
        C::Graph,
        &["+", "="],
    )),
    info(
        A::ZoomOut,
        "zoom-out",
        "zoom out",
        "Canvas: smaller nodes",
        C::Graph,
        &["-"],
    ),
    hinted(info(
        A::ToggleFocusMode,
        "focus-mode",
        "focus",
        "Show only the selected node's neighbourhood",
        C::Graph,
        &["f"],
    )),
    info(
        A::FocusDepth,
        "focus-depth",
        "depth",
        "Widen the focus neighbourhood (1–4 steps)",
        C::Graph,
        &["F"],
    ),
    hinted(info(
        A::ToggleGroup,
        "toggle-group",
        "group",
        "Collapse or expand the selected group",
        C::Graph,
        &["space"],
    )),
    info(
        A::PanLeft,
        "pan-left",
        "pan",
        "Canvas: pan left",
        C::Graph,
        &["H"],
    ),
    info(
        A::PanRight,
        "pan-right",
        "pan",
        "Canvas: pan right",
        C::Graph,
        &["L"],
    ),
    info(
        A::PanUp,
        "pan-up",
        "pan",
        "Canvas: pan up",
        C::Graph,
        &["K"],
    ),
    info(
        A::PanDown,
        "pan-down",
        "pan",
        "Canvas: pan down",
        C::Graph,
        &["J"],
    ),
    hinted(info(
        A::Copy,
        "copy",
        "copy id",
        "Copy the selected task id (OSC 52)",
        C::Graph,
        &["y"],
    )),
    hinted(info(
        A::Search,
        "filter-workflows",
        "filter",
        "Workflows: list only names containing the text (esc clears it)",
        C::Workflows,
        &["/"],
    )),
    hinted(info(
        A::Search,
        "find",
        "find",
        "Find a node by name",
        C::Graph,
        &["/"],
    )),
    info(
        A::SearchNext,
        "find-next",
        "next",
        "Next node matching the find",
        C::Graph,
        &["n"],
    ),
    info(
        A::SearchPrev,
        "find-prev",
        "previous",
        "Previous node matching the find",
        C::Graph,
        &["N"],
    ),
    hinted(info(
        A::ToggleFollow,
        "toggle-follow",
        "follow",
        "Log: follow the end",
        C::Inspector,
        &["f"],
    )),
    hinted(info(
        A::ToggleWrap,
        "toggle-wrap",
        "wrap",
        "Log: wrap long lines",
        C::Inspector,
        &["w"],
    )),
    hinted(info(
        A::ToggleErrorsOnly,
        "errors-only",
        "errors",
        "Log: only error lines",
        C::Inspector,
        &["e"],
    )),
    hinted(info(
        A::Search,
        "search",
        "search",
        "Log: search",
        C::Inspector,
        &["/"],
    )),
    info(
        A::SearchNext,
        "search-next",
        "next",
        "Log: next match",
        C::Inspector,
        &["n"],
    ),
    info(
        A::SearchPrev,
        "search-prev",
        "previous",
        "Log: previous match",
        C::Inspector,
        &["N"],
    ),
    hinted(info(
        A::Copy,
        "copy-line",
        "copy line",
        "Copy the log line under the cursor (OSC 52)",
        C::Inspector,
        &["y"],
    )),
    hinted(mutating(info(
        A::AnswerRequest,
        "answer",
        "answer",
        "Answer the selected request",
        C::Inbox,
        &["enter"],
    ))),
    hinted(mutating(info(
        A::Approve,
        "approve",
        "approve",
        "Approve the selected approval request at once",
        C::Inbox,
        &["y"],
    ))),
    hinted(mutating(info(
        A::Reject,
        "reject",
        "reject",
        "Reject the selected approval request (asks for a reason)",
        C::Inbox,
        &["n"],
    ))),
    hinted(info(
        A::ToggleInbox,
        "close-inbox",
        "close",
        "Back to the workflows",
        C::Inbox,
        &["esc"],
    )),
    hinted(mutating(info(
        A::SubmitAnswer,
        "send-answer",
        "send",
        "Send the answer (in text and JSON boxes enter starts a new line: use ctrl-s)",
        C::Answer,
        &["ctrl-s", "enter"],
    ))),
    hinted(info(
        A::ToggleOption,
        "toggle-option",
        "check",
        "Pick many: check or uncheck the option under the cursor",
        C::Answer,
        &["space"],
    )),
    hinted(info(
        A::ToggleDecision,
        "toggle-decision",
        "approve/reject",
        "Approval: switch between approve and reject",
        C::Answer,
        &["tab"],
    )),
    hinted(info(
        A::Back,
        "cancel-answer",
        "cancel",
        "Stop answering (what was typed is kept until another request is answered)",
        C::Answer,
        &["esc"],
    )),
    hinted(mutating(info(
        A::Resume,
        "resume",
        "resume",
        "Resume the selected checkpoint into a live run",
        C::Checkpoints,
        &["enter"],
    ))),
    hinted(info(
        A::ToggleCheckpoints,
        "close-checkpoints",
        "close",
        "Back to the workflows",
        C::Checkpoints,
        &["esc"],
    )),
    hinted(info(
        A::AttachRun,
        "attach",
        "follow",
        "Follow the selected run live (an ended run shows its recorded end)",
        C::Fleet,
        &["enter"],
    )),
    hinted(info(
        A::SwitchFleetList,
        "fleet-list",
        "runs/dead letters",
        "Move the selection between the fleet's runs and its dead letters",
        C::Fleet,
        &["tab"],
    )),
    hinted(mutating(info(
        A::RequeueDeadLetter,
        "requeue",
        "requeue",
        "Requeue the selected dead letter: it runs again, its deliveries counted from zero (its run must still hold it: GRAFLOW_DEAD_LETTER_HOLD)",
        C::Fleet,
        &["R"],
    ))),
    hinted(info(
        A::ToggleFleet,
        "close-fleet",
        "close",
        "Back to the workflows",
        C::Fleet,
        &["esc"],
    )),
    info(
        A::Back,
        "close-help",
        "close",
        "Close the help",
        C::Help,
        &["esc", "?", "q"],
    ),
    hinted(info(
        A::Confirm,
        "confirm",
        "yes",
        "Yes",
        C::Confirm,
        &["y", "enter"],
    )),
    hinted(info(A::Deny, "deny", "no", "No", C::Confirm, &["n", "esc"])),
];

/// The registry entries of one action id (an id can appear in several contexts).
pub fn infos(id: ActionId) -> impl Iterator<Item = &'static ActionInfo> {
    REGISTRY.iter().filter(move |a| a.id == id)
}

/// The registry entry named `name` (the config-file name).
pub fn by_name(name: &str) -> Option<&'static ActionInfo> {
    REGISTRY.iter().find(|a| a.name == name)
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The registry as a Markdown table (for `docs/studio.md`), with the effective keys.
pub fn markdown_table(keys_of: impl Fn(&ActionInfo) -> Vec<String>) -> String {
    let mut out = String::from(
        "| context | keys | action (config name) | what it does |\n| --- | --- | --- | --- |\n",
    );
    for a in REGISTRY {
        let keys: Vec<String> = keys_of(a).iter().map(|k| format!("`{k}`")).collect();
        out.push_str(&format!(
            "| {} | {} | `{}` | {}{} |\n",
            a.context,
            keys.join(" "),
            a.name,
            a.description,
            if a.mutating {
                " (not in `--read-only`)"
            } else {
                ""
            }
        ));
    }
    out
}

/// The registry id of an action, for the read-only check.
pub fn registry_id(a: &Action) -> Option<ActionId> {
    match a {
        Action::Run => Some(ActionId::Run),
        Action::Cancel => Some(ActionId::Cancel),
        Action::CheckpointNow => Some(ActionId::CheckpointNow),
        Action::AnswerRequest => Some(ActionId::AnswerRequest),
        Action::Approve => Some(ActionId::Approve),
        Action::Reject => Some(ActionId::Reject),
        Action::SubmitAnswer | Action::AnswerKey(_) | Action::AnswerPaste(_) => {
            Some(ActionId::SubmitAnswer)
        }
        Action::Resume => Some(ActionId::Resume),
        Action::AttachRun => Some(ActionId::AttachRun),
        Action::RequeueDeadLetter => Some(ActionId::RequeueDeadLetter),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut seen = HashSet::new();
        for a in REGISTRY {
            assert!(seen.insert(a.name), "duplicate action name {}", a.name);
            assert!(
                a.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                a.name
            );
            assert!(!a.description.is_empty());
        }
    }

    #[test]
    fn every_action_id_is_registered() {
        let ids: HashSet<ActionId> = REGISTRY.iter().map(|a| a.id).collect();
        // Spot-check both ends of the enum; the macro keeps the list and the enum together.
        assert!(ids.contains(&ActionId::Quit));
        assert!(ids.contains(&ActionId::Deny));
        assert_eq!(by_name("run").map(|a| a.id), Some(ActionId::Run));
        assert!(by_name("run").is_some_and(|a| a.mutating));
    }
}
