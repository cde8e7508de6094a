//! Host matrix products against a weight stored `[out, in]`, read one weight row at a time.
//!
//! For a short input (a decoded token, a few rows) the weight is far larger than the input and
//! output, so the cost is reading the weight once. [`by_weight_rows`] is that loop, shared by
//! the dense [`f32_matmul`] and the 4-bit `quant::cpu::nf4_matmul` (which first dequantizes
//! each row into a buffer that stays in cache): each rayon task owns a run of output features,
//! takes every weight row in the run once and dots it with every input row.
//! [`f32_matmul_reference`] is the definition both are tested against.

use rayon::prelude::*;

/// `y[r, o] = Σ_i x[r, i] · W[o, i]` for `x` row-major `[rows, in]` and `W` row-major
/// `shape = [out, in]`; returns `y` row-major `[rows, out]`, or `None` when the lengths do not
/// fit those shapes. Multi-threaded over output features; each weight row is read once and dotted
/// with every input row while it is in cache.
///
/// ```
/// use qlora_core::dense::{f32_matmul, f32_matmul_reference};
/// let w: Vec<f32> = (0..6 * 40).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
/// let x: Vec<f32> = (0..2 * 40).map(|i| (i % 7) as f32 - 3.0).collect();
/// let y = f32_matmul(&w, [6, 40], &x, 2).unwrap();
/// let r = f32_matmul_reference(&w, [6, 40], &x, 2).unwrap();
/// assert!(y.iter().zip(&r).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs())));
/// ```
pub fn f32_matmul(w: &[f32], shape: [usize; 2], x: &[f32], rows: usize) -> Option<Vec<f32>> {
    let [out, inn] = fits(w, shape, x, rows)?;
    Some(by_weight_rows(out, inn, x, rows, 32, |o, _| {
        Some(&w[o * inn..(o + 1) * inn])
    }))
}

/// The definition of [`f32_matmul`]: a plain triple loop accumulating in f64, rounded once.
pub fn f32_matmul_reference(
    w: &[f32],
    shape: [usize; 2],
    x: &[f32],
    rows: usize,
) -> Option<Vec<f32>> {
    let [out, inn] = fits(w, shape, x, rows)?;
    let mut y = vec![0.0f32; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let s: f64 = (0..inn)
                .map(|i| f64::from(x[r * inn + i]) * f64::from(w[o * inn + i]))
                .sum();
            y[r * out + o] = s as f32;
        }
    }
    Some(y)
}

/// `y = x · Wᵀ` (`y` row-major `[rows, out]`) where `weight_row(o, scratch)` gives row `o` of
/// `W` (`inn` values): `Some` slice of a stored weight, or `None` after writing the row into
/// `scratch` (an `inn`-value buffer owned by the task). `per_task` output features go to each
/// rayon task. `x` must hold `rows · inn` values (checked by the callers).
pub(crate) fn by_weight_rows<'w, F>(
    out: usize,
    inn: usize,
    x: &[f32],
    rows: usize,
    per_task: usize,
    weight_row: F,
) -> Vec<f32>
where
    F: Fn(usize, &mut [f32]) -> Option<&'w [f32]> + Sync,
{
    // Computed transposed ([out, rows]) so that each task owns a contiguous slice.
    let mut yt = vec![0.0f32; out * rows];
    if rows > 0 && inn > 0 {
        yt.par_chunks_mut(per_task.max(1) * rows)
            .enumerate()
            .for_each(|(task, dst)| {
                let mut scratch = vec![0.0f32; inn];
                for (k, yo) in dst.chunks_mut(rows).enumerate() {
                    let stored = weight_row(task * per_task.max(1) + k, &mut scratch);
                    let wo = stored.unwrap_or(&scratch);
                    for (r, y) in yo.iter_mut().enumerate() {
                        *y = dot(&x[r * inn..(r + 1) * inn], wo);
                    }
                }
            });
    }
    let mut y = vec![0.0f32; rows * out];
    for (o, col) in yt.chunks(rows.max(1)).enumerate().take(out) {
        for (r, &v) in col.iter().enumerate() {
            y[r * out + o] = v;
        }
    }
    y
}

/// Dot product with eight independent partial sums (vectorizes).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (p, q) in ca.zip(cb) {
        for j in 0..8 {
            lanes[j] += p[j] * q[j];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `shape` when `w` holds `out · in` values and `x` holds `rows · in`.
fn fits(w: &[f32], shape: [usize; 2], x: &[f32], rows: usize) -> Option<[usize; 2]> {
    let [out, inn] = shape;
    (out.checked_mul(inn)? == w.len() && rows.checked_mul(inn)? == x.len()).then_some(shape)
}
