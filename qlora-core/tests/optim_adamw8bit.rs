//! 8-bit AdamW against bitsandbytes 0.50.2's `AdamW8bit` on CPU
//! (fixture: tools/fixtures/adamw8bit/gen.py), its memory, and its quantization bound.

use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;
use proptest::prelude::*;
use qlora_core::{
    optim::adamw8bit_step_reference, optim::AdamW, optim::AdamW8bit, optim::Moments8bit,
    optim::Quantized8bit, optim::BLOCKSIZE_8BIT, AdamWConfig,
};
use safetensors::SafeTensors;

fn f32s(st: &SafeTensors, key: &str) -> Vec<f32> {
    st.tensor(key)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn u8s(st: &SafeTensors, key: &str) -> Vec<u8> {
    st.tensor(key).unwrap().data().to_vec()
}

/// Equal within 1 ulp (relative 2^-23).
fn close(ours: &[f32], want: &[f32], what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}");
    for (j, (a, b)) in ours.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= f32::EPSILON * b.abs(),
            "{what}[{j}]: {a} vs {b}"
        );
    }
}

/// Runs every case of the fixture through `AdamW8bit::step_host` and compares after each step.
///
/// The u8 codes must match bitsandbytes exactly (we reproduce its quantization bit for bit).
/// f32 values may differ by rounding only: torch's CPU kernels evaluate `mul_`/`addcmul_`/
/// `addcdiv_` with AVX2 vectors (and scalar code on the tail) whose roundings differ from a
/// plain scalar evaluation in the last bit for some elements. So the absmax of `v` and the f32
/// moments of small parameters are allowed 1 ulp (they depend only on gradients and earlier
/// state, so differences do not grow), and about 0.5% of parameters come out 1 ulp apart per
/// step. The tolerance is 2 ulp of the value per
/// step taken of the larger of the value and the update size `lr` (a value near zero
/// carries the rounding of the update, ~lr; the per-step differences add up, the state does
/// not feed them back).
#[test]
fn matches_bitsandbytes_adamw8bit() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tools/fixtures/adamw8bit/adamw8bit.safetensors"
    ))
    .unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let meta: serde_json::Value = serde_json::from_str(include_str!(
        "../../tools/fixtures/adamw8bit/adamw8bit.json"
    ))
    .unwrap();
    let (mut eight_bit, mut full, mut exact, mut total) = (0, 0, 0usize, 0usize);
    for case in meta["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cfg = AdamWConfig {
            beta1: case["beta1"].as_f64().unwrap(),
            beta2: case["beta2"].as_f64().unwrap(),
            eps: case["eps"].as_f64().unwrap(),
            weight_decay: case["weight_decay"].as_f64().unwrap(),
        };
        let lr = case["lr"].as_f64().unwrap();
        let mut opt = AdamW8bit::<NdArray>::new(cfg, meta["min_8bit_size"].as_u64().unwrap());
        for i in 0..case["shapes"].as_array().unwrap().len() {
            let mut p = f32s(&st, &format!("{name}.p{i}.init"));
            let key = format!("p{i}");
            for step in 0..case["steps"].as_u64().unwrap() {
                let at = |what: &str| format!("{name}.p{i}.{what}{step}");
                let g = f32s(&st, &at("grad"));
                opt.step_host(&key, &mut p, &g, lr);
                let want = f32s(&st, &at("param"));
                for (j, (a, b)) in p.iter().zip(&want).enumerate() {
                    let tol = 2.0 * (step + 1) as f32 * f32::EPSILON * b.abs().max(lr as f32);
                    assert!(
                        (a - b).abs() <= tol,
                        "{name} p{i} step {step} [{j}]: {a} vs {b}"
                    );
                    exact += usize::from(a.to_bits() == b.to_bits());
                    total += 1;
                }
                match &opt.state(&key).unwrap().moments {
                    Moments8bit::Blockwise {
                        exp_avg,
                        exp_avg_sq,
                    } => {
                        assert_eq!(exp_avg.codes, u8s(&st, &at("state1.")), "{name} p{i}");
                        assert_eq!(exp_avg_sq.codes, u8s(&st, &at("state2.")), "{name} p{i}");
                        close(
                            &exp_avg.absmax,
                            &f32s(&st, &at("absmax1.")),
                            &at("absmax1."),
                        );
                        close(
                            &exp_avg_sq.absmax,
                            &f32s(&st, &at("absmax2.")),
                            &at("absmax2."),
                        );
                        eight_bit += 1;
                    }
                    Moments8bit::Full {
                        exp_avg,
                        exp_avg_sq,
                    } => {
                        close(exp_avg, &f32s(&st, &at("state1.")), &at("state1."));
                        close(exp_avg_sq, &f32s(&st, &at("state2.")), &at("state2."));
                        full += 1;
                    }
                }
            }
        }
    }
    // Both kinds of state were checked, and nearly all parameters are bit-identical.
    assert!(eight_bit >= 9 && full >= 3, "{eight_bit} {full}");
    assert!(exact as f64 >= 0.98 * total as f64, "{exact}/{total}");
}

