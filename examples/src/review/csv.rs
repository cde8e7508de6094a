//! The packet as a spreadsheet, for raters who prefer one: one row per case and candidate,
//! one column per question, filled in and sent back as it is.
//!
//! Columns: `packet`, `rater`, `case`, `candidate`, `input`, `text`, then one per question,
//! headed `<id> (<answers>)`, e.g. `correctness (1-4)`, `acceptable (yes/minor/no)`,
//! `comments (free text)`. The file is RFC 4180: UTF-8 without a byte-order mark, CRLF line
//! ends, a field quoted when it holds a comma, quote, CR or LF (letters are multi-line) with
//! quotes doubled; Excel and LibreOffice open it with the line breaks kept inside the cells.
//! A text cell that starts with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so that a
//! spreadsheet shows it as text instead of running it as a formula (only the answer columns
//! are read back).
//!
//! Reading accepts what spreadsheets write back: a byte-order mark, `,` `;` or tab as the
//! separator (German Excel saves with `;`), LF or CRLF, columns in any order, extra columns
//! (ignored), rows cut short (the missing cells are empty), choice answers by value or label
//! in any case, and scale answers such as `3.0`.
//!
//! The reader and writer are our own ([`write_record`], [`parse_records`]): the `csv` crate
//! turns on serde's `default` feature, which would rebuild every crate of the workspace.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::answers::{RaterAnswers, RawAnswer};
use super::blind::Packet;

/// The fixed columns before the questions.
pub const FIXED_COLUMNS: [&str; 6] = ["packet", "rater", "case", "candidate", "input", "text"];

