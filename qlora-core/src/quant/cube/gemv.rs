//! The fused 4-bit GEMV of batch-1 decode: `y = W x` with `W` `[rows, cols]` in NF4, read
//! once and dequantized in registers (no dequantized copy of `W` is ever written).
//!
//! One plane (warp: 32 lanes on NVIDIA GPUs) per output row, 8 rows per cube: lane `l` reads
//! the row's packed words `l, l + P, ...` (coalesced 128-byte loads per warp), multiplies their
//! 8 codes by the matching `x` entries, scales the partial sum once by the word's absmax, and
//! the plane sums with a plane reduction. The lane count is the device's plane width, so that
//! one plane is exactly one row (Mesa's lavapipe, where the tests run without a GPU, has
//! planes of 8). Accumulation is in `f32` whatever the element type.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::client::{CubeFloat, CubeNf4, DeviceNf4};
use super::dequantize::{absmax_args, block_absmax};
use super::error::{CubeError, CubeResult};

/// Rows per cube.
const ROWS_PER_CUBE: u32 = 8;

#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn nf4_gemv_kernel<F: Float>(
    packed: &Array<u32>,
    absmax: &Array<f32>,
    absmax_codes: &Array<u32>,
    nested_absmax: &Array<f32>,
    nested_code: &Array<f32>,
    code: &Array<f32>,
    x: &Array<F>,
    y: &mut Array<F>,
    rows: u32,
    cols: u32,
    blocksize: u32,
    nested_blocksize: u32,
    offset: f32,
    #[comptime] double_quant: bool,
) {
    let row = (CUBE_POS_X * CUBE_DIM_Y + UNIT_POS_Y) as usize;
    // A whole warp shares `row`, so it leaves together and the plane sum below sees full warps.
    if row >= rows as usize {
        terminate!();
    }
    let row_words = (cols / 8) as usize;
    let base = row * row_words;
    let bs = blocksize as usize;
    let mut acc = 0.0f32;
    let mut w = UNIT_POS_X as usize;
    while w < row_words {
        let word = packed[base + w];
        let scale = block_absmax(
            ((base + w) * 8) / bs,
            absmax,
            absmax_codes,
            nested_absmax,
            nested_code,
            nested_blocksize,
            offset,
            double_quant,
        );
        let k = w * 8;
        let mut part = 0.0f32;
        #[unroll]
        for j in 0..4u32 {
            let byte = (word >> (j * 8)) & 0xFF;
            let kj = k + (j as usize) * 2;
            part += code[(byte >> 4) as usize] * f32::cast_from(x[kj]);
            part += code[(byte & 0xF) as usize] * f32::cast_from(x[kj + 1]);
        }
        acc += part * scale;
        w += CUBE_DIM_X as usize;
    }
    let total = plane_sum(acc);
    if UNIT_POS_X == 0 {
        y[row] = F::cast_from(total);
    }
}

impl<R: Runtime> CubeNf4<R> {
    /// `y = W x` for a device weight `W` `[rows, cols]` (`cols` a multiple of 8) and a device
    /// vector `x` of `cols` elements of `F`; returns `y` (`rows` elements of `F`) on the device.
    pub fn gemv<F: CubeFloat>(&self, w: &DeviceNf4, x: &Handle) -> CubeResult<Handle> {
        let (rows, cols) = gemv_shape(w)?;
        let y = self.client.empty(rows * std::mem::size_of::<F>());
        if rows == 0 {
            return Ok(y);
        }
        let (absmax, codes, nested_absmax, nested_code, offset, nbs, dq) = absmax_args(self, w);
        let cubes = (rows as u32).div_ceil(ROWS_PER_CUBE);
        // SAFETY: array lengths are those of the buffers; rows are bounds-checked and every
        // index of a row stays below `cols` (`cols % 8 == 0`, checked above).
        unsafe {
            nf4_gemv_kernel::launch_unchecked::<F, R>(
                &self.client,
                CubeCount::Static(cubes, 1, 1),
                CubeDim::new_2d(self.plane_size(), ROWS_PER_CUBE),
                ArrayArg::from_raw_parts(w.packed.clone(), w.words),
                ArrayArg::from_raw_parts(absmax, if dq { 1 } else { w.blocks }),
                ArrayArg::from_raw_parts(codes, if dq { w.blocks.div_ceil(4) } else { 1 }),
                ArrayArg::from_raw_parts(
                    nested_absmax,
                    if dq {
                        w.blocks.div_ceil(nbs as usize)
                    } else {
                        1
                    },
                ),
                ArrayArg::from_raw_parts(nested_code, if dq { 256 } else { 1 }),
                ArrayArg::from_raw_parts(self.code.clone(), 16),
                ArrayArg::from_raw_parts(x.clone(), cols),
                ArrayArg::from_raw_parts(y.clone(), rows),
                rows as u32,
                cols as u32,
                w.blocksize.get() as u32,
                nbs,
                offset,
                dq,
            )
        };
        Ok(y)
    }

