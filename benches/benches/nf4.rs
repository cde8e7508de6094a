//! NF4 on CPU: quantize / dequantize 4096x4096 and 4096x14336 bf16 matrices (with and without
//! double quantization), dequantize to f32, and the 4-bit linear forward against a dense one.
//!
//! Throughput is reported in bytes of the dense matrix (bf16: 2 bytes per element, 117 MB for
//! 4096x14336; f32: 4 bytes): the output of dequantization and the input of quantization.
//! Single core:
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p ro-benches --bench nf4`.

use std::hint::black_box;

use burn::tensor::{Distribution, Tensor};
use burn_ndarray::NdArray;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::bf16;
use qlora_core::{Blocksize, Nf4Linear, QuantConfig, QuantState};

/// The matrix shapes benchmarked: a Llama attention projection and an MLP projection.
const SHAPES: [(usize, usize); 2] = [(4096, 4096), (4096, 14336)];

fn matrix(rows: usize, cols: usize) -> Vec<bf16> {
    // a cheap deterministic pseudo-normal fill
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..rows * cols)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            bf16::from_f32((u - 0.5) * 0.08)
        })
        .collect()
}

fn nf4(c: &mut Criterion) {
    for (rows, cols) in SHAPES {
        let w = matrix(rows, cols);
        let bytes = (w.len() * 2) as u64;
        let mut g = c.benchmark_group(format!("nf4_{rows}x{cols}_bf16"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(bytes));
        for dq in [false, true] {
            let cfg = QuantConfig {
                blocksize: Blocksize::default(),
                double_quant: dq,
            };
            let tag = if dq { "dq" } else { "plain" };
            g.bench_function(format!("quantize_{tag}"), |b| {
                b.iter(|| QuantState::quantize(black_box(&w), &[rows, cols], cfg))
            });
            let q = QuantState::quantize(&w, &[rows, cols], cfg).expect("quantize");
            let mut out = vec![bf16::ZERO; rows * cols];
            g.bench_function(format!("dequantize_{tag}"), |b| {
                b.iter(|| q.dequantize_into(black_box(&mut out)))
            });
        }
        g.finish();

        // f32 output: 4 bytes per element.
        let cfg = QuantConfig {
            blocksize: Blocksize::default(),
            double_quant: false,
        };
        let q = QuantState::quantize(&w, &[rows, cols], cfg).expect("quantize");
        let mut out = vec![0.0f32; rows * cols];
        let mut g = c.benchmark_group(format!("nf4_{rows}x{cols}_f32"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes((out.len() * 4) as u64));
        g.bench_function("dequantize_plain", |b| {
            b.iter(|| q.dequantize_into(black_box(&mut out)))
        });
        g.finish();
    }
}

fn linear(c: &mut Criterion) {
    type B = NdArray;
    let dev = Default::default();
    let (tokens, d_in, d_out) = (64, 1024, 2816);
    let w = Tensor::<B, 2>::random([d_out, d_in], Distribution::Normal(0.0, 0.02), &dev);
    let x = Tensor::<B, 2>::random([tokens, d_in], Distribution::Normal(0.0, 1.0), &dev);
    let layer = Nf4Linear::from_weight(w.clone(), None, QuantConfig::default()).expect("layer");
    let wt = w.transpose();
    let mut g = c.benchmark_group("linear_64x1024x2816");
    g.sample_size(10);
    g.bench_function("nf4", |b| {
        b.iter(|| black_box(layer.forward(x.clone()).into_data()))
    });
    g.bench_function("dense", |b| {
        b.iter(|| black_box(x.clone().matmul(wt.clone()).into_data()))
    });
    g.finish();
}

criterion_group!(benches, nf4, linear);
criterion_main!(benches);
