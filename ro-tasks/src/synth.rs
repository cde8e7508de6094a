//! Synthetic, clinically plausible radiation-oncology cases for all four tasks.
//!
//! One seed drives a ChaCha8 RNG. Each case draws a disease site (weighted roughly as in a
//! radiotherapy department), patient features (age, sex, side, stage or risk group) and one of
//! the site's standard indications; everything the tasks ask for follows *deterministically*
//! from those features, so a model can learn the mapping:
//!
//! - the ICD-10-CM code from site and side,
//! - the regimen and technique from the indication (listed with its source trial below),
//! - the modality from the technique (mostly photon; electrons for superficial skin; protons
//!   for paediatric and skull-base tumours; brachytherapy for LDR prostate and cervix),
//! - the letter from the report (its template variant is the report's).
//!
//! Texts are English or German (25% German by default) from three report and three letter
//! templates per language, with the regimen in prose or chart notation ("60 Gy/30 fx"), an
//! ECOG performance status, and about one course in ten interrupted for a few days.
//!
//! Sources of the regimen table: prostate 60 Gy/20 fx (CHHiP, Dearnaley 2016), 78 Gy/39 fx
//! with ADT (CHHiP control arm; RTOG 9408 for ADT), LDR I-125 145 Gy (ABS consensus);
//! breast 40.05 Gy/15 fx (START-B, Haviland 2013), 26 Gy/5 fx (FAST-Forward, Murray Brunt
//! 2020); glioblastoma 60 Gy/30 fx with temozolomide (Stupp 2005), elderly 40.05 Gy/15 fx
//! (Perry 2017); rectum 25 Gy/5 fx (Swedish Rectal Cancer Trial 1997; RAPIDO 2021) or
//! 50.4 Gy/28 fx with capecitabine (German CAO/ARO/AIO-94, Sauer 2004); lung SBRT 54 Gy/3 fx
//! (RTOG 0236, Timmerman 2010), stage III 60 Gy/30 fx with cisplatin (RTOG 0617/PACIFIC);
//! head and neck 70 Gy/35 fx with cisplatin (RTOG 0129; Bonner for cetuximab); cervix
//! 45 Gy/25 fx with cisplatin plus HDR 7 Gy x 4 (EMBRACE); bone metastases 8 Gy/1 fx (RTOG
//! 9714, Dutch Bone Metastasis Study), spinal cord compression 8 Gy/1 fx (SCORAD III);
//! brain metastases SRS 20 Gy/1 fx (RTOG 9005); skin BCC electrons 50 Gy/20 fx (NCCN);
//! paediatric medulloblastoma protons 54 Gy/30 fx (COG ACNS0331); skull-base chordoma protons
//! 74 Gy/37 fx.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Example;
use crate::modality::{Modality, Technique};
use crate::task::{Language, TaskKind};

/// A generated case: features and the reference answers of all four tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// `"synth-<seed>-<index>"`.
    pub id: String,
    /// Language of all texts.
    pub language: Language,
    /// Site key (`"prostate"`, `"breast"`, ...).
    pub site: String,
    /// Age in years.
    pub age: u32,
    /// `"m"` or `"f"`.
    pub sex: String,
    /// Clinical context without the answers (input of regimen, modality and icd10).
    pub context: String,
    /// Radiotherapy summary report (input of letters).
    pub report: String,
    /// Reference physician letter.
    pub letter: String,
    /// Reference regimen, one line.
    pub regimen: String,
    /// Reference modality.
    pub modality: Modality,
    /// Reference ICD-10-CM code.
    pub icd10: String,
}

impl Case {
    /// The example of one task: its input and reference answer.
    pub fn example(&self, task: TaskKind) -> Example {
        let (input, target) = match task {
            TaskKind::Letters => (&self.report, self.letter.clone()),
            TaskKind::Regimen => (&self.context, self.regimen.clone()),
            TaskKind::Modality => (&self.context, self.modality.as_str().to_string()),
            TaskKind::Icd10 => (&self.context, self.icd10.clone()),
        };
        Example {
            id: self.id.clone(),
            input: input.clone(),
            target,
            language: self.language,
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// RNG seed.
    pub seed: u64,
    /// Share of German cases, in [0, 1].
    pub german_fraction: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            german_fraction: 0.25,
        }
    }
}

