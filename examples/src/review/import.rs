//! Import: checks every rater's answers against the key, un-blinds them and writes one tidy
//! JSONL of ratings, one line per rater, case, model and question:
//!
//! ```json
//! {"packet":"rv-…","rater":"ann","case":"c7","model":"fine-tuned","candidate":"B","question":"correctness","value":3}
//! ```
//!
//! `value` is an integer for scale questions and a string for choice (the option's value)
//! and text questions; empty comments are left out. Lines come in the order raters were
//! given, then the key's case order, candidate order and question order.
//!
//! Everything is checked before anything is written: a file from another packet, a rater
//! the packet was not made for or given twice, an unknown case, candidate or question, a
//! value off the scale or not an option, an answer given twice, and every required answer
//! missing. The error names the file, rater, case, candidate and question.

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::answers::{RaterAnswers, RawAnswer};
use super::blind::Key;
use super::config::{Question, QuestionKind, ReviewConfig};

/// One un-blinded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    /// The packet id.
    pub packet: String,
    /// Who rated.
    pub rater: String,
    /// The case id.
    pub case: String,
    /// The model behind the candidate.
    pub model: String,
    /// The candidate label the rater saw.
    pub candidate: String,
    /// The question id.
    pub question: String,
    /// The answer.
    pub value: RatingValue,
}

/// An answer's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RatingValue {
    /// A point of a scale.
    Point(i64),
    /// A choice option's value, or free text.
    Text(String),
}

/// Most missing answers an error lists one by one.
const LISTED: usize = 5;

/// Reads a scale point: an integer (`3`, `3.0`, `"3"`) within `min..=max`.
fn point(value: &serde_json::Value, min: i64, max: i64) -> Result<i64, String> {
    let x = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match x {
        Some(x) if x.fract() == 0.0 && x >= min as f64 && x <= max as f64 => Ok(x as i64),
        _ => Err(format!("{value} is not on the scale {min}-{max}")),
    }
}

/// Checks one answer's value against its question.
fn value(q: &Question, raw: &serde_json::Value) -> Result<RatingValue, String> {
    match &q.kind {
        QuestionKind::Scale { min, max, .. } => point(raw, *min, *max).map(RatingValue::Point),
        QuestionKind::Choice { options, .. } => {
            let s = raw.as_str().map(str::trim).unwrap_or_default();
            options
                .iter()
                .find(|o| o.value.eq_ignore_ascii_case(s) || o.label.eq_ignore_ascii_case(s))
                .map(|o| RatingValue::Text(o.value.clone()))
                .ok_or_else(|| format!("{raw} is not one of {}", q.answer_hint()))
        }
        QuestionKind::Text => raw
            .as_str()
            .map(|s| RatingValue::Text(s.to_string()))
            .ok_or_else(|| format!("{raw} is not text")),
    }
}

