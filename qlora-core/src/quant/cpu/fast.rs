//! Fast CPU NF4 kernels: rayon over groups of whole blocks; per group, the explicit SIMD
//! kernels of `quant::simd` (x86-64 with AVX2 + F16C, detected at run time) for the full
//! blocks, and portable branch-free loops (which the compiler vectorizes) for the partial last
//! block and on other CPUs. They produce exactly the bytes and values of the reference
//! implementation in [`crate::quant::nf4`], which the tests check on random shapes and special
//! values.

use rayon::prelude::*;

use super::simd;
use crate::error::Result;
use crate::quant::dtype::QuantFloat;
use crate::quant::nf4::{
    check_nf4_lengths, nf4_code, Blocksize, Nf4Blocks, ABSMAX_FLOOR, NF4_CODE,
};

/// Elements per rayon task (rounded to whole blocks).
const TASK_ELEMS: usize = 1 << 16;

fn blocks_per_task(blocksize: usize) -> usize {
    (TASK_ELEMS / blocksize).max(1)
}

/// `max |x|` with torch's NaN propagation, 8 lanes wide so it vectorizes.
#[inline]
fn block_absmax(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut nan = false;
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            let a = c[j].abs();
            nan |= a.is_nan();
            lanes[j] = if a > lanes[j] { a } else { lanes[j] };
        }
    }
    for &x in chunks.remainder() {
        let a = x.abs();
        nan |= a.is_nan();
        lanes[0] = if a > lanes[0] { a } else { lanes[0] };
    }
    if nan {
        return f32::NAN;
    }
    lanes.into_iter().fold(0.0f32, f32::max)
}

/// Quantizes one block: widens into `buf`, writes packed codes to `out`, returns absmax.
#[inline]
fn quantize_block<T: QuantFloat>(
    xs: &[T],
    full: bool,
    buf: &mut [f32],
    codes: &mut [u8],
    out: &mut [u8],
) -> f32 {
    let buf = &mut buf[..xs.len()];
    T::to_f32_slice(xs, buf);
    let am = block_absmax(buf);
    let floor = if am.is_nan() {
        am
    } else {
        am.max(ABSMAX_FLOOR)
    };
    let codes = &mut codes[..xs.len()];
    if full {
        let inv = 1.0f32 / floor;
        for (c, &x) in codes.iter_mut().zip(buf.iter()) {
            *c = nf4_code(x * inv);
        }
    } else {
        for (c, &x) in codes.iter_mut().zip(buf.iter()) {
            *c = nf4_code(x / floor);
        }
    }
    let mut pairs = codes.chunks_exact(2);
    for (o, p) in out.iter_mut().zip(&mut pairs) {
        *o = (p[0] << 4) | p[1];
    }
    if let [last] = pairs.remainder() {
        if let Some(o) = out.last_mut() {
            // Odd element count: bitsandbytes pads with 0.0, which is code 7.
            *o = (last << 4) | 7;
        }
    }
    if full {
        am
    } else {
        // bitsandbytes stores the clamped absmax of the partial last block.
        floor
    }
}

/// The portable kernel for consecutive blocks (only the last may be partial).
fn quantize_blocks_portable<T: QuantFloat>(
    xs: &[T],
    bs: usize,
    out: &mut [u8],
    absmax: &mut [f32],
) {
    if xs.is_empty() {
        return;
    }
    let mut buf = vec![0.0f32; bs];
    let mut codes = vec![0u8; bs];
    for ((block, o), a) in xs.chunks(bs).zip(out.chunks_mut(bs / 2)).zip(absmax) {
        *a = quantize_block(block, block.len() == bs, &mut buf, &mut codes, o);
    }
}

