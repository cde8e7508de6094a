//! ROUGE-1/2/L/Lsum over the letter corpus written by `tools/bench/rouge_score_timing.py`
//! (/tmp/ro_rouge_corpus.jsonl, or the file named by `RO_ROUGE_CORPUS`): ours (batch API)
//! side by side with `rougers` 0.2.1, stemmed and not. Run on one core with
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p ro-benches --bench rouge` and compare
//! with the per-pair time the script reports for rouge-score.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ro_metrics::{RougeScorer, RougeType};

const NAMES: [&str; 4] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

fn load_corpus() -> Option<Vec<(String, String)>> {
    let path =
        std::env::var("RO_ROUGE_CORPUS").unwrap_or_else(|_| "/tmp/ro_rouge_corpus.jsonl".into());
    let text = std::fs::read_to_string(&path).ok()?;
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            Some((
                v["reference"].as_str()?.to_owned(),
                v["candidate"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn rouge(c: &mut Criterion) {
    let Some(pairs) = load_corpus() else {
        eprintln!("no corpus: run tools/bench/rouge_score_timing.py first");
        return;
    };
    let mut group = c.benchmark_group("rouge");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pairs.len() as u64));
    for stem in [true, false] {
        let ours = RougeScorer::new(&RougeType::STANDARD, stem);
        group.bench_function(format!("ours/stem={stem}/{}pairs", pairs.len()), |b| {
            b.iter(|| ours.score_batch(&pairs))
        });
        let Ok(theirs) = rougers::RougeScorer::new(NAMES, stem) else {
            return;
        };
        group.bench_function(format!("rougers/stem={stem}/{}pairs", pairs.len()), |b| {
            b.iter(|| {
                pairs
                    .iter()
                    .map(|(r, c)| theirs.score(r, c))
                    .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rouge);
criterion_main!(benches);