/// Checks one rater's file and un-blinds it.
fn import_one(key: &Key, config: &ReviewConfig, file: &RaterAnswers) -> Result<Vec<Rating>> {
    let name = file.path.display();
    let who = format!("{name}: rater {}", file.rater);
    let mut given: HashMap<(&str, &str, &str), RatingValue> = HashMap::new();
    for a in &file.answers {
        let RawAnswer {
            case,
            candidate,
            question,
            ..
        } = a;
        let at = format!("{who}, case {case:?}");
        let kc = key.case(case).ok_or_else(|| {
            anyhow!(
                "{at}: unknown case (not in packet {}) at {}",
                key.packet,
                a.place
            )
        })?;
        let at = format!("{at}, candidate {candidate:?}");
        kc.model(candidate)
            .ok_or_else(|| anyhow!("{at}: unknown candidate at {}", a.place))?;
        let at = format!("{at}, question {question:?}");
        let q = config
            .question(question)
            .ok_or_else(|| anyhow!("{at}: unknown question at {}", a.place))?;
        let v = value(q, &a.value).map_err(|m| anyhow!("{at}: {m} at {}", a.place))?;
        if given.insert((case, candidate, question), v).is_some() {
            bail!("{at}: answered twice (second time at {})", a.place);
        }
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for kc in &key.cases {
        for c in &kc.candidates {
            for q in &config.questions {
                match given.remove(&(kc.id.as_str(), c.label.as_str(), q.id.as_str())) {
                    Some(v) => out.push(Rating {
                        packet: key.packet.clone(),
                        rater: file.rater.clone(),
                        case: kc.id.clone(),
                        model: c.model.clone(),
                        candidate: c.label.clone(),
                        question: q.id.clone(),
                        value: v,
                    }),
                    None if q.required => missing.push(format!(
                        "case {:?}, candidate {:?}, question {:?}",
                        kc.id, c.label, q.id
                    )),
                    None => {}
                }
            }
        }
    }
    if !missing.is_empty() {
        let more = missing.len().saturating_sub(LISTED);
        let list = missing[..missing.len().min(LISTED)].join("; ");
        let tail = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        bail!(
            "{who}: {} missing answer{}: {list}{tail}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" }
        );
    }
    Ok(out)
}

/// Checks every file against the key and returns the un-blinded ratings.
///
/// # Errors
/// The first problem found (see the module docs), naming file, rater, case, candidate and
/// question.
pub fn import(key: &Key, config: &ReviewConfig, files: &[RaterAnswers]) -> Result<Vec<Rating>> {
    if files.is_empty() {
        bail!("no ratings files given");
    }
    let mut raters: HashMap<&str, &RaterAnswers> = HashMap::new();
    let known: HashSet<&str> = key.raters.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for f in files {
        let name = f.path.display();
        if f.packet != key.packet {
            bail!(
                "{name}: rater {}: the file belongs to packet {:?}, not to this key's packet {:?} \
                 (a ratings file of another packet?)",
                f.rater,
                f.packet,
                key.packet
            );
        }
        if !known.contains(f.rater.as_str()) {
            bail!(
                "{name}: rater {:?} is not one of the packet's raters ({})",
                f.rater,
                key.raters.join(", ")
            );
        }
        if let Some(first) = raters.insert(&f.rater, f) {
            bail!(
                "{name}: rater {} already rated in {}",
                f.rater,
                first.path.display()
            );
        }
        out.extend(import_one(key, config, f)?);
    }
    Ok(out)
}

