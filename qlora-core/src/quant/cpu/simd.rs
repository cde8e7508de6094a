//! Explicit SIMD (x86-64 AVX2 + F16C) kernels for the full blocks of NF4 quantization and
//! dequantization, chosen at run time when the CPU has those features. Other CPUs, and the
//! partial last block, use the portable loops in [`crate::quant::cpu::fast`]. Every kernel does
//! the same IEEE operations as the reference in [`crate::quant::nf4`] (same products, quotients,
//! comparisons and roundings), so results are bit-identical; the tests check that on random
//! and special inputs.
//!
//! * Dequantization builds, per block, the 16-entry table `T::from_f32(NF4_CODE[k] * absmax)`
//!   in registers and looks codes up 32 at a time: for 16-bit outputs with two byte shuffles
//!   (`vpshufb` on the low and high bytes of the table), for `f32` with two 8-lane permutes
//!   and a blend.
//! * Quantization takes absmax as the integer maximum of `|x|` bit patterns (NaN patterns are
//!   above infinity, so NaN propagates as in torch), scales as the reference does, and finds
//!   `torch.bucketize` with a 4-step branch-free binary search over the 15 midpoints
//!   (`!(m >= x)` comparisons, true for NaN), then packs nibbles with `vpmaddubsw`.

use crate::quant::dtype::QuantFloat;

/// Quantizes the leading full blocks of `values` (`values.len() / blocksize` of them) into
/// `packed` (`blocksize / 2` bytes per block) and `absmax`, when the CPU has the SIMD kernel
/// for `T`. Returns the number of blocks done (0 when the portable path must do them).
pub(crate) fn quantize_full_blocks<T: QuantFloat>(
    values: &[T],
    blocksize: usize,
    packed: &mut [u8],
    absmax: &mut [f32],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if x86::detected() && T::DTYPE.size() == std::mem::size_of::<T>() {
            let bytes: &[u8] = bytemuck::cast_slice(values);
            // SAFETY: AVX2 and F16C were detected at run time just above.
            return unsafe { x86::quantize(T::DTYPE, bytes, blocksize, packed, absmax) };
        }
    }
    let _ = (values, blocksize, packed, absmax);
    0
}