/// Appends one record to `out`: fields separated by `sep`, a field quoted when it holds
/// `sep`, a quote, CR or LF (its quotes doubled), the record ended by CRLF (RFC 4180).
///
/// ```
/// let mut out = String::new();
/// ro_examples::review::csv::write_record(&mut out, &["a", "b,c", "say \"hi\"\nbye"], ',');
/// assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\nbye\"\r\n");
/// ```
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S], sep: char) {
    for (i, f) in fields.iter().enumerate() {
        let f = f.as_ref();
        if i > 0 {
            out.push(sep);
        }
        if f.contains([sep, '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

/// Splits CSV text into records of fields (RFC 4180, also with LF line ends): a quoted field
/// may hold the separator, line breaks and doubled quotes. Empty lines are skipped.
///
/// ```
/// let rows = ro_examples::review::csv::parse_records("a;\"b\r\n\"\"c\"\"\"\r\n\r\nd\n", ';')?;
/// assert_eq!(rows, [vec!["a", "b\r\n\"c\""], vec!["d"]]);
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
/// A quoted field that is not closed, or text between a closing quote and the next
/// separator, named by the (1-based) record number.
pub fn parse_records(text: &str, sep: char) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted_field = false;
    let end_record =
        |record: &mut Vec<String>, field: &mut String, records: &mut Vec<Vec<String>>| {
            record.push(std::mem::take(field));
            let r = std::mem::take(record);
            if !(r.len() == 1 && r[0].is_empty()) {
                records.push(r);
            }
        };
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted_field => {
                quoted_field = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => {
                            return Err(format!(
                                "record {}: a quoted field is not closed",
                                records.len() + 1
                            ))
                        }
                    }
                }
            }
            c if c == sep => {
                record.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                end_record(&mut record, &mut field, &mut records);
                quoted_field = false;
            }
            c if quoted_field => {
                return Err(format!(
                    "record {}: {c:?} after the closing quote of a field",
                    records.len() + 1
                ))
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() || quoted_field {
        end_record(&mut record, &mut field, &mut records);
    }
    Ok(records)
}

/// The header of a question's column: `<id> (<answers>)`.
fn question_header(q: &super::config::Question) -> String {
    format!("{} ({})", q.id, q.answer_hint())
}

/// Protects a text cell from being read as a spreadsheet formula.
fn as_text_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

/// The CSV packet of one rater.
pub fn render(packet: &Packet, rater: &str) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend(packet.config.questions.iter().map(question_header));
    write_record(&mut out, &header, ',');
    for case in &packet.cases {
        for (label, text) in &case.candidates {
            let mut row = vec![
                packet.key.packet.clone(),
                rater.to_string(),
                case.id.clone(),
                label.clone(),
                as_text_cell(&case.input),
                as_text_cell(text),
            ];
            row.extend(packet.config.questions.iter().map(|_| String::new()));
            write_record(&mut out, &row, ',');
        }
    }
    out
}

/// The separator of a CSV text: whichever of `,` `;` tab occurs most in its first line.
fn separator(text: &str) -> char {
    let first = text.lines().next().unwrap_or_default();
    [',', ';', '\t']
        .into_iter()
        .max_by_key(|&s| (first.matches(s).count(), s == ','))
        .unwrap_or(',')
}

/// Reads a filled-in CSV packet (BOM already stripped).
///
/// # Errors
/// A missing fixed column, malformed CSV, no rows, or rows that disagree on packet or rater;
/// each named with the file and the spreadsheet row (the header is row 1).
pub fn parse(path: &Path, text: &str) -> Result<RaterAnswers> {
    let name = path.display();
    let records =
        parse_records(text, separator(text)).map_err(|e| anyhow!("{name}: malformed CSV: {e}"))?;
    let Some((header, rows)) = records.split_first() else {
        bail!("{name}: empty file");
    };
    let column = |c: &str| header.iter().position(|h| h.trim() == c);
    let mut fixed = HashMap::new();
    for c in ["packet", "rater", "case", "candidate"] {
        let i = column(c).with_context(|| {
            format!("{name}: no column {c:?} (is this a packet from `review export`?)")
        })?;
        fixed.insert(c, i);
    }
    // Question columns: every other header that is not a fixed column, named by its id.
    let questions: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| !FIXED_COLUMNS.contains(&h.trim()) && !h.trim().is_empty())
        .map(|(i, h)| (i, h.split(" (").next().unwrap_or(h).trim().to_string()))
        .collect();
    let (mut packet, mut rater) = (None::<String>, None::<String>);
    let mut answers = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        // The spreadsheet's row number (the header is row 1; a multi-line cell is one row).
        let line = i + 2;
        let get = |i: usize| row.get(i).map_or("", |s| s.trim());
        let cell = |c: &str| get(fixed[c]).to_string();
        for (what, seen) in [("packet", &mut packet), ("rater", &mut rater)] {
            let v = cell(what);
            match seen {
                None => *seen = Some(v),
                Some(s) if *s != v => {
                    bail!("{name}: row {line}: {what} {v:?}, but earlier rows say {s:?}")
                }
                Some(_) => {}
            }
        }
        for (i, q) in &questions {
            let v = get(*i);
            if v.is_empty() {
                continue;
            }
            answers.push(RawAnswer {
                case: cell("case"),
                candidate: cell("candidate"),
                question: q.clone(),
                value: serde_json::Value::String(v.to_string()),
                place: format!("row {line}"),
            });
        }
    }
    let (Some(packet), Some(rater)) = (packet, rater) else {
        bail!("{name}: the CSV has a header but no rows");
    };
    Ok(RaterAnswers {
        path: path.to_path_buf(),
        packet,
        rater,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::blind::{blind, sample_input, BlindOptions};
    use crate::review::config::ReviewConfig;
    use proptest::prelude::*;

    fn packet() -> Packet {
        let mut input = sample_input(2, false);
        input.models[0].records[1].prediction = "=HYPERLINK(\"x\")\nline \"two\", end".into();
        input.cases[0].input = "- first line\r\nsecond; line".into();
        let opts = BlindOptions {
            n_cases: 2,
            seed: 3,
            raters: vec!["ann".into()],
        };
        blind(&input, &opts, &ReviewConfig::default()).unwrap()
    }

    proptest! {
        #[test]
        fn records_round_trip(
            rows in prop::collection::vec(
                prop::collection::vec("[a-c ,;\t\"\r\n'=äß]{0,6}", 1..5), 1..5),
            sep in prop::sample::select(vec![',', ';', '\t']),
        ) {
            let mut text = String::new();
            for r in &rows {
                write_record(&mut text, r, sep);
            }
            let back = parse_records(&text, sep).unwrap();
            // A record of one empty field is an empty line, which readers skip.
            let want: Vec<&Vec<String>> = rows.iter().filter(|r| !(r.len() == 1 && r[0].is_empty())).collect();
            prop_assert_eq!(back.iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        let text = render(&packet(), "ann");
        assert!(!text.starts_with('\u{feff}'));
        assert!(text.starts_with(
            "packet,rater,case,candidate,input,text,correctness (1-4),comprehensiveness (1-4),\
             style (1-4),practicality (1-4),acceptable (yes/minor/no),comments (free text)\r\n"
        ));
        assert!(
            text.contains("\"'=HYPERLINK(\"\"x\"\")\nline \"\"two\"\", end\""),
            "{text}"
        );
        assert!(text.contains("\"'- first line\r\nsecond; line\""), "{text}");
        let rows = parse_records(&text, ',').unwrap();
        assert_eq!(rows.len(), 5, "header + 2 cases x 2 candidates");
        assert!(rows.iter().all(|r| r.len() == 12));
        assert!(rows.iter().any(|r| r[4] == "'- first line\r\nsecond; line"));
    }

    #[test]
    fn a_filled_in_sheet_is_read_back_whatever_the_separator() {
        let p = packet();
        let mut rows = parse_records(&render(&p, "ann"), ',').unwrap();
        // Fill the first data row's correctness and acceptable cells, as a spreadsheet would.
        rows[1][6] = "3.0".into();
        rows[1][10] = "With minor edits".into();
        rows[2].truncate(8); // a spreadsheet that drops trailing empty cells
        for sep in [',', ';', '\t'] {
            let mut filled = String::new();
            for r in &rows {
                write_record(&mut filled, r, sep);
            }
            let a = parse(Path::new("ann.csv"), &filled.replace("\r\n", "\n")).unwrap();
            assert_eq!(
                (a.packet.as_str(), a.rater.as_str()),
                (p.key.packet.as_str(), "ann")
            );
            assert_eq!(a.answers.len(), 2, "{:?}", a.answers);
            assert_eq!(a.answers[0].question, "correctness");
            assert_eq!(a.answers[0].value, "3.0");
            assert_eq!(a.answers[1].question, "acceptable");
            assert_eq!(a.answers[0].case, p.cases[0].id);
            assert_eq!(a.answers[0].place, "row 2");
        }
    }

    #[test]
    fn broken_sheets_are_named() {
        let e = parse(Path::new("x.csv"), "a,b\r\n1,2\r\n").unwrap_err();
        assert!(e.to_string().contains("x.csv: no column \"packet\""), "{e}");
        let e = parse(Path::new("x.csv"), "packet,rater,case,candidate\r\n").unwrap_err();
        assert!(e.to_string().contains("no rows"), "{e}");
        let e = parse(
            Path::new("x.csv"),
            "packet,rater,case,candidate\r\nrv-1,ann,c,A\r\nrv-1,bob,c,B\r\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("row 3: rater \"bob\""), "{e}");
        let e = parse(
            Path::new("x.csv"),
            "packet,rater,case,candidate\r\nrv-1,\"ann,c,A\r\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("x.csv: malformed CSV: record 2: a quoted field is not closed"),
            "{e}"
        );
        let e = parse_records("\"a\"b,c", ',').unwrap_err();
        assert!(e.contains("'b' after the closing quote"), "{e}");
        assert!(parse(Path::new("x.csv"), "")
            .unwrap_err()
            .to_string()
            .contains("empty file"));
    }
}
