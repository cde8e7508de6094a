//! Property tests: fast kernels equal the reference; round trips; error bounds.

use proptest::prelude::*;
use qlora_core::{
    quant::cpu::dequantize_nf4, quant::cpu::quantize_nf4, quant::double_quant::dynamic_map_signed,
    quant::double_quant::NESTED_BLOCKSIZE, quant::nf4::dequantize_nf4_reference,
    quant::nf4::pack_nibbles, quant::nf4::quantize_nf4_reference, quant::nf4::unpack_nibbles,
    quant::nf4::NF4_MAX_GAP, quant::DoubleQuant, Blocksize,
};

fn blocksize() -> impl Strategy<Value = Blocksize> {
    prop::sample::select(vec![32usize, 64, 128, 256, 512, 1024])
        .prop_map(|b| Blocksize::new(b).unwrap())
}

fn values() -> impl Strategy<Value = Vec<f32>> {
    (1usize..2500, -3i32..4).prop_flat_map(|(n, e)| {
        let scale = 10f32.powi(e);
        prop::collection::vec(-1.0f32..1.0, n)
            .prop_map(move |v| v.into_iter().map(|x| x * scale).collect())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_equals_reference_f32(v in values(), bs in blocksize()) {
        let fast = quantize_nf4(&v, bs);
        let reference = quantize_nf4_reference(&v, bs);
        prop_assert_eq!(&fast, &reference);
        let a: Vec<f32> = dequantize_nf4(&fast.packed, &fast.absmax, v.len(), bs).unwrap();
        let b = dequantize_nf4_reference(&fast.packed, &fast.absmax, v.len(), bs).unwrap();
        prop_assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn fast_equals_reference_bf16_f16(v in values(), bs in blocksize()) {
        let b16: Vec<half::bf16> = v.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let h16: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
        prop_assert_eq!(quantize_nf4(&b16, bs), quantize_nf4_reference(&b16, bs));
        prop_assert_eq!(quantize_nf4(&h16, bs), quantize_nf4_reference(&h16, bs));
        let q = quantize_nf4(&b16, bs);
        let fast: Vec<half::bf16> = dequantize_nf4(&q.packed, &q.absmax, v.len(), bs).unwrap();
        let reference = dequantize_nf4_reference(&q.packed, &q.absmax, v.len(), bs).unwrap();
        prop_assert!(fast.iter().zip(&reference).all(|(x, y)| *x == half::bf16::from_f32(*y)));
    }

    #[test]
    fn pack_unpack_round_trip(codes in prop::collection::vec(0u8..16, 0..500)) {
        let packed = pack_nibbles(&codes);
        prop_assert_eq!(packed.len(), codes.len().div_ceil(2));
        prop_assert_eq!(unpack_nibbles(&packed, codes.len()), codes.clone());
        if codes.len() % 2 == 1 {
            prop_assert_eq!(packed[packed.len() - 1] & 0x0f, 7);
        }
    }

    #[test]
    fn dequant_error_is_at_most_half_the_largest_gap(v in values(), bs in blocksize()) {
        let q = quantize_nf4(&v, bs);
        let back: Vec<f32> = dequantize_nf4(&q.packed, &q.absmax, v.len(), bs).unwrap();
        for (i, (x, y)) in v.iter().zip(&back).enumerate() {
            let am = q.absmax[i / bs.get()];
            // half the largest gap, plus a few ulps of rounding in scaling and rescaling
            let bound = NF4_MAX_GAP / 2.0 * am * (1.0 + 1e-5);
            prop_assert!((x - y).abs() <= bound, "elem {}: {} vs {} (absmax {})", i, x, y, am);
        }
    }

    #[test]
    fn double_quant_reconstruction_error_is_bounded(
        absmax in prop::collection::vec(1e-3f32..10.0, 1..3000)
    ) {
        let map = dynamic_map_signed();
        let max_gap = map.windows(2).map(|w| w[1] - w[0]).fold(0.0f32, f32::max);
        // values beyond the map's extreme codes (-0.99297..1) are clipped
        let edge = 1.0 + map[0];
        let dq = DoubleQuant::compress(&absmax);
        let back = dq.reconstruct();
        for (i, (a, b)) in absmax.iter().zip(&back).enumerate() {
            let scale = dq.nested_absmax[i / NESTED_BLOCKSIZE];
            // plus one bin of bitsandbytes' 65,536-entry lookup table
            let bound = ((max_gap / 2.0).max(edge) + 2.0 / 65535.0) * scale
                + 1e-5 * (a.abs() + dq.offset.abs());
            prop_assert!((a - b).abs() <= bound, "{}: {} vs {} bound {}", i, a, b, bound);
        }
    }
}