/// Dequantizes the leading full blocks (`out.len() / blocksize` of them) of `packed` with
/// `absmax` into `out`, when the CPU has the SIMD kernel for `T`. Returns the number of
/// blocks done (0 when the portable path must do them).
pub(crate) fn dequantize_full_blocks<T: QuantFloat>(
    packed: &[u8],
    absmax: &[f32],
    blocksize: usize,
    out: &mut [T],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if x86::detected() && T::DTYPE.size() == std::mem::size_of::<T>() {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            // SAFETY: AVX2 and F16C were detected at run time just above.
            return unsafe { x86::dequantize(T::DTYPE, packed, absmax, blocksize, bytes) };
        }
    }
    let _ = (packed, absmax, blocksize, out);
    0
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::quant::dtype::FloatDtype;
    use crate::quant::nf4::{ABSMAX_FLOOR, NF4_CODE, NF4_MIDPOINTS as M};

    /// Whether the CPU has what these kernels use (the result is cached by std).
    pub(super) fn detected() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
    }

    /// Elements per inner step: 16 packed bytes.
    const STEP: usize = 32;

    // ---------------------------------------------------------------- dequantization

    /// Dequantizes `min(out.len() / (bs * esz), absmax.len())` full blocks; `out` holds
    /// little-endian elements of `dtype`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) fn dequantize(
        dtype: FloatDtype,
        packed: &[u8],
        absmax: &[f32],
        bs: usize,
        out: &mut [u8],
    ) -> usize {
        let esz = dtype.size();
        let blocks = (out.len() / (bs * esz))
            .min(absmax.len())
            .min(packed.len() / (bs / 2));
        let out = &mut out[..blocks * bs * esz];
        let blocks_iter = out
            .chunks_exact_mut(bs * esz)
            .zip(packed.chunks_exact(bs / 2))
            .zip(absmax);
        match dtype {
            FloatDtype::F32 => {
                for ((d, s), &a) in blocks_iter {
                    dequant_block_f32(s, a, d);
                }
            }
            FloatDtype::BF16 => {
                for ((d, s), &a) in blocks_iter {
                    let (lo, hi) = split_u16_table(table_bf16(a));
                    dequant_block_u16(s, lo, hi, d);
                }
            }
            FloatDtype::F16 => {
                for ((d, s), &a) in blocks_iter {
                    let (lo, hi) = split_u16_table(table_f16(a));
                    dequant_block_u16(s, lo, hi, d);
                }
            }
        }
        blocks
    }

    /// The products `NF4_CODE[k] * absmax` for k in 0..8 and 8..16.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn scaled_codes(absmax: f32) -> (__m256, __m256) {
        // SAFETY: NF4_CODE has 16 elements; unaligned loads of 8 from offsets 0 and 8.
        let (c0, c1) = unsafe {
            (
                _mm256_loadu_ps(NF4_CODE.as_ptr()),
                _mm256_loadu_ps(NF4_CODE.as_ptr().add(8)),
            )
        };
        let a = _mm256_set1_ps(absmax);
        (_mm256_mul_ps(c0, a), _mm256_mul_ps(c1, a))
    }

    /// Round-to-nearest-even `f32` → bf16 bit patterns (in the low 16 bits of each lane),
    /// NaN kept with its top mantissa bits and made quiet: exactly `half::bf16::from_f32`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bf16_bits(p: __m256) -> __m256i {
        let x = _mm256_castps_si256(p);
        let hi = _mm256_srli_epi32::<16>(x);
        let lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(
            _mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)),
            lsb,
        ));
        let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(p, p));
        let quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
        _mm256_blendv_epi8(rounded, quiet, nan)
    }

    /// The 16 bf16 table entries, in order, as u16 lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn table_bf16(absmax: f32) -> __m256i {
        let (p0, p1) = scaled_codes(absmax);
        // packus interleaves 128-bit halves: [p0 0-3, p1 0-3 | p0 4-7, p1 4-7].
        let t = _mm256_packus_epi32(bf16_bits(p0), bf16_bits(p1));
        _mm256_permute4x64_epi64::<0b11_01_10_00>(t)
    }

    /// The 16 f16 table entries, in order, as u16 lanes (F16C rounds to nearest even, as
    /// `half::f16::from_f32`).
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn table_f16(absmax: f32) -> __m256i {
        let (p0, p1) = scaled_codes(absmax);
        let h0 = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(p0);
        let h1 = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(p1);
        _mm256_set_m128i(h1, h0)
    }

    /// Splits a 16 × u16 table into its low-byte and high-byte 16-byte tables, each
    /// broadcast to both 128-bit lanes (for `vpshufb`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn split_u16_table(t: __m256i) -> (__m256i, __m256i) {
        let even_odd = _mm256_setr_epi8(
            0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3,
            5, 7, 9, 11, 13, 15,
        );
        // lane 0: [low bytes of t0..7, high bytes of t0..7]; lane 1: the same for t8..15.
        let s = _mm256_shuffle_epi8(t, even_odd);
        let l0 = _mm256_castsi256_si128(s);
        let l1 = _mm256_extracti128_si256::<1>(s);
        let lo = _mm_unpacklo_epi64(l0, l1);
        let hi = _mm_unpackhi_epi64(l0, l1);
        (
            _mm256_broadcastsi128_si256(lo),
            _mm256_broadcastsi128_si256(hi),
        )
    }

    /// The 32 codes of 16 packed bytes, in element order (high nibble first), as two
    /// 16-byte vectors (elements 0..16 and 16..32).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn codes_of(s16: &[u8]) -> (__m128i, __m128i) {
        debug_assert!(s16.len() >= 16);
        // SAFETY: the caller passes at least 16 bytes (chunks_exact(16)).
        let p = unsafe { _mm_loadu_si128(s16.as_ptr().cast()) };
        let m = _mm_set1_epi8(0x0f);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(p), m);
        let lo = _mm_and_si128(p, m);
        (_mm_unpacklo_epi8(hi, lo), _mm_unpackhi_epi8(hi, lo))
    }

    /// One full block to 16-bit outputs (`d`: `2 * 2 * s.len()` bytes).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dequant_block_u16(s: &[u8], lo: __m256i, hi: __m256i, d: &mut [u8]) {
        for (d64, s16) in d.chunks_exact_mut(2 * STEP).zip(s.chunks_exact(STEP / 2)) {
            let (c0, c1) = codes_of(s16);
            // lanes [codes 0..8, 16..24 | 8..16, 24..32], so that the byte interleave below
            // yields elements 0..16 in one register and 16..32 in the other.
            let c = _mm256_set_m128i(_mm_unpackhi_epi64(c0, c1), _mm_unpacklo_epi64(c0, c1));
            let l = _mm256_shuffle_epi8(lo, c);
            let h = _mm256_shuffle_epi8(hi, c);
            let a = _mm256_unpacklo_epi8(l, h);
            let b = _mm256_unpackhi_epi8(l, h);
            // SAFETY: d64 holds 64 bytes: two unaligned 32-byte stores.
            unsafe {
                _mm256_storeu_si256(d64.as_mut_ptr().cast(), a);
                _mm256_storeu_si256(d64.as_mut_ptr().add(32).cast(), b);
            }
        }
    }

    /// Looks up 8 codes (u32 lanes, 0..16) in the 16-entry table `(t0, t1)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lookup8(t0: __m256, t1: __m256, idx: __m256i) -> __m256 {
        let a = _mm256_permutevar8x32_ps(t0, idx);
        let b = _mm256_permutevar8x32_ps(t1, idx);
        // bit 3 of the code moved to the sign bit selects the upper half of the table
        let upper = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx));
        _mm256_blendv_ps(a, b, upper)
    }

    /// One full block to f32 outputs (`d`: `4 * 2 * s.len()` bytes).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dequant_block_f32(s: &[u8], absmax: f32, d: &mut [u8]) {
        let (t0, t1) = scaled_codes(absmax);
        for (d128, s16) in d.chunks_exact_mut(4 * STEP).zip(s.chunks_exact(STEP / 2)) {
            let (c0, c1) = codes_of(s16);
            let v = [
                lookup8(t0, t1, _mm256_cvtepu8_epi32(c0)),
                lookup8(t0, t1, _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(c0))),
                lookup8(t0, t1, _mm256_cvtepu8_epi32(c1)),
                lookup8(t0, t1, _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(c1))),
            ];
            for (k, x) in v.into_iter().enumerate() {
                // SAFETY: d128 holds 128 bytes: four unaligned 32-byte stores.
                unsafe { _mm256_storeu_ps(d128.as_mut_ptr().add(32 * k).cast(), x) };
            }
        }
    }

    // ------------------------------------------------------------------ quantization

    /// Quantizes `min(values.len() / (bs * esz), absmax.len())` full blocks; `values` holds
    /// little-endian elements of `dtype`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) fn quantize(
        dtype: FloatDtype,
        values: &[u8],
        bs: usize,
        packed: &mut [u8],
        absmax: &mut [f32],
    ) -> usize {
        match dtype {
            FloatDtype::F32 => quantize_as::<0>(values, bs, packed, absmax),
            FloatDtype::BF16 => quantize_as::<1>(values, bs, packed, absmax),
            FloatDtype::F16 => quantize_as::<2>(values, bs, packed, absmax),
        }
    }

    /// Loads 8 elements of kind `K` (0: f32, 1: bf16, 2: f16) from `x` (at least 8 elements'
    /// bytes) and widens them exactly to f32.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn load8<const K: u8>(x: &[u8]) -> __m256 {
        if K == 0 {
            debug_assert!(x.len() >= 32);
            // SAFETY: the caller passes at least 32 bytes.
            unsafe { _mm256_loadu_ps(x.as_ptr().cast()) }
        } else {
            debug_assert!(x.len() >= 16);
            // SAFETY: the caller passes at least 16 bytes.
            let h = unsafe { _mm_loadu_si128(x.as_ptr().cast()) };
            if K == 1 {
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
            } else {
                _mm256_cvtph_ps(h)
            }
        }
    }

    /// NF4 codes of 8 scaled values (u32 lanes): the number of midpoints `m` with
    /// `!(m >= x)`, found by binary search (the predicate is monotone in `m`; NaN gives 15).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn code8(x: __m256) -> __m256i {
        let step = |m: __m256, bit: i32, idx: __m256i| -> (__m256, __m256i) {
            let c = _mm256_cmp_ps::<_CMP_NGE_UQ>(m, x);
            let idx = _mm256_or_si256(
                idx,
                _mm256_and_si256(_mm256_castps_si256(c), _mm256_set1_epi32(bit)),
            );
            (c, idx)
        };
        // bit 3: m[7]
        let (c, idx) = step(_mm256_set1_ps(M[7]), 8, _mm256_setzero_si256());
        // bit 2: m[3] or m[11]
        let m = _mm256_blendv_ps(_mm256_set1_ps(M[3]), _mm256_set1_ps(M[11]), c);
        let (_, idx) = step(m, 4, idx);
        // bit 1: m[base + 1], base in {0, 4, 8, 12}
        let t3 = _mm256_setr_ps(M[1], M[5], M[9], M[13], M[1], M[5], M[9], M[13]);
        let m = _mm256_permutevar8x32_ps(t3, _mm256_srli_epi32::<2>(idx));
        let (_, idx) = step(m, 2, idx);
        // bit 0: m[base], base in {0, 2, .., 14}
        let t4 = _mm256_setr_ps(M[0], M[2], M[4], M[6], M[8], M[10], M[12], M[14]);
        let m = _mm256_permutevar8x32_ps(t4, _mm256_srli_epi32::<1>(idx));
        let (_, idx) = step(m, 1, idx);
        idx
    }

    /// Packs 32 codes (four u32-lane vectors, in element order) into 16 bytes, the first
    /// element of each pair in the high nibble.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pack32(i: [__m256i; 4]) -> __m128i {
        // bytes, lane 0: [i0 0-3, i1 0-3, i2 0-3, i3 0-3], lane 1: the same for 4-7; pairs of
        // neighbouring elements stay adjacent.
        let b = _mm256_packus_epi16(
            _mm256_packs_epi32(i[0], i[1]),
            _mm256_packs_epi32(i[2], i[3]),
        );
        let pairs = _mm256_maddubs_epi16(b, _mm256_set1_epi16(0x0110));
        let q = _mm256_packus_epi16(pairs, pairs);
        // low 8 bytes of lane 0 hold pairs 0,1,4,5,8,9,12,13; of lane 1 pairs 2,3,6,7,...
        _mm_unpacklo_epi16(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q))
    }

    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn quantize_as<const K: u8>(
        values: &[u8],
        bs: usize,
        packed: &mut [u8],
        absmax: &mut [f32],
    ) -> usize {
        let esz = if K == 0 { 4 } else { 2 };
        let blocks = (values.len() / (bs * esz))
            .min(absmax.len())
            .min(packed.len() / (bs / 2));
        let values = &values[..blocks * bs * esz];
        for ((xs, out), am) in values
            .chunks_exact(bs * esz)
            .zip(packed.chunks_exact_mut(bs / 2))
            .zip(absmax.iter_mut())
        {
            // absmax: integer max of |x| bit patterns; any NaN pattern exceeds +inf.
            let abs_mask = _mm256_set1_epi32(0x7fff_ffff);
            let mut acc = [_mm256_setzero_si256(); 4];
            for x in xs.chunks_exact(STEP * esz) {
                for (k, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_castps_si256(load8::<K>(&x[8 * k * esz..]));
                    *a = _mm256_max_epi32(*a, _mm256_and_si256(v, abs_mask));
                }
            }
            let m = _mm256_max_epi32(
                _mm256_max_epi32(acc[0], acc[1]),
                _mm256_max_epi32(acc[2], acc[3]),
            );
            let m = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
            let m = _mm_max_epi32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
            let m = _mm_max_epi32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
            let bits = _mm_cvtsi128_si32(m) as u32;
            let a = if bits > 0x7f80_0000 {
                f32::NAN
            } else {
                f32::from_bits(bits)
            };
            *am = a;
            let floor = if a.is_nan() { a } else { a.max(ABSMAX_FLOOR) };
            let inv = _mm256_set1_ps(1.0f32 / floor);

            for (x, o) in xs
                .chunks_exact(STEP * esz)
                .zip(out.chunks_exact_mut(STEP / 2))
            {
                let c =
                    [0, 1, 2, 3].map(|k| code8(_mm256_mul_ps(load8::<K>(&x[8 * k * esz..]), inv)));
                // SAFETY: o holds 16 bytes: one unaligned 16-byte store.
                unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), pack32(c)) };
            }
        }
        blocks
    }
}