/// Multi-threaded blockwise NF4 quantization; same result as
/// [`crate::quant::nf4::quantize_nf4_reference`].
///
/// ```
/// use qlora_core::{quant::cpu::quantize_nf4, quant::nf4::quantize_nf4_reference, Blocksize};
/// let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
/// let bs = Blocksize::new(128).unwrap();
/// assert_eq!(quantize_nf4(&x, bs), quantize_nf4_reference(&x, bs));
/// ```
pub fn quantize_nf4<T: QuantFloat>(values: &[T], blocksize: Blocksize) -> Nf4Blocks {
    let bs = blocksize.get();
    let numel = values.len();
    let mut packed = vec![0u8; numel.div_ceil(2)];
    let mut absmax = vec![0.0f32; blocksize.blocks(numel)];
    let task_blocks = blocks_per_task(bs);
    let task_elems = task_blocks * bs;
    packed
        .par_chunks_mut(task_elems / 2)
        .zip(absmax.par_chunks_mut(task_blocks))
        .zip(values.par_chunks(task_elems))
        .for_each(|((out, am), xs)| {
            let done = simd::quantize_full_blocks(xs, bs, out, am);
            quantize_blocks_portable(
                &xs[done * bs..],
                bs,
                &mut out[done * bs / 2..],
                &mut am[done..],
            );
        });
    Nf4Blocks { packed, absmax }
}

/// Multi-threaded NF4 dequantization into `out` (length `numel`): per block a 16-entry table
/// `T::from_f32(NF4_CODE[k] * absmax)`, then two table lookups per packed byte. Same values
/// as [`crate::quant::nf4::dequantize_nf4_reference`] rounded to `T`.
pub fn dequantize_nf4_into<T: QuantFloat>(
    packed: &[u8],
    absmax: &[f32],
    blocksize: Blocksize,
    out: &mut [T],
) -> Result<()> {
    let bs = blocksize.get();
    check_nf4_lengths("nf4", packed.len(), absmax.len(), out.len(), blocksize)?;
    let task_blocks = blocks_per_task(bs);
    let task_elems = task_blocks * bs;
    out.par_chunks_mut(task_elems)
        .zip(packed.par_chunks(task_elems / 2))
        .zip(absmax.par_chunks(task_blocks))
        .for_each(|((dst, src), am)| dequantize_blocks(src, am, bs, dst));
    Ok(())
}

/// Dequantizes consecutive blocks on this thread (only the last may be partial): the SIMD
/// kernel for the full blocks where the CPU has it, the portable loop for the rest.
pub(crate) fn dequantize_blocks<T: QuantFloat>(src: &[u8], am: &[f32], bs: usize, dst: &mut [T]) {
    let done = simd::dequantize_full_blocks(src, am, bs, dst);
    dequantize_blocks_portable(
        &src[done * bs / 2..],
        &am[done..],
        bs,
        &mut dst[done * bs..],
    );
}

/// The portable kernel for consecutive blocks (only the last may be partial).
fn dequantize_blocks_portable<T: QuantFloat>(src: &[u8], absmax: &[f32], bs: usize, dst: &mut [T]) {
    for ((d, s), &a) in dst.chunks_mut(bs).zip(src.chunks(bs / 2)).zip(absmax) {
        dequantize_block(s, a, d);
    }
}

#[inline]
fn dequantize_block<T: QuantFloat>(src: &[u8], absmax: f32, dst: &mut [T]) {
    let table: [T; 16] = std::array::from_fn(|k| T::from_f32(NF4_CODE[k] * absmax));
    let mut pairs = dst.chunks_exact_mut(2);
    for (d, &b) in (&mut pairs).zip(src) {
        d[0] = table[usize::from(b >> 4)];
        d[1] = table[usize::from(b & 0x0f)];
    }
    if let ([d], Some(&b)) = (pairs.into_remainder(), src.last()) {
        *d = table[usize::from(b >> 4)];
    }
}

