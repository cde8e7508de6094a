//! NF4 dequantization on the device: `NF4_CODE[code] * absmax[block]`, with the absmax rebuilt
//! from its 8-bit codes in registers when it is double-quantized.
//!
//! One thread handles one 32-bit word of packed codes (8 elements, always inside one block
//! since blocksizes are multiples of 8): one coalesced 4-byte load, one absmax, eight stores.

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::client::{CubeFloat, CubeNf4, DeviceAbsmax, DeviceNf4};
use super::error::CubeResult;

/// Threads per cube of the elementwise kernels.
pub(crate) const ELEMENTWISE_CUBE: u32 = 256;

/// The absmax of `block`: stored as is, or `nested_code[q] * nested_absmax[block / nbs] +
/// offset` from its 8-bit code `q` (4 codes per word, little-endian) when `double_quant`.
#[cube]
pub(crate) fn block_absmax(
    block: usize,
    absmax: &Array<f32>,
    absmax_codes: &Array<u32>,
    nested_absmax: &Array<f32>,
    nested_code: &Array<f32>,
    nested_blocksize: u32,
    offset: f32,
    #[comptime] double_quant: bool,
) -> f32 {
    if double_quant {
        let word = absmax_codes[block / 4];
        let shift = ((block % 4) as u32) * 8;
        let q = (word >> shift) & 0xFF;
        nested_code[q as usize] * nested_absmax[block / (nested_blocksize as usize)] + offset
    } else {
        absmax[block]
    }
}

#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn nf4_dequantize_kernel<F: Float>(
    packed: &Array<u32>,
    absmax: &Array<f32>,
    absmax_codes: &Array<u32>,
    nested_absmax: &Array<f32>,
    nested_code: &Array<f32>,
    code: &Array<f32>,
    output: &mut Array<F>,
    numel: u32,
    words: u32,
    blocksize: u32,
    nested_blocksize: u32,
    offset: f32,
    #[comptime] double_quant: bool,
) {
    let w = ABSOLUTE_POS;
    if w >= words as usize {
        terminate!();
    }
    let word = packed[w];
    let first = w * 8;
    let scale = block_absmax(
        first / (blocksize as usize),
        absmax,
        absmax_codes,
        nested_absmax,
        nested_code,
        nested_blocksize,
        offset,
        double_quant,
    );
    let n = numel as usize;
    #[unroll]
    for j in 0..4u32 {
        let byte = (word >> (j * 8)) & 0xFF;
        let e = first + (j as usize) * 2;
        // The first element of a byte is its high nibble (bitsandbytes' packing).
        if e < n {
            output[e] = F::cast_from(code[(byte >> 4) as usize] * scale);
        }
        if e + 1 < n {
            output[e + 1] = F::cast_from(code[(byte & 0xF) as usize] * scale);
        }
    }
}

/// The absmax operands of a launch: `(absmax, codes, nested_absmax, nested_code, offset,
/// nested_blocksize)`, with the dummy buffer where the variant reads nothing.
pub(crate) fn absmax_args<R: Runtime>(
    nf4: &CubeNf4<R>,
    w: &DeviceNf4,
) -> (Handle, Handle, Handle, Handle, f32, u32, bool) {
    match &w.absmax {
        DeviceAbsmax::Plain(a) => (
            a.clone(),
            nf4.dummy.clone(),
            nf4.dummy.clone(),
            nf4.dummy.clone(),
            0.0,
            1,
            false,
        ),
        DeviceAbsmax::Double {
            codes,
            nested_absmax,
            nested_code,
            offset,
            nested_blocksize,
        } => (
            nf4.dummy.clone(),
            codes.clone(),
            nested_absmax.clone(),
            nested_code.clone(),
            *offset,
            *nested_blocksize,
            true,
        ),
    }
}

