//! The embedded code set against simple-icd-10-cm's own answers on every code
//! (fixture: tools/fixtures/icd10/export_fixture.py), and normalization of malformed input.

use std::io::Read;

use ro_tasks::{extract_code, normalize_code, CodeError, CodeSet, Kind, Laterality};

const FIXTURE: &[u8] = include_bytes!("../../tools/fixtures/icd10/all_codes.tsv.gz");
const DESCRIPTIONS: &str = include_str!("../../tools/fixtures/icd10/descriptions.tsv");

fn hash16(text: &str) -> String {
    let mut h: u32 = 0x811C9DC5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!("{:04x}", h & 0xFFFF)
}

#[test]
fn every_code_matches_the_package() {
    let set = CodeSet::embedded();
    let mut text = String::new();
    flate2::read::GzDecoder::new(FIXTURE)
        .read_to_string(&mut text)
        .unwrap();
    let mut n = 0;
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [code, valid_nodot, flags, leaf, parent, hash] = cols[..] else {
            panic!("bad fixture line {line:?}");
        };
        let e = set.get(code).unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(e.code, code);
        let nodot = if code.len() > 4 && code.as_bytes()[3] == b'.' {
            format!("{}{}", &code[..3], &code[4..])
        } else {
            code.to_string()
        };
        assert_eq!(
            set.get(&nodot).is_some(),
            valid_nodot == "1",
            "{code} nodot"
        );
        let kind_flag = match e.kind {
            Kind::Chapter => 'c',
            Kind::Block => 'b',
            Kind::Category => 'k',
            Kind::Subcategory => 's',
            Kind::ExtendedSubcategory => 'x',
        };
        assert!(
            flags.contains(kind_flag),
            "{code}: kind {:?} vs {flags}",
            e.kind
        );
        assert_eq!(set.is_block(code), flags.contains('b'), "{code} is_block");
        assert_eq!(e.leaf, leaf == "1", "{code} leaf");
        assert_eq!(e.parent.as_deref().unwrap_or(""), parent, "{code} parent");
        assert_eq!(hash16(&e.description), hash, "{code} description");
        n += 1;
    }
    assert_eq!(n, 98_466);
}

#[test]
fn descriptions_match_in_full() {
    let set = CodeSet::embedded();
    let mut n = 0;
    for line in DESCRIPTIONS.lines() {
        let (code, desc) = line.split_once('\t').unwrap();
        let desc = desc
            .replace("\\t", "\t")
            .replace("\\n", "\n")
            .replace("\\\\", "\\");
        assert_eq!(set.get(code).unwrap().description, desc, "{code}");
        n += 1;
    }
    assert!(n > 2000);
    // Chapter 2 is complete: every C/D00-D49 code is in it.
    assert!(set.get("C00.0").is_some() && set.get("D49.9").is_some());
}

#[test]
fn billable_flags() {
    let set = CodeSet::embedded();
    for (code, billable) in [
        ("C34.11", true),
        ("C34.1", false),
        ("C34", false),
        ("C61", true),
        ("C00-C14", false),
        ("2", false),
        ("Z51.0", true),
        ("L58.0", true),
        ("C79.51", true),
    ] {
        assert_eq!(set.get(code).unwrap().billable(), billable, "{code}");
    }
}

