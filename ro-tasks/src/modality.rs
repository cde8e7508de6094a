//! Treatment modality and technique, and their recognition in free text.
//!
//! One keyword table ([`KEYWORDS`]) serves both the modality task ("IMRT" → photon,
//! "HDR" → brachytherapy, "PBS" → proton) and the technique field of the regimen parser.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The four treatment modalities of the modality task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Megavoltage X-rays (3D-CRT, IMRT, VMAT, SBRT, ...).
    Photon,
    /// Proton beams (pencil-beam scanning, IMPT, passive scattering).
    Proton,
    /// Electron beams.
    Electron,
    /// Sealed sources in or next to the tumour (HDR, LDR, PDR).
    Brachytherapy,
}

impl Modality {
    /// All four, in label order.
    pub const ALL: [Modality; 4] = [
        Modality::Photon,
        Modality::Proton,
        Modality::Electron,
        Modality::Brachytherapy,
    ];

    /// The label (`"photon"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Photon => "photon",
            Modality::Proton => "proton",
            Modality::Electron => "electron",
            Modality::Brachytherapy => "brachytherapy",
        }
    }

    /// Read a modality from free text: the keyword of [`KEYWORDS`] that occurs first wins
    /// (on a tie, the longer keyword). `None` when no keyword occurs: the answer is
    /// "unknown" and is scored as wrong.
    ///
    /// ```
    /// use ro_tasks::Modality;
    /// assert_eq!(Modality::parse("VMAT, 6 MV"), Some(Modality::Photon));
    /// assert_eq!(Modality::parse("HDR-Brachytherapie"), Some(Modality::Brachytherapy));
    /// assert_eq!(Modality::parse("PBS"), Some(Modality::Proton));
    /// assert_eq!(Modality::parse("9 MeV"), Some(Modality::Electron));
    /// assert_eq!(Modality::parse("carbon ions"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Modality> {
        first_keyword(text).map(|k| k.modality)
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Modality {
    type Err = String;
    /// Exact labels only (case-insensitive); use [`Modality::parse`] for free text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Modality::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown modality {s:?}"))
    }
}

/// Delivery technique, as found in regimen texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Technique {
    /// 3D conformal radiotherapy.
    ThreeDCrt,
    /// Intensity-modulated radiotherapy.
    Imrt,
    /// Volumetric modulated arc therapy.
    Vmat,
    /// Helical tomotherapy.
    Tomotherapy,
    /// Stereotactic body radiotherapy (SABR).
    Sbrt,
    /// Stereotactic radiosurgery (single or few fractions, intracranial).
    Srs,
    /// Electron beam.
    Electrons,
    /// Proton therapy (pencil-beam scanning, IMPT).
    Protons,
    /// High-dose-rate brachytherapy.
    HdrBrachytherapy,
    /// Low-dose-rate brachytherapy (permanent seeds).
    LdrBrachytherapy,
    /// Pulsed-dose-rate brachytherapy.
    PdrBrachytherapy,
}

impl Technique {
    /// The modality a technique belongs to.
    pub fn modality(self) -> Modality {
        match self {
            Technique::ThreeDCrt
            | Technique::Imrt
            | Technique::Vmat
            | Technique::Tomotherapy
            | Technique::Sbrt
            | Technique::Srs => Modality::Photon,
            Technique::Electrons => Modality::Electron,
            Technique::Protons => Modality::Proton,
            Technique::HdrBrachytherapy
            | Technique::LdrBrachytherapy
            | Technique::PdrBrachytherapy => Modality::Brachytherapy,
        }
    }