impl<R: Runtime> CubeNf4<R> {
    /// Dequantizes a device weight into a new device buffer of `numel` elements of `F`
    /// (`f32`: exactly the CPU's values; `bf16`/`f16`: those rounded to nearest even).
    pub fn dequantize<F: CubeFloat>(&self, w: &DeviceNf4) -> Handle {
        let numel = w.numel();
        let output = self.client.empty(numel * std::mem::size_of::<F>());
        if numel == 0 {
            return output;
        }
        let (absmax, codes, nested_absmax, nested_code, offset, nbs, dq) = absmax_args(self, w);
        let cubes = (w.words as u32).div_ceil(ELEMENTWISE_CUBE);
        // SAFETY: every array length below is the length of its buffer, and the kernel
        // bounds-checks its word and element indices against `words` and `numel`.
        unsafe {
            nf4_dequantize_kernel::launch_unchecked::<F, R>(
                &self.client,
                CubeCount::Static(cubes, 1, 1),
                CubeDim::new_1d(ELEMENTWISE_CUBE),
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
                ArrayArg::from_raw_parts(output.clone(), numel),
                w.numel,
                w.words as u32,
                w.blocksize.get() as u32,
                nbs,
                offset,
                dq,
            )
        };
        output
    }

    /// Dequantizes a device weight and copies the result to the host.
    pub fn dequantize_to_host<F: CubeFloat>(&self, w: &DeviceNf4) -> CubeResult<Vec<F>> {
        let out = self.dequantize::<F>(w);
        self.read(out, w.numel(), "dequantized weight")
    }
}

#[cfg(test)]
mod tests {

    use super::super::test_support::{client, values, Half};
    use crate::{Blocksize, QuantConfig, QuantState};

    /// The CPU oracle: the reference dequantization (absmax reconstructed on the host).
    fn reference(state: &QuantState) -> Vec<f32> {
        state.dequantize_reference().unwrap()
    }

    fn states() -> Vec<QuantState> {
        let mut out = Vec::new();
        // Odd numel (padding nibble), a partial last block, several nested blocks.
        for (n, shape) in [
            (3 * 64 * 5 + 7, vec![3 * 64 * 5 + 7]),
            (256 * 300, vec![256, 300]),
            (64 * 40, vec![64, 40]),
        ] {
            for bs in [64, 128, 4096] {
                for dq in [false, true] {
                    let v = values(n, bs as u32);
                    let config = QuantConfig {
                        blocksize: Blocksize::new(bs).unwrap(),
                        double_quant: dq,
                    };
                    out.push(QuantState::quantize(&v, &shape, config).unwrap());
                }
            }
        }
        out
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn dequantize_f32_matches_cpu_reference() {
        let gpu = client();
        for state in states() {
            let w = gpu.upload(&state).unwrap();
            let got: Vec<f32> = gpu.dequantize_to_host(&w).unwrap();
            let want = reference(&state);
            assert_eq!(got.len(), want.len());
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                // Plain absmax: one multiply, bit-identical. Double quant: the GPU may fuse
                // `code * nested + offset` into one FMA, one rounding less than bitsandbytes.
                let tol = if state.is_double_quant() {
                    r.abs() * 4e-7
                } else {
                    0.0
                };
                assert!(
                    (g - r).abs() <= tol,
                    "{:?} dq={} element {i}: gpu {g} cpu {r}",
                    state.shape(),
                    state.is_double_quant()
                );
            }
        }
    }

    #[test]
    #[cfg_attr(not(feature = "wgpu"), ignore = "needs a GPU, or --features wgpu")]
    fn dequantize_bf16_matches_cpu_reference() {
        let gpu = client();
        for state in states() {
            let w = gpu.upload(&state).unwrap();
            let got: Vec<Half> = gpu.dequantize_to_host(&w).unwrap();
            let want = reference(&state);
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                let r16 = Half::from_f32(*r);
                let ok = if state.is_double_quant() {
                    // One f32 rounding of absmax may move a Half result by one step.
                    (g.to_f32() - r16.to_f32()).abs() <= r.abs() * (1.0 / 128.0)
                } else {
                    g.to_bits() == r16.to_bits()
                };
                assert!(ok, "element {i}: gpu {g} cpu {r16}");
            }
        }
    }
}
