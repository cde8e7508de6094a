//! The questions a packet asks about every candidate, read from a small JSON file.
//!
//! ```json
//! {
//!   "title": "Clinician review of generated letters",
//!   "instructions": "Rate every candidate on its own ...",
//!   "questions": [
//!     {"id": "correctness", "text": "Correctness: ...", "kind": "scale", "min": 1, "max": 4,
//!      "labels": ["poor", "fair", "good", "very good"]},
//!     {"id": "acceptable", "text": "Clinically acceptable?", "kind": "choice",
//!      "options": [{"value": "yes", "label": "yes"}, {"value": "minor", "label": "with minor edits"},
//!                  {"value": "no", "label": "no"}],
//!      "acceptable": ["yes", "minor"]},
//!     {"id": "comments", "text": "Comments", "kind": "text"}
//!   ]
//! }
//! ```
//!
//! | field | kinds | meaning |
//! | --- | --- | --- |
//! | `id` | all | `[A-Za-z0-9_]+`, unique; names the question in rating files and reports |
//! | `text` | all | what the rater reads |
//! | `kind` | all | `scale` (integers `min..=max`), `choice` (one of `options`), `text` (free text) |
//! | `required` | all | an answer is needed for import; default true, false for `text` |
//! | `min`, `max` | scale | the ends of the scale, `min < max`, at most 11 points |
//! | `labels` | scale | optional, one word per point (`labels[0]` names `min`) |
//! | `options` | choice | at least two `{"value", "label"}`; values `[A-Za-z0-9_-]+`, unique; label defaults to the value |
//! | `acceptable` | choice | optional: the values that count as "clinically acceptable" in the report |
//!
//! [`ReviewConfig::default`] is the configuration used without `--config`: the first study's
//! four letter dimensions on a 4-point scale, the second study's "clinically acceptable: yes /
//! with minor edits / no", and free-text comments. Unknown fields are errors (a typo must not
//! silently drop a setting); errors name the file and the field (`questions[2].max`).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What a rater is asked about each candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewConfig {
    /// Heading of the packet.
    pub title: String,
    /// Shown above the first case.
    pub instructions: String,
    /// In the order they are asked.
    pub questions: Vec<Question>,
}

/// One question, asked about every candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Names the question in files and reports (`[A-Za-z0-9_]+`).
    pub id: String,
    /// What the rater reads.
    pub text: String,
    /// How it is answered.
    pub kind: QuestionKind,
    /// Whether import refuses a ratings file without this answer.
    pub required: bool,
}

/// How a question is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionKind {
    /// An integer from `min` to `max`.
    Scale {
        /// Lowest point.
        min: i64,
        /// Highest point.
        max: i64,
        /// One word per point, or empty.
        labels: Vec<String>,
    },
    /// One of a few options.
    Choice {
        /// The options, in the order shown.
        options: Vec<ChoiceOption>,
        /// The option values that count as clinically acceptable (may be empty).
        acceptable: Vec<String>,
    },
    /// Free text.
    Text,
}

/// One option of a [`QuestionKind::Choice`] question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceOption {
    /// What rating files hold (`[A-Za-z0-9_-]+`).
    pub value: String,
    /// What the rater reads.
    pub label: String,
}

impl Question {
    /// The points of a scale question (`min..=max`), else empty.
    pub fn scale_points(&self) -> Vec<i64> {
        match &self.kind {
            QuestionKind::Scale { min, max, .. } => (*min..=*max).collect(),
            _ => Vec::new(),
        }
    }

    /// A short description of the admissible answers, e.g. `1-4` or `yes/minor/no`.
    pub fn answer_hint(&self) -> String {
        match &self.kind {
            QuestionKind::Scale { min, max, .. } => format!("{min}-{max}"),
            QuestionKind::Choice { options, .. } => options
                .iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            QuestionKind::Text => "free text".into(),
        }
    }
}