/// Generate `n` cases.
///
/// ```
/// use ro_tasks::{generate_cases, SynthConfig, TaskKind};
/// let cases = generate_cases(&SynthConfig { seed: 1, ..Default::default() }, 50);
/// assert_eq!(cases.len(), 50);
/// assert_eq!(cases, generate_cases(&SynthConfig { seed: 1, ..Default::default() }, 50));
/// let ex = cases[0].example(TaskKind::Icd10);
/// assert!(ro_tasks::normalize_code(&ex.target, ro_tasks::CodeSet::embedded()).is_ok());
/// ```
pub fn generate_cases(config: &SynthConfig, n: usize) -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let total_weight: u32 = SITES.iter().map(|s| s.weight).sum();
    (0..n)
        .map(|i| {
            let mut pick = rng.random_range(0..total_weight);
            let site = SITES
                .iter()
                .find(|s| {
                    if pick < s.weight {
                        true
                    } else {
                        pick -= s.weight;
                        false
                    }
                })
                .unwrap_or(&SITES[0]);
            let language = if rng.random_bool(config.german_fraction.clamp(0.0, 1.0)) {
                Language::De
            } else {
                Language::En
            };
            make_case(
                &mut rng,
                site,
                language,
                format!("synth-{}-{i:05}", config.seed),
            )
        })
        .collect()
}

/// One standard indication of a site and its regimen.
struct Indication {
    /// Condition text (English, German) that decides the regimen.
    when: (&'static str, &'static str),
    total: f64,
    fractions: u32,
    technique: Technique,
    target: (&'static str, &'static str),
    concurrent: Option<(&'static str, &'static str)>,
    boost: Option<(f64, u32, Technique)>,
}

struct Site {
    key: &'static str,
    weight: u32,
    /// Diagnosis (English, German) and code; `{side}` is replaced by the side.
    diagnosis: (&'static str, &'static str),
    /// Codes for left, right (or the single code twice).
    codes: (&'static str, &'static str),
    sided: bool,
    sex: Option<&'static str>,
    ages: (u32, u32),
    histology: (&'static str, &'static str),
    indications: &'static [Indication],
    toxicity: (&'static str, &'static str),
}

const fn ind(
    when: (&'static str, &'static str),
    total: f64,
    fractions: u32,
    technique: Technique,
    target: (&'static str, &'static str),
    concurrent: Option<(&'static str, &'static str)>,
) -> Indication {
    Indication {
        when,
        total,
        fractions,
        technique,
        target,
        concurrent,
        boost: None,
    }
}

use Technique as T;

