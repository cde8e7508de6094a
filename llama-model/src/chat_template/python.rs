//! What Jinja2 inherits from Python and chat templates depend on: `str()` of a value (what
//! `{{ x }}` prints), `repr()` inside containers, `str.strip()`'s whitespace, and
//! `json.dumps` (transformers' `tojson` filter).
//!
//! minijinja prints `none`/`true` and a float `1.0` as `1`; Jinja2 prints `None`/`True` and
//! `1.0`. A template that prints one of them renders different text, hence these.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// Python's `str.isspace()` for one character: Unicode `White_Space` plus the information
/// separators U+001C..U+001F, which Python strips and Rust's `char::is_whitespace` keeps.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip(chars)` / `lstrip` / `rstrip`: `chars` `None` strips whitespace.
pub fn py_strip<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let strip = |c: char| match chars {
        Some(set) => set.contains(c),
        None => is_py_space(c),
    };
    let s = if left { s.trim_start_matches(strip) } else { s };
    if right {
        s.trim_end_matches(strip)
    } else {
        s
    }
}

/// Python's `str.split()` without a separator: runs of whitespace, no empty pieces.
pub fn py_split_whitespace(s: &str) -> Vec<Value> {
    s.split(is_py_space)
        .filter(|p| !p.is_empty())
        .map(Value::from)
        .collect()
}

/// `repr(float)`: the shortest digits that read back to the same float, positional between
/// 1e-4 and 1e16 (always with a `.0` when whole), scientific (`1e+16`) outside.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` writes the shortest round-trip digits, e.g. "1.5e-7", "1e20".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// A float that holds an integral number of minijinja's integer types is still a float in
/// Python only when minijinja says so ([`Value::is_integer`]).
fn number_repr(v: &Value) -> String {
    if v.is_integer() {
        v.to_string()
    } else {
        f64::try_from(v.clone())
            .map(py_float_repr)
            .unwrap_or_else(|_| v.to_string())
    }
}

/// `str(value)`: what Jinja2 prints for `{{ value }}`.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => py_repr(v),
    }
}

/// `repr(value)`: strings quoted as Python quotes them, containers as Python lists/dicts.
pub fn py_repr(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => number_repr(v),
        ValueKind::String => py_str_repr(v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let val = v.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_repr(&k), py_repr(&val))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => v.to_string(),
    }
}

/// `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The options of `json.dumps` that transformers' `tojson` filter exposes.
#[derive(Debug, Clone, Default)]
pub struct JsonOptions {
    /// Escape every non-ASCII character as `\uXXXX` (transformers' default: `false`).
    pub ensure_ascii: bool,
    /// Pretty-print with this indent (`None`: one line).
    pub indent: Option<String>,
    /// `(item separator, key separator)`; default `(", ", ": ")`, or `(",", ": ")` with an indent.
    pub separators: Option<(String, String)>,
    /// Sort the keys of every map.
    pub sort_keys: bool,
}

/// `json.dumps(value, ...)` as Python writes it.
///
/// # Errors
///
/// An undefined value or one JSON cannot hold (Python raises `TypeError` there).
pub fn py_json(v: &Value, opts: &JsonOptions) -> Result<String, Error> {
    let (item_sep, key_sep) = opts.separators.clone().unwrap_or_else(|| {
        let item = if opts.indent.is_some() { "," } else { ", " };
        (item.to_string(), ": ".to_string())
    });
    let mut out = String::new();
    let w = JsonWriter {
        opts,
        item_sep: &item_sep,
        key_sep: &key_sep,
    };
    w.value(&mut out, v, 0)?;
    Ok(out)
}

struct JsonWriter<'a> {
    opts: &'a JsonOptions,
    item_sep: &'a str,
    key_sep: &'a str,
}