#[test]
fn eight_bit_state_is_about_a_quarter_of_32_bit() {
    let dev = Default::default();
    let n = 64 * 1024;
    let t = |v: f32| Tensor::<NdArray, 1>::from_data(TensorData::new(vec![v; n], [n]), &dev);
    let mut o8 = AdamW8bit::<NdArray>::new(AdamWConfig::default(), 4096);
    let mut o32 = AdamW::<NdArray>::new(AdamWConfig::default());
    o8.step("w", t(0.5), t(0.1), 1e-3);
    o32.step("w", t(0.5), t(0.1), 1e-3);
    let bytes32: u64 = o32
        .export()
        .0
        .values()
        .map(|d| d.as_bytes().len() as u64)
        .sum();
    assert_eq!(bytes32, 8 * n as u64);
    let bytes8 = o8.state_bytes();
    // 2 codes of 1 byte per element + 2 f32 absmax per block of 256.
    assert_eq!(bytes8, 2 * n as u64 + 8 * (n / BLOCKSIZE_8BIT) as u64);
    let ratio = bytes8 as f64 / bytes32 as f64;
    assert!((0.25..0.26).contains(&ratio), "{ratio}");
    // Its exported tensors (the checkpoint) are as small.
    let exported: u64 = o8
        .export()
        .0
        .values()
        .map(|d| d.as_bytes().len() as u64)
        .sum();
    assert_eq!(exported, bytes8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After a step, the dequantized 8-bit moments are within the quantization bound of the
    /// f32 moments the step computed: each value lies within half the largest gap of the
    /// dynamic map (plus the lookup table's bin width, 2/65535) times its block's absmax.
    #[test]
    fn dequantized_state_is_within_the_quantization_bound(
        seed in any::<u64>(),
        n in 1usize..700,
        scale_exp in -6i32..2,
    ) {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            (rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let scale = 10f32.powi(scale_exp);
        let g: Vec<f32> = (0..n).map(|_| next() * scale).collect();
        let cfg = AdamWConfig::default();
        let mut p = vec![0.1f32; n];
        let (mut m, mut v) = (Quantized8bit::zeros(n), Quantized8bit::zeros(n));
        adamw8bit_step_reference(&mut p, &g, &mut m, &mut v, 1, 1e-3, &cfg);
        // Step 1 from zero state: m = (1-β1)·g and v = (1-β2)·g² exactly as the step rounds them.
        let signed = qlora_core::quant::double_quant::dynamic_map_signed();
        let unsigned = qlora_core::optim::dynamic_map_unsigned();
        let gap = |code: &[f32; 256]| code.windows(2).map(|w| w[1] - w[0]).fold(0.0f32, f32::max);
        for (q, code, exact) in [
            (&m, &signed, g.iter().map(|&x| x.mul_add(0.1, 0.0)).collect::<Vec<f32>>()),
            (&v, &unsigned, g.iter().map(|&x| 0.001f32 * x * x).collect()),
        ] {
            let bound = gap(code) / 2.0 + 2.0 / 65535.0;
            for (i, &c) in q.codes.iter().enumerate() {
                let am = q.absmax[i / BLOCKSIZE_8BIT];
                let back = code[usize::from(c)] * am;
                prop_assert!(
                    (back - exact[i]).abs() <= bound * am * (1.0 + 1e-5),
                    "[{}] {} vs {} (absmax {})", i, back, exact[i], am
                );
            }
        }
    }
}
