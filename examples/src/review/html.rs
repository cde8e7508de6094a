//! The rater's packet as one self-contained HTML file: the case input and the anonymised
//! candidates side by side, the configured questions per candidate, answers kept in the
//! browser's `localStorage` (keyed by packet id and rater) across reloads, and a "Save
//! ratings" button that downloads a JSON ratings file (see [`super::answers`]).
//!
//! Inline CSS and JS only (`packet.css`, `packet.js` beside this file), no network, fonts or
//! images. Every text from the cases, the models and the configuration is HTML-escaped, and a
//! Content-Security-Policy allows only this page's own style and script (by SHA-256), so
//! neither markup in a model's output nor an injected script could run.

use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::blind::Packet;
use super::config::{Question, QuestionKind};

const CSS: &str = include_str!("packet.css");
const JS: &str = include_str!("packet.js");

/// Escapes text for HTML element content and double- or single-quoted attribute values.
///
/// ```
/// use ro_examples::review::html::escape;
/// assert_eq!(escape(r#"<b a="1">&'</b>"#), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSP source of an inline element's content: `'sha256-<base64>'`.
fn csp_hash(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The file name of a rater's packet, without extension: `packet-<rater>`.
pub fn packet_stem(rater: &str) -> String {
    format!("packet-{rater}")
}

/// Renders the packet of one rater.
pub fn render(packet: &Packet, rater: &str) -> String {
    let config = &packet.config;
    let mut h = String::with_capacity(64 * 1024);
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'none'; connect-src 'none'; \
         form-action 'none'; base-uri 'none'",
        csp_hash(CSS),
        csp_hash(JS)
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
         <title>{} ({})</title>\n<style>{CSS}</style>\n</head>\n",
        escape(&csp),
        escape(&config.title),
        escape(rater)
    );
    let _ = write!(
        h,
        "<body data-packet=\"{}\" data-rater=\"{}\">\n<header class=\"bar\">\n\
         <div class=\"who\"><strong>{}</strong> · rater <strong>{}</strong> · packet <code>{}</code></div>\n\
         <div id=\"progress\" aria-live=\"polite\"></div>\n\
         <button type=\"button\" id=\"save\">Save ratings</button>\n\
         <div id=\"status\" role=\"status\" aria-live=\"polite\"></div>\n</header>\n<main>\n",
        escape(&packet.key.packet),
        escape(rater),
        escape(&config.title),
        escape(rater),
        escape(&packet.key.packet)
    );
    intro(&mut h, packet);
    h.push_str("<form id=\"ratings\" autocomplete=\"off\">\n");
    let n = packet.cases.len();
    for (i, case) in packet.cases.iter().enumerate() {
        let num = i + 1;
        let _ = write!(
            h,
            "<article class=\"case\" data-case=\"{}\" data-case-number=\"{num}\" aria-labelledby=\"case{num}\">\n\
             <h2 id=\"case{num}\">Case {num} of {n} <span class=\"case-id\">(id {})</span></h2>\n\
             <section class=\"input\" aria-label=\"Case {num} input\"><h3>Input</h3>\
             <div class=\"text\" tabindex=\"0\">{}</div></section>\n<div class=\"candidates\">\n",
            escape(&case.id),
            escape(&case.id),
            escape(&case.input)
        );
        for (label, text) in &case.candidates {
            let _ = write!(
                h,
                "<section class=\"candidate\" data-candidate=\"{0}\" aria-labelledby=\"case{num}-{0}\">\n\
                 <h3 id=\"case{num}-{0}\">Candidate {0}</h3>\n<div class=\"text\" tabindex=\"0\">{1}</div>\n",
                escape(label),
                if text.trim().is_empty() {
                    "(empty)".to_string()
                } else {
                    escape(text)
                }
            );
            for q in &config.questions {
                question(&mut h, q, &format!("c{num}-{label}-{}", q.id), label);
            }
            h.push_str("</section>\n");
        }
        h.push_str("</div>\n</article>\n");
    }
    let _ = write!(
        h,
        "</form>\n</main>\n<script>{JS}</script>\n</body>\n</html>\n"
    );
    h
}