/// [`dequantize_nf4_into`] into a new vector of `numel` elements.
///
/// ```
/// use qlora_core::{quant::cpu::dequantize_nf4, quant::cpu::quantize_nf4, Blocksize};
/// let x = vec![0.25f32, -1.0, 0.0, 0.5];
/// let q = quantize_nf4(&x, Blocksize::default());
/// let y: Vec<f32> = dequantize_nf4(&q.packed, &q.absmax, 4, Blocksize::default()).unwrap();
/// assert_eq!(y[1], -1.0);
/// assert_eq!(y[2], 0.0);
/// ```
pub fn dequantize_nf4<T: QuantFloat>(
    packed: &[u8],
    absmax: &[f32],
    numel: usize,
    blocksize: Blocksize,
) -> Result<Vec<T>> {
    let mut out = vec![T::from_f32(0.0); numel];
    dequantize_nf4_into(packed, absmax, blocksize, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The portable loops (what CPUs without the SIMD kernels run) against the reference, and
    //! a check that the SIMD kernels really take the full blocks where the CPU has them.

    use half::{bf16, f16};

    use super::*;
    use crate::quant::nf4::{dequantize_nf4_reference, quantize_nf4_reference, ALLOWED_BLOCKSIZES};

    /// Deterministic inputs with every kind of special value.
    fn inputs(n: usize) -> Vec<f32> {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::from_bits(1),
            -f32::from_bits(0x007f_ffff),
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x7f80_0001),
            NF4_CODE[3],
        ];
        let mut s = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                if s.is_multiple_of(97) {
                    specials[(s >> 8) as usize % specials.len()]
                } else if (i / 700) % 3 == 2 {
                    0.0
                } else {
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                        * 10f32.powi((i / 300) as i32 % 9 - 6)
                }
            })
            .collect()
    }

    fn same(a: &Nf4Blocks, b: &Nf4Blocks) -> bool {
        a.packed == b.packed
            && a.absmax
                .iter()
                .map(|x| x.to_bits())
                .eq(b.absmax.iter().map(|x| x.to_bits()))
    }

    fn portable<T: QuantFloat>(xs: &[T], bs: usize) -> Nf4Blocks {
        let mut packed = vec![0u8; xs.len().div_ceil(2)];
        let mut absmax = vec![0.0f32; xs.len().div_ceil(bs)];
        quantize_blocks_portable(xs, bs, &mut packed, &mut absmax);
        Nf4Blocks { packed, absmax }
    }

    fn check_all<T: QuantFloat>(xs: &[T]) {
        for bs in ALLOWED_BLOCKSIZES {
            let b = Blocksize::new(bs).unwrap();
            for n in [xs.len(), xs.len() - 1, bs - 1, 3 * bs + 17] {
                let xs = &xs[..n.min(xs.len())];
                let reference = quantize_nf4_reference(xs, b);
                assert!(
                    same(&portable(xs, bs), &reference),
                    "portable quantize bs {bs} n {n}"
                );
                assert!(
                    same(&quantize_nf4(xs, b), &reference),
                    "fast quantize bs {bs} n {n}"
                );
                let want =
                    dequantize_nf4_reference(&reference.packed, &reference.absmax, xs.len(), b)
                        .unwrap();
                let mut out = vec![T::from_f32(0.0); xs.len()];
                dequantize_blocks_portable(&reference.packed, &reference.absmax, bs, &mut out);
                let ok = out
                    .iter()
                    .zip(&want)
                    .all(|(x, w)| bytemuck::bytes_of(x) == bytemuck::bytes_of(&T::from_f32(*w)));
                assert!(ok, "portable dequantize bs {bs} n {n}");
            }
        }
    }

    #[test]
    fn portable_kernels_equal_reference() {
        let v = inputs(9001);
        check_all(&v);
        check_all(&v.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>());
        check_all(&v.iter().map(|&x| f16::from_f32(x)).collect::<Vec<_>>());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_kernels_take_the_full_blocks_when_available() {
        let have = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c");
        let v: Vec<bf16> = inputs(1000).iter().map(|&x| bf16::from_f32(x)).collect();
        let mut packed = vec![0u8; 500];
        let mut absmax = vec![0.0f32; 16];
        let q = simd::quantize_full_blocks(&v, 64, &mut packed, &mut absmax);
        assert_eq!(q, if have { 15 } else { 0 });
        let mut out = vec![bf16::ZERO; 1000];
        let d = simd::dequantize_full_blocks(&packed, &absmax, 64, &mut out);
        assert_eq!(d, q);
    }
}
