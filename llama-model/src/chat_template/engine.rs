//! The Jinja environment transformers renders chat templates in, rebuilt on minijinja.
//!
//! transformers (`utils/chat_template_utils.py`, `_cached_compile_jinja_template`) uses
//! `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
//! extensions=[AssistantTracker, loopcontrols])` with the globals `raise_exception`,
//! `strftime_now`, `dict`, `namespace` and its own `tojson` filter (`json.dumps` with
//! `ensure_ascii=False`, no HTML escaping). Here:
//!
//! | transformers / Jinja2 | here |
//! | --- | --- |
//! | `trim_blocks`, `lstrip_blocks`, no trailing newline | minijinja's syntax settings |
//! | `{% break %}`, `{% continue %}` | minijinja's `loop_controls` |
//! | `{% generation %}…{% endgeneration %}` (assistant masks) | rewritten to `{% if true %}…{% endif %}` |
//! | `raise_exception(msg)` | an error [`RAISED`] marks, reported as the template's refusal |
//! | `strftime_now(fmt)` | a context function on the caller's clock ([`super::clock`]) |
//! | `tojson(x, ensure_ascii, indent, separators, sort_keys)` | [`py_json`] |
//! | `{{ x }}`, `x\|string` as Python's `str(x)` (`None`, `True`, `1.0`) | [`py_str`] |
//! | `x\|trim`, `.strip()`, `.lstrip()`, `.rstrip()`, `.split()` on Python whitespace | [`py_strip`] |
//! | other Python `str`/`dict`/`list` methods (`.title()`, `.items()`, `.startswith()`) | minijinja-contrib `pycompat` |

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};

use super::python::{py_json, py_split_whitespace, py_str, py_strip, JsonOptions};

/// The name the one template of an environment is stored under.
pub const TEMPLATE_NAME: &str = "chat_template";

/// Prefix of the detail of an error raised by the template's `raise_exception`.
pub const RAISED: &str = "raise_exception: ";

/// Builds the environment and compiles `source` in it.
///
/// # Errors
///
/// A template that does not parse (minijinja's message, with the line).
pub fn compile(source: &str) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        out.write_str(&py_str(value))
            .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
    });
    env.set_unknown_method_callback(python_method);
    env.add_function("raise_exception", raise_exception);
    env.add_filter("tojson", tojson);
    env.add_filter("trim", trim);
    env.add_filter("string", |v: Value| py_str(&v));
    env.add_template_owned(TEMPLATE_NAME, rewrite_generation_tags(source))?;
    Ok(env)
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("{RAISED}{message}"),
    ))
}