    /// [`CubeNf4::gemv`] from and to host memory.
    pub fn gemv_host<F: CubeFloat>(&self, w: &DeviceNf4, x: &[F]) -> CubeResult<Vec<F>> {
        let (rows, cols) = gemv_shape(w)?;
        if x.len() != cols {
            return Err(CubeError::Shape {
                tensor: "x".to_string(),
                reason: format!(
                    "{} elements for a weight of shape [{rows}, {cols}]",
                    x.len()
                ),
            });
        }
        let xd = self.upload_values(x);
        let y = self.gemv::<F>(w, &xd)?;
        self.read(y, rows, "gemv output")
    }
}

/// `[rows, cols]` of a weight the GEMV takes.
fn gemv_shape(w: &DeviceNf4) -> CubeResult<(usize, usize)> {
    match *w.shape() {
        [rows, cols] if cols % 8 == 0 => Ok((rows, cols)),
        [_, cols] => Err(CubeError::Shape {
            tensor: "weight".to_string(),
            reason: format!("the GEMV needs in_features divisible by 8, got {cols}"),
        }),
        ref other => Err(CubeError::Shape {
            tensor: "weight".to_string(),
            reason: format!("expected a 2-D shape [out, in], got {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {

    use super::super::test_support::{client, values, Half};
    use crate::{Blocksize, QuantConfig, QuantState};

    /// CPU oracle: the reference dequantization, then `W x` in f64.
    fn reference(state: &QuantState, x: &[f32]) -> Vec<f64> {
        let w = state.dequantize_reference().unwrap();
        let cols = state.shape()[1];
        w.chunks(cols)
            .map(|row| row.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum())
            .collect()
    }

    /// |error| within a relative bound of the sum of |terms| (f32 accumulation order differs).
    fn close(got: f64, want: f64, scale: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * scale + 1e-30
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn gemv_matches_cpu_reference() {
        let gpu = client();
        for (rows, cols) in [(37, 64), (256, 4096), (300, 1024 + 64)] {
            for dq in [false, true] {
                let config = QuantConfig {
                    blocksize: Blocksize::new(64).unwrap(),
                    double_quant: dq,
                };
                let state =
                    QuantState::quantize(&values(rows * cols, 3), &[rows, cols], config).unwrap();
                let x = values(cols, 11);
                let w = gpu.upload(&state).unwrap();
                let want = reference(&state, &x);
                let dense = state.dequantize_reference().unwrap();
                let got: Vec<f32> = gpu.gemv_host(&w, &x).unwrap();
                let got16: Vec<Half> = gpu
                    .gemv_host(
                        &w,
                        &x.iter().map(|v| Half::from_f32(*v)).collect::<Vec<_>>(),
                    )
                    .unwrap();
                for r in 0..rows {
                    let scale: f64 = dense[r * cols..(r + 1) * cols]
                        .iter()
                        .zip(&x)
                        .map(|(a, b)| (*a as f64 * *b as f64).abs())
                        .sum();
                    assert!(
                        close(got[r] as f64, want[r], scale, 1e-5),
                        "[{rows},{cols}] dq={dq} row {r}: gpu {} cpu {}",
                        got[r],
                        want[r]
                    );
                    // Half x and y: x rounding (2^-9 relative) plus output rounding.
                    assert!(
                        close(got16[r].to_f32() as f64, want[r], scale, 1e-2),
                        "Half [{rows},{cols}] dq={dq} row {r}: gpu {} cpu {}",
                        got16[r],
                        want[r]
                    );
                }
            }
        }
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn gemv_rejects_bad_shapes() {
        let gpu = client();
        let state =
            QuantState::quantize(&values(64 * 12, 1), &[64, 12], QuantConfig::default()).unwrap();
        let w = gpu.upload(&state).unwrap();
        assert!(gpu.gemv_host(&w, &[0.0f32; 12]).is_err());
        let state =
            QuantState::quantize(&values(64 * 16, 1), &[64, 16], QuantConfig::default()).unwrap();
        let w = gpu.upload(&state).unwrap();
        assert!(gpu.gemv_host(&w, &[0.0f32; 15]).is_err());
    }
}