#[test]
fn malformed_inputs_normalize_as_documented() {
    let set = CodeSet::embedded();
    let ok: &[(&str, &str)] = &[
        ("C34.1", "C34.1"),
        ("c34.1", "C34.1"),
        ("  C34.1\t\n", "C34.1"),
        ("\u{a0}C34.1\u{3000}", "C34.1"),
        ("\u{200b}C34.1\u{feff}", "C34.1"),
        ("C 34 .1", "C34.1"),
        ("C34 1", "C34.1"),
        ("C341", "C34.1"),
        ("c3411", "C34.11"),
        ("C34,1", "C34.1"),
        ("C34.1.", "C34.1"),
        ("Ｃ３４．１", "C34.1"),
        ("Ｃ３４.１", "C34.1"),
        ("C00–C14", "C00-C14"),
        ("C00\u{2212}C14", "C00-C14"),
        ("c00-c14", "C00-C14"),
        ("S72.001A", "S72.001A"),
        ("z51.0", "Z51.0"),
        ("B99", "B99"),
    ];
    for (input, want) in ok {
        match normalize_code(input, set) {
            Ok(c) => assert_eq!(c.code(), *want, "{input:?}"),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }
    let bad: &[(&str, CodeError)] = &[
        ("", CodeError::Empty),
        ("  \u{3000}", CodeError::Empty),
        ("С34.1", CodeError::NonAscii('С')),
        ("C34.１х", CodeError::NonAscii('х')),
        ("C00-D49", CodeError::Unknown("C00-D49".into())),
        ("C34.7", CodeError::Unknown("C34.7".into())),
        ("C347", CodeError::Unknown("C34.7".into())),
        ("CO0", CodeError::Malformed("CO0".into())),
    ];
    for (input, want) in bad {
        assert_eq!(
            normalize_code(input, set).err().as_ref(),
            Some(want),
            "{input:?}"
        );
    }
    for input in [
        "C34..1",
        "C34.1.2",
        "C3",
        "34.1",
        "C34-1",
        "C34.1 L R",
        "C34/1",
        "2",
        "C34.12345",
    ] {
        assert!(
            matches!(
                normalize_code(input, set),
                Err(CodeError::Malformed(_) | CodeError::Unknown(_))
            ),
            "{input:?} should be rejected"
        );
    }
}

#[test]
fn qualifiers_are_reported_separately() {
    let set = CodeSet::embedded();
    let c = normalize_code("C50.4 L", set).unwrap();
    assert_eq!(
        (c.code(), c.qualifiers.laterality),
        ("C50.4", Some(Laterality::Left))
    );
    let c = normalize_code("C50.4LG", set).unwrap();
    assert_eq!(c.code(), "C50.4");
    assert!(c.qualifiers.certainty.is_some() && c.qualifiers.laterality.is_some());
    let c = normalize_code("C34.1 G", set).unwrap();
    assert_eq!(c.qualifiers.certainty, Some(ro_tasks::Certainty::Confirmed));
    let c = normalize_code("C34.1A", set).unwrap();
    assert_eq!(c.qualifiers.certainty, Some(ro_tasks::Certainty::Excluded));
    for (input, marker) in [
        ("C79.51†", ro_tasks::Marker::Dagger),
        ("C79.51+", ro_tasks::Marker::Dagger),
        ("C79.51 *", ro_tasks::Marker::Asterisk),
        ("U07.1!", ro_tasks::Marker::Exclamation),
    ] {
        let c = normalize_code(input, set).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(c.qualifiers.marker, Some(marker), "{input}");
    }
    assert!(normalize_code("C34.1", set).unwrap().qualifiers.is_empty());
}

#[test]
fn codes_are_found_in_free_text() {
    let set = CodeSet::embedded();
    for (text, want) in [
        ("C61", "C61"),
        ("The ICD-10 code is C34.11.", "C34.11"),
        ("ICD-10: c50.911 (breast)", "C50.911"),
        ("Diagnose: C20 G, Rektumkarzinom", "C20"),
        ("cT2 N0 M0, code C61", "C61"),
        ("**C71.1**", "C71.1"),
        ("Code: Ｃ６１", "C61"),
    ] {
        assert_eq!(
            extract_code(text, set).map(|c| c.code().to_string()),
            Ok(want.to_string()),
            "{text}"
        );
    }
    assert_eq!(extract_code("   ", set).err(), Some(CodeError::Empty));
    assert!(matches!(
        extract_code("unknown code C34.7", set),
        Err(CodeError::Unknown(_))
    ));
    assert!(matches!(
        extract_code("keine Ahnung", set),
        Err(CodeError::Malformed(_))
    ));
}