/// The ratings as JSON lines.
///
/// # Errors
/// Only if serialization fails (it does not for these types).
pub fn to_jsonl(ratings: &[Rating]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in ratings {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::blind::{blind, sample_input, BlindOptions, Packet};
    use std::path::PathBuf;

    fn packet() -> Packet {
        let opts = BlindOptions {
            n_cases: 2,
            seed: 5,
            raters: vec!["ann".into(), "bob".into()],
        };
        blind(&sample_input(4, true), &opts, &ReviewConfig::default()).unwrap()
    }

    /// A complete answer set: every scale 3, acceptable "minor", a comment on A.
    fn complete(p: &Packet, rater: &str) -> RaterAnswers {
        let mut answers = Vec::new();
        for c in &p.cases {
            for (label, _) in &c.candidates {
                for q in &p.config.questions {
                    let value = match q.id.as_str() {
                        "acceptable" => serde_json::json!("minor"),
                        "comments" if label == "A" => serde_json::json!("short"),
                        "comments" => continue,
                        _ => serde_json::json!(3),
                    };
                    answers.push(RawAnswer {
                        case: c.id.clone(),
                        candidate: label.clone(),
                        question: q.id.clone(),
                        value,
                        place: format!("answers[{}]", answers.len()),
                    });
                }
            }
        }
        RaterAnswers {
            path: PathBuf::from(format!("{rater}.json")),
            packet: p.key.packet.clone(),
            rater: rater.into(),
            answers,
        }
    }

    #[test]
    fn complete_files_are_unblinded_in_key_order() {
        let p = packet();
        let r = import(
            &p.key,
            &p.config,
            &[complete(&p, "bob"), complete(&p, "ann")],
        )
        .unwrap();
        // 2 raters x 2 cases x 3 candidates x 5 required + 2 x 2 comments on A.
        assert_eq!(r.len(), 2 * 2 * 3 * 5 + 4);
        assert_eq!(r[0].rater, "bob");
        assert_eq!(r[0].case, p.key.cases[0].id);
        for x in &r {
            let kc = p.key.case(&x.case).unwrap();
            assert_eq!(kc.model(&x.candidate), Some(x.model.as_str()));
        }
        let line = String::from_utf8(to_jsonl(&r[..1]).unwrap()).unwrap();
        assert!(
            line.ends_with("\"question\":\"correctness\",\"value\":3}\n"),
            "{line}"
        );
        let back: Rating = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r[0]);
    }

    #[test]
    fn each_problem_is_named() {
        let p = packet();
        let err = |f: RaterAnswers| format!("{:#}", import(&p.key, &p.config, &[f]).unwrap_err());
        let case0 = p.key.cases[0].id.clone();

        let mut f = complete(&p, "ann");
        f.answers[0].case = "nope".into();
        let e = err(f);
        assert!(
            e.contains("ann.json: rater ann, case \"nope\": unknown case"),
            "{e}"
        );

        let mut f = complete(&p, "ann");
        f.answers[0].value = serde_json::json!(5);
        let e = err(f);
        assert!(
            e.contains(&format!(
                "ann.json: rater ann, case {case0:?}, candidate \"A\", question \"correctness\": 5 is not on the scale 1-4"
            )),
            "{e}"
        );

        let mut f = complete(&p, "ann");
        f.answers[4].value = serde_json::json!("perhaps");
        assert!(err(f).contains("question \"acceptable\": \"perhaps\" is not one of yes/minor/no"));

        let mut f = complete(&p, "ann");
        f.answers.remove(1);
        let e = err(f);
        assert!(
            e.contains(&format!(
                "ann.json: rater ann: 1 missing answer: case {case0:?}, candidate \"A\", question \"comprehensiveness\""
            )),
            "{e}"
        );

        let mut f = complete(&p, "ann");
        f.packet = "rv-0000000000000000".into();
        assert!(err(f).contains("belongs to packet \"rv-0000000000000000\""));

        let mut f = complete(&p, "ann");
        f.rater = "eve".into();
        assert!(err(f).contains("rater \"eve\" is not one of the packet's raters (ann, bob)"));

        let mut f = complete(&p, "ann");
        let dup = f.answers[0].clone();
        f.answers.push(dup);
        assert!(err(f).contains("answered twice"));

        let e = format!(
            "{:#}",
            import(
                &p.key,
                &p.config,
                &[complete(&p, "ann"), complete(&p, "ann")]
            )
            .unwrap_err()
        );
        assert!(e.contains("rater ann already rated in ann.json"), "{e}");
    }

    #[test]
    fn answers_are_read_leniently_but_exactly() {
        let q = ReviewConfig::default();
        let scale = q.question("correctness").unwrap();
        let choice = q.question("acceptable").unwrap();
        let v = |q: &Question, x: serde_json::Value| value(q, &x);
        assert_eq!(v(scale, "4".into()), Ok(RatingValue::Point(4)));
        assert_eq!(v(scale, 2.0.into()), Ok(RatingValue::Point(2)));
        assert!(v(scale, 2.5.into()).is_err());
        assert!(v(scale, 0.into()).is_err());
        assert!(v(scale, "three".into()).is_err());
        assert_eq!(
            v(choice, " YES ".into()),
            Ok(RatingValue::Text("yes".into()))
        );
        assert_eq!(
            v(choice, "with minor edits".into()),
            Ok(RatingValue::Text("minor".into()))
        );
        assert!(v(choice, 1.into()).is_err());
    }
}
