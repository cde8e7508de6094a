//! The HTML packet tested as a rater uses it, in a real headless chromium driven through the
//! DevTools protocol: open the exported file, check that model output stayed text, click
//! answers and type a comment with the mouse and keyboard events a person produces, reload
//! (the answers must come back from localStorage), press "Save ratings", and `review import`
//! the downloaded file together with another rater's CSV.
//!
//! Skips, saying so, when no chromium is installed (`apt-get install -y chromium`; or set
//! `CHROMIUM=/path/to/chrome`). Fails when a browser is there and any step breaks.
//! `RO_REVIEW_SCREENSHOT=docs/review-packet.png` also writes a screenshot of the filled
//! packet (the README's).

#[path = "cdp/mod.rs"]
mod cdp;
#[path = "common/review.rs"]
mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cdp::{find_chromium, Browser};
use fixture::{
    answer, check_imported, export, fails, fill_csv, inputs, key, ok, review, INJECTION, QUESTIONS,
};
use serde_json::{json, Value};

/// Presses "Save ratings" and returns the downloaded file, renamed to the name the page gave
/// it (which must be `ratings-<rater>-<packet>.json`).
fn save(
    b: &mut Browser,
    page: &str,
    downloads: &Path,
    expected_name: &str,
) -> Result<std::path::PathBuf, String> {
    b.click(page, "#save")?;
    let begin = b.wait_event("Browser.downloadWillBegin", |_| true)?;
    let guid = begin["params"]["guid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = begin["params"]["suggestedFilename"]
        .as_str()
        .unwrap_or_default();
    if name != expected_name {
        return Err(format!(
            "the page named its download {name:?}, expected {expected_name:?}"
        ));
    }
    let done = b.wait_event("Browser.downloadProgress", |e| {
        e["params"]["guid"] == json!(guid) && e["params"]["state"] != "inProgress"
    })?;
    if done["params"]["state"] != "completed" {
        return Err(format!("download {done}"));
    }
    let target = downloads.join(name);
    std::fs::rename(downloads.join(&guid), &target).map_err(|e| e.to_string())?;
    Ok(target)
}

fn import(out: &Path, output: &Path, files: &[&Path]) -> std::process::Output {
    review()
        .arg("import")
        .arg("--key")
        .arg(out.join("key.json"))
        .arg("--output")
        .arg(output)
        .args(files)
        .output()
        .unwrap()
}

fn open(b: &mut Browser, page: &str, url: &str) -> Result<(), String> {
    b.events.retain(|e| e["method"] != "Page.loadEventFired");
    b.call(Some(page), "Page.navigate", json!({"url": url}))?;
    b.wait_event("Page.loadEventFired", |_| true)?;
    Ok(())
}

/// The page's own checks: the script ran, model output is text, nothing injected ran.
fn check_page(b: &mut Browser, page: &str, required: usize) -> Result<(), String> {
    let inj = serde_json::to_string(INJECTION).map_err(|e| e.to_string())?;
    let facts = b.eval(
        page,
        &format!(
            "({{ scripts: document.scripts.length, images: document.images.length, \
              title: document.title, progress: document.getElementById('progress').textContent, \
              injectionShownAsText: Array.from(document.querySelectorAll('.text')) \
                .some(e => e.textContent === {inj}), \
              unlabelled: Array.from(document.querySelectorAll('input, textarea')) \
                .filter(e => !e.closest('label') && !e.labels.length && !e.getAttribute('aria-label')).length }})"
        ),
    )?;
    let want = json!({"scripts": 1, "images": 0, "injectionShownAsText": true, "unlabelled": 0,
        "progress": format!("0 of {required} required answers")});
    for (k, v) in want.as_object().into_iter().flatten() {
        if &facts[k] != v {
            return Err(format!(
                "{k}: {} (expected {v}); page facts {facts}",
                facts[k]
            ));
        }
    }
    if facts["title"].as_str().is_some_and(|t| t.contains("pwned")) {
        return Err("the injected script ran".into());
    }
    Ok(())
}

/// Clicks every answer of `answer` and types the comments, case by case.
fn fill(b: &mut Browser, page: &str, key: &Value) -> Result<usize, String> {
    let mut clicks = 0;
    for (pos, case) in key["cases"].as_array().into_iter().flatten().enumerate() {
        for c in case["candidates"].as_array().into_iter().flatten() {
            let label = c["label"].as_str().unwrap_or_default();
            let scope = format!(
                "[data-case-number=\"{}\"] [data-candidate=\"{label}\"]",
                pos + 1
            );
            for q in QUESTIONS {
                let Some(a) = answer(pos, label, q) else {
                    continue;
                };
                if q == "comments" {
                    b.click(
                        page,
                        &format!("{scope} [data-question=\"comments\"] textarea"),
                    )?;
                    b.call(Some(page), "Input.insertText", json!({"text": a}))?;
                } else {
                    b.click(
                        page,
                        &format!("{scope} [data-question=\"{q}\"] input[value=\"{a}\"]"),
                    )?;
                    clicks += 1;
                }
            }
        }
    }
    Ok(clicks)
}

fn answered(b: &mut Browser, page: &str) -> Result<Value, String> {
    b.eval(
        page,
        "({ checked: document.querySelectorAll('input:checked').length, \
            comments: Array.from(document.querySelectorAll('textarea')).map(t => t.value).filter(v => v).length, \
            progress: document.getElementById('progress').textContent, \
            status: document.getElementById('status').textContent })",
    )
}

fn screenshot(b: &mut Browser, page: &str, path: &Path) -> Result<(), String> {
    b.call(
        Some(page),
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1440, "height": 1100, "deviceScaleFactor": 1, "mobile": false}),
    )?;
    b.eval(
        page,
        "(() => { const c = document.querySelector('article[data-case-number=\"2\"]'); \
          window.scrollTo(0, c.getBoundingClientRect().top + window.scrollY - 80); })()",
    )?;
    let shot = b.call(
        Some(page),
        "Page.captureScreenshot",
        json!({"format": "png"}),
    )?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("the screenshot is not a PNG".into());
    }
    std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
}

