//! LLaMA forward, prefill and decode on CPU (NdArray, f32) for a small config:
//! hidden 512, 8 layers, 8 heads (4 KV heads), MLP 1376, vocab 4096.
//!
//! Each with fp32 weights and with NF4 (double-quantized) projections:
//!
//! - `llama/prefill_128_*`: one forward over 128 tokens (throughput = prompt tokens/s)
//! - `llama/decode_1_after_128_*`: one cached decode step after a 128-token prompt (tokens/s;
//!   NF4 decodes through the host 4-bit GEMV, `qlora_core::quant::cpu::gemv`)
//! - `llama/generate_32_after_16_*`: greedy generation of 32 tokens after a 16-token prompt

use burn::tensor::{Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use llama_model::{
    generate, GenerationConfig, KvCache, Llama, LlamaConfig, LlamaInput, RandomInit,
};
use qlora_core::QuantConfig;

type B = NdArray<f32>;

fn small_config() -> LlamaConfig {
    let mut c = LlamaConfig::tiny(4096);
    c.hidden_size = 512;
    c.intermediate_size = 1376;
    c.num_hidden_layers = 8;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.head_dim = 64;
    c.max_position_embeddings = 1024;
    c
}

fn ids(n: usize) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = (0..n as i64).map(|i| (i * 37 + 11) % 4096).collect();
    Tensor::from_data(TensorData::new(v, [1, n]), &Default::default())
}

fn bench(c: &mut Criterion) {
    let dev = Default::default();
    let cfg = small_config();
    let init = RandomInit { std: 0.05, seed: 1 };
    let dense = Llama::<B>::random(&cfg, &init, &dev).expect("model");
    let nf4 =
        Llama::<B>::random_quantized(&cfg, &init, QuantConfig::default(), &dev).expect("model");
    let mut g = c.benchmark_group("llama");
    g.sample_size(10);
    for (name, model) in [("fp32", &dense), ("nf4", &nf4)] {
        bench_model(&mut g, name, model, &cfg);
    }
    g.finish();
}

fn bench_model(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    model: &Llama<B>,
    cfg: &LlamaConfig,
) {
    g.throughput(Throughput::Elements(128));
    g.bench_function(format!("prefill_128_{name}"), |b| {
        b.iter(|| {
            let mut cache = KvCache::new(cfg.num_hidden_layers);
            let out = model
                .forward_cached(LlamaInput::new(ids(128)), &mut cache, true)
                .expect("forward");
            out.into_data()
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("decode_1_after_128_{name}"), |b| {
        let mut prefilled = KvCache::new(cfg.num_hidden_layers);
        model
            .forward_cached(LlamaInput::new(ids(128)), &mut prefilled, true)
            .expect("prefill");
        b.iter_batched(
            || prefilled.clone(),
            |mut cache| {
                model
                    .forward_cached(LlamaInput::new(ids(1)), &mut cache, true)
                    .expect("decode")
                    .into_data()
            },
            BatchSize::SmallInput,
        )
    });

    g.throughput(Throughput::Elements(32));
    g.bench_function(format!("generate_32_after_16_{name}"), |b| {
        let prompt: Vec<u32> = (0..16).map(|i| (i * 37 + 11) % 4096).collect();
        let gc = GenerationConfig::greedy(32);
        b.iter(|| generate(model, std::slice::from_ref(&prompt), &gc, |_| {}).expect("generate"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
