//! The Porter stemmer against NLTK 3.10.4 on ~118,000 words: all of /usr/share/dict/words
//! (wamerican), ICD-10-CM description words and oncology terms
//! (`tools/fixtures/rouge/porter_words.tsv.gz`, written by `gen_porter_words.py`).

use std::io::Read;

use flate2::read::GzDecoder;
use ro_metrics::PorterStemmer;

const WORDS: &[u8] = include_bytes!("../../tools/fixtures/rouge/porter_words.tsv.gz");

#[test]
fn every_word_stems_as_nltk() {
    let mut text = String::new();
    GzDecoder::new(WORDS)
        .read_to_string(&mut text)
        .expect("gzip fixture");
    let stemmer = PorterStemmer::new();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in text.lines() {
        let (word, stem) = line.split_once('\t').expect("word<TAB>stem");
        let ours = stemmer.stem(word);
        if ours != stem {
            wrong.push(format!("{word}: ours {ours}, nltk {stem}"));
        }
        checked += 1;
    }
    assert!(checked > 100_000, "only {checked} words");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
}
