//! Human-feedback requests and answers, and the rules that check an answer against its
//! request (a selection must be one of the options, an approval needs `approved`, …).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backend::FeedbackError;

/// What kind of answer a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Approve or reject, with an optional reason.
    Approval,
    /// Free text.
    Text,
    /// One of the options.
    Selection,
    /// Any number of the options.
    MultiSelection,
    /// Any JSON value.
    Custom,
}

impl FeedbackKind {
    /// The kind's name as in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Approval => "approval",
            FeedbackKind::Text => "text",
            FeedbackKind::Selection => "selection",
            FeedbackKind::MultiSelection => "multi_selection",
            FeedbackKind::Custom => "custom",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    /// Waiting for an answer (also after its wait timed out and the run paused).
    Pending,
    /// Answered.
    Answered,
    /// Withdrawn; it will not be answered.
    Cancelled,
}

/// What a task asks (before it is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSpec {
    /// The kind of answer.
    pub kind: FeedbackKind,
    /// The question.
    pub prompt: String,
    /// Options of a selection.
    #[serde(default)]
    pub options: Vec<String>,
    /// How long the task waits before the run pauses (seconds).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Write the answer to this channel key (and the whole response to
    /// `<key>.__feedback_response__`).
    #[serde(default)]
    pub channel_key: Option<String>,
    /// Anything else to show with the request.
    #[serde(default)]
    pub metadata: Value,
}

impl FeedbackSpec {
    /// A request of `kind` asking `prompt`.
    pub fn new(kind: FeedbackKind, prompt: impl Into<String>) -> Self {
        FeedbackSpec {
            kind,
            prompt: prompt.into(),
            options: Vec::new(),
            timeout_secs: None,
            channel_key: None,
            metadata: Value::Null,
        }
    }

    /// Set the options (selections).
    pub fn options(mut self, options: Vec<String>) -> Self {
        self.options = options;
        self
    }