const SITES: &[Site] = &[
    Site {
        key: "prostate",
        weight: 20,
        diagnosis: ("adenocarcinoma of the prostate", "Prostatakarzinom"),
        codes: ("C61", "C61"),
        sided: false,
        sex: Some("m"),
        ages: (55, 82),
        histology: ("acinar adenocarcinoma", "azinäres Adenokarzinom"),
        indications: &[
            ind(
                (
                    "low risk, cT1c, Gleason 3+3, PSA 5 ng/ml",
                    "niedriges Risiko, cT1c, Gleason 3+3, PSA 5 ng/ml",
                ),
                145.0,
                1,
                T::LdrBrachytherapy,
                ("prostate", "Prostata"),
                None,
            ),
            ind(
                (
                    "intermediate risk, cT2b, Gleason 3+4, PSA 12 ng/ml",
                    "intermediäres Risiko, cT2b, Gleason 3+4, PSA 12 ng/ml",
                ),
                60.0,
                20,
                T::Vmat,
                ("prostate", "Prostata"),
                None,
            ),
            ind(
                (
                    "high risk, cT3a, Gleason 4+4, PSA 25 ng/ml",
                    "hohes Risiko, cT3a, Gleason 4+4, PSA 25 ng/ml",
                ),
                78.0,
                39,
                T::Vmat,
                ("prostate and seminal vesicles", "Prostata und Samenblasen"),
                Some(("androgen deprivation", "Androgendeprivation")),
            ),
        ],
        toxicity: ("grade 1 urinary frequency", "Pollakisurie Grad 1"),
    },
    Site {
        key: "breast",
        weight: 22,
        diagnosis: (
            "invasive ductal carcinoma of the {side} breast",
            "Mammakarzinom {side}",
        ),
        codes: ("C50.912", "C50.911"),
        sided: true,
        sex: Some("f"),
        ages: (38, 80),
        histology: (
            "invasive carcinoma of no special type",
            "invasives Karzinom NST",
        ),
        indications: &[
            ind(
                (
                    "pT1 pN0 after breast-conserving surgery",
                    "pT1 pN0 nach brusterhaltender Operation",
                ),
                26.0,
                5,
                T::ThreeDCrt,
                ("whole breast", "Restbrust"),
                None,
            ),
            ind(
                (
                    "pT2 pN1 after breast-conserving surgery",
                    "pT2 pN1 nach brusterhaltender Operation",
                ),
                40.05,
                15,
                T::Imrt,
                (
                    "breast and regional lymph nodes",
                    "Brust und regionäre Lymphabflusswege",
                ),
                None,
            ),
        ],
        toxicity: ("grade 1 radiation dermatitis", "Radiodermatitis Grad 1"),
    },
    Site {
        key: "lung",
        weight: 14,
        diagnosis: (
            "non-small cell lung cancer of the {side} upper lobe",
            "nicht-kleinzelliges Lungenkarzinom des Oberlappens {side}",
        ),
        codes: ("C34.12", "C34.11"),
        sided: true,
        sex: None,
        ages: (50, 85),
        histology: ("adenocarcinoma", "Adenokarzinom"),
        indications: &[
            ind(
                (
                    "peripheral cT1b cN0 cM0, medically inoperable",
                    "peripher, cT1b cN0 cM0, funktionell inoperabel",
                ),
                54.0,
                3,
                T::Sbrt,
                ("tumour", "Tumor"),
                None,
            ),
            ind(
                (
                    "stage IIIA, cT2 cN2 cM0, unresectable",
                    "Stadium IIIA, cT2 cN2 cM0, irresektabel",
                ),
                60.0,
                30,
                T::Vmat,
                (
                    "tumour and involved nodes",
                    "Tumor und befallene Lymphknoten",
                ),
                Some(("cisplatin", "Cisplatin")),
            ),
        ],
        toxicity: ("grade 2 oesophagitis", "Ösophagitis Grad 2"),
    },
    Site {
        key: "rectum",
        weight: 8,
        diagnosis: ("adenocarcinoma of the rectum", "Rektumkarzinom"),
        codes: ("C20", "C20"),
        sided: false,
        sex: None,
        ages: (45, 82),
        histology: ("adenocarcinoma", "Adenokarzinom"),
        indications: &[
            ind(
                (
                    "cT3 cN1 cM0, high risk, total neoadjuvant therapy planned",
                    "cT3 cN1 cM0, hohes Risiko, totale neoadjuvante Therapie geplant",
                ),
                25.0,
                5,
                T::ThreeDCrt,
                ("pelvis", "Becken"),
                None,
            ),
            ind(
                (
                    "cT3 cN2 cM0, low-lying, neoadjuvant chemoradiotherapy",
                    "cT3 cN2 cM0, tiefsitzend, neoadjuvante Radiochemotherapie",
                ),
                50.4,
                28,
                T::Imrt,
                ("pelvis", "Becken"),
                Some(("capecitabine", "Capecitabin")),
            ),
        ],
        toxicity: ("grade 1 diarrhoea", "Diarrhö Grad 1"),
    },
    Site {
        key: "glioblastoma",
        weight: 6,
        diagnosis: (
            "glioblastoma of the {side} frontal lobe",
            "Glioblastom frontal {side}",
        ),
        codes: ("C71.1", "C71.1"),
        sided: true,
        sex: None,
        ages: (40, 80),
        histology: (
            "glioblastoma, IDH wild-type, WHO grade 4",
            "Glioblastom, IDH-Wildtyp, WHO-Grad 4",
        ),
        indications: &[
            ind(
                (
                    "after resection, age under 70, ECOG 0-1",
                    "nach Resektion, Alter unter 70, ECOG 0-1",
                ),
                60.0,
                30,
                T::Imrt,
                ("resection cavity", "Resektionshöhle"),
                Some(("temozolomide", "Temozolomid")),
            ),
            ind(
                (
                    "after biopsy, age 70 or older, ECOG 2",
                    "nach Biopsie, Alter ab 70, ECOG 2",
                ),
                40.05,
                15,
                T::Vmat,
                ("tumour", "Tumor"),
                Some(("temozolomide", "Temozolomid")),
            ),
        ],
        toxicity: (
            "grade 1 fatigue and alopecia",
            "Fatigue und Alopezie Grad 1",
        ),
    },
    Site {
        key: "head_neck",
        weight: 8,
        diagnosis: (
            "squamous cell carcinoma of the oropharynx",
            "Oropharynxkarzinom",
        ),
        codes: ("C10.9", "C10.9"),
        sided: false,
        sex: None,
        ages: (45, 78),
        histology: (
            "squamous cell carcinoma, p16 positive",
            "Plattenepithelkarzinom, p16-positiv",
        ),
        indications: &[ind(
            (
                "cT3 cN1 cM0, definitive treatment",
                "cT3 cN1 cM0, definitive Therapie",
            ),
            70.0,
            35,
            T::Vmat,
            ("tumour and neck", "Tumor und Lymphabfluss"),
            Some(("cisplatin", "Cisplatin")),
        )],
        toxicity: ("grade 2 mucositis", "Mukositis Grad 2"),
    },
    Site {
        key: "cervix",
        weight: 4,
        diagnosis: ("squamous cell carcinoma of the cervix", "Zervixkarzinom"),
        codes: ("C53.9", "C53.9"),
        sided: false,
        sex: Some("f"),
        ages: (30, 75),
        histology: ("squamous cell carcinoma", "Plattenepithelkarzinom"),
        indications: &[Indication {
            when: (
                "FIGO IIB, definitive chemoradiotherapy",
                "FIGO IIB, definitive Radiochemotherapie",
            ),
            total: 45.0,
            fractions: 25,
            technique: T::HdrBrachytherapy,
            target: ("pelvis", "Becken"),
            concurrent: Some(("cisplatin", "Cisplatin")),
            boost: Some((28.0, 4, T::HdrBrachytherapy)),
        }],
        toxicity: ("grade 1 cystitis", "Zystitis Grad 1"),
    },
    Site {
        key: "bone_metastasis",
        weight: 8,
        diagnosis: (
            "painful bone metastasis of the thoracic spine",
            "schmerzhafte Knochenmetastase der BWS",
        ),
        codes: ("C79.51", "C79.51"),
        sided: false,
        sex: None,
        ages: (45, 88),
        histology: ("metastatic carcinoma", "metastasiertes Karzinom"),
        indications: &[ind(
            (
                "uncomplicated, palliative intent",
                "unkompliziert, palliative Intention",
            ),
            8.0,
            1,
            T::ThreeDCrt,
            ("thoracic spine", "BWS"),
            None,
        )],
        toxicity: ("transient pain flare", "vorübergehende Schmerzzunahme"),
    },
    Site {
        key: "brain_metastasis",
        weight: 5,
        diagnosis: ("single brain metastasis", "solitäre Hirnmetastase"),
        codes: ("C79.31", "C79.31"),
        sided: false,
        sex: None,
        ages: (40, 85),
        histology: ("metastatic adenocarcinoma", "metastasiertes Adenokarzinom"),
        indications: &[ind(
            (
                "diameter 15 mm, controlled extracranial disease",
                "Durchmesser 15 mm, kontrollierte extrakranielle Erkrankung",
            ),
            20.0,
            1,
            T::Srs,
            ("metastasis", "Metastase"),
            None,
        )],
        toxicity: ("no relevant toxicity", "keine relevante Toxizität"),
    },
    Site {
        key: "skin",
        weight: 3,
        diagnosis: (
            "basal cell carcinoma of the skin of the scalp",
            "Basalzellkarzinom der Kopfhaut",
        ),
        codes: ("C44.41", "C44.41"),
        sided: false,
        sex: None,
        ages: (60, 92),
        histology: (
            "nodular basal cell carcinoma",
            "noduläres Basalzellkarzinom",
        ),
        indications: &[ind(
            (
                "superficial lesion, surgery declined",
                "oberflächliche Läsion, Operation abgelehnt",
            ),
            50.0,
            20,
            T::Electrons,
            ("lesion", "Läsion"),
            None,
        )],
        toxicity: ("grade 2 radiation dermatitis", "Radiodermatitis Grad 2"),
    },
    Site {
        key: "medulloblastoma",
        weight: 1,
        diagnosis: (
            "medulloblastoma of the cerebellum",
            "Medulloblastom des Kleinhirns",
        ),
        codes: ("C71.6", "C71.6"),
        sided: false,
        sex: None,
        ages: (4, 14),
        histology: (
            "medulloblastoma, WNT-activated",
            "Medulloblastom, WNT-aktiviert",
        ),
        indications: &[ind(
            (
                "paediatric, standard risk, after resection",
                "pädiatrisch, Standardrisiko, nach Resektion",
            ),
            54.0,
            30,
            T::Protons,
            ("posterior fossa", "hintere Schädelgrube"),
            None,
        )],
        toxicity: ("grade 1 nausea", "Übelkeit Grad 1"),
    },
    Site {
        key: "chordoma",
        weight: 1,
        diagnosis: ("chordoma of the skull base", "Chordom der Schädelbasis"),
        codes: ("C41.0", "C41.0"),
        sided: false,
        sex: None,
        ages: (25, 70),
        histology: ("conventional chordoma", "konventionelles Chordom"),
        indications: &[ind(
            (
                "clivus, after subtotal resection",
                "Clivus, nach subtotaler Resektion",
            ),
            74.0,
            37,
            T::Protons,
            ("clivus", "Clivus"),
            None,
        )],
        toxicity: ("grade 1 headache", "Kopfschmerzen Grad 1"),
    },
];