impl JsonWriter<'_> {
    fn value(&self, out: &mut String, v: &Value, depth: usize) -> Result<(), Error> {
        match v.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
            ValueKind::Number => {
                let f = f64::try_from(v.clone())?;
                out.push_str(&match f {
                    f if f.is_nan() => "NaN".to_string(),
                    f if f.is_infinite() && f > 0.0 => "Infinity".to_string(),
                    f if f.is_infinite() => "-Infinity".to_string(),
                    f => py_float_repr(f),
                });
            }
            ValueKind::String => self.string(out, v.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                self.container(out, '[', ']', depth, &items, |out, item, d| {
                    self.value(out, item, d)
                })?;
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.opts.sort_keys {
                    keys.sort_by_key(json_key);
                }
                self.container(out, '{', '}', depth, &keys, |out, k, d| {
                    self.string(out, &json_key(k));
                    out.push_str(self.key_sep);
                    self.value(out, &v.get_item(k)?, d)
                })?;
            }
            kind => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("Object of type {kind} is not JSON serializable"),
                ))
            }
        }
        Ok(())
    }

    fn container<T>(
        &self,
        out: &mut String,
        open: char,
        close: char,
        depth: usize,
        items: &[T],
        mut each: impl FnMut(&mut String, &T, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(open);
        if items.is_empty() {
            out.push(close);
            return Ok(());
        }
        let newline = |out: &mut String, level: usize| {
            if let Some(indent) = &self.opts.indent {
                out.push('\n');
                out.push_str(&indent.repeat(level));
            }
        };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(self.item_sep);
            }
            newline(out, depth + 1);
            each(out, item, depth + 1)?;
        }
        newline(out, depth);
        out.push(close);
        Ok(())
    }

    fn string(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if self.opts.ensure_ascii && !c.is_ascii() => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A map key as `json.dumps` writes it: strings as they are, `True` → `"true"`, `None` →
/// `"null"`, numbers as their repr.
fn json_key(k: &Value) -> String {
    match k.kind() {
        ValueKind::String => k.as_str().unwrap_or_default().to_string(),
        ValueKind::None => "null".into(),
        ValueKind::Bool => if k.is_true() { "true" } else { "false" }.into(),
        _ => py_repr(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait FromJson {
        fn from_serialize_json(text: &str) -> Value;
    }

    impl FromJson for Value {
        fn from_serialize_json(text: &str) -> Value {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            Value::from(minijinja::value::Serde(v))
        }
    }

    #[test]
    fn float_repr_is_pythons() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn json_matches_python_dumps() {
        // Insertion order is kept, as in a Python dict.
        let v = Value::from_pairs([
            (
                "b",
                Value::from_serialize_json(r#"[1, 2.0, "é\"\n\u0001"]"#),
            ),
            ("a", Value::from_serialize_json("{}")),
            ("c", Value::from_serialize_json("[]")),
            ("d", Value::from(())),
            ("e", Value::from(true)),
        ]);
        assert_eq!(
            py_json(&v, &JsonOptions::default()).unwrap(),
            r#"{"b": [1, 2.0, "é\"\n\u0001"], "a": {}, "c": [], "d": null, "e": true}"#
        );
        let sorted = JsonOptions {
            sort_keys: true,
            indent: Some("  ".into()),
            ensure_ascii: true,
            ..JsonOptions::default()
        };
        assert_eq!(
            py_json(&v, &sorted).unwrap(),
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2.0,\n    \"\\u00e9\\\"\\n\\u0001\"\n  ],\n  \"c\": [],\n  \"d\": null,\n  \"e\": true\n}"
        );
    }

    #[test]
    fn str_and_repr_are_pythons() {
        let v = Value::from(minijinja::value::Serde(serde_json::json!([
            "it's", "a\"b", null, false, 1.0
        ])));
        assert_eq!(py_str(&v), r#"["it's", 'a"b', None, False, 1.0]"#);
        assert_eq!(py_str(&Value::from(())), "None");
        assert_eq!(py_strip("\u{1c} a \u{a0}", None, true, true), "a");
        assert_eq!(py_strip("xxaxx", Some("x"), true, false), "axx");
    }
}