impl ReviewConfig {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// An unreadable file, invalid JSON, an unknown field or a field that fails a check,
    /// named with the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read review config {}", path.display()))?;
        let raw: RawConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid review config", path.display()))?;
        raw.resolve()
            .with_context(|| format!("{}: invalid review config", path.display()))
    }

    /// The question with this id.
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The file form of this configuration (what [`ReviewConfig::load`] reads).
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing plain strings, integers and vectors cannot fail.
        serde_json::to_value(RawConfig::from(self)).unwrap_or_default()
    }

    /// Parses the file form (as stored in a key file).
    ///
    /// # Errors
    /// As [`ReviewConfig::load`], without the file name.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        let raw: RawConfig = serde_json::from_value(value).context("invalid review config")?;
        raw.resolve()
    }
}

/// The first study's letter dimensions (1-4), the second study's "clinically acceptable"
/// (yes / with minor edits / no, the first two counting as acceptable) and comments.
impl Default for ReviewConfig {
    fn default() -> Self {
        let scale = |id: &str, text: &str| Question {
            id: id.into(),
            text: text.into(),
            kind: QuestionKind::Scale {
                min: 1,
                max: 4,
                labels: ["poor", "fair", "good", "very good"]
                    .map(String::from)
                    .to_vec(),
            },
            required: true,
        };
        let option = |value: &str, label: &str| ChoiceOption {
            value: value.into(),
            label: label.into(),
        };
        Self {
            title: "Clinician review of generated texts".into(),
            instructions: "Each case shows the input the models were given and several \
                anonymised candidates in random order; one of them may have been written by a \
                clinician. Rate every candidate on its own. Your answers stay in this browser \
                (also after closing it) until you press \"Save ratings\", which downloads a \
                ratings file: send that file back."
                .into(),
            questions: vec![
                scale(
                    "correctness",
                    "Correctness: the content is medically correct and consistent with the case.",
                ),
                scale(
                    "comprehensiveness",
                    "Comprehensiveness: the relevant information of the case is all there.",
                ),
                scale(
                    "style",
                    "Clinic-specific style: structure, wording and salutation as our letters have them.",
                ),
                scale(
                    "practicality",
                    "Practicality: how much the text would help in clinical practice (clinical benefit).",
                ),
                Question {
                    id: "acceptable".into(),
                    text: "Clinically acceptable as it stands?".into(),
                    kind: QuestionKind::Choice {
                        options: vec![
                            option("yes", "yes"),
                            option("minor", "with minor edits"),
                            option("no", "no"),
                        ],
                        acceptable: vec!["yes".into(), "minor".into()],
                    },
                    required: true,
                },
                Question {
                    id: "comments".into(),
                    text: "Comments (optional)".into(),
                    kind: QuestionKind::Text,
                    required: false,
                },
            ],
        }
    }
}

/// The file form, before checks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
    questions: Vec<RawQuestion>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: String,
    text: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<Vec<RawOption>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acceptable: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

/// Most points a scale may have.
const MAX_SCALE_POINTS: i64 = 11;

