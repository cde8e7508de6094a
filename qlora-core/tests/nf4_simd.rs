//! The fast kernels (explicit SIMD on CPUs that have it, portable loops elsewhere) against the
//! plain reference, bit for bit: random sizes (odd counts, partial last blocks), every allowed
//! blocksize, f32 / f16 / bf16, and special values (zeros, denormals, ±inf, NaN with
//! payloads, values exactly on codes and on midpoints, huge and tiny scales).

use half::{bf16, f16};
use proptest::prelude::*;
use qlora_core::{
    quant::cpu::dequantize_nf4, quant::cpu::quantize_nf4, quant::nf4::dequantize_nf4_reference,
    quant::nf4::quantize_nf4_reference, quant::nf4::Nf4Blocks, quant::nf4::ALLOWED_BLOCKSIZES,
    quant::nf4::NF4_CODE, quant::nf4::NF4_MIDPOINTS, quant::QuantFloat, Blocksize,
};

fn blocksize() -> impl Strategy<Value = Blocksize> {
    prop::sample::select(ALLOWED_BLOCKSIZES.to_vec()).prop_map(|b| Blocksize::new(b).unwrap())
}

/// One element: mostly ordinary values, sometimes a special one.
fn element() -> impl Strategy<Value = f32> {
    prop_oneof![
        60 => -1.0f32..1.0,
        4 => Just(0.0f32),
        2 => Just(-0.0f32),
        2 => prop::sample::select(vec![1.0f32, -1.0]),
        4 => prop::sample::select(NF4_MIDPOINTS.to_vec()),
        4 => prop::sample::select(NF4_CODE.to_vec()),
        2 => (1u32..0x0080_0000, any::<bool>())
            .prop_map(|(m, neg)| f32::from_bits(m | if neg { 0x8000_0000 } else { 0 })),
        1 => prop::sample::select(vec![f32::INFINITY, f32::NEG_INFINITY, f32::MAX, -f32::MAX]),
        1 => prop::sample::select(vec![
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001), // signaling
            f32::from_bits(0xffc1_2345),
        ]),
    ]
}

/// Inputs: special mixes, ordinary values at scales from subnormal to huge, runs of zeros
/// (all-zero blocks), and arbitrary bit patterns.
fn values() -> impl Strategy<Value = Vec<f32>> {
    let n = 1usize..10_000;
    prop_oneof![
        n.clone()
            .prop_flat_map(|n| prop::collection::vec(element(), n)),
        (n.clone(), -45i32..39).prop_flat_map(|(n, e)| {
            let scale = 10f32.powi(e);
            prop::collection::vec(-1.0f32..1.0, n)
                .prop_map(move |v| v.into_iter().map(|x| x * scale).collect())
        }),
        (n.clone(), 0usize..10_000, -1.0f32..1.0).prop_map(|(n, at, x)| {
            let mut v = vec![0.0f32; n];
            if let Some(e) = v.get_mut(at) {
                *e = x;
            }
            v
        }),
        n.prop_flat_map(|n| prop::collection::vec(any::<u32>().prop_map(f32::from_bits), n)),
    ]
}

/// Equal packed bytes and absmax bit patterns (NaN included).
fn assert_same(fast: &Nf4Blocks, reference: &Nf4Blocks) -> Result<(), TestCaseError> {
    prop_assert_eq!(&fast.packed, &reference.packed);
    let a: Vec<u32> = fast.absmax.iter().map(|x| x.to_bits()).collect();
    let b: Vec<u32> = reference.absmax.iter().map(|x| x.to_bits()).collect();
    prop_assert_eq!(a, b);
    Ok(())
}

fn check_quantize<T: QuantFloat>(v: &[T], bs: Blocksize) -> Result<(), TestCaseError> {
    assert_same(&quantize_nf4(v, bs), &quantize_nf4_reference(v, bs))
}

/// `dequantize_nf4::<T>` equals `T::from_f32` of the reference, bit for bit.
fn check_dequantize<T: QuantFloat>(
    packed: &[u8],
    absmax: &[f32],
    numel: usize,
    bs: Blocksize,
    reference: &[f32],
    bits: impl Fn(T) -> u32,
) -> Result<(), TestCaseError> {
    let fast: Vec<T> = dequantize_nf4(packed, absmax, numel, bs).unwrap();
    prop_assert_eq!(fast.len(), reference.len());
    for (i, (x, r)) in fast.iter().zip(reference).enumerate() {
        // NaN sign and payload are not specified (0 x inf in the partial last block may give
        // either sign): both NaN is equal; every other value must match bit for bit.
        if x.to_f32().is_nan() && r.is_nan() {
            continue;
        }
        let want = bits(T::from_f32(*r));
        prop_assert_eq!(bits(*x), want, "element {} of {}", i, numel);
    }
    Ok(())
}