fn intro(h: &mut String, packet: &super::blind::Packet) {
    let config = &packet.config;
    let _ = write!(
        h,
        "<section class=\"intro\" aria-label=\"Instructions\">\n<p>{}</p>\n<dl>\n",
        escape(&config.instructions)
    );
    for q in &config.questions {
        let answers = match &q.kind {
            QuestionKind::Scale { min, max, labels } if !labels.is_empty() => (*min..=*max)
                .zip(labels)
                .map(|(p, l)| format!("{p} = {l}"))
                .collect::<Vec<_>>()
                .join(", "),
            QuestionKind::Choice { options, .. } => options
                .iter()
                .map(|o| o.label.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
            _ => q.answer_hint(),
        };
        let required = if q.required { "" } else { " (optional)" };
        let _ = writeln!(
            h,
            "<dt>{}</dt><dd>{}{required}</dd>",
            escape(&q.text),
            escape(&answers)
        );
    }
    h.push_str("</dl>\n</section>\n");
}

fn question(h: &mut String, q: &Question, name: &str, label: &str) {
    let required = if q.required { "true" } else { "false" };
    let mark = if q.required {
        " <span class=\"required\" aria-hidden=\"true\">*</span>"
    } else {
        ""
    };
    let (kind, choices): (&str, Vec<(String, String)>) = match &q.kind {
        QuestionKind::Scale { min, max, labels } => (
            "scale",
            (*min..=*max)
                .enumerate()
                .map(|(i, p)| {
                    let word = labels.get(i).map_or(String::new(), |l| format!(" {l}"));
                    (p.to_string(), format!("{p}{word}"))
                })
                .collect(),
        ),
        QuestionKind::Choice { options, .. } => (
            "choice",
            options
                .iter()
                .map(|o| (o.value.clone(), o.label.clone()))
                .collect(),
        ),
        QuestionKind::Text => {
            let _ = writeln!(
                h,
                "<div class=\"question\" data-question=\"{}\" data-kind=\"text\" data-required=\"{required}\">\
                 <label for=\"{name}\">{}{mark}</label><textarea id=\"{name}\" name=\"{name}\" rows=\"2\" \
                 aria-label=\"Candidate {}: {}\"></textarea></div>",
                escape(&q.id),
                escape(&q.text),
                escape(label),
                escape(&q.text)
            );
            return;
        }
    };
    let _ = write!(
        h,
        "<fieldset class=\"question\" data-question=\"{}\" data-kind=\"{kind}\" data-required=\"{required}\">\
         <legend>{}{mark}<span class=\"case-id\"> (candidate {})</span></legend>",
        escape(&q.id),
        escape(&q.text),
        escape(label)
    );
    for (value, text) in choices {
        let _ = write!(
            h,
            "<label><input type=\"radio\" name=\"{name}\" value=\"{}\"{}> {}</label>",
            escape(&value),
            if q.required { " required" } else { "" },
            escape(&text)
        );
    }
    h.push_str("</fieldset>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::blind::{blind, sample_input, BlindOptions};
    use crate::review::config::ReviewConfig;

    fn packet(evil: &str) -> Packet {
        let mut input = sample_input(3, true);
        input.models[0].records[0].prediction = evil.into();
        input.cases[2].input = evil.into();
        let opts = BlindOptions {
            n_cases: 3,
            seed: 1,
            raters: vec!["ann".into()],
        };
        blind(&input, &opts, &ReviewConfig::default()).unwrap()
    }

    #[test]
    fn model_output_cannot_inject_markup() {
        let evil = "</div><script>alert(1)</script><img src=x onerror=alert(2)>\"' & </textarea>";
        let html = render(&packet(evil), "ann");
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own script"
        );
        assert!(!html.contains("<img"));
        assert!(!html.contains("</textarea>\""));
        assert!(html.contains(
            "&lt;/div&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39; &amp; &lt;/textarea&gt;"
        ));
        assert_eq!(
            html.matches("alert(1)").count(),
            2,
            "once as the input, once as a candidate"
        );
    }

    #[test]
    fn the_page_is_self_contained_and_labels_every_answer() {
        let p = packet("plain");
        let html = render(&p, "ann");
        for needle in ["http:", "https:", "//cdn", "src=", "@import", "url("] {
            assert!(!html.contains(needle), "{needle}");
        }
        assert!(html.contains(&format!("data-packet=\"{}\"", p.key.packet)));
        assert!(html.contains("data-rater=\"ann\""));
        assert!(html.contains(&escape(&csp_hash(JS))) && html.contains(&escape(&csp_hash(CSS))));
        // 3 cases x 3 candidates x (4 scales x 4 points + 3 options) radios, each in a label.
        assert_eq!(
            html.matches("<label><input type=\"radio\"").count(),
            3 * 3 * 19
        );
        assert_eq!(
            html.matches("<fieldset").count(),
            html.matches("<legend>").count()
        );
        assert_eq!(html.matches("<textarea id=").count(), 9);
        assert!(html.contains("1 poor") && html.contains("with minor edits"));
    }
}
