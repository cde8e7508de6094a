//! Export: reads the cases and the models' predictions, draws and blinds a packet
//! ([`super::blind`]) and writes, into the output directory,
//!
//! ```text
//! DIR/key.json                     the un-blinding key: keep it, do not send it to raters
//! DIR/packets/packet-<rater>.html  the rater's form (open in any browser)
//! DIR/packets/packet-<rater>.csv   the same as a spreadsheet
//! ```
//!
//! Everything is rendered in memory first; each file is written atomically, the key last, so
//! a key on disk means a complete export. An existing key of a different packet is not
//! overwritten without `--force` (ratings of the old packet could not be un-blinded any more).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::blind::{blind, BlindInput, BlindOptions, Key, Packet};
use super::config::ReviewConfig;
use super::{csv, html};
use crate::evaluate::json::write_atomically;

/// The files an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFiles {
    /// `DIR/key.json`.
    pub key: PathBuf,
    /// The HTML packets, one per rater.
    pub html: Vec<PathBuf>,
    /// The CSV packets, one per rater.
    pub csv: Vec<PathBuf>,
}

/// The key file of an export directory.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("key.json")
}

/// Draws the packet and writes key and packets into `dir`.
///
/// # Errors
/// Bad inputs (see [`blind`]), an existing key of another packet without `force`, or a file
/// that cannot be written.
pub fn export(
    input: &BlindInput,
    options: &BlindOptions,
    config: &ReviewConfig,
    dir: &Path,
    force: bool,
) -> Result<(Packet, ExportFiles)> {
    let packet = blind(input, options, config)?;
    let key_file = key_path(dir);
    if key_file.exists() && !force {
        let old = Key::load(&key_file).map(|(k, _)| k.packet);
        if old.as_ref().ok() != Some(&packet.key.packet) {
            bail!(
                "{} already holds the key of another packet ({}); ratings of that packet need \
                 it. Choose another --out, or pass --force to replace it",
                key_file.display(),
                old.unwrap_or_else(|e| format!("unreadable: {e:#}"))
            );
        }
    }
    let mut rendered = Vec::new();
    for rater in &options.raters {
        let stem = html::packet_stem(rater);
        rendered.push((
            dir.join("packets").join(format!("{stem}.html")),
            html::render(&packet, rater).into_bytes(),
        ));
        rendered.push((
            dir.join("packets").join(format!("{stem}.csv")),
            csv::render(&packet, rater).into_bytes(),
        ));
    }
    let key_json = serde_json::to_string_pretty(&packet.key)? + "\n";
    let packets = dir.join("packets");
    std::fs::create_dir_all(&packets)
        .with_context(|| format!("cannot create {}", packets.display()))?;
    for (path, bytes) in &rendered {
        write_atomically(path, bytes)?;
    }
    write_atomically(&key_file, key_json.as_bytes())?;
    let (html, csv): (Vec<_>, Vec<_>) = rendered
        .into_iter()
        .map(|(p, _)| p)
        .partition(|p| p.extension().is_some_and(|e| e == "html"));
    Ok((
        packet,
        ExportFiles {
            key: key_file,
            html,
            csv,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::blind::sample_input;

    fn options(seed: u64) -> BlindOptions {
        BlindOptions {
            n_cases: 2,
            seed,
            raters: vec!["ann".into(), "bob".into()],
        }
    }

    #[test]
    fn writes_key_and_one_packet_pair_per_rater_and_guards_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ReviewConfig::default();
        let input = sample_input(5, false);
        let (p, files) = export(&input, &options(1), &cfg, dir.path(), false).unwrap();
        assert_eq!(files.html.len(), 2);
        assert!(files.html[1].ends_with("packets/packet-bob.html"));
        assert!(files.csv[0].ends_with("packets/packet-ann.csv"));
        let (k, c) = Key::load(&files.key).unwrap();
        assert_eq!((k, c), (p.key.clone(), cfg.clone()));
        let html = std::fs::read_to_string(&files.html[0]).unwrap();
        assert!(!html.contains("\"model\""), "no key in a packet");
        // The same export again is fine; another packet over the key is not, unless forced.
        export(&input, &options(1), &cfg, dir.path(), false).unwrap();
        let e = export(&input, &options(2), &cfg, dir.path(), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("already holds the key of another packet"),
            "{e}"
        );
        export(&input, &options(2), &cfg, dir.path(), true).unwrap();
    }
}