fn fmt_gy(x: f64, lang: Language) -> String {
    let s = if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').to_string()
    };
    match lang {
        Language::En => s,
        Language::De => s.replace('.', ","),
    }
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn fmt_date(days: i64, lang: Language) -> String {
    let (y, m, d) = civil(days);
    match lang {
        Language::En => format!("{y:04}-{m:02}-{d:02}"),
        Language::De => format!("{d:02}.{m:02}.{y:04}"),
    }
}

fn technique_name(t: Technique, lang: Language) -> &'static str {
    match (t, lang) {
        (T::HdrBrachytherapy, Language::De) => "HDR-Brachytherapie",
        (T::LdrBrachytherapy, Language::De) => "LDR-Brachytherapie (I-125-Seeds)",
        (T::Electrons, Language::De) => "Elektronen",
        (T::Protons, Language::De) => "Protonen (PBS)",
        (T::LdrBrachytherapy, Language::En) => "LDR brachytherapy (I-125 seeds)",
        (t, _) => t.label(),
    }
}

/// The one-line regimen of an indication.
fn regimen_text(ind: &Indication, lang: Language) -> String {
    let l = |p: (&'static str, &'static str)| if lang == Language::En { p.0 } else { p.1 };
    let dpf = ind.total / f64::from(ind.fractions);
    let mut s = if ind.technique == T::LdrBrachytherapy {
        match lang {
            Language::En => format!(
                "{} Gy to the {}, {}",
                fmt_gy(ind.total, lang),
                l(ind.target),
                technique_name(ind.technique, lang)
            ),
            Language::De => format!(
                "{} Gy auf die {}, {}",
                fmt_gy(ind.total, lang),
                l(ind.target),
                technique_name(ind.technique, lang)
            ),
        }
    } else {
        let (fr, single) = match lang {
            Language::En => ("fractions", "single fraction"),
            Language::De => ("Fraktionen", "1 Fraktion"),
        };
        let frac = if ind.fractions == 1 {
            single.to_string()
        } else {
            format!("{} {fr} of {} Gy", ind.fractions, fmt_gy(dpf, lang))
                .replace(" of ", if lang == Language::En { " of " } else { " à " })
        };
        let tech = if ind.boost.is_some() {
            "IMRT"
        } else {
            technique_name(ind.technique, lang)
        };
        match lang {
            Language::En => format!(
                "{} Gy in {frac} to the {}, {tech}",
                fmt_gy(ind.total, lang),
                l(ind.target)
            ),
            Language::De => format!(
                "{} Gy in {frac} auf {}, {tech}",
                fmt_gy(ind.total, lang),
                l(ind.target)
            ),
        }
    };
    if let Some((bt, bn, btech)) = ind.boost {
        let bd = fmt_gy(bt / f64::from(bn), lang);
        s.push_str(&match lang {
            Language::En => format!(
                ", followed by {} boost {bn} x {bd} Gy",
                technique_name(btech, lang)
            ),
            Language::De => format!(
                ", gefolgt von {}-Boost {bn} x {bd} Gy",
                technique_name(btech, lang)
            ),
        });
    }
    if let Some(c) = ind.concurrent {
        s.push_str(&match lang {
            Language::En => format!(", with concurrent {}", c.0),
            Language::De => format!(", simultan {}", c.1),
        });
    }
    s
}