    /// The usual abbreviation (`"IMRT"`, `"3D-CRT"`, `"HDR brachytherapy"`).
    pub fn label(self) -> &'static str {
        match self {
            Technique::ThreeDCrt => "3D-CRT",
            Technique::Imrt => "IMRT",
            Technique::Vmat => "VMAT",
            Technique::Tomotherapy => "tomotherapy",
            Technique::Sbrt => "SBRT",
            Technique::Srs => "SRS",
            Technique::Electrons => "electrons",
            Technique::Protons => "protons (PBS)",
            Technique::HdrBrachytherapy => "HDR brachytherapy",
            Technique::LdrBrachytherapy => "LDR brachytherapy",
            Technique::PdrBrachytherapy => "PDR brachytherapy",
        }
    }

    /// The technique named first in free text, if any.
    ///
    /// ```
    /// use ro_tasks::Technique;
    /// assert_eq!(Technique::parse("60 Gy/30 fx VMAT"), Some(Technique::Vmat));
    /// assert_eq!(Technique::parse("3D conformal"), Some(Technique::ThreeDCrt));
    /// assert_eq!(Technique::parse("photons"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Technique> {
        first_match(text, |k| k.technique.is_some()).and_then(|k| k.technique)
    }
}

/// One entry of the keyword table.
#[derive(Debug, Clone, Copy)]
pub struct Keyword {
    /// Lower-case words as they appear after folding (non-alphanumerics become spaces).
    pub words: &'static str,
    /// The modality it implies.
    pub modality: Modality,
    /// The technique it names, if it names one.
    pub technique: Option<Technique>,
}

const fn kw(words: &'static str, modality: Modality, technique: Option<Technique>) -> Keyword {
    Keyword {
        words,
        modality,
        technique,
    }
}

use Modality::{Brachytherapy as B, Electron as E, Photon as P, Proton as Pr};
use Technique as T;

/// Keywords (English and German) and what they imply. Text is folded to lower-case words
/// (`"3D-CRT"` → `"3d crt"`) before matching whole words.
pub const KEYWORDS: &[Keyword] = &[
    kw("photon", P, None),
    kw("photons", P, None),
    kw("photonen", P, None),
    kw("photon beam", P, None),
    kw("x ray", P, None),
    kw("x rays", P, None),
    kw("xray", P, None),
    kw("rontgen", P, None),
    kw("megavoltage", P, None),
    kw("mv", P, None),
    kw("linac", P, None),
    kw("linear accelerator", P, None),
    kw("linearbeschleuniger", P, None),
    kw("ebrt", P, None),
    kw("cobalt", P, None),
    kw("3d crt", P, Some(T::ThreeDCrt)),
    kw("3dcrt", P, Some(T::ThreeDCrt)),
    kw("3d conformal", P, Some(T::ThreeDCrt)),
    kw("3d konformal", P, Some(T::ThreeDCrt)),
    kw("3d konformale", P, Some(T::ThreeDCrt)),
    kw("imrt", P, Some(T::Imrt)),
    kw("intensity modulated", P, Some(T::Imrt)),
    kw("intensitatsmodulierte", P, Some(T::Imrt)),
    kw("vmat", P, Some(T::Vmat)),
    kw("rapidarc", P, Some(T::Vmat)),
    kw("volumetric modulated arc", P, Some(T::Vmat)),
    kw("tomotherapy", P, Some(T::Tomotherapy)),
    kw("tomotherapie", P, Some(T::Tomotherapy)),
    kw("sbrt", P, Some(T::Sbrt)),
    kw("sabr", P, Some(T::Sbrt)),
    kw("stereotactic", P, Some(T::Sbrt)),
    kw("stereotactic body", P, Some(T::Sbrt)),
    kw("stereotaktische", P, Some(T::Sbrt)),
    kw("cyberknife", P, Some(T::Sbrt)),
    kw("srs", P, Some(T::Srs)),
    kw("fsrt", P, Some(T::Srs)),
    kw("radiosurgery", P, Some(T::Srs)),
    kw("stereotactic radiosurgery", P, Some(T::Srs)),
    kw("radiochirurgie", P, Some(T::Srs)),
    kw("gamma knife", P, Some(T::Srs)),
    kw("proton", Pr, Some(T::Protons)),
    kw("protons", Pr, Some(T::Protons)),
    kw("protonen", Pr, Some(T::Protons)),
    kw("protonentherapie", Pr, Some(T::Protons)),
    kw("pbs", Pr, Some(T::Protons)),
    kw("pencil beam", Pr, Some(T::Protons)),
    kw("pencil beam scanning", Pr, Some(T::Protons)),
    kw("impt", Pr, Some(T::Protons)),
    kw("intensity modulated proton", Pr, Some(T::Protons)),
    kw("electron", E, Some(T::Electrons)),
    kw("electrons", E, Some(T::Electrons)),
    kw("elektronen", E, Some(T::Electrons)),
    kw("mev", E, Some(T::Electrons)),
    kw("brachytherapy", B, None),
    kw("brachy", B, None),
    kw("brachytherapie", B, None),
    kw("interstitial", B, None),
    kw("intracavitary", B, None),
    kw("intrakavitare", B, None),
    kw("tandem", B, None),
    kw("hdr", B, Some(T::HdrBrachytherapy)),
    kw("high dose rate", B, Some(T::HdrBrachytherapy)),
    kw("afterloading", B, Some(T::HdrBrachytherapy)),
    kw("iridium", B, Some(T::HdrBrachytherapy)),
    kw("ir 192", B, Some(T::HdrBrachytherapy)),
    kw("ldr", B, Some(T::LdrBrachytherapy)),
    kw("low dose rate", B, Some(T::LdrBrachytherapy)),
    kw("seed", B, Some(T::LdrBrachytherapy)),
    kw("seeds", B, Some(T::LdrBrachytherapy)),
    kw("seed implant", B, Some(T::LdrBrachytherapy)),
    kw("i 125", B, Some(T::LdrBrachytherapy)),
    kw("iodine 125", B, Some(T::LdrBrachytherapy)),
    kw("pdr", B, Some(T::PdrBrachytherapy)),
    kw("pulsed dose rate", B, Some(T::PdrBrachytherapy)),
];

