//! The host 4-bit GEMV (`quant::gemv::nf4_matmul`, used by `Nf4Linear::forward` for a few
//! rows outside autodiff) against its reference (dequantize, multiply in f64), and
//! `Nf4Linear`'s two forward paths against each other.

use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use proptest::prelude::*;
use qlora_core::quant::cpu::gemv::{nf4_matmul, nf4_matmul_reference, nf4_matmul_supported};
use qlora_core::{Blocksize, Nf4Linear, QuantConfig, QuantState};

type B = NdArray<f32>;

fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        })
        .collect()
}

/// |a - b| within f32 rounding of a sum of `cols` products of these magnitudes.
fn close(got: &[f32], want: &[f32], x: &[f32], w: &[f32], rows: usize, cols: usize) {
    let out = got.len() / rows;
    for r in 0..rows {
        for o in 0..out {
            let mag: f64 = (0..cols)
                .map(|i| f64::from((x[r * cols + i] * w[o * cols + i]).abs()))
                .sum();
            let (g, e) = (got[r * out + o], want[r * out + o]);
            assert!(
                f64::from((g - e).abs()) <= 1e-6 * mag + 1e-30,
                "row {r} out {o}: {g} vs {e} (magnitude {mag})"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn host_gemv_matches_the_reference(
        out in 1usize..40,
        blocks in 1usize..5,
        bs_pow in 6u32..9,
        rows in 1usize..6,
        double_quant in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let bs = 1usize << bs_pow;
        let cols = blocks * bs;
        let w = values(out * cols, seed, 4.0);
        let config = QuantConfig {
            blocksize: Blocksize::new(bs).unwrap(),
            double_quant,
        };
        let q = QuantState::quantize(&w, &[out, cols], config).unwrap();
        prop_assert!(nf4_matmul_supported(&q));
        let x = values(rows * cols, seed ^ 1, 2.0);
        let got = nf4_matmul(&q, &q.absmax_f32(), &x, rows).unwrap();
        let want = nf4_matmul_reference(&q, &x, rows).unwrap();
        let wd = q.dequantize_reference().unwrap();
        close(&got, &want, &x, &wd, rows, cols);
    }
}

#[test]
fn unsupported_and_mismatched_shapes_are_errors() {
    // 100 columns are not whole 64-value blocks.
    let q = QuantState::quantize(&values(300, 1, 1.0), &[3, 100], QuantConfig::default()).unwrap();
    assert!(!nf4_matmul_supported(&q));
    assert!(nf4_matmul(&q, &q.absmax_f32(), &[0.0; 100], 1).is_err());
    // The reference takes any 2-D weight.
    assert_eq!(nf4_matmul_reference(&q, &[0.0; 100], 1).unwrap().len(), 3);
    let q = QuantState::quantize(&values(256, 1, 1.0), &[2, 128], QuantConfig::default()).unwrap();
    let e = nf4_matmul(&q, &q.absmax_f32(), &[0.0; 100], 1).unwrap_err();
    assert!(e.to_string().contains('x'), "{e}");
    assert!(nf4_matmul(&q, &[1.0], &[0.0; 128], 1).is_err());
}

#[test]
fn nf4_linear_host_and_dense_paths_agree() {
    let dev = Default::default();
    let (out, cols) = (48, 256);
    let w = Tensor::<B, 2>::from_data(
        TensorData::new(values(out * cols, 3, 2.0), [out, cols]),
        &dev,
    );
    let bias = Tensor::<B, 1>::from_data(TensorData::new(values(out, 4, 1.0), [out]), &dev);
    let layer = Nf4Linear::from_weight(w, Some(bias.clone()), QuantConfig::default()).unwrap();
    let dense = layer.dequantize();
    for rows in [1usize, 3, 16, 17] {
        let x = Tensor::<B, 3>::from_data(
            TensorData::new(values(rows * cols, rows as u64, 2.0), [1, rows, cols]),
            &dev,
        );
        let got: Vec<f32> = layer.forward(x.clone()).into_data().to_vec().unwrap();
        let want: Vec<f32> =
            burn::tensor::module::linear(x.clone(), dense.clone().transpose(), Some(bias.clone()))
                .into_data()
                .to_vec()
                .unwrap();
        assert_eq!(got.len(), rows * out);
        for (g, e) in got.iter().zip(&want) {
            assert!(
                (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "rows {rows}: {g} vs {e}"
            );
        }
    }
    // On an autodiff backend the dense path keeps the graph: the input gets a gradient.
    let w = Tensor::<Autodiff<B>, 2>::from_data(
        TensorData::new(values(out * cols, 3, 2.0), [out, cols]),
        &dev,
    );
    let layer = Nf4Linear::from_weight(w, None, QuantConfig::default()).unwrap();
    let x =
        Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(values(cols, 9, 1.0), [1, cols]), &dev)
            .require_grad();
    let grads = layer.forward(x.clone()).sum().backward();
    assert!(x.grad(&grads).is_some());
}