fn is_word(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

impl RawConfig {
    fn resolve(self) -> Result<ReviewConfig> {
        if self.questions.is_empty() {
            bail!("questions: at least one question is needed");
        }
        let mut ids = HashSet::new();
        let mut questions = Vec::with_capacity(self.questions.len());
        for (i, q) in self.questions.into_iter().enumerate() {
            let q = q.resolve().with_context(|| format!("questions[{i}]"))?;
            if !ids.insert(q.id.clone()) {
                bail!("questions[{i}].id: {:?} is used twice", q.id);
            }
            questions.push(q);
        }
        let default = ReviewConfig::default();
        Ok(ReviewConfig {
            title: self.title.unwrap_or(default.title),
            instructions: self.instructions.unwrap_or(default.instructions),
            questions,
        })
    }
}

impl RawQuestion {
    fn resolve(self) -> Result<Question> {
        if !is_word(&self.id, &[]) {
            bail!("id: {:?} must be letters, digits or _", self.id);
        }
        if self.text.trim().is_empty() {
            bail!("text: empty");
        }
        let only = |present: bool, field: &str, kind: &str| -> Result<()> {
            if present {
                bail!("{field}: only questions of kind \"{kind}\" have it");
            }
            Ok(())
        };
        let kind = match self.kind.as_str() {
            "scale" => {
                only(self.options.is_some(), "options", "choice")?;
                only(self.acceptable.is_some(), "acceptable", "choice")?;
                let (Some(min), Some(max)) = (self.min, self.max) else {
                    bail!("min, max: a scale needs both");
                };
                if min >= max || max - min + 1 > MAX_SCALE_POINTS {
                    bail!("max: {min}..{max} must have 2 to {MAX_SCALE_POINTS} points");
                }
                let labels = self.labels.unwrap_or_default();
                if !labels.is_empty() && labels.len() as i64 != max - min + 1 {
                    bail!(
                        "labels: {} labels for {} points",
                        labels.len(),
                        max - min + 1
                    );
                }
                QuestionKind::Scale { min, max, labels }
            }
            "choice" => {
                only(self.min.is_some(), "min", "scale")?;
                only(self.max.is_some(), "max", "scale")?;
                only(self.labels.is_some(), "labels", "scale")?;
                choice(self.options.unwrap_or_default(), self.acceptable)?
            }
            "text" => {
                only(self.min.is_some(), "min", "scale")?;
                only(self.max.is_some(), "max", "scale")?;
                only(self.labels.is_some(), "labels", "scale")?;
                only(self.options.is_some(), "options", "choice")?;
                only(self.acceptable.is_some(), "acceptable", "choice")?;
                QuestionKind::Text
            }
            other => bail!("kind: expected \"scale\", \"choice\" or \"text\", got {other:?}"),
        };
        let required = self.required.unwrap_or(!matches!(kind, QuestionKind::Text));
        Ok(Question {
            id: self.id,
            text: self.text,
            kind,
            required,
        })
    }
}

fn choice(raw: Vec<RawOption>, acceptable: Option<Vec<String>>) -> Result<QuestionKind> {
    if raw.len() < 2 {
        bail!("options: a choice needs at least two options");
    }
    let mut values = HashSet::new();
    let mut options = Vec::with_capacity(raw.len());
    for (j, o) in raw.into_iter().enumerate() {
        if !is_word(&o.value, &['-']) {
            bail!(
                "options[{j}].value: {:?} must be letters, digits, _ or -",
                o.value
            );
        }
        if !values.insert(o.value.clone()) {
            bail!("options[{j}].value: {:?} is used twice", o.value);
        }
        options.push(ChoiceOption {
            label: o.label.unwrap_or_else(|| o.value.clone()),
            value: o.value,
        });
    }
    let acceptable = acceptable.unwrap_or_default();
    for (j, a) in acceptable.iter().enumerate() {
        if !values.contains(a) {
            bail!("acceptable[{j}]: {a:?} is not one of the options");
        }
    }
    Ok(QuestionKind::Choice {
        options,
        acceptable,
    })
}

impl From<&ReviewConfig> for RawConfig {
    fn from(c: &ReviewConfig) -> Self {
        Self {
            title: Some(c.title.clone()),
            instructions: Some(c.instructions.clone()),
            questions: c.questions.iter().map(RawQuestion::from).collect(),
        }
    }
}

impl From<&Question> for RawQuestion {
    fn from(q: &Question) -> Self {
        let mut raw = RawQuestion {
            id: q.id.clone(),
            text: q.text.clone(),
            kind: String::new(),
            required: Some(q.required),
            min: None,
            max: None,
            labels: None,
            options: None,
            acceptable: None,
        };
        match &q.kind {
            QuestionKind::Scale { min, max, labels } => {
                raw.kind = "scale".into();
                raw.min = Some(*min);
                raw.max = Some(*max);
                raw.labels = (!labels.is_empty()).then(|| labels.clone());
            }
            QuestionKind::Choice {
                options,
                acceptable,
            } => {
                raw.kind = "choice".into();
                raw.options = Some(
                    options
                        .iter()
                        .map(|o| RawOption {
                            value: o.value.clone(),
                            label: Some(o.label.clone()),
                        })
                        .collect(),
                );
                raw.acceptable = Some(acceptable.clone());
            }
            QuestionKind::Text => raw.kind = "text".into(),
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ReviewConfig> {
        ReviewConfig::from_json(v)
    }

    #[test]
    fn the_default_round_trips_through_its_file_form() {
        let d = ReviewConfig::default();
        assert_eq!(parse(d.to_json()).unwrap(), d);
        assert_eq!(d.questions.len(), 6);
        assert_eq!(
            d.question("correctness").unwrap().scale_points(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            d.question("acceptable").unwrap().answer_hint(),
            "yes/minor/no"
        );
        assert!(!d.question("comments").unwrap().required);
    }

    #[test]
    fn a_minimal_file_gets_defaults() {
        let c = parse(json!({"questions": [
            {"id": "q", "text": "Overall", "kind": "scale", "min": 0, "max": 10},
            {"id": "c", "text": "Comments", "kind": "text", "required": true},
            {"id": "ok", "text": "OK?", "kind": "choice", "options": [{"value": "y"}, {"value": "n"}]}
        ]}))
        .unwrap();
        assert_eq!(c.title, ReviewConfig::default().title);
        assert!(c.questions[0].required && c.questions[1].required);
        let QuestionKind::Choice {
            options,
            acceptable,
        } = &c.questions[2].kind
        else {
            panic!()
        };
        assert_eq!(options[1].label, "n");
        assert!(acceptable.is_empty());
    }

    #[test]
    fn bad_fields_are_named() {
        let q = |extra: serde_json::Value| {
            let mut q = json!({"id": "q", "text": "t", "kind": "scale", "min": 1, "max": 4});
            for (k, v) in extra.as_object().unwrap() {
                q[k] = v.clone();
            }
            format!(
                "{:#}",
                parse(json!({"questions": [{"id": "a", "text": "a", "kind": "text"}, q]}))
                    .unwrap_err()
            )
        };
        for (extra, needle) in [
            (json!({"max": 1}), "questions[1]: max:"),
            (json!({"max": 40}), "questions[1]: max:"),
            (
                json!({"labels": ["a"]}),
                "questions[1]: labels: 1 labels for 4 points",
            ),
            (json!({"kind": "likert"}), "questions[1]: kind:"),
            (json!({"id": "a b"}), "questions[1]: id:"),
            (json!({"id": "a"}), "questions[1].id: \"a\" is used twice"),
            (json!({"options": []}), "questions[1]: options: only"),
            (json!({"scale": 3}), "unknown field `scale`"),
            (
                json!({"kind": "choice", "min": null, "max": null, "options": [{"value": "x"}]}),
                "at least two",
            ),
        ] {
            let e = q(extra.clone());
            assert!(e.contains(needle), "{extra}: {e}");
        }
        let e = parse(
            json!({"questions": [{"id": "a", "text": "a", "kind": "choice",
            "options": [{"value": "x"}, {"value": "y z"}]}]}),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("options[1].value"), "{e:#}");
        let e = parse(
            json!({"questions": [{"id": "a", "text": "a", "kind": "choice",
            "options": [{"value": "x"}, {"value": "y"}], "acceptable": ["z"]}]}),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("acceptable[0]"), "{e:#}");
        assert!(parse(json!({"questions": []})).is_err());
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("review.json");
        std::fs::write(
            &p,
            r#"{"questions": [{"id": "q", "text": "t", "kind": "scale"}]}"#,
        )
        .unwrap();
        let e = format!("{:#}", ReviewConfig::load(&p).unwrap_err());
        assert!(e.contains("review.json") && e.contains("min, max"), "{e}");
    }
}
