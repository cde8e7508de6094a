//! LLaMA forward, prefill and decode on CPU (NdArray, f32) for a small config:
//! hidden 512, 8 layers, 8 heads (4 KV heads), MLP 1376, vocab 4096.
//!
//! - `llama/prefill_128`: one forward over 128 tokens (throughput = prompt tokens/s)
//! - `llama/decode_1`: one cached decode step after a 128-token prompt (tokens/s)
//! - `llama/generate_32`: greedy generation of 32 tokens after a 16-token prompt

use burn::tensor::{Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use llama_model::{
    generate, GenerationConfig, KvCache, Llama, LlamaConfig, LlamaInput, RandomInit,
};

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
    let model = Llama::<B>::random(&cfg, &RandomInit { std: 0.05, seed: 1 }, &dev).expect("model");
    let mut g = c.benchmark_group("llama");
    g.sample_size(10);

    g.throughput(Throughput::Elements(128));
    g.bench_function("prefill_128_fp32", |b| {
        b.iter(|| {
            let mut cache = KvCache::new(cfg.num_hidden_layers);
            let out = model
                .forward_cached(LlamaInput::new(ids(128)), &mut cache, true)
                .expect("forward");
            out.into_data()
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_1_after_128_fp32", |b| {
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
    g.bench_function("generate_32_after_16_fp32", |b| {
        let prompt: Vec<u32> = (0..16).map(|i| (i * 37 + 11) % 4096).collect();
        let gc = GenerationConfig::greedy(32);
        b.iter(|| generate(&model, std::slice::from_ref(&prompt), &gc, |_| {}).expect("generate"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
