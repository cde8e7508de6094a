//! Sampling and blinding: which cases a packet holds, in which order the candidates of each
//! case appear, and the key that un-blinds them.
//!
//! # Method (reproducible from the seed)
//!
//! The eligible cases are the ids of the first model's predictions, in file order (every
//! other model must have the same ids). One `ChaCha8Rng::seed_from_u64(seed)` draws `n` of
//! them without replacement (`rand::seq::index::sample`; the packet shows them in the drawn
//! order), then, case by case, shuffles the candidates (the models in the given order, then
//! the reference when it is a candidate) and labels them `A`, `B`, `C`, ... in shuffled order.
//! Every rater sees the same cases and labels.
//!
//! The [`Key`] records the labels' models; the packets never contain it. Its packet id is a
//! hash (FNV-1a 64) of the key's content and of every text shown, so a ratings file can be
//! checked to belong to this packet.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::seq::{index, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ro_tasks::{Example, PredictionRecord, TaskKind};
use serde::{Deserialize, Serialize};

use super::config::ReviewConfig;

/// The `format` field of a key file.
pub const KEY_FORMAT: &str = "ro-qlora-review-key";
/// The version of the key file format.
pub const KEY_VERSION: u32 = 1;
/// The model name of the reference text when it is a candidate.
pub const REFERENCE_MODEL: &str = "reference";

/// One model's outputs on the cases.
#[derive(Debug, Clone)]
pub struct ModelOutputs {
    /// The name the key and the report use.
    pub name: String,
    /// Where the outputs came from (named in errors).
    pub source: String,
    /// `{"id","reference","prediction"}` records.
    pub records: Vec<PredictionRecord>,
}

/// What a packet is built from.
#[derive(Debug, Clone)]
pub struct BlindInput {
    /// The task the texts answer (recorded in the key).
    pub task: TaskKind,
    /// The cases: inputs and reference answers.
    pub cases: Vec<Example>,
    /// Where the cases came from (named in errors).
    pub cases_source: String,
    /// The models, at least one.
    pub models: Vec<ModelOutputs>,
    /// Whether the reference answer is a blinded candidate too.
    pub with_reference: bool,
}

/// How a packet is drawn.
#[derive(Debug, Clone)]
pub struct BlindOptions {
    /// Cases per packet.
    pub n_cases: usize,
    /// Seed of the draw.
    pub seed: u64,
    /// One packet per rater; names are `[A-Za-z0-9_.-]+`, not starting with `.`.
    pub raters: Vec<String>,
}

/// The un-blinding key of a packet: written next to, never into, the packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// Always [`KEY_FORMAT`].
    pub format: String,
    /// [`KEY_VERSION`].
    pub version: u32,
    /// The packet id every ratings file must carry.
    pub packet: String,
    /// The task.
    pub task: TaskKind,
    /// The seed of the draw.
    pub seed: u64,
    /// The models compared, in the order given (then [`REFERENCE_MODEL`] if it is a candidate).
    pub models: Vec<String>,
    /// The raters packets were written for.
    pub raters: Vec<String>,
    /// The questions (file form of [`ReviewConfig`]).
    pub config: serde_json::Value,
    /// The cases, in packet order.
    pub cases: Vec<KeyCase>,
}

/// One case of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCase {
    /// The case id.
    pub id: String,
    /// The candidates in the order shown.
    pub candidates: Vec<KeyCandidate>,
}

/// Which model a candidate label stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCandidate {
    /// `A`, `B`, ...
    pub label: String,
    /// The model's name.
    pub model: String,
}

/// What a rater sees of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketCase {
    /// The case id.
    pub id: String,
    /// The case input (report or context).
    pub input: String,
    /// `(label, text)` in the order shown.
    pub candidates: Vec<(String, String)>,
}

/// A drawn, blinded packet: what raters see, and the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The key.
    pub key: Key,
    /// The checked configuration.
    pub config: ReviewConfig,
    /// The cases as shown.
    pub cases: Vec<PacketCase>,
}

