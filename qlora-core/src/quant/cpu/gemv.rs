//! `y = x · Wᵀ` straight from an NF4 weight, for inputs of a few rows (decoding).
//!
//! The dense path ([`Nf4Linear`](crate::Nf4Linear) on a long input) dequantizes the whole
//! weight into an `[out, in]` f32 buffer and multiplies; for one decoded token that buffer
//! (235 MB for a 4096 x 14336 projection) costs far more than the product. Here each task
//! dequantizes one weight row at a time into a buffer that stays in cache (with the same
//! SIMD kernel as [`dequantize_nf4_into`](crate::quant::cpu::dequantize_nf4_into)) and takes its dot
//! product with every input row, so the weight is read once, 4 bits per value.
//!
//! [`nf4_matmul_reference`] (dequantize, then a plain triple loop) is the definition the
//! tests compare against; the two differ only by the order of the f32 additions.

use super::fast::dequantize_blocks;
use crate::dense::by_weight_rows;
use crate::error::{Error, Result};
use crate::quant::QuantState;

/// Output features per rayon task.
const ROWS_PER_TASK: usize = 16;

/// Whether [`nf4_matmul`] can run on `state`: a 2-D weight whose rows are whole blocks (so a
/// row starts at a block and a byte boundary).
pub fn nf4_matmul_supported(state: &QuantState) -> bool {
    match state.shape() {
        [_, cols] => {
            let bs = state.blocksize().get();
            *cols > 0 && cols.is_multiple_of(bs) && bs.is_multiple_of(2)
        }
        _ => false,
    }
}

fn check(state: &QuantState, x: &[f32], rows: usize) -> Result<[usize; 2]> {
    let [out, cols] = crate::quant::tensor::two_d(state.shape())?;
    if x.len() != rows * cols {
        return Err(Error::ShapeMismatch {
            tensor: "x".to_string(),
            expected: format!("[{rows}, {cols}] ({} values)", rows * cols),
            got: format!("{} values", x.len()),
        });
    }
    Ok([out, cols])
}

/// `y[r, o] = Σ_i x[r, i] · W[o, i]` for the `rows` rows of `x` (row-major `[rows, in]`) and
/// the NF4 weight `W` `[out, in]`; returns `y` row-major `[rows, out]`. Multi-threaded over
/// output features. `absmax` is `state.absmax_f32()` (pass it in to reuse it across calls).
///
/// ```
/// use qlora_core::quant::cpu::gemv::{nf4_matmul, nf4_matmul_reference};
/// use qlora_core::{QuantConfig, QuantState};
/// let w: Vec<f32> = (0..8 * 128).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
/// let q = QuantState::quantize(&w, &[8, 128], QuantConfig::default()).unwrap();
/// let x: Vec<f32> = (0..2 * 128).map(|i| (i % 7) as f32 - 3.0).collect();
/// let y = nf4_matmul(&q, &q.absmax_f32(), &x, 2).unwrap();
/// let r = nf4_matmul_reference(&q, &x, 2).unwrap();
/// assert_eq!(y.len(), 2 * 8);
/// assert!(y.iter().zip(&r).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs())));
/// ```
///
/// # Errors
///
/// [`Error::ShapeMismatch`] when `x` is not `rows x in`, when the weight's rows are not
/// whole blocks (see [`nf4_matmul_supported`]) or `absmax` has the wrong length; an error for
/// a weight that is not 2-D.
pub fn nf4_matmul(state: &QuantState, absmax: &[f32], x: &[f32], rows: usize) -> Result<Vec<f32>> {
    let [out, cols] = check(state, x, rows)?;
    if !nf4_matmul_supported(state) {
        return Err(Error::ShapeMismatch {
            tensor: "weight".to_string(),
            expected: format!("rows of whole {}-value blocks", state.blocksize().get()),
            got: format!("{:?}", state.shape()),
        });
    }
    let bs = state.blocksize().get();
    let blocks_per_row = cols / bs;
    if absmax.len() != out * blocks_per_row {
        return Err(Error::ShapeMismatch {
            tensor: "absmax".to_string(),
            expected: format!("{} values", out * blocks_per_row),
            got: format!("{} values", absmax.len()),
        });
    }
    let packed = state.packed();
    let half = cols / 2;
    Ok(by_weight_rows(out, cols, x, rows, ROWS_PER_TASK, |o, w| {
        let am = &absmax[o * blocks_per_row..(o + 1) * blocks_per_row];
        dequantize_blocks(&packed[o * half..(o + 1) * half], am, bs, w);
        None
    }))
}

/// The definition of [`nf4_matmul`]: the weight dequantized by the reference dequantizer,
/// then `y[r, o] = Σ_i x[r, i] · W[o, i]` accumulated in f64 and rounded once.
///
/// # Errors
///
/// As [`nf4_matmul`], except that any 2-D weight is accepted.
pub fn nf4_matmul_reference(state: &QuantState, x: &[f32], rows: usize) -> Result<Vec<f32>> {
    let [out, cols] = check(state, x, rows)?;
    let w = state.dequantize_reference()?;
    crate::dense::f32_matmul_reference(&w, [out, cols], x, rows).ok_or_else(|| {
        Error::ShapeMismatch {
            tensor: "weight".to_string(),
            expected: format!("[{out}, {cols}] ({} values)", out * cols),
            got: format!("{} values", w.len()),
        }
    })
}