/// One absmax: ordinary, zero, subnormal, huge (products overflow), infinite or NaN.
fn absmax_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        20 => 1e-3f32..100.0,
        2 => Just(0.0f32),
        2 => (1u32..0x0080_0000).prop_map(f32::from_bits),
        2 => prop::sample::select(vec![f32::MAX, 1e38, 7e4, 65504.0, 3.3e38]),
        1 => prop::sample::select(vec![f32::INFINITY, f32::NAN, f32::from_bits(0x7fa0_0001)]),
        1 => -10.0f32..0.0,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn quantize_matches_reference_f32(v in values(), bs in blocksize()) {
        check_quantize(&v, bs)?;
    }

    #[test]
    fn quantize_matches_reference_bf16(v in values(), bs in blocksize()) {
        let b: Vec<bf16> = v.iter().map(|&x| bf16::from_f32(x)).collect();
        check_quantize(&b, bs)?;
        // raw bit patterns too (subnormal and signaling-NaN bf16 that from_f32 never makes)
        let raw: Vec<bf16> = v.iter().map(|x| bf16::from_bits(x.to_bits() as u16)).collect();
        check_quantize(&raw, bs)?;
    }

    #[test]
    fn quantize_matches_reference_f16(v in values(), bs in blocksize()) {
        let h: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
        check_quantize(&h, bs)?;
        let raw: Vec<f16> = v.iter().map(|x| f16::from_bits(x.to_bits() as u16)).collect();
        check_quantize(&raw, bs)?;
    }

    #[test]
    fn dequantize_matches_reference_all_dtypes(
        (numel, bs, packed, absmax) in (1usize..10_000, blocksize()).prop_flat_map(|(n, bs)| (
            Just(n),
            Just(bs),
            prop::collection::vec(any::<u8>(), n.div_ceil(2)),
            prop::collection::vec(absmax_value(), bs.blocks(n)),
        ))
    ) {
        let reference = dequantize_nf4_reference(&packed, &absmax, numel, bs).unwrap();
        check_dequantize::<f32>(&packed, &absmax, numel, bs, &reference, f32::to_bits)?;
        check_dequantize::<bf16>(&packed, &absmax, numel, bs, &reference, |x| {
            u32::from(x.to_bits())
        })?;
        check_dequantize::<f16>(&packed, &absmax, numel, bs, &reference, |x| {
            u32::from(x.to_bits())
        })?;
    }

    #[test]
    fn quantized_values_round_trip_through_fast_dequantize(v in values(), bs in blocksize()) {
        let q = quantize_nf4(&v, bs);
        let reference = dequantize_nf4_reference(&q.packed, &q.absmax, v.len(), bs).unwrap();
        check_dequantize::<f32>(&q.packed, &q.absmax, v.len(), bs, &reference, f32::to_bits)?;
    }
}

/// Values exactly on a midpoint go to the lower code, on a code to that code, in every lane
/// position of the SIMD kernels (a block with absmax 1 scales by exactly 1).
#[test]
fn midpoints_and_codes_in_every_lane() {
    let bs = Blocksize::new(64).unwrap();
    for shift in 0..64 {
        let mut v = vec![0.0f32; 64 * 3];
        v[(shift + 63) % 64] = 1.0;
        v[64 + (shift + 63) % 64] = 1.0;
        for i in 0..15 {
            v[(shift + i) % 64] = NF4_MIDPOINTS[i];
            v[64 + (shift + i) % 64] = NF4_CODE[i];
        }
        let q = quantize_nf4(&v, bs);
        assert_eq!(q, quantize_nf4_reference(&v, bs), "shift {shift}");
        let codes = qlora_core::quant::nf4::unpack_nibbles(&q.packed, v.len());
        for i in 0..15 {
            assert_eq!(usize::from(codes[(shift + i) % 64]), i, "midpoint {i}");
            assert_eq!(usize::from(codes[64 + (shift + i) % 64]), i, "code {i}");
        }
        // the all-zero third block: absmax 0, every code 7
        assert_eq!(q.absmax[2], 0.0);
        assert!(codes[128..].iter().all(|&c| c == 7));
    }
}

/// A NaN anywhere in a full block makes its absmax NaN and every code 15, as torch does.
#[test]
fn nan_poisons_its_block_only() {
    let bs = Blocksize::new(32).unwrap();
    let mut v: Vec<f32> = (0..96).map(|i| (i as f32 * 0.1).sin()).collect();
    v[40] = f32::NAN;
    let q = quantize_nf4(&v, bs);
    assert_same(&q, &quantize_nf4_reference(&v, bs)).unwrap();
    assert!(q.absmax[1].is_nan() && !q.absmax[0].is_nan() && !q.absmax[2].is_nan());
    assert!(q.packed[16..32].iter().all(|&b| b == 0xff));
}

/// Table entries exactly halfway between two bf16 / f16 values round to even, as half (and
/// torch) do: code ±1.0 times an absmax that is itself a tie.
#[test]
fn dequantize_ties_round_to_even() {
    let bs = Blocksize::new(32).unwrap();
    // bf16 ties: 0x3f80_8000 rounds down to 0x3f80, 0x3f81_8000 up to 0x3f82.
    // f16 ties: 1 + 2^-11 rounds down to 0x3c00, 1 + 3 * 2^-11 up to 0x3c02.
    let absmax: Vec<f32> = [0x3f80_8000u32, 0x3f81_8000, 0x3f80_1000, 0x3f80_3000]
        .map(f32::from_bits)
        .to_vec();
    // every element of each block: code 15 (+1.0) then code 0 (-1.0)
    let packed = vec![0xf0u8; 64];
    let b: Vec<bf16> = dequantize_nf4(&packed, &absmax, 128, bs).unwrap();
    let h: Vec<f16> = dequantize_nf4(&packed, &absmax, 128, bs).unwrap();
    assert_eq!(b[0].to_bits(), 0x3f80);
    assert_eq!(b[1].to_bits(), 0xbf80);
    assert_eq!(b[32].to_bits(), 0x3f82);
    assert_eq!(b[33].to_bits(), 0xbf82);
    assert_eq!(h[64].to_bits(), 0x3c00);
    assert_eq!(h[97].to_bits(), 0xbc02);
    let reference = dequantize_nf4_reference(&packed, &absmax, 128, bs).unwrap();
    for (i, r) in reference.iter().enumerate() {
        assert_eq!(
            b[i].to_bits(),
            bf16::from_f32(*r).to_bits(),
            "bf16 element {i}"
        );
        assert_eq!(
            h[i].to_bits(),
            f16::from_f32(*r).to_bits(),
            "f16 element {i}"
        );
    }
}