/// Checks a rater name (it becomes part of file names).
///
/// # Errors
/// An empty name, a leading `.` or a character outside `[A-Za-z0-9_.-]`.
pub fn check_rater_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        bail!("rater name {name:?}: use letters, digits, _, . or - (not starting with .)");
    }
    Ok(())
}

fn check_models(input: &BlindInput, raters: &[String]) -> Result<Vec<String>> {
    if input.models.is_empty() {
        bail!("no model predictions given");
    }
    let mut names: Vec<String> = input.models.iter().map(|m| m.name.clone()).collect();
    if input.with_reference {
        names.push(REFERENCE_MODEL.into());
    }
    let mut seen = HashSet::new();
    for n in &names {
        if n.trim().is_empty() {
            bail!("a model has an empty name");
        }
        if !seen.insert(n.as_str()) {
            bail!("model name {n:?} is used twice (the reference is called {REFERENCE_MODEL:?})");
        }
    }
    if names.len() > 26 {
        bail!(
            "{} candidates per case; at most 26 (labels A-Z)",
            names.len()
        );
    }
    if raters.is_empty() {
        bail!("no raters given");
    }
    let mut seen = HashSet::new();
    for r in raters {
        check_rater_name(r)?;
        if !seen.insert(r.as_str()) {
            bail!("rater {r:?} is given twice");
        }
    }
    Ok(names)
}

/// One model's texts by case id.
type Texts<'a> = HashMap<&'a str, &'a str>;

/// The eligible case ids and each model's texts, with every model covering the same ids as
/// the first.
fn texts_by_model(input: &BlindInput) -> Result<(Vec<String>, Vec<Texts<'_>>)> {
    let first = &input.models[0];
    let ids: Vec<String> = first.records.iter().map(|r| r.id.clone()).collect();
    if ids.is_empty() {
        bail!("{}: no predictions", first.source);
    }
    let mut maps = Vec::with_capacity(input.models.len());
    for m in &input.models {
        let map: Texts = m
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.prediction.as_str()))
            .collect();
        if map.len() != m.records.len() {
            bail!("{}: a case id occurs more than once", m.source);
        }
        if let Some(id) = ids.iter().find(|id| !map.contains_key(id.as_str())) {
            bail!(
                "{}: no prediction for case {id:?} (present in {})",
                m.source,
                first.source
            );
        }
        if map.len() != ids.len() {
            let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let extra = map.keys().filter(|k| !known.contains(*k)).min();
            bail!(
                "{}: case {:?} has no prediction in {}",
                m.source,
                extra.copied().unwrap_or_default(),
                first.source
            );
        }
        maps.push(map);
    }
    Ok((ids, maps))
}