    /// Set the wait.
    pub fn timeout(mut self, secs: f64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// Write the answer to a channel key.
    pub fn channel_key(mut self, key: impl Into<String>) -> Self {
        self.channel_key = Some(key.into());
        self
    }

    /// A selection needs options; a prompt must say something. The error is
    /// [`FeedbackError::Invalid`], saying what is missing.
    pub fn check(&self) -> Result<(), FeedbackError> {
        self.problem().map_err(FeedbackError::Invalid)
    }

    fn problem(&self) -> Result<(), String> {
        if self.prompt.trim().is_empty() {
            return Err("a feedback request needs a prompt".into());
        }
        let needs_options = matches!(
            self.kind,
            FeedbackKind::Selection | FeedbackKind::MultiSelection
        );
        if needs_options && self.options.is_empty() {
            return Err(format!("a {} request needs options", self.kind.as_str()));
        }
        if let Some(t) = self.timeout_secs {
            crate::limits::seconds(t, "timeout")?;
        }
        Ok(())
    }
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRequest {
    /// Its id (also in the answer URL).
    pub id: String,
    /// The run that asked.
    pub run_id: String,
    /// The task that asked.
    pub task: String,
    /// The workflow's name.
    #[serde(default)]
    pub workflow: String,
    /// What is asked.
    #[serde(flatten)]
    pub spec: FeedbackSpec,
    /// Where it stands.
    pub status: FeedbackStatus,
    /// RFC 3339 time of asking.
    pub created_at: String,
    /// RFC 3339 time the wait ran out (the run paused), if it did.
    #[serde(default)]
    pub timed_out_at: Option<String>,
    /// The checkpoint to resume once answered, when the run paused.
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// An answer as given (REST body, CLI, studio). Unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Approval: approved or rejected.
    #[serde(default)]
    pub approved: Option<bool>,
    /// Approval: why (required on a rejection? no — optional).
    #[serde(default)]
    pub reason: Option<String>,
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// Selection.
    #[serde(default)]
    pub selected: Option<String>,
    /// Multi-selection.
    #[serde(default)]
    pub selected_multiple: Option<Vec<String>>,
    /// Custom.
    #[serde(default)]
    pub custom_data: Option<Value>,
    /// Who answered.
    #[serde(default)]
    pub responded_by: Option<String>,
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackResponse {
    /// The request's id.
    pub id: String,
    /// The request's kind.
    pub kind: FeedbackKind,
    /// The answer.
    #[serde(flatten)]
    pub answer: Answer,
    /// RFC 3339 time of answering.
    pub responded_at: String,
}

impl FeedbackResponse {
    /// The answer's main value: approved (bool), text, selected, selected_multiple or the
    /// custom data.
    pub fn value(&self) -> Value {
        let a = &self.answer;
        match self.kind {
            FeedbackKind::Approval => Value::from(a.approved.unwrap_or(false)),
            FeedbackKind::Text => Value::from(a.text.clone().unwrap_or_default()),
            FeedbackKind::Selection => Value::from(a.selected.clone().unwrap_or_default()),
            FeedbackKind::MultiSelection => {
                Value::from(a.selected_multiple.clone().unwrap_or_default())
            }
            FeedbackKind::Custom => a.custom_data.clone().unwrap_or(Value::Null),
        }
    }
}

impl FeedbackRequest {
    /// Check `answer` against this request; returns the stored response, or
    /// [`FeedbackError::Invalid`] saying why it does not fit.
    pub fn accept(&self, answer: Answer, now: String) -> Result<FeedbackResponse, FeedbackError> {
        self.fit(answer, now).map_err(FeedbackError::Invalid)
    }

    fn fit(&self, answer: Answer, now: String) -> Result<FeedbackResponse, String> {
        let kind = self.spec.kind;
        let fields = [
            (
                "approved",
                answer.approved.is_some(),
                FeedbackKind::Approval,
            ),
            ("reason", answer.reason.is_some(), FeedbackKind::Approval),
            ("text", answer.text.is_some(), FeedbackKind::Text),
            (
                "selected",
                answer.selected.is_some(),
                FeedbackKind::Selection,
            ),
            (
                "selected_multiple",
                answer.selected_multiple.is_some(),
                FeedbackKind::MultiSelection,
            ),
            (
                "custom_data",
                answer.custom_data.is_some(),
                FeedbackKind::Custom,
            ),
        ];
        if let Some((name, _, _)) = fields.iter().find(|(_, present, k)| *present && *k != kind) {
            return Err(format!(
                "'{name}' does not belong to a {} request",
                kind.as_str()
            ));
        }
        let options = &self.spec.options;
        match kind {
            FeedbackKind::Approval if answer.approved.is_none() => {
                return Err("an approval needs \"approved\": true or false".into());
            }
            FeedbackKind::Text if answer.text.is_none() => {
                return Err("a text request needs \"text\"".into());
            }
            FeedbackKind::Selection => match &answer.selected {
                None => return Err("a selection needs \"selected\"".into()),
                Some(s) if !options.contains(s) => {
                    return Err(format!(
                        "'{s}' is not one of the options [{}]",
                        options.join(", ")
                    ));
                }
                Some(_) => {}
            },
            FeedbackKind::MultiSelection => match &answer.selected_multiple {
                None => return Err("a multi-selection needs \"selected_multiple\": [ … ]".into()),
                Some(list) => {
                    if let Some(bad) = list.iter().find(|s| !options.contains(s)) {
                        return Err(format!(
                            "'{bad}' is not one of the options [{}]",
                            options.join(", ")
                        ));
                    }
                }
            },
            FeedbackKind::Custom if answer.custom_data.is_none() => {
                return Err("a custom request needs \"custom_data\"".into());
            }
            _ => {}
        }
        Ok(FeedbackResponse {
            id: self.id.clone(),
            kind,
            answer,
            responded_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: FeedbackKind, options: &[&str]) -> FeedbackRequest {
        FeedbackRequest {
            id: "f1".into(),
            run_id: "r".into(),
            task: "t".into(),
            workflow: "w".into(),
            spec: FeedbackSpec::new(kind, "?")
                .options(options.iter().map(|s| s.to_string()).collect()),
            status: FeedbackStatus::Pending,
            created_at: String::new(),
            timed_out_at: None,
            checkpoint: None,
        }
    }

    #[test]
    fn answers_are_checked_against_the_request() {
        let now = || "now".to_string();
        let approval = request(FeedbackKind::Approval, &[]);
        assert!(
            approval
                .accept(
                    Answer {
                        approved: Some(true),
                        ..Answer::default()
                    },
                    now()
                )
                .is_ok()
        );
        assert!(
            approval
                .accept(Answer::default(), now())
                .unwrap_err()
                .to_string()
                .contains("approved")
        );
        let err = approval
            .accept(
                Answer {
                    text: Some("x".into()),
                    approved: Some(true),
                    ..Answer::default()
                },
                now(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("'text' does not belong"), "{err}");

        let sel = request(FeedbackKind::Selection, &["a", "b"]);
        assert!(
            sel.accept(
                Answer {
                    selected: Some("b".into()),
                    ..Answer::default()
                },
                now()
            )
            .is_ok()
        );
        let err = sel
            .accept(
                Answer {
                    selected: Some("zzz".into()),
                    ..Answer::default()
                },
                now(),
            )
            .unwrap_err();
        assert_eq!(
            err,
            FeedbackError::Invalid("'zzz' is not one of the options [a, b]".into())
        );

        let multi = request(FeedbackKind::MultiSelection, &["a", "b", "c"]);
        let r = multi
            .accept(
                Answer {
                    selected_multiple: Some(vec!["a".into(), "c".into()]),
                    ..Answer::default()
                },
                now(),
            )
            .unwrap();
        assert_eq!(r.value(), serde_json::json!(["a", "c"]));
        assert!(
            multi
                .accept(
                    Answer {
                        selected_multiple: Some(vec!["d".into()]),
                        ..Answer::default()
                    },
                    now()
                )
                .is_err()
        );

        let custom = request(FeedbackKind::Custom, &[]);
        assert!(
            custom
                .accept(
                    Answer {
                        custom_data: Some(serde_json::json!({"k": 1})),
                        ..Answer::default()
                    },
                    now()
                )
                .is_ok()
        );
        assert!(
            request(FeedbackKind::Text, &[])
                .accept(Answer::default(), now())
                .is_err()
        );
    }

    #[test]
    fn unknown_answer_fields_are_refused() {
        let err = serde_json::from_str::<Answer>(r#"{"aproved": true}"#).unwrap_err();
        assert!(err.to_string().contains("aproved"));
    }

    #[test]
    fn specs_are_checked() {
        assert!(
            FeedbackSpec::new(FeedbackKind::Selection, "pick")
                .check()
                .is_err()
        );
        assert!(FeedbackSpec::new(FeedbackKind::Text, " ").check().is_err());
        assert!(
            FeedbackSpec::new(FeedbackKind::Approval, "ok?")
                .timeout(-1.0)
                .check()
                .is_err()
        );
        assert!(
            FeedbackSpec::new(FeedbackKind::Approval, "ok?")
                .timeout(5.0)
                .check()
                .is_ok()
        );
    }
}
