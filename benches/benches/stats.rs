//! Statistics benchmarks (CPU): Wilcoxon signed-rank at n = 50 (exact) and n = 1000
//! (asymptotic), precision/recall/F1 over 10k labels, paired bootstrap.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ro_metrics::{
    paired_bootstrap_mean_difference, precision_recall_fscore_support, wilcoxon, Average,
    BootstrapOptions, PrfOptions, WilcoxonOptions,
};

fn scores(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    let b: Vec<f64> = a
        .iter()
        .map(|v| v - 0.05 + 0.2 * rng.random::<f64>())
        .collect();
    (a, b)
}

fn bench_wilcoxon(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats/wilcoxon");
    for n in [50usize, 1000] {
        let (a, b) = scores(n, 1);
        g.bench_function(format!("auto_n{n}"), |bench| {
            bench.iter(|| {
                wilcoxon(
                    black_box(&a),
                    Some(black_box(&b)),
                    &WilcoxonOptions::default(),
                )
            })
        });
    }
    g.finish();
}

fn bench_f1(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let classes = ["photon", "proton", "electron", "brachytherapy", "unknown"];
    let n = 10_000;
    let y_true: Vec<&str> = (0..n).map(|_| classes[rng.random_range(0..4)]).collect();
    let y_pred: Vec<&str> = y_true
        .iter()
        .map(|&t| {
            if rng.random::<f64>() < 0.8 {
                t
            } else {
                classes[rng.random_range(0..5)]
            }
        })
        .collect();
    let opts = PrfOptions {
        average: Some(Average::Macro),
        ..PrfOptions::default()
    };
    c.bench_function("stats/f1_macro_10k_string_labels", |bench| {
        bench
            .iter(|| precision_recall_fscore_support(black_box(&y_true), black_box(&y_pred), &opts))
    });
}

fn bench_bootstrap(c: &mut Criterion) {
    let (a, b) = scores(500, 3);
    let opts = BootstrapOptions {
        n_resamples: 1000,
        ..Default::default()
    };
    c.bench_function("stats/paired_bootstrap_n500_1000_resamples", |bench| {
        bench.iter(|| paired_bootstrap_mean_difference(black_box(&a), black_box(&b), &opts))
    });
}

criterion_group!(benches, bench_wilcoxon, bench_f1, bench_bootstrap);
criterion_main!(benches);