#[test]
fn a_rater_fills_in_the_html_packet_and_import_reads_the_saved_file() {
    let Some(chromium) = find_chromium() else {
        eprintln!(
            "SKIPPED review_browser: no chromium on PATH (apt-get install -y chromium, or set CHROMIUM)"
        );
        return;
    };
    let inp = inputs(2);
    let out = inp.dir.path().join("review");
    ok(&export(&inp, &out, "ann,bob", 2));
    let k = key(&out);
    let packet = k["packet"].as_str().unwrap().to_string();
    let html = std::fs::canonicalize(out.join("packets/packet-ann.html")).unwrap();
    let downloads = inp.dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let mut b = Browser::launch(&chromium).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let result = (|| -> Result<(), String> {
        b.call(
            None,
            "Browser.setDownloadBehavior",
            json!({"behavior": "allowAndName", "downloadPath": downloads, "eventsEnabled": true}),
        )?;
        let page = b.new_page()?;
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(Some(&page), domain, json!({}))?;
        }
        let url = format!("file://{}", html.display());
        open(&mut b, &page, &url)?;
        let candidates = 2 * 3;
        check_page(&mut b, &page, candidates * 5)?;
        let name = format!("ratings-ann-{packet}.json");

        // A first save with one answer: the page says what is open, import refuses the file.
        b.click(&page, "[data-case-number=\"1\"] [data-candidate=\"A\"] [data-question=\"style\"] input[value=\"2\"]")?;
        let partial = save(&mut b, &page, &downloads, &name)?;
        let state = answered(&mut b, &page)?;
        let status = state["status"].as_str().unwrap_or_default();
        if !status.contains("29 required answers are still open") {
            return Err(format!("status after a partial save: {status:?}"));
        }
        let err = fails(&import(&out, &inp.dir.path().join("r.jsonl"), &[&partial]));
        if !err.contains("29 missing answers") {
            return Err(format!("import of the partial file: {err}"));
        }
        std::fs::remove_file(&partial).map_err(|e| e.to_string())?;

        // Fill in everything, reload: every answer must come back.
        let clicks = fill(&mut b, &page, &k)?;
        let before = answered(&mut b, &page)?;
        b.events.retain(|e| e["method"] != "Page.loadEventFired");
        b.call(Some(&page), "Page.reload", json!({}))?;
        b.wait_event("Page.loadEventFired", |_| true)?;
        let after = answered(&mut b, &page)?;
        let want = json!({"checked": clicks, "comments": 2});
        for (k2, v) in want.as_object().into_iter().flatten() {
            if &before[k2] != v || &after[k2] != v {
                return Err(format!("{k2}: before reload {before}, after {after}"));
            }
        }
        if after["progress"] != json!(format!("{} of {} required answers", clicks, clicks)) {
            return Err(format!("progress after reload: {after}"));
        }
        if let Ok(path) = std::env::var("RO_REVIEW_SCREENSHOT") {
            screenshot(&mut b, &page, Path::new(&path))?;
        }
        let saved = save(&mut b, &page, &downloads, &name)?;
        let status = answered(&mut b, &page)?["status"].clone();
        if !status
            .as_str()
            .unwrap_or_default()
            .contains("with all required answers")
        {
            return Err(format!("status after the full save: {status}"));
        }

        // Import the browser's file with bob's spreadsheet.
        let bob = inp.dir.path().join("bob.csv");
        fill_csv(&out.join("packets/packet-bob.csv"), &bob, false);
        let ratings = inp.dir.path().join("ratings.jsonl");
        ok(&import(&out, &ratings, &[&saved, &bob]));
        check_imported(
            &std::fs::read_to_string(&ratings).unwrap(),
            &k,
            &["ann", "bob"],
        );

        let problems: Vec<&Value> = b
            .events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .collect();
        if !problems.is_empty() {
            return Err(format!("errors in the page: {problems:?}"));
        }
        Ok(())
    })();
    if let Err(e) = result {
        panic!("{e}\nchromium log:\n{}", b.log());
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}