/// Fold text to ` word word ` (lower case, German umlauts and ß to their base letters,
/// everything not alphanumeric a space), so keywords match whole words.
fn fold_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'ä' | 'á' | 'à' => 'a',
            'ö' | 'ó' => 'o',
            'ü' | 'ú' => 'u',
            'é' | 'è' => 'e',
            'ß' => 's',
            c => c,
        };
        if c.is_alphanumeric() {
            out.push(c);
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

fn first_match(text: &str, accept: impl Fn(&Keyword) -> bool) -> Option<&'static Keyword> {
    let folded = fold_words(text);
    let mut best: Option<(usize, usize, &'static Keyword)> = None;
    for k in KEYWORDS.iter().filter(|k| accept(k)) {
        let needle = format!(" {} ", k.words);
        if let Some(pos) = folded.find(&needle) {
            let better = match best {
                None => true,
                Some((p, len, _)) => pos < p || (pos == p && needle.len() > len),
            };
            if better {
                best = Some((pos, needle.len(), k));
            }
        }
    }
    best.map(|(_, _, k)| k)
}

fn first_keyword(text: &str) -> Option<&'static Keyword> {
    first_match(text, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms() {
        let cases = [
            ("IMRT", Some(Modality::Photon)),
            ("3D-CRT", Some(Modality::Photon)),
            ("Photonen (VMAT)", Some(Modality::Photon)),
            ("SBRT 54 Gy", Some(Modality::Photon)),
            (
                "Intensity-modulated proton therapy (IMPT)",
                Some(Modality::Proton),
            ),
            ("IMPT", Some(Modality::Proton)),
            ("pencil-beam scanning protons", Some(Modality::Proton)),
            ("Protonentherapie", Some(Modality::Proton)),
            ("Elektronen 9 MeV", Some(Modality::Electron)),
            ("HDR", Some(Modality::Brachytherapy)),
            ("I-125 seed implant", Some(Modality::Brachytherapy)),
            ("Afterloading", Some(Modality::Brachytherapy)),
            ("", None),
            ("unknown", None),
            ("Schwerionen", None),
        ];
        for (text, want) in cases {
            assert_eq!(Modality::parse(text), want, "{text}");
        }
    }

    #[test]
    fn words_are_whole() {
        // "mv" inside a word and "pbs" inside a word do not count.
        assert_eq!(Modality::parse("mvp pbsx"), None);
        assert_eq!(Modality::parse("6-MV"), Some(Modality::Photon));
    }

    #[test]
    fn labels_round_trip() {
        for m in Modality::ALL {
            assert_eq!(m.as_str().parse::<Modality>(), Ok(m));
            assert_eq!(Modality::parse(m.as_str()), Some(m));
        }
    }
}