/// Draws and blinds a packet.
///
/// # Errors
/// No models or raters, a bad rater or model name, models that do not cover the same case
/// ids, a case missing from the cases file, or fewer eligible cases than `n_cases`.
pub fn blind(input: &BlindInput, options: &BlindOptions, config: &ReviewConfig) -> Result<Packet> {
    let models = check_models(input, &options.raters)?;
    let (ids, texts) = texts_by_model(input)?;
    let cases: HashMap<&str, &Example> = input.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    if let Some(id) = ids.iter().find(|id| !cases.contains_key(id.as_str())) {
        bail!(
            "{}: no case {id:?} (present in {})",
            input.cases_source,
            input.models[0].source
        );
    }
    if options.n_cases == 0 || options.n_cases > ids.len() {
        bail!(
            "cannot draw {} cases: {} has {} (choose 1 to {})",
            options.n_cases,
            input.models[0].source,
            ids.len(),
            ids.len()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let drawn = index::sample(&mut rng, ids.len(), options.n_cases);
    let mut key_cases = Vec::with_capacity(drawn.len());
    let mut packet_cases = Vec::with_capacity(drawn.len());
    for i in drawn.iter() {
        let id = ids[i].as_str();
        let case = cases[id];
        let mut order: Vec<usize> = (0..models.len()).collect();
        order.shuffle(&mut rng);
        let mut kc = Vec::with_capacity(order.len());
        let mut pc = Vec::with_capacity(order.len());
        for (pos, &m) in order.iter().enumerate() {
            let label = char::from(b'A' + pos as u8).to_string();
            let text = texts.get(m).map_or(case.target.as_str(), |t| t[id]);
            kc.push(KeyCandidate {
                label: label.clone(),
                model: models[m].clone(),
            });
            pc.push((label, text.to_string()));
        }
        key_cases.push(KeyCase {
            id: id.to_string(),
            candidates: kc,
        });
        packet_cases.push(PacketCase {
            id: id.to_string(),
            input: case.input.clone(),
            candidates: pc,
        });
    }
    let mut key = Key {
        format: KEY_FORMAT.into(),
        version: KEY_VERSION,
        packet: String::new(),
        task: input.task,
        seed: options.seed,
        models,
        raters: options.raters.clone(),
        config: config.to_json(),
        cases: key_cases,
    };
    key.packet = packet_id(&key, &packet_cases);
    Ok(Packet {
        key,
        config: config.clone(),
        cases: packet_cases,
    })
}

/// `rv-` and 16 hex digits: FNV-1a 64 of the key (without its id) and every text shown.
fn packet_id(key: &Key, cases: &[PacketCase]) -> String {
    let mut bytes = serde_json::to_vec(key).unwrap_or_default();
    for c in cases {
        for text in std::iter::once(&c.input).chain(c.candidates.iter().map(|(_, t)| t)) {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    format!("rv-{:016x}", ro_tasks::fnv1a64(&bytes))
}

impl Key {
    /// Reads and checks a key file.
    ///
    /// # Errors
    /// An unreadable file, a different format, or a key that contradicts itself (unknown
    /// model, duplicate label or case), named with the file.
    pub fn load(path: &Path) -> Result<(Self, ReviewConfig)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read key file {}", path.display()))?;
        let key: Key = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a review key file", path.display()))?;
        let config = key
            .check()
            .with_context(|| format!("{}: invalid key", path.display()))?;
        Ok((key, config))
    }

    fn check(&self) -> Result<ReviewConfig> {
        if self.format != KEY_FORMAT || self.version != KEY_VERSION {
            bail!(
                "format {:?} version {}: expected {KEY_FORMAT:?} version {KEY_VERSION}",
                self.format,
                self.version
            );
        }
        let config = ReviewConfig::from_json(self.config.clone()).context("config")?;
        let models: HashSet<&str> = self.models.iter().map(String::as_str).collect();
        let mut ids = HashSet::new();
        for (i, c) in self.cases.iter().enumerate() {
            if !ids.insert(c.id.as_str()) {
                bail!("cases[{i}].id: case {:?} occurs twice", c.id);
            }
            let labels: HashSet<&str> = c.candidates.iter().map(|k| k.label.as_str()).collect();
            let used: HashSet<&str> = c.candidates.iter().map(|k| k.model.as_str()).collect();
            if labels.len() != c.candidates.len() || used != models || used.len() != labels.len() {
                bail!(
                    "cases[{i}] (case {:?}): every model must have exactly one label",
                    c.id
                );
            }
        }
        Ok(config)
    }

    /// The case with this id.
    pub fn case(&self, id: &str) -> Option<&KeyCase> {
        self.cases.iter().find(|c| c.id == id)
    }
}

impl KeyCase {
    /// The model behind a label.
    pub fn model(&self, label: &str) -> Option<&str> {
        self.candidates
            .iter()
            .find(|c| c.label == label)
            .map(|c| c.model.as_str())
    }
}

/// Test input: `n` cases `c0..`, models `base` and `tuned` (predictions in reverse order).
#[cfg(test)]
pub(crate) fn sample_input(n: usize, with_reference: bool) -> BlindInput {
    let rec = |id: usize, who: &str| PredictionRecord {
        id: format!("c{id}"),
        reference: format!("reference {id}"),
        prediction: format!("{who} letter {id}"),
    };
    BlindInput {
        task: TaskKind::Letters,
        cases: (0..n)
            .map(|i| Example {
                id: format!("c{i}"),
                input: format!("report {i}"),
                target: format!("reference {i}"),
                language: ro_tasks::Language::En,
            })
            .collect(),
        cases_source: "cases.jsonl".into(),
        models: ["base", "tuned"]
            .iter()
            .map(|m| ModelOutputs {
                name: m.to_string(),
                source: format!("{m}.jsonl"),
                records: (0..n).rev().map(|i| rec(i, m)).collect(),
            })
            .collect(),
        with_reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(n: usize, seed: u64) -> BlindOptions {
        BlindOptions {
            n_cases: n,
            seed,
            raters: vec!["ann".into(), "bob".into()],
        }
    }

    #[test]
    fn the_draw_is_seeded_and_every_label_maps_to_its_text() {
        let cfg = ReviewConfig::default();
        let a = blind(&sample_input(20, true), &options(5, 7), &cfg).unwrap();
        assert_eq!(
            a,
            blind(&sample_input(20, true), &options(5, 7), &cfg).unwrap()
        );
        let b = blind(&sample_input(20, true), &options(5, 8), &cfg).unwrap();
        assert_ne!(a.key.packet, b.key.packet);
        assert_eq!(a.key.models, ["base", "tuned", "reference"]);
        let ids: HashSet<_> = a.key.cases.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 5);
        for (kc, pc) in a.key.cases.iter().zip(&a.cases) {
            assert_eq!(kc.id, pc.id);
            let n = &kc.id[1..];
            assert_eq!(pc.input, format!("report {n}"));
            for (k, (label, text)) in kc.candidates.iter().zip(&pc.candidates) {
                assert_eq!(&k.label, label);
                let want = match k.model.as_str() {
                    "reference" => format!("reference {n}"),
                    m => format!("{m} letter {n}"),
                };
                assert_eq!(text, &want);
            }
            assert_eq!(
                kc.candidates
                    .iter()
                    .map(|c| c.label.as_str())
                    .collect::<Vec<_>>(),
                ["A", "B", "C"]
            );
        }
        // Over 40 cases, every model shows up in first position at least once.
        let many = blind(&sample_input(40, true), &options(40, 1), &cfg).unwrap();
        let first: HashSet<_> = many
            .key
            .cases
            .iter()
            .map(|c| c.candidates[0].model.clone())
            .collect();
        assert_eq!(first.len(), 3);
        a.key.check().unwrap();
    }

    #[test]
    fn mismatched_inputs_are_named() {
        let cfg = ReviewConfig::default();
        let err =
            |i: &BlindInput, o: &BlindOptions| format!("{:#}", blind(i, o, &cfg).unwrap_err());
        let mut i = sample_input(4, false);
        i.models[1].records.pop();
        assert!(err(&i, &options(2, 0)).contains("tuned.jsonl: no prediction for case \"c0\""));
        let mut i = sample_input(4, false);
        i.cases.remove(1);
        assert!(err(&i, &options(2, 0)).contains("cases.jsonl: no case \"c1\""));
        assert!(err(&sample_input(4, false), &options(5, 0)).contains("cannot draw 5 cases"));
        let mut i = sample_input(4, true);
        i.models[1].name = "reference".into();
        assert!(err(&i, &options(2, 0)).contains("used twice"));
        let mut o = options(2, 0);
        o.raters.push("../evil".into());
        assert!(err(&sample_input(4, false), &o).contains("rater name \"../evil\""));
    }

    #[test]
    fn a_tampered_key_is_refused() {
        let p = blind(
            &sample_input(6, false),
            &options(3, 0),
            &ReviewConfig::default(),
        )
        .unwrap();
        let mut k = p.key.clone();
        k.cases[0].candidates[1].model = "base".into();
        k.cases[0].candidates[0].model = "base".into();
        assert!(k.check().is_err());
        let mut k = p.key;
        k.version = 2;
        assert!(k.check().is_err());
    }
}