/// Jinja2's `trim(value, chars=None)`: Python's `str.strip`.
fn trim(v: Value, chars: Option<String>) -> String {
    py_strip(&py_str(&v), chars.as_deref(), true, true).to_string()
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
fn tojson(
    v: Value,
    ensure_ascii: Option<Value>,
    indent: Option<Value>,
    separators: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let arg = |pos: Option<Value>, name: &str| -> Result<Option<Value>, Error> {
        match pos {
            Some(v) => Ok(Some(v)),
            None => kwargs.get::<Option<Value>>(name),
        }
    };
    let indent = match arg(indent, "indent")? {
        Some(v) if v.kind() == ValueKind::Number => {
            Some(" ".repeat(usize::try_from(v.as_i64().unwrap_or(0)).unwrap_or(0)))
        }
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        _ => None,
    };
    let separators = match arg(separators, "separators")? {
        Some(v) if v.kind() == ValueKind::Seq => {
            let item = v.get_item_by_index(0)?;
            let key = v.get_item_by_index(1)?;
            Some((py_str(&item), py_str(&key)))
        }
        _ => None,
    };
    let opts = JsonOptions {
        ensure_ascii: arg(ensure_ascii, "ensure_ascii")?.is_some_and(|v| v.is_true()),
        indent,
        separators,
        sort_keys: kwargs
            .get::<Option<Value>>("sort_keys")?
            .is_some_and(|v| v.is_true()),
    };
    kwargs.assert_all_used()?;
    // Safe string: the output is never HTML-escaped (transformers overrides Jinja's escaping
    // tojson for that reason).
    py_json(&v, &opts).map(Value::from_safe_string)
}

/// Python string methods whose whitespace rule differs from Rust's, then pycompat's.
fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        let chars = match args {
            [] => Some(None),
            [c] if c.is_none() => Some(None),
            [c] => c.as_str().map(Some),
            _ => None,
        };
        if let Some(chars) = chars {
            let stripped = match method {
                "strip" => Some(py_strip(s, chars, true, true)),
                "lstrip" => Some(py_strip(s, chars, true, false)),
                "rstrip" => Some(py_strip(s, chars, false, true)),
                _ => None,
            };
            if let Some(out) = stripped {
                return Ok(Value::from(out));
            }
            if method == "split" && chars.is_none() {
                return Ok(Value::from(py_split_whitespace(s)));
            }
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Rewrites transformers' `{% generation %}` / `{% endgeneration %}` block tags (which only
/// mark the assistant's text for `return_assistant_tokens_mask`) to `{% if true %}` /
/// `{% endif %}`, keeping each tag's whitespace-control markers so the output is unchanged.
pub fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (open_mark, body) = split_marker_start(inner);
        let (body, close_mark) = split_marker_end(body);
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&format!("{{%{open_mark} {r} {close_mark}%}}")),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

fn split_marker_start(s: &str) -> (&str, &str) {
    match s.chars().next() {
        Some('-' | '+') => s.split_at(1),
        _ => ("", s),
    }
}

fn split_marker_end(s: &str) -> (&str, &str) {
    match s.chars().last() {
        Some('-' | '+') => s.split_at(s.len() - 1),
        _ => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: serde_json::Value) -> Result<String, Error> {
        let env = compile(src)?;
        let t = env.get_template(TEMPLATE_NAME)?;
        t.render(Value::from(minijinja::value::Serde(ctx)))
    }

    #[test]
    fn prints_like_python_and_jinja2() {
        let out = render(
            "{{ none }}|{{ true }}|{{ 2.0 }}|{{ x }}|{{ d }}|{{ ' a '|trim }}|{{ s.strip() }}",
            serde_json::json!({"x": [1, "a", null], "d": {"k": false}, "s": "\u{1f} b\n"}),
        )
        .unwrap();
        assert_eq!(out, "None|True|2.0|[1, 'a', None]|{'k': False}|a|b");
    }

    #[test]
    fn tojson_is_transformers_json_dumps() {
        let env = compile("{{ t|tojson }}\n{{ t|tojson(indent=2) }}\n{{ '<é>'|tojson }}").unwrap();
        // A map in insertion order, as Python dicts (and the messages) are.
        let t = Value::from_pairs([
            ("name", Value::from("f")),
            ("args", Value::from(vec![1, 2])),
        ]);
        let ctx = Value::from_pairs([("t", t)]);
        let out = env
            .get_template(TEMPLATE_NAME)
            .unwrap()
            .render(ctx)
            .unwrap();
        assert_eq!(
            out,
            "{\"name\": \"f\", \"args\": [1, 2]}\n{\n  \"name\": \"f\",\n  \"args\": [\n    1,\n    2\n  ]\n}\n\"<é>\""
        );
    }

    #[test]
    fn raise_exception_is_marked_and_generation_tags_render_their_body() {
        let e = render("{{ raise_exception('bad order') }}", serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains(&format!("{RAISED}bad order")), "{e}");
        let src = "A\n{%- generation %}B{% endgeneration -%}\nC {%+generation+%}D{%endgeneration%}";
        assert_eq!(
            rewrite_generation_tags(src),
            "A\n{%- if true %}B{% endif -%}\nC {%+ if true +%}D{% endif %}"
        );
        assert_eq!(render(src, serde_json::json!({})).unwrap(), "ABC D");
    }

    #[test]
    fn blocks_trim_and_loops_break() {
        let src = "{% for i in [1, 2, 3] %}\n  {% if i == 3 %}{% break %}{% endif %}\n{{ i }}\n{% endfor %}\n";
        assert_eq!(render(src, serde_json::json!({})).unwrap(), "1\n2\n");
    }
}