/// The regimen in the short notation of treatment charts ("60 Gy/30 fx, IMRT"), as one of
/// the ways reports write it; answers always use [`regimen_text`].
fn regimen_short(ind: &Indication, lang: Language) -> String {
    let mut s = if ind.technique == T::LdrBrachytherapy {
        format!(
            "{} Gy, {}",
            fmt_gy(ind.total, lang),
            technique_name(ind.technique, lang)
        )
    } else {
        let tech = if ind.boost.is_some() {
            "IMRT"
        } else {
            technique_name(ind.technique, lang)
        };
        if ind.fractions == 1 {
            format!("{} Gy x 1, {tech}", fmt_gy(ind.total, lang))
        } else {
            format!(
                "{} Gy/{} fx, {tech}",
                fmt_gy(ind.total, lang),
                ind.fractions
            )
        }
    };
    if let Some((bt, bn, btech)) = ind.boost {
        s.push_str(&format!(
            " + {} boost {bn} x {} Gy",
            technique_name(btech, lang),
            fmt_gy(bt / f64::from(bn), lang)
        ));
    }
    if let Some(c) = ind.concurrent {
        s.push_str(&format!(
            " + {}",
            if lang == Language::En { c.0 } else { c.1 }
        ));
    }
    s
}

fn modality_of(ind: &Indication) -> Modality {
    // External beam with a brachytherapy boost (cervix) counts as brachytherapy, the
    // distinguishing modality of the course.
    match ind.boost {
        Some((_, _, t)) if t.modality() == Modality::Brachytherapy => Modality::Brachytherapy,
        _ => ind.technique.modality(),
    }
}

fn make_case(rng: &mut ChaCha8Rng, site: &Site, lang: Language, id: String) -> Case {
    let l = |p: (&'static str, &'static str)| if lang == Language::En { p.0 } else { p.1 };
    let ind = &site.indications[rng.random_range(0..site.indications.len())];
    let sex = site
        .sex
        .unwrap_or(if rng.random_bool(0.5) { "m" } else { "f" });
    let mut age = rng.random_range(site.ages.0..=site.ages.1);
    if site.key == "glioblastoma" {
        // Keep age consistent with the indication's age condition.
        age = if ind.when.0.contains("under 70") {
            age.min(69)
        } else {
            age.max(70)
        };
    }
    let left = site.sided && rng.random_bool(0.5);
    let (side_en, side_de) = if left {
        ("left", "links")
    } else {
        ("right", "rechts")
    };
    let diagnosis = l(site.diagnosis).replace("{side}", l((side_en, side_de)));
    let icd10 = if left { site.codes.0 } else { site.codes.1 }.to_string();
    let person = match (lang, sex) {
        (Language::En, "m") => "man",
        (Language::En, _) => "woman",
        (Language::De, "m") => "Patient",
        (Language::De, _) => "Patientin",
    };
    let context = match lang {
        Language::En => format!(
            "{age}-year-old {person} with {diagnosis} ({}), {}.",
            l(site.histology),
            l(ind.when)
        ),
        Language::De => format!(
            "{person}, {age} Jahre, {diagnosis} ({}), {}.",
            l(site.histology),
            l(ind.when)
        ),
    };
    let regimen = regimen_text(ind, lang);
    let start = 19_723 + rng.random_range(0..700i64); // from 2024-01-01
    let n = i64::from(ind.fractions.max(1));
    let end = start + (n - 1) / 5 * 7 + (n - 1) % 5;
    let start_s = fmt_date(start, lang);
    let follow = rng.random_range(0..3usize);
    let follow_weeks = [6, 8, 12][follow];
    let variant = rng.random_range(0..3usize);
    let tox = l(site.toxicity);
    let ecog = [0u32, 0, 1, 1, 2][rng.random_range(0..5usize)];
    // About one course in ten is interrupted for a few days and then completed.
    let interruption = rng.random_bool(0.1).then(|| {
        let reasons = [
            ("machine maintenance", "Gerätewartung"),
            ("a public holiday", "Feiertag"),
            ("an intercurrent infection", "interkurrenter Infekt"),
        ];
        (
            rng.random_range(2..=5i64),
            l(reasons[rng.random_range(0..reasons.len())]),
        )
    });
    let end = end + interruption.map_or(0, |(days, _)| days);
    let end_s = fmt_date(end, lang);
    let (course_note, letter_course) = match (lang, interruption) {
        (Language::En, None) => (
            "completed as planned".to_string(),
            "Treatment was completed as planned.".to_string(),
        ),
        (Language::De, None) => (
            "planmäßig abgeschlossen".to_string(),
            "Die Behandlung wurde planmäßig abgeschlossen.".to_string(),
        ),
        (Language::En, Some((days, why))) => (
            format!("interrupted for {days} days ({why}), then completed"),
            format!("Treatment was interrupted for {days} days because of {why} and then completed."),
        ),
        (Language::De, Some((days, why))) => (
            format!("Unterbrechung für {days} Tage ({why}), dann abgeschlossen"),
            format!("Die Behandlung wurde für {days} Tage unterbrochen (Grund: {why}) und danach abgeschlossen."),
        ),
    };
    let report = match (lang, variant) {
        (Language::En, 0) => format!(
            "RADIOTHERAPY SUMMARY\nPatient: {age}-year-old {person}, ECOG {ecog}\nDiagnosis: {diagnosis} ({icd10})\nHistology: {}\nStage: {}\nTreatment: {regimen}\nCourse: {start_s} to {end_s}, {course_note}\nToxicity: {tox}\nFollow-up: clinical review in {follow_weeks} weeks",
            l(site.histology), l(ind.when)),
        (Language::En, 1) => format!(
            "Summary of radiotherapy. {age}-year-old {person} (ECOG {ecog}), {diagnosis}, ICD-10 {icd10}; {}; {}. Regimen: {regimen}. Treated from {start_s} until {end_s}, {course_note}. Acute toxicity: {tox}. Plan: follow-up in {follow_weeks} weeks.",
            l(site.histology), l(ind.when)),
        (Language::En, _) => format!(
            "End-of-treatment note\n- Dx: {diagnosis}, {} [{icd10}]\n- Indication: {}\n- RT: {}\n- Dates: {start_s} - {end_s} ({course_note})\n- Performance status: ECOG {ecog}\n- Acute effects: {tox}\n- Next visit: {follow_weeks} weeks",
            l(site.histology), l(ind.when), regimen_short(ind, lang)),
        (Language::De, 0) => format!(
            "STRAHLENTHERAPIE-ZUSAMMENFASSUNG\n{person}, {age} Jahre, ECOG {ecog}\nDiagnose: {diagnosis} ({icd10})\nHistologie: {}\nStadium: {}\nTherapie: {regimen}\nZeitraum: {start_s} bis {end_s}, {course_note}\nToxizität: {tox}\nNachsorge: Kontrolle in {follow_weeks} Wochen",
            l(site.histology), l(ind.when)),
        (Language::De, 1) => format!(
            "Zusammenfassung der Strahlentherapie. {person}, {age} Jahre (ECOG {ecog}), {diagnosis}, ICD-10 {icd10}; {}; {}. Schema: {regimen}. Bestrahlung vom {start_s} bis {end_s}, {course_note}. Akuttoxizität: {tox}. Procedere: Nachsorge in {follow_weeks} Wochen.",
            l(site.histology), l(ind.when)),
        (Language::De, _) => format!(
            "Abschlussbericht Strahlentherapie\n- Diagnose: {diagnosis}, {} [{icd10}]\n- Indikation: {}\n- RT: {}\n- Zeitraum: {start_s} - {end_s} ({course_note})\n- Allgemeinzustand: ECOG {ecog}\n- Akute Nebenwirkungen: {tox}\n- Nächster Termin: in {follow_weeks} Wochen",
            l(site.histology), l(ind.when), regimen_short(ind, lang)),
    };
    let letter = match (lang, variant) {
        (Language::En, 0) => format!(
            "Dear colleague,\n\nwe report on your patient, a {age}-year-old {person} with {diagnosis} ({}, {}). Between {start_s} and {end_s} we delivered {regimen}. {letter_course} The patient experienced {tox}. We will see the patient again in {follow_weeks} weeks and will keep you informed.\n\nKind regards",
            l(site.histology), l(ind.when)),
        (Language::En, 1) => format!(
            "Dear colleague,\n\nthank you for referring your patient with {diagnosis}. Radiotherapy ({regimen}) was given from {start_s} to {end_s}. {letter_course} Acute side effects were limited to {tox}. A follow-up visit is scheduled in {follow_weeks} weeks.\n\nYours sincerely",
            ),
        (Language::En, _) => format!(
            "Dear Dr. colleague,\n\nyour {age}-year-old patient with {diagnosis} ({}) has finished radiotherapy. Indication: {}. We gave {regimen} between {start_s} and {end_s}. {letter_course} General condition at the end of treatment: ECOG {ecog}. Side effects: {tox}. Please see the patient in {follow_weeks} weeks; we will report again after the first follow-up.\n\nBest regards",
            l(site.histology), l(ind.when)),
        (Language::De, 0) => format!(
            "Sehr geehrte Kollegin, sehr geehrter Kollege,\n\nwir berichten über Ihre(n) {person}, {age} Jahre, mit {diagnosis} ({}, {}). Vom {start_s} bis {end_s} erfolgte eine Strahlentherapie: {regimen}. {letter_course} An Nebenwirkungen trat {tox} auf. Eine Kontrolle ist in {follow_weeks} Wochen vorgesehen.\n\nMit freundlichen Grüßen",
            l(site.histology), l(ind.when)),
        (Language::De, 1) => format!(
            "Sehr geehrte Kollegin, sehr geehrter Kollege,\n\nvielen Dank für die Zuweisung Ihrer/Ihres {person} mit {diagnosis}. Die Strahlentherapie ({regimen}) erfolgte vom {start_s} bis {end_s}. {letter_course} Akut zeigte sich {tox}. Die Nachsorge ist in {follow_weeks} Wochen geplant.\n\nMit freundlichen Grüßen"),
        (Language::De, _) => format!(
            "Liebe Kollegin, lieber Kollege,\n\nIhr(e) {person} ({age} Jahre) mit {diagnosis} ({}) hat die Strahlentherapie beendet. Indikation: {}. Durchgeführt wurde {regimen} vom {start_s} bis {end_s}. {letter_course} Allgemeinzustand bei Abschluss: ECOG {ecog}. Nebenwirkungen: {tox}. Wir bitten um Wiedervorstellung in {follow_weeks} Wochen.\n\nMit kollegialen Grüßen",
            l(site.histology), l(ind.when)),
    };
    Case {
        id,
        language: lang,
        site: site.key.to_string(),
        age,
        sex: sex.to_string(),
        context,
        report,
        letter,
        regimen,
        modality: modality_of(ind),
        icd10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{normalize_code, CodeSet, Regimen};

    #[test]
    fn answers_are_valid_and_parse_back() {
        let cases = generate_cases(
            &SynthConfig {
                seed: 3,
                german_fraction: 0.5,
            },
            2000,
        );
        let set = CodeSet::embedded();
        let mut modalities = std::collections::HashMap::new();
        for c in &cases {
            let code = normalize_code(&c.icd10, set).unwrap();
            assert!(code.entry.billable(), "{}", c.icd10);
            assert_eq!(Modality::parse(c.modality.as_str()), Some(c.modality));
            let r = Regimen::parse(&c.regimen);
            assert!(r.course.total_dose_gy.is_some(), "{}", c.regimen);
            assert!(r.is_plausible(), "{} {:?}", c.regimen, r);
            assert!(r.technique.is_some(), "{}", c.regimen);
            let words = c.letter.split_whitespace().count();
            assert!((40..=150).contains(&words), "{words}: {}", c.letter);
            *modalities.entry(c.modality).or_insert(0) += 1;
        }
        // All four modalities occur, photon dominates.
        assert_eq!(modalities.len(), 4);
        assert!(modalities[&Modality::Photon] > cases.len() / 2);
    }

    #[test]
    fn answers_are_a_function_of_the_context() {
        let cases = generate_cases(&SynthConfig::default(), 3000);
        let mut seen = std::collections::HashMap::new();
        for c in &cases {
            let key = c.context.replacen(&c.age.to_string(), "#", 1);
            let val = (c.regimen.clone(), c.modality, c.icd10.clone());
            if let Some(prev) = seen.insert(key.clone(), val.clone()) {
                assert_eq!(prev, val, "{key}");
            }
        }
    }

    #[test]
    fn texts_vary_and_chart_notation_parses_like_prose() {
        let cases = generate_cases(
            &SynthConfig {
                seed: 11,
                german_fraction: 0.5,
            },
            600,
        );
        let count = |needle: &str| cases.iter().filter(|c| c.report.contains(needle)).count();
        for needle in [
            "RADIOTHERAPY SUMMARY",
            "Summary of radiotherapy",
            "End-of-treatment note",
            "STRAHLENTHERAPIE-ZUSAMMENFASSUNG",
            "Zusammenfassung der Strahlentherapie",
            "Abschlussbericht Strahlentherapie",
        ] {
            assert!(count(needle) > 30, "{needle}: {}", count(needle));
        }
        let interrupted = count("interrupted for") + count("Unterbrechung für");
        assert!((20..=110).contains(&interrupted), "{interrupted}");
        for site in SITES {
            for ind in site.indications {
                for lang in [Language::En, Language::De] {
                    let (prose, chart) = (
                        Regimen::parse(&regimen_text(ind, lang)),
                        Regimen::parse(&regimen_short(ind, lang)),
                    );
                    assert_eq!(prose.course, chart.course, "{}", regimen_short(ind, lang));
                    assert_eq!(
                        prose.technique,
                        chart.technique,
                        "{}",
                        regimen_short(ind, lang)
                    );
                }
            }
        }
    }

    #[test]
    fn dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(fmt_date(19_782, Language::De), "29.02.2024");
    }
}
